"""The API layer behind the public facade."""

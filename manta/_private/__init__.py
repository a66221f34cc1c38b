"""Private implementation. Nothing here is public API."""

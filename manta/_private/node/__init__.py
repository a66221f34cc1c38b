"""The node daemon (ARCHITECTURE.md sections 1 and 7)."""

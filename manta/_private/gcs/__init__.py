"""The control store (ARCHITECTURE.md section 6)."""

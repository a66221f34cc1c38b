"""The core worker: ownership, submission and execution (ARCHITECTURE.md sections 2-3)."""

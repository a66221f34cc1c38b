"""RPC: typed messages over authenticated asyncio connections (ARCHITECTURE.md section 9)."""

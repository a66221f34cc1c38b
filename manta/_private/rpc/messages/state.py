"""Messages of the state API's listings that nodes answer (tags 200-209)."""

from __future__ import annotations

from manta._private.rpc.codec import message


@message(200)
class ListWorkers:
    """A node's worker and driver processes, running and recently ended, as rows of
    ``worker_processes.WORKER_ROW`` (a reply of plain lists: a node may hold thousands)."""

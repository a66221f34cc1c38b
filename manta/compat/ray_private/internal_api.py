"""``ray._private.internal_api``: Ray's internal helpers that tests call."""

from __future__ import annotations

from typing import Any

from manta._private.api.memory import memory_summary as _memory_summary


def memory_summary(address: str | None = None, stats_only: bool = False, **_options: Any) -> str:
    """The cluster's memory report (``manta memory``). Manta's has no stats-only form: the
    whole report is returned either way."""
    return _memory_summary()

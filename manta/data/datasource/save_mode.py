"""What a write does when its destination already exists."""

from __future__ import annotations

from enum import Enum


class SaveMode(str, Enum):
    """As Ray's ``SaveMode``: ``APPEND`` (default) adds files beside existing ones,
    ``OVERWRITE`` empties the directory first, ``IGNORE`` writes nothing, ``ERROR`` and
    ``CREATE`` raise ``ValueError``. ``UPSERT`` needs keys and is refused by file sinks."""

    CREATE = "create"
    APPEND = "append"
    OVERWRITE = "overwrite"
    IGNORE = "ignore"
    ERROR = "error"
    UPSERT = "upsert"

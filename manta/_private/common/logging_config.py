"""``manta.LoggingConfig`` (Ray's ``ray.LoggingConfig``): how a job's Python ``logging``
looks, in its driver and in every worker that runs its tasks and actors.

``init(logging_config=LoggingConfig(encoding="JSON"))`` records the settings with the job;
each worker applies them when it sets up for the job, and the driver at once: the root
logger gets one handler on stderr (which reaches the driver, as ``print`` does) at
``log_level``, whose lines carry the job, worker, node, and the running task and actor.
With ``encoding="JSON"`` each line is one JSON object, and the driver prints workers'
lines without its ``(name pid=...)`` prefix so that they stay parseable (as Ray does).
Without a ``logging_config`` nothing is configured: a task's ``logging`` output follows
Python's defaults (warnings and up, to stderr), as in Ray.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ENCODINGS = ("TEXT", "JSON")
# What every line carries, besides the context fields (job_id, worker_id, ...).
_ALWAYS = ("asctime", "levelname", "message", "filename", "lineno", "process")
# The attributes of every LogRecord (those of Python's logging docs); anything else on a
# record came from ``extra=`` and is printed too.
STANDARD_ATTRS = frozenset(
    {
        "args",
        "asctime",
        "created",
        "exc_info",
        "exc_text",
        "filename",
        "funcName",
        "levelname",
        "levelno",
        "lineno",
        "message",
        "module",
        "msecs",
        "msg",
        "name",
        "pathname",
        "process",
        "processName",
        "relativeCreated",
        "stack_info",
        "taskName",
        "thread",
        "threadName",
    }
)
CONTEXT_FIELDS = ("job_id", "worker_id", "node_id", "actor_id", "task_id", "task_name")
_MARK = "_manta_job_logging"


@dataclass
class LoggingConfig:
    """Logging settings of a job, given to ``init(logging_config=...)``.

    Args:
        encoding: ``"TEXT"`` (``<time> <LEVEL> <file>:<line> -- <message> key=value ...``)
            or ``"JSON"`` (one object per line).
        log_level: the root logger's level in the driver and the job's workers
            (``"INFO"`` by default, so ``logger.info`` in a task reaches the driver).
        additional_log_standard_attrs: more ``LogRecord`` attributes to print (``"name"``,
            ``"funcName"``, ...).

    Raises ``ValueError`` for an unknown encoding, level or attribute.
    """

    encoding: str = "TEXT"
    log_level: str = "INFO"
    additional_log_standard_attrs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(
                f"Invalid encoding type: {self.encoding!r}. Valid encoding types are: {list(ENCODINGS)}"
            )
        if not isinstance(logging.getLevelName(str(self.log_level).upper()), int):
            raise ValueError(
                f"Invalid log_level: {self.log_level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
            )
        for attr in self.additional_log_standard_attrs:
            if attr not in STANDARD_ATTRS:
                raise ValueError(
                    f"Unknown python logging standard attribute: {attr!r}. The valid attributes are: "
                    f"{sorted(STANDARD_ATTRS)}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggingConfig:
        """The settings in ``data``, unknown keys ignored (a newer driver's)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class _ContextFilter(logging.Filter):
    """Puts the process's and the running task's ids on every record."""

    def __init__(self, context: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self._context = context

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            values = self._context()
        except Exception:  # a half set-up process: the line matters more than its ids
            values = {}
        for key in CONTEXT_FIELDS:
            if key in values and not hasattr(record, key):
                setattr(record, key, values[key])
        record.timestamp_ns = time.time_ns()
        return True


def _fields(
    record: logging.LogRecord, extra_attrs: list[str], formatter: logging.Formatter
) -> dict[str, Any]:
    record.message = record.getMessage()
    record.asctime = formatter.formatTime(record)
    out: dict[str, Any] = {name: getattr(record, name, None) for name in _ALWAYS}
    for name in extra_attrs:
        out[name] = getattr(record, name, None)
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        out["exc_text"] = record.exc_text
    for name, value in vars(record).items():
        if name not in STANDARD_ATTRS and name not in out and name != "timestamp_ns":
            out[name] = value  # context fields and the caller's extra=
    out["timestamp_ns"] = getattr(record, "timestamp_ns", time.time_ns())
    return out


class JsonFormatter(logging.Formatter):
    def __init__(self, extra_attrs: list[str]) -> None:
        super().__init__()
        self._extra = list(extra_attrs)

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self._extra, self), default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, extra_attrs: list[str]) -> None:
        super().__init__()
        self._extra = list(extra_attrs)

    def format(self, record: logging.LogRecord) -> str:
        values = _fields(record, self._extra, self)
        head = f"{values.pop('asctime')} {values.pop('levelname')} {values.pop('filename')}:{values.pop('lineno')} -- "
        text = head + str(values.pop("message"))
        exc = values.pop("exc_text", None)
        values.pop("process", None)
        text += "".join(f" {k}={v}" for k, v in values.items() if v is not None)
        return text + ("\n" + exc if exc else "")


def apply(
    settings: LoggingConfig | dict[str, Any],
    context: Callable[[], dict[str, str]],
    own_logger: str | None = None,
) -> None:
    """Give the root logger (and ``own_logger``, in a driver: Manta's own lines look
    alike there, as Ray's do) one stderr handler with these settings, replacing the one
    an earlier call gave it."""
    config = settings if isinstance(settings, LoggingConfig) else LoggingConfig.from_dict(settings)
    level = str(config.log_level).upper()
    handler = logging.StreamHandler()
    formatter = JsonFormatter if config.encoding == "JSON" else TextFormatter
    handler.setFormatter(formatter(config.additional_log_standard_attrs))
    handler.addFilter(_ContextFilter(context))
    handler.setLevel(level)
    setattr(handler, _MARK, True)
    loggers = [logging.getLogger()]
    if own_logger:
        own = logging.getLogger(own_logger)
        for old in list(own.handlers):
            if getattr(old, "_manta", False):  # init's default handler for Manta's lines
                own.removeHandler(old)
        own.propagate = False
        loggers.append(own)
    for target in loggers:
        for old in list(target.handlers):
            if getattr(old, _MARK, False):
                target.removeHandler(old)
        target.addHandler(handler)
        target.setLevel(level)

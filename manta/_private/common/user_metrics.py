"""User-defined metrics (``manta.util.metrics``) in the process that records them.

Each process keeps one table: the metrics defined in it and the current value of each
series (a metric and one value per tag key). Recording updates the table under a lock
(any thread may record: tasks, threaded actors, the user's own threads); nothing is sent
then. The process's I/O loop takes what changed every report interval and sends it to its
node daemon (``core_worker/metric_reports.py``), which exports it.

On the wire (``ReportMetrics``), values are cumulative — a counter's total, a gauge's last
value, a histogram's per-bucket counts and sum — so a report that is lost or repeated
changes nothing a later one does not put right:

    definition: [name, kind, description, [tag keys], [bucket boundaries]]
    sample:     [name, [tag values], value]        value: float, or [count per bucket..., sum]

A histogram has one more count than boundaries (the last bucket is everything above).
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

from manta._private.common import metric_defs as md

# Series one process keeps at most; past it, new series are dropped (and counted) rather
# than letting a tag with unbounded values (a task id, a timestamp) take the process's memory.
MAX_SERIES = 10_000
MAX_NAME = 200
MAX_DESCRIPTION = 2_000
MAX_TAG_KEYS = 32
MAX_BOUNDARIES = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    kind: str
    description: str
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...] = ()

    @property
    def family(self) -> str:
        """The name it is exported under (a counter's ``_total`` goes on its samples)."""
        name = md.USER_PREFIX + self.name
        return name[: -len("_total")] if self.kind == md.COUNTER and name.endswith("_total") else name

    def series(self) -> tuple[str, ...]:
        return (self.family, *md.series_names(self.family, self.kind))

    def same_shape(self, other: Definition) -> bool:
        return (self.kind, self.tag_keys, self.boundaries) == (other.kind, other.tag_keys, other.boundaries)

    def describe(self) -> str:
        keys = f"tag keys {self.tag_keys}" if self.tag_keys else "no tag keys"
        bounds = f" and boundaries {list(self.boundaries)}" if self.boundaries else ""
        return f"a {self.kind} with {keys}{bounds}"

    def wire(self) -> list[Any]:
        return [self.name, self.kind, self.description, list(self.tag_keys), list(self.boundaries)]


def check_definition(
    name: Any, kind: Any, description: Any, tag_keys: Any, boundaries: Any = ()
) -> Definition:
    """A valid definition, or ValueError/TypeError saying what is wrong with it. The name's
    characters are the caller's to check (Ray discards such a metric with a warning)."""
    if not isinstance(name, str) or not md.NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        raise ValueError(f"invalid metric name {name!r}")
    if kind not in md.KINDS:
        raise ValueError(f"unknown metric kind {kind!r}")
    if not isinstance(description, str):
        raise TypeError(f"description must be str, got {type(description)}.")
    if not isinstance(tag_keys, (tuple, list)) or len(tag_keys) > MAX_TAG_KEYS:
        raise TypeError(f"tag_keys should be a tuple of at most {MAX_TAG_KEYS} str")
    for key in tag_keys:
        if not isinstance(key, str):
            raise TypeError(f"Tag keys must be str, got {type(key)}.")
        if not md.LABEL_RE.fullmatch(key) or key.startswith("__"):
            raise ValueError(
                f"tag key {key!r} of metric {name!r} is not a valid Prometheus label name "
                "(letters, digits and _, not starting with a digit or __)"
            )
        if key in md.RESERVED_LABELS:
            raise ValueError(
                f"tag key {key!r} of metric {name!r} is reserved: Manta labels every series with "
                f"{', '.join(sorted(md.RESERVED_LABELS - {'le', 'quantile'}))} itself"
            )
    if len(set(tag_keys)) != len(tag_keys):
        raise ValueError(f"metric {name!r} names a tag key twice: {tuple(tag_keys)}")
    bounds = check_boundaries(boundaries) if kind == md.HISTOGRAM else ()
    definition = Definition(name, kind, description[:MAX_DESCRIPTION], tuple(tag_keys), bounds)
    taken = _RESERVED.intersection(definition.series())
    if taken:
        raise ValueError(
            f"metric name {name!r} clashes with Manta's own metric {sorted(taken)[0]!r} (user metrics are "
            f"exported as {md.USER_PREFIX}<name>): choose another name"
        )
    return definition


# What a user metric may not be exported as: Manta's own families and their samples.
_RESERVED = md.SYSTEM_SERIES | {*md.GCS_METRICS, *md.NODE_METRICS}


def check_boundaries(boundaries: Any) -> tuple[float, ...]:
    if not isinstance(boundaries, (list, tuple)) or not boundaries:
        raise ValueError(
            "boundaries argument should be provided when using the Histogram class. "
            'e.g., Histogram("name", boundaries=[1.0, 2.0])'
        )
    if len(boundaries) > MAX_BOUNDARIES:
        raise ValueError(f"a histogram has at most {MAX_BOUNDARIES} boundaries, got {len(boundaries)}")
    for i, b in enumerate(boundaries):
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
            raise ValueError(
                f"Invalid `boundaries` argument at index {i}, {list(boundaries)}. "
                "Use positive values for the arguments."
            )
    # Ray takes them in any order; buckets need them sorted (and once each).
    return tuple(sorted({float(b) for b in boundaries}))


class Definitions:
    """Metrics by name, none exported under a series name another one has."""

    def __init__(self) -> None:
        self.by_name: dict[str, Definition] = {}
        self._series_of: dict[str, str] = {}  # exported series name -> the metric that has it

    def add(self, definition: Definition) -> None:
        """Add a metric; the same one again changes nothing. ValueError for a different
        metric under a name (or an exported series name) in use."""
        known = self.by_name.get(definition.name)
        if known is not None:
            if not known.same_shape(definition):
                raise ValueError(
                    f"metric {definition.name!r} is already defined as {known.describe()}; it cannot "
                    f"also be {definition.describe()} (choose another name)"
                )
            return
        for series in definition.series():
            other = self._series_of.get(series)
            if other is not None:
                raise ValueError(
                    f"metric {definition.name!r} would be exported as {series!r}, which metric "
                    f"{other!r} ({self.by_name[other].describe()}) already is: choose another name"
                )
        self.by_name[definition.name] = definition
        for series in definition.series():
            self._series_of[series] = definition.name

    def remove(self, name: str) -> None:
        definition = self.by_name.pop(name, None)
        if definition is not None:
            for series in definition.series():
                self._series_of.pop(series, None)


class ProcessMetrics:
    """The metrics of this process and their values (thread-safe)."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._max_series = max_series
        self._defs = Definitions()
        self._values: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._changed: set[tuple[str, tuple[str, ...]]] = set()
        self._checked: dict[Any, Definition] = {}  # definitions made here, by their arguments
        self.dropped = 0  # series refused for want of room

    def definition(
        self, name: Any, kind: Any, description: Any, tag_keys: Any, boundaries: Any = ()
    ) -> Definition:
        """``check_definition`` and ``define`` in one, remembered: a task that defines its
        metrics each time it runs pays for the checks once."""
        bounds = tuple(boundaries) if isinstance(boundaries, list) else boundaries
        key: Any = (name, kind, description, tag_keys, bounds)
        try:
            known = self._checked.get(key)
        except TypeError:  # unhashable arguments: checked (and refused) below
            key, known = None, None
        if known is not None:
            return known
        definition = check_definition(name, kind, description, tag_keys, boundaries)
        self.define(definition)
        if key is not None and len(self._checked) < MAX_SERIES:
            self._checked[key] = definition
        return definition

    def define(self, definition: Definition) -> None:
        """Add a metric. Defining the same metric again (a task that defines its metrics
        each time it runs) changes nothing; a different metric under a name in use raises
        ValueError."""
        with self._lock:
            self._defs.add(definition)

    def record(self, definition: Definition, tag_values: tuple[str, ...], value: float) -> None:
        """Count, set or observe ``value`` for one series (checked by the caller)."""
        key = (definition.name, tag_values)
        with self._lock:
            if key not in self._values and len(self._values) >= self._max_series:
                self.dropped += 1
                if self.dropped == 1:  # said once: the process keeps what it has
                    logger.warning(
                        "metric %r: this process already has %d series, the most it keeps; new "
                        "series (new tag values) are dropped",
                        definition.name,
                        self._max_series,
                    )
                return
            if definition.kind == md.GAUGE:
                self._values[key] = value
            elif definition.kind == md.COUNTER:
                self._values[key] = self._values.get(key, 0.0) + value
            else:
                buckets: list[float] | None = self._values.get(key)
                if buckets is None:
                    buckets = self._values[key] = [0.0] * (len(definition.boundaries) + 2)
                buckets[bisect.bisect_left(definition.boundaries, value)] += 1
                buckets[-1] += value
            self._changed.add(key)

    def has_changes(self) -> bool:
        return bool(self._changed)

    def take(self) -> tuple[list[Any], list[Any]] | None:
        """What changed since the last take: (definitions, samples) in their wire shapes,
        or None when nothing did."""
        if not self._changed:
            return None
        with self._lock:
            changed, self._changed = self._changed, set()
            samples = [
                [name, list(tags), list(v) if isinstance(v, list) else v]
                for name, tags in changed
                for v in (self._values[(name, tags)],)
            ]
            definitions = [self._defs.by_name[name].wire() for name in {name for name, _tags in changed}]
        return definitions, samples


# The process's one table: metrics defined anywhere in it record here, and its core worker
# reports from here.
_PROCESS = ProcessMetrics()


def process_metrics() -> ProcessMetrics:
    return _PROCESS

"""The user metrics of a node's processes, as their reports (``ReportMetrics``) left them.

Pure: reports in (with the time they came), series out. A process's series stay while
it lives and for ``retention_s`` after it has gone (a scrape a little later still sees
what a finished job recorded); then they go, and so does a metric left with no series,
so a later job may use its name for another kind. They go whether or not anyone scrapes:
reports and departures expire what is due too (at most once every ``EXPIRE_EVERY_S``),
else a node nobody scrapes would fill up with dead processes' series and drop every new
one. Everything in a report is checked: a bad entry is counted and
skipped, never raised, and the number of series is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manta._private.common import metric_defs as md
from manta._private.common.user_metrics import Definition, Definitions, check_definition

# Series the node keeps at most across its processes (as many as one process may keep);
# past it, new ones are dropped. Each costs on every scrape: 10,000 take the node ~0.1 s
# to render and the head ~0.4 s to parse (100,000: 1 s and 4 s, and 17 MB of text).
MAX_SERIES = 10_000
MAX_TAG_VALUE = 1_000
# How long a gone process's series are still exported.
RETENTION_S = 600.0
# Reports and departures look for series to expire at most this often.
EXPIRE_EVERY_S = 1.0

SeriesKey = tuple[str, tuple[str, ...]]  # (worker id hex, tag values)


@dataclass
class Report:
    """What one report changed: problems worth a log line (conflicting definitions)."""

    problems: list[str] = field(default_factory=list)


class NodeUserMetrics:
    def __init__(self, max_series: int = MAX_SERIES, retention_s: float = RETENTION_S) -> None:
        self._max_series = max_series
        self._retention_s = retention_s
        self.definitions = Definitions()
        self._series: dict[str, dict[SeriesKey, Any]] = {}  # metric name -> series -> value
        self._count = 0
        self._gone: dict[str, float] = {}  # worker id hex -> when it left
        self._expired_at = float("-inf")
        self.dropped = 0

    def apply(self, worker: str, definitions: Any, samples: Any, now: float) -> Report:
        """A report from the process ``worker`` (its id, hex), received at ``now``."""
        self._expire_due(now)  # first: the room gone processes leave is this report's
        report = Report()
        refused: set[str] = set()  # names whose definition here was wrong or conflicting
        for entry in definitions if isinstance(definitions, list) else ():
            try:
                definition = check_definition(*entry)
                self.definitions.add(definition)
            except (TypeError, ValueError) as e:
                self.dropped += 1
                name = entry[0] if isinstance(entry, list) and entry and isinstance(entry[0], str) else "?"
                refused.add(name)
                report.problems.append(f"metric {name!r} from worker {worker[:12]}: {e}")
        for sample in samples if isinstance(samples, list) else ():
            if not self._apply_sample(worker, sample, refused):
                self.dropped += 1
        return report

    def _apply_sample(self, worker: str, sample: Any, refused: set[str]) -> bool:
        if not isinstance(sample, list) or len(sample) != 3:
            return False
        name, tags, value = sample
        definition = self.definitions.by_name.get(name) if isinstance(name, str) else None
        if definition is None or name in refused or not _good_tags(tags, definition):
            return False
        if not _good_value(value, definition):
            return False
        series = self._series.setdefault(name, {})
        key = (worker, tuple(tags))
        if key not in series:
            if self._count >= self._max_series:
                return False
            self._count += 1
        series[key] = list(map(float, value)) if definition.kind == md.HISTOGRAM else float(value)
        return True

    def worker_gone(self, worker: str, now: float) -> None:
        self._gone[worker] = now
        self._expire_due(now)

    def _expire_due(self, now: float) -> None:
        if not 0.0 <= now - self._expired_at < EXPIRE_EVERY_S:  # a clock set back counts too
            self.expire(now)

    def expire(self, now: float) -> None:
        """Forget the series of processes gone longer than the retention, and metrics
        left with none."""
        self._expired_at = now
        old = {w for w, at in self._gone.items() if now - at >= self._retention_s}
        for name in list(self._series) if old else ():
            series = self._series[name]
            for key in [k for k in series if k[0] in old]:
                del series[key]
                self._count -= 1
            if not series:
                del self._series[name]
        for worker in old:
            del self._gone[worker]
        for name in [n for n in self.definitions.by_name if n not in self._series]:
            self.definitions.remove(name)

    def metrics(self) -> list[tuple[Definition, dict[SeriesKey, Any]]]:
        """Every metric with its series: {(worker hex, tag values): value}. The dicts are
        copies, for a scrape to render on another thread while reports go on (a value is
        never changed in place, only replaced)."""
        return [(self.definitions.by_name[name], dict(series)) for name, series in self._series.items()]

    def __len__(self) -> int:
        """The number of series kept."""
        return self._count


def _good_tags(tags: Any, definition: Definition) -> bool:
    return (
        isinstance(tags, list)
        and len(tags) == len(definition.tag_keys)
        and all(isinstance(t, str) and len(t) <= MAX_TAG_VALUE for t in tags)
    )


def _good_value(value: Any, definition: Definition) -> bool:
    if definition.kind != md.HISTOGRAM:
        return _number(value)
    return (
        isinstance(value, list)
        and len(value) == len(definition.boundaries) + 2
        and all(_number(v) for v in value)
    )


def _number(value: Any) -> bool:
    return type(value) is float or type(value) is int

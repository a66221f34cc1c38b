"""Application metrics (Ray's ``ray.util.metrics``): ``Counter``, ``Gauge`` and ``Histogram``.

Define a metric anywhere — the driver, a task, an actor — and record values with tags::

    from manta.util.metrics import Counter
    hits = Counter("hits", description="Cache hits.", tag_keys=("cache",))
    hits.inc(tags={"cache": "users"})

Values are kept in the process and sent to its node daemon every
``metrics_report_interval_s`` (5 s by default, Ray's ``metrics_report_interval_ms``),
never on the path of a task; the head's ``/metrics`` endpoint serves them as
``ray_<name>`` (``ray_hits_total`` for a counter, as Ray does), labelled with the node
(``NodeId``, ``NodeAddress``) and the process (``WorkerId``) that recorded them.

Differences from Ray, all of them errors where Ray goes on silently:

- a name already in use in the process by a metric of another kind, other tag keys or
  other boundaries raises ``ValueError`` when the second one is defined, and so does a
  name that would be exported as one of Manta's own metrics (``Gauge("tasks")``);
- tag keys must be valid Prometheus label names and not ``NodeId``, ``NodeAddress`` or
  ``WorkerId``; recording with a tag key the metric was not defined with raises
  ``ValueError`` (Ray drops it).

As in Ray: an empty name raises ``ValueError``; a name with characters Prometheus does
not allow gives a ``UserWarning`` and a metric that records nothing; ``Counter.inc``
takes only values above 0; every tag key needs a value (from ``tags`` or
``set_default_tags``), and tag values must be strings. Histogram boundaries may come in
any order. A metric captured by a task or an actor is defined again where it runs, with
its name, description, tag keys (and boundaries) but without its default tags: set
them there (Ray 2.60 drops them too; keeping them would make code that relies on them
fail on Ray).
"""

from __future__ import annotations

import warnings
from typing import Any

from manta._private.common import metric_defs as md
from manta._private.common import user_metrics as um


def _discarded(name: str) -> bool:
    """Ray's check: an empty name is an error, a malformed one a warning and a no-op metric."""
    if not isinstance(name, str):
        raise TypeError(f"the metric name must be a str, got {type(name)}")
    if not name:
        raise ValueError("Empty name is not allowed. Please provide a metric name.")
    if md.NAME_RE.fullmatch(name) is None:
        warnings.warn(
            f"Invalid metric name: {name}. Metric will be discarded and data will not be collected or "
            "published. Metric names can only contain letters, numbers, _, and :. Metric names cannot "
            "start with numbers.",
            UserWarning,
            stacklevel=3,
        )
        return True
    if ":" in name:
        warnings.warn(
            f"Metric name {name} contains a : character, which is no longer allowed. Please migrate to "
            "the new metric name format. This will be an error in the future.",
            FutureWarning,
            stacklevel=3,
        )
    return False


class Metric:
    """What the three kinds share: a name, a description, tag keys and default tags."""

    _kind = ""

    def __init__(
        self,
        name: str,
        description: str = "",
        tag_keys: tuple[str, ...] | None = None,
        *,
        _boundaries: Any = (),
    ) -> None:
        self._discard_metric = _discarded(name)
        self._name = name
        self._description = description
        self._default_tags: dict[str, str] = {}
        self._tag_keys = tag_keys or ()
        if not isinstance(self._tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(self._tag_keys)}")
        for key in self._tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        self._definition: um.Definition | None = None
        if not self._discard_metric:
            self._definition = um.process_metrics().definition(
                name, self._kind, description, self._tag_keys, _boundaries
            )

    def set_default_tags(self, default_tags: dict[str, str]) -> Metric:
        """Tags used by every record that does not give them itself; returns the metric."""
        for key, value in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
        self._default_tags = dict(default_tags)
        return self

    @property
    def info(self) -> dict[str, Any]:
        """The metric's name, description, tag keys and default tags."""
        return {
            "name": self._name,
            "description": self._description,
            "tag_keys": self._tag_keys,
            "default_tags": self._default_tags,
        }

    def _record(self, value: float, tags: dict[str, str] | None) -> None:
        if self._definition is None:
            return
        final = self._default_tags
        if tags:
            for key, tag in tags.items():
                if not isinstance(tag, str):
                    raise TypeError(f"Tag values must be str, got {type(tag)}.")
                if key not in self._tag_keys:
                    raise ValueError(
                        f"Unrecognized tag key {key}: metric {self._name!r} has tag keys {self._tag_keys}."
                    )
            final = {**self._default_tags, **tags}
        missing = [key for key in self._tag_keys if key not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        um.process_metrics().record(self._definition, tuple(final[key] for key in self._tag_keys), value)

    def __reduce__(self) -> Any:
        # A metric captured by a task or an actor is defined again where it lands; its
        # default tags stay behind, as Ray's do (see the module's docstring).
        return self.__class__, (self._name, self._description, self._tag_keys)


def _check_value(value: Any) -> None:
    if not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")


class Counter(Metric):
    """A total that only goes up (Prometheus' counter; exported as ``ray_<name>_total``)."""

    _kind = md.COUNTER

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        """Add ``value`` (above 0; default 1); ``tags`` override the default tags."""
        _check_value(value)
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        self._record(value, tags)


class Gauge(Metric):
    """A value that goes up and down; the last one set is exported."""

    _kind = md.GAUGE

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)

    def set(self, value: float | None, tags: dict[str, str] | None = None) -> None:
        """Set the gauge to ``value`` (None does nothing, as in Ray)."""
        if value is None:
            return
        _check_value(value)
        self._record(value, tags)


class Histogram(Metric):
    """Observations counted in buckets (``boundaries``: their upper bounds, all above 0),
    with their sum and count, for quantiles such as a latency's 99th percentile."""

    _kind = md.HISTOGRAM

    def __init__(
        self,
        name: str,
        description: str = "",
        boundaries: list[float] | None = None,
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, description, tag_keys, _boundaries=boundaries)
        if self._discard_metric:
            um.check_boundaries(boundaries)  # as Ray, which checks them for a discarded metric too
        self.boundaries = boundaries

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        """Count ``value`` in its bucket."""
        _check_value(value)
        self._record(value, tags)

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "boundaries": self.boundaries}

    def __reduce__(self) -> Any:
        return Histogram, (self._name, self._description, self.boundaries, self._tag_keys)


__all__ = ["Counter", "Gauge", "Histogram"]

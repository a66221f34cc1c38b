"""Metric families in and out of Prometheus' text format, with ``prometheus_client``.

Daemons build their families from their components' statistics when asked (nothing is
kept between scrapes) and render them with their own registry, never the client's
process-wide default one (several daemons share a process in tests). The head parses
each daemon's text and merges the families into one exposition.

prometheus_client takes ~70 ms to import: daemons import this module when first asked
for their metrics, not when they start.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from manta._private.common import metric_defs as md

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Sequence[str]


def family(definition: md.MetricDef, rows: Iterable[tuple[Labels, float]], labels: Labels = ()) -> Metric:
    """A counter or gauge family; ``labels`` (values of the definition's first label keys,
    the node's, say) go before each row's own."""
    cls = CounterMetricFamily if definition.kind == md.COUNTER else GaugeMetricFamily
    out = cls(definition.name, definition.help, labels=list(definition.labels))
    for values, value in rows:
        out.add_metric([*labels, *values], value)
    return out


def histogram(
    name: str,
    help_text: str,
    label_keys: Labels,
    boundaries: Sequence[float],
    rows: Iterable[tuple[Labels, Sequence[float]]],
) -> Metric:
    """A histogram family from rows of (label values, [count per bucket..., sum]) where
    the counts are per bucket (the last: above every boundary), not cumulative."""
    out = HistogramMetricFamily(name, help_text, labels=list(label_keys))
    for values, counts in rows:
        running, buckets = 0.0, []
        for bound, count in zip((*map(str, boundaries), "+Inf"), counts, strict=False):
            running += count
            buckets.append((bound, running))
        out.add_metric(list(values), buckets, counts[-1])
    return out


def user_families(
    metrics: Iterable[tuple[Any, Mapping[tuple[str, tuple[str, ...]], Any]]], node_labels: Labels
) -> Iterator[Metric]:
    """Families of user metrics (``node/user_metrics.py``): each series labelled with the
    node, the process that recorded it, and its tags."""
    for definition, series in metrics:
        keys = [*md.NODE_LABELS, md.WORKER_LABEL, *definition.tag_keys]
        help_text = definition.description or definition.name
        rows = (([*node_labels, worker, *tags], value) for (worker, tags), value in series.items())
        if definition.kind == md.HISTOGRAM:
            yield histogram(definition.family, help_text, keys, definition.boundaries, rows)
        else:
            cls = CounterMetricFamily if definition.kind == md.COUNTER else GaugeMetricFamily
            out = cls(definition.family, help_text, labels=keys)
            for values, value in rows:
                out.add_metric(values, value)
            yield out


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render(families: Iterable[Metric]) -> bytes:
    """The text exposition of ``families`` (through a registry of their own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def parse(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


def merge(expositions: Iterable[list[Metric]]) -> tuple[list[Metric], list[str]]:
    """One family per name, with the samples of every daemon's family of that name; and
    what was left out: a family whose type differs from the first one of its name (two
    nodes' processes defined one user metric as different kinds)."""
    merged: dict[str, Metric] = {}
    conflicts = []
    for families in expositions:
        for fam in families:
            known = merged.get(fam.name)
            if known is None:
                merged[fam.name] = fam
            elif known.type != fam.type:
                conflicts.append(
                    f"metric {fam.name} is a {known.type} on one node and a {fam.type} on another"
                )
            else:
                known.samples.extend(fam.samples)
    return list(merged.values()), conflicts

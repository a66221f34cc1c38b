"""The Grafana dashboard shipped in the package: valid JSON whose every query names only
metrics Manta exports, and only labels those metrics have."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from manta._private.common import metric_defs as md

# A metric in a query: Manta's and Ray's names start so; label_values() and the like don't.
_METRIC = re.compile(r"\b(?:ray|manta)_[A-Za-z0-9_]+\b")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_FAMILY_OF = {
    series: d
    for d in (*md.GCS_METRICS.values(), *md.NODE_METRICS.values())
    for series in md.series_names(d.name, d.kind)
}


def dashboard() -> dict:
    text = resources.files("manta.dashboard").joinpath("grafana/manta_dashboard.json").read_text()
    return json.loads(text)


def queries(board: dict) -> list[str]:
    found = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    found += [v["definition"] for v in board["templating"]["list"] if v.get("definition")]
    return found


def test_the_dashboard_loads_and_has_panels_with_queries() -> None:
    board = dashboard()
    assert board["title"] and board["uid"]
    assert len(board["panels"]) >= 10
    assert all(panel.get("targets") for panel in board["panels"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def check(expr: str) -> None:
    """AssertionError unless ``expr`` names metrics Manta exports, and labels they have."""
    names = set(_METRIC.findall(expr))
    assert names, expr
    unknown = names - md.SYSTEM_SERIES
    assert not unknown, f"{expr}: Manta exports no {sorted(unknown)}"
    labels = {label for name in names for label in _FAMILY_OF[name].labels}
    labels |= {"le"} if any(name.endswith("_bucket") for name in names) else set()
    used = set(_MATCHER_LABEL.findall(expr))
    used |= {label.strip() for group in _BY.findall(expr) for label in group.split(",") if label.strip()}
    assert used <= labels, f"{expr}: {sorted(used - labels)} is no label of {sorted(names)}"


def test_every_query_names_metrics_manta_exports_and_labels_they_have() -> None:
    for expr in queries(dashboard()):
        check(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "sum(ray_tasks_total) by (State)",  # a gauge, as in Ray: no _total
        "sum(ray_node_mem_used) by (Location)",
        'sum(ray_actors{Stat="ALIVE"})',
        "sum(rate(ray_node_cpu_utilization_bucket[5m])) by (le)",
        "vector(1)",
    ],
)
def test_the_check_catches_a_wrong_name_or_label(expr: str) -> None:
    with pytest.raises(AssertionError):
        check(expr)

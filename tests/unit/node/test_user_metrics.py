"""A node's table of its processes' user metrics: reports checked entry by entry,
conflicts between processes, a bound on series, and series kept a while after a process
has gone."""

from __future__ import annotations

import pytest

from manta._private.common import metric_defs as md
from manta._private.common.user_metrics import check_definition
from manta._private.node.user_metrics import EXPIRE_EVERY_S, NodeUserMetrics

GAUGE = check_definition("depth", md.GAUGE, "Queue depth.", ("queue",))
HIST = check_definition("lat", md.HISTOGRAM, "", (), [1, 10])


def series(table: NodeUserMetrics) -> dict[str, dict]:
    return {definition.name: dict(values) for definition, values in table.metrics()}


def test_reports_from_two_processes_keep_a_series_each() -> None:
    table = NodeUserMetrics()
    table.apply("w1", [GAUGE.wire()], [["depth", ["q"], 3]], now=0.0)
    table.apply(
        "w2", [GAUGE.wire(), HIST.wire()], [["depth", ["q"], 4.5], ["lat", [], [1, 0, 2, 30.5]]], now=0.0
    )
    table.apply("w1", [GAUGE.wire()], [["depth", ["q"], 1]], now=0.0)  # the latest value replaces
    assert series(table) == {
        "depth": {("w1", ("q",)): 1.0, ("w2", ("q",)): 4.5},
        "lat": {("w2", ()): [1.0, 0.0, 2.0, 30.5]},
    }
    assert table.dropped == 0


@pytest.mark.parametrize(
    "sample",
    [
        "not a list",
        ["depth", ["q"]],
        ["unknown", ["q"], 1],
        ["depth", [], 1],  # a tag value missing
        ["depth", [5], 1],  # not a str
        ["depth", ["x" * 1001], 1],
        ["depth", ["q"], "1"],
        ["depth", ["q"], True],
        ["lat", [], [1, 2]],  # too few buckets
        ["lat", [], [1, 0, "2", 3]],
    ],
)
def test_a_bad_sample_is_counted_and_skipped(sample) -> None:
    table = NodeUserMetrics()
    table.apply("w1", [GAUGE.wire(), HIST.wire()], [sample, ["depth", ["ok"], 2]], now=0.0)
    assert table.dropped == 1
    assert series(table)["depth"] == {("w1", ("ok",)): 2.0}


def test_bad_definitions_and_report_shapes_never_raise() -> None:
    table = NodeUserMetrics()
    report = table.apply(
        "w1", [["x y", "gauge", "", [], []], "junk", ["tasks", "gauge", "", [], []]], [], now=0.0
    )
    assert table.dropped == 3 and len(report.problems) == 3
    table.apply("w1", "not a list", {"not": "a list"}, now=0.0)
    assert series(table) == {}


def test_a_process_defining_a_name_in_use_differently_is_refused_and_said() -> None:
    table = NodeUserMetrics()
    table.apply("w1", [GAUGE.wire()], [["depth", ["q"], 3]], now=0.0)
    other = check_definition("depth", md.COUNTER, "", ("queue",))
    report = table.apply("w2", [other.wire()], [["depth", ["q"], 9]], now=0.0)
    assert "already defined as a gauge" in report.problems[0]
    assert series(table) == {"depth": {("w1", ("q",)): 3.0}}  # w2's sample refused too
    assert table.dropped == 2


def test_series_past_the_limit_are_dropped() -> None:
    table = NodeUserMetrics(max_series=2)
    table.apply("w1", [GAUGE.wire()], [["depth", [q], 1] for q in "abc"], now=0.0)
    assert len(series(table)["depth"]) == 2 and table.dropped == 1


def test_a_gone_process_keeps_its_series_for_the_retention_then_its_metric_goes() -> None:
    table = NodeUserMetrics(retention_s=60)
    table.apply("w1", [GAUGE.wire()], [["depth", ["q"], 3]], now=0.0)
    table.apply("w2", [HIST.wire()], [["lat", [], [0, 0, 1, 20]]], now=0.0)
    table.worker_gone("w1", now=100.0)
    table.expire(now=159.0)
    assert set(series(table)) == {"depth", "lat"}
    table.expire(now=160.0)
    assert set(series(table)) == {"lat"}
    # Its name is free again, for another kind.
    counter = check_definition("depth", md.COUNTER, "", ())
    assert table.apply("w3", [counter.wire()], [["depth", [], 1]], now=160.0).problems == []
    assert series(table)["depth"] == {("w3", ()): 1.0}


def test_with_nobody_scraping_reports_expire_gone_processes_and_make_room() -> None:
    table = NodeUserMetrics(max_series=2, retention_s=60)
    table.apply("w1", [GAUGE.wire()], [["depth", [q], 1] for q in "ab"], now=0.0)
    table.worker_gone("w1", now=0.0)
    table.apply("w2", [GAUGE.wire()], [["depth", ["c"], 2]], now=30.0)
    assert table.dropped == 1  # w1's series are still shown, and fill the table
    table.apply("w2", [GAUGE.wire()], [["depth", ["c"], 3]], now=60.0)
    assert series(table) == {"depth": {("w2", ("c",)): 3.0}} and table.dropped == 1


def test_departures_expire_too_at_most_once_a_second() -> None:
    table = NodeUserMetrics(retention_s=60)
    table.apply("w1", [GAUGE.wire()], [["depth", ["q"], 1]], now=0.0)
    table.apply("w2", [HIST.wire()], [["lat", [], [0, 0, 1, 20]]], now=0.0)
    table.worker_gone("w1", now=0.0)
    table.worker_gone("w3", now=59.5)  # looks, finds nothing due yet
    table.worker_gone("w4", now=59.5 + EXPIRE_EVERY_S / 2)  # too soon to look again
    assert set(series(table)) == {"depth", "lat"}
    table.worker_gone("w5", now=59.5 + EXPIRE_EVERY_S)
    assert set(series(table)) == {"lat"}

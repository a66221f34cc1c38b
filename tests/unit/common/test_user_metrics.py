"""A process's table of user metrics: definitions and their clashes, cumulative values,
bounded series, and what a report carries."""

from __future__ import annotations

import threading

import pytest

from manta._private.common import metric_defs as md
from manta._private.common.user_metrics import Definitions, ProcessMetrics, check_definition


def test_a_definition_travels_as_a_plain_list_and_is_checked_back() -> None:
    definition = check_definition("lat", md.HISTOGRAM, "Latency.", ("route",), [5, 1, 5])
    assert definition.boundaries == (1.0, 5.0)  # sorted, once each
    assert definition.family == "ray_lat"
    assert set(definition.series()) == {"ray_lat", "ray_lat_bucket", "ray_lat_sum", "ray_lat_count"}
    assert check_definition(*definition.wire()) == definition
    assert check_definition("hits_total", md.COUNTER, "", ()).family == "ray_hits"


@pytest.mark.parametrize(
    "args",
    [
        ("", md.GAUGE, "", ()),
        ("1x", md.GAUGE, "", ()),
        ("x" * 201, md.GAUGE, "", ()),
        ("x", "summary", "", ()),
        ("x", md.GAUGE, 5, ()),
        ("x", md.GAUGE, "", "ab"),
        ("x", md.GAUGE, "", ("a", "a")),
        ("x", md.GAUGE, "", ("__a",)),
        ("x", md.GAUGE, "", ("NodeId",)),
        ("x", md.HISTOGRAM, "", (), [1, float("inf")]),
        ("x", md.HISTOGRAM, "", (), [True]),
        ("x", md.HISTOGRAM, "", (), list(range(1, 200))),
        ("tasks", md.GAUGE, "", ()),
        ("grpc_server_req_process_time_ms", md.HISTOGRAM, "", (), [1]),
    ],
)
def test_bad_definitions_are_refused(args) -> None:
    with pytest.raises((ValueError, TypeError)):
        check_definition(*args)


def test_definitions_refuse_a_second_metric_under_an_exported_name() -> None:
    defs = Definitions()
    counter = check_definition("x", md.COUNTER, "", ())
    defs.add(counter)
    defs.add(check_definition("x", md.COUNTER, "other text", ()))  # the same metric
    with pytest.raises(ValueError, match="already defined as a counter"):
        defs.add(check_definition("x", md.GAUGE, "", ()))
    with pytest.raises(ValueError, match="would be exported as 'ray_x_total'"):
        defs.add(check_definition("x_total", md.GAUGE, "", ()))
    defs.remove("x")
    defs.add(check_definition("x_total", md.GAUGE, "", ()))  # free again


def test_reports_carry_only_what_changed_with_their_definitions() -> None:
    table = ProcessMetrics()
    gauge = check_definition("g", md.GAUGE, "G.", ("k",))
    counter = check_definition("c", md.COUNTER, "", ())
    table.define(gauge)
    table.define(counter)
    assert not table.has_changes() and table.take() is None
    table.record(gauge, ("a",), 1.0)
    table.record(gauge, ("b",), 2.0)
    taken = table.take()
    assert taken is not None
    definitions, samples = taken
    assert definitions == [gauge.wire()]
    assert sorted(samples) == [["g", ["a"], 1.0], ["g", ["b"], 2.0]]
    table.record(counter, (), 1.0)
    table.record(counter, (), 1.0)
    assert table.take() == ([counter.wire()], [["c", [], 2.0]])


def test_series_past_the_limit_are_dropped_and_counted(caplog) -> None:
    import logging

    table = ProcessMetrics(max_series=2)
    gauge = check_definition("g", md.GAUGE, "", ("k",))
    table.define(gauge)
    manta_logger = logging.getLogger("manta")  # it does not propagate to the root's
    manta_logger.addHandler(caplog.handler)
    try:
        for key in "abcd":
            table.record(gauge, (key,), 1.0)
    finally:
        manta_logger.removeHandler(caplog.handler)
    said = {id(r) for r in caplog.records if "the most it keeps" in r.getMessage()}
    assert len(said) == 1  # said once, not per dropped sample
    table.record(gauge, ("a",), 5.0)  # a known series still records
    taken = table.take()
    assert taken is not None and sorted(taken[1]) == [["g", ["a"], 5.0], ["g", ["b"], 1.0]]
    assert table.dropped == 2


def test_counts_from_many_threads_add_up() -> None:
    table = ProcessMetrics()
    counter = check_definition("c", md.COUNTER, "", ())
    table.define(counter)

    def count() -> None:
        for _ in range(5_000):
            table.record(counter, (), 1.0)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert table.take() == ([counter.wire()], [["c", [], 20_000.0]])


def test_defining_again_with_the_same_arguments_is_remembered_and_a_clash_still_raises() -> None:
    table = ProcessMetrics()
    first = table.definition("runs", md.HISTOGRAM, "", ("fn",), [2, 1])
    assert table.definition("runs", md.HISTOGRAM, "", ("fn",), [2, 1]) is first
    with pytest.raises(ValueError, match="already defined as a histogram"):
        table.definition("runs", md.HISTOGRAM, "", ("fn",), [3])
    with pytest.raises(ValueError, match="boundaries"):
        table.definition("other", md.HISTOGRAM, "", (), {"not": "hashable"})

"""A process's user metrics go to its node daemon in one message per report, only when
something changed, and wait for the next report while the connection is down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manta._private.common import metric_defs as md
from manta._private.common.user_metrics import ProcessMetrics, check_definition
from manta._private.core_worker.metric_reports import report_metrics, report_metrics_every
from manta._private.rpc.messages import ReportMetrics


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False
        self.sent: list[Any] = []

    def notify(self, msg: Any) -> None:
        self.sent.append(msg)


GAUGE = check_definition("g", md.GAUGE, "", ())


def table_with_a_value() -> ProcessMetrics:
    table = ProcessMetrics()
    table.define(GAUGE)
    table.record(GAUGE, (), 3.0)
    return table


def test_a_report_sends_what_changed_once() -> None:
    table, conn = table_with_a_value(), FakeConnection()
    report_metrics(lambda: conn, table)  # type: ignore[arg-type, return-value]
    report_metrics(lambda: conn, table)  # type: ignore[arg-type, return-value]
    assert conn.sent == [ReportMetrics([GAUGE.wire()], [["g", [], 3.0]])]


def test_changes_wait_while_the_node_connection_is_down() -> None:
    table, conn = table_with_a_value(), FakeConnection()
    conn.closed = True
    report_metrics(lambda: conn, table)  # type: ignore[arg-type, return-value]
    report_metrics(lambda: None, table)
    conn.closed = False
    report_metrics(lambda: conn, table)  # type: ignore[arg-type, return-value]
    assert [msg.samples for msg in conn.sent] == [[["g", [], 3.0]]]


def test_reports_go_every_interval_until_stopped() -> None:
    table, conn = ProcessMetrics(), FakeConnection()
    table.define(GAUGE)
    stopped = False
    timers: list[tuple[float, Callable[[], None]]] = []  # the loop's call_later, driven here

    def later(delay: float, tick: Callable[[], None]) -> None:
        timers.append((delay, tick))

    def fire() -> None:
        [(delay, tick)] = timers
        timers.clear()
        assert delay == 5.0
        tick()

    report_metrics_every(lambda: conn, 5.0, lambda: stopped, table, later)  # type: ignore[arg-type, return-value]
    for value in (1.0, 2.0):
        table.record(GAUGE, (), value)
        fire()
    fire()  # nothing changed: nothing sent, and the timer goes on
    assert [msg.samples[0][2] for msg in conn.sent] == [1.0, 2.0]
    stopped = True
    table.record(GAUGE, (), 9.0)
    fire()
    assert [msg.samples[0][2] for msg in conn.sent] == [1.0, 2.0] and timers == []  # stopped for good

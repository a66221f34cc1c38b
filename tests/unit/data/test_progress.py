"""The progress display: one line per operator, as log lines where stderr is no terminal."""

from __future__ import annotations

import logging

import pytest

from manta.data._internal import progress
from manta.data._internal.stats import ExecStats, OperatorStats
from manta.data.context import DataContext


@pytest.fixture
def captured(caplog):
    """Records of the "manta.data" logger, even after a cluster in this process turned off
    propagation on Manta's loggers."""
    logger = logging.getLogger("manta.data")
    logger.addHandler(caplog.handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


class _Op:
    def __init__(self, name: str, rows: int) -> None:
        self.stats = OperatorStats(name, started_at=0.0)
        self.stats.add_block(rows, rows * 8, ExecStats(0.1, 0.1, 1 << 20))
        self.stats.tasks_done = 1

    def running(self) -> int:
        return 2


def test_a_line_says_rows_blocks_tasks_and_rate():
    op = _Op("ReadRange->Map(f)", 5000)
    text = progress.line(op.stats, op.running(), now=2.0)
    assert text == "ReadRange->Map(f): 5,000 rows, 1 blocks, 1 tasks done, 2 running, 2,500 rows/s"


def test_without_a_terminal_progress_is_logged_periodically(captured, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    context = DataContext()
    context.enable_progress_bars = True
    reporter = progress.Reporter("dataset_1", [_Op("ReadRange", 10), _Op("Sort(id)", 10)], context)
    reporter.update()
    assert "Running dataset_1" in captured.text
    assert "ReadRange: 10 rows" in captured.text and "Sort(id): 10 rows" in captured.text


def test_progress_can_be_turned_off(captured, monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    context = DataContext()
    context.enable_progress_bars = False
    reporter = progress.Reporter("dataset_2", [_Op("ReadRange", 10)], context)
    reporter.update()
    assert captured.text == ""


def test_the_ray_switch_turns_progress_off(monkeypatch):
    monkeypatch.setenv("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    assert DataContext().enable_progress_bars is False
    monkeypatch.delenv("RAY_DATA_DISABLE_PROGRESS_BARS")
    assert DataContext().enable_progress_bars is True

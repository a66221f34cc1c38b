"""A driver's printing of worker output: Ray's collapsing of lines many workers print
alike, on a fake clock, and the prefix."""

from __future__ import annotations

import asyncio

import pytest

from manta._private.common.config import Config
from manta._private.common.ids import JobID, NodeID
from manta._private.core_worker.log_printer import LogDeduplicator, LogPrinter, canonical
from manta._private.rpc import messages as m

JOB = JobID.from_int(1)
NODE = NodeID.from_random()
OTHER_NODE = NodeID.from_random()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(pid: int, *lines: str, is_err: bool = False, node: NodeID = NODE, task: str = "f") -> m.LogBatch:
    return m.LogBatch(JOB, node, "10.0.0.2", pid, task, is_err, list(lines))


def lines_of(batches: list[m.LogBatch]) -> list[tuple[int, str]]:
    return [(b.pid, line) for b in batches for line in b.lines]


def test_words_with_digits_do_not_count() -> None:
    assert canonical("took 12ms on worker 0xdeadbeef (pid=42)") == "took on worker"
    assert canonical("step 3 of 10") == canonical("step 4 of 10") == "step of"
    assert canonical("12 34") == ""


def test_lines_alike_from_many_workers_collapse_into_one_with_a_count() -> None:
    clock = Clock()
    dedup = LogDeduplicator(5.0, clock)
    assert lines_of(dedup.add(batch(1, "loading shard 1"))) == [(1, "loading shard 1")]
    for pid in range(2, 7):
        assert dedup.add(batch(pid, f"loading shard {pid}")) == []
    assert dedup.next_expiry() == 105.0
    clock.now = 105.0
    [summary] = dedup.expire()
    assert summary.pid == 6 and summary.task_name == "f"  # the latest one's prefix
    assert summary.lines[0].startswith("loading shard 6 [repeated 5x across cluster]")
    assert "MANTA_DEDUP_LOGS=0" in summary.lines[0]  # said the first time only
    for pid in range(2, 5):
        dedup.add(batch(pid, f"loading shard {pid}"))
    clock.now = 110.0
    assert lines_of(dedup.expire()) == [(4, "loading shard 4 [repeated 3x across cluster]")]


def test_one_process_repeating_itself_is_printed_every_time() -> None:
    dedup = LogDeduplicator(5.0, Clock())
    out = dedup.add(batch(1, "tick", "tick")) + dedup.add(batch(1, "tick"))
    assert lines_of(out) == [(1, "tick")] * 3
    assert dedup.next_expiry() is None


def test_a_single_held_line_is_printed_as_it_is() -> None:
    clock = Clock()
    dedup = LogDeduplicator(5.0, clock)
    dedup.add(batch(1, "done"))
    assert dedup.add(batch(2, "done")) == []
    clock.now += 5
    assert lines_of(dedup.expire()) == [(2, "done")]
    assert dedup.expire() == [] and dedup.next_expiry() is None


def test_the_same_pid_on_another_node_is_another_source() -> None:
    dedup = LogDeduplicator(5.0, Clock())
    dedup.add(batch(7, "hello"))
    assert dedup.add(batch(7, "hello", node=OTHER_NODE)) == []


def test_stdout_and_stderr_are_kept_apart() -> None:
    dedup = LogDeduplicator(5.0, Clock())
    dedup.add(batch(1, "same"))
    assert lines_of(dedup.add(batch(2, "same", is_err=True))) == [(2, "same")]


def test_other_lines_of_a_batch_pass_while_some_are_held() -> None:
    dedup = LogDeduplicator(5.0, Clock())
    dedup.add(batch(1, "common"))
    assert lines_of(dedup.add(batch(2, "common", "only mine", "42"))) == [(2, "only mine"), (2, "42")]


def test_allow_and_skip_patterns() -> None:
    dedup = LogDeduplicator(5.0, Clock(), allow_regex="^ALWAYS", skip_regex="noise")
    dedup.add(batch(1, "ALWAYS this"))
    assert lines_of(dedup.add(batch(2, "ALWAYS this", "some noise here"))) == [(2, "ALWAYS this")]


def test_flush_prints_everything_held_and_forgets() -> None:
    dedup = LogDeduplicator(5.0, Clock())
    dedup.add(batch(1, "x"))
    dedup.add(batch(2, "x"))
    dedup.add(batch(3, "x"))
    dedup.add(batch(1, "y"))
    dedup.add(batch(2, "y"))
    assert sorted(line.split(" (")[0] for _, line in lines_of(dedup.flush())) == [
        "x [repeated 2x across cluster]",
        "y",
    ]
    assert dedup.flush() == [] and dedup.next_expiry() is None


def test_too_many_patterns_are_flushed_rather_than_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from manta._private.core_worker import log_printer

    monkeypatch.setattr(log_printer, "MAX_PATTERNS", 3)
    dedup = LogDeduplicator(5.0, Clock())
    for word in ("a", "b", "c"):
        dedup.add(batch(1, word))
        dedup.add(batch(2, word))
    assert len(lines_of(dedup.add(batch(1, "d")))) == 4  # d, then a, b, c let go


def printed(
    capsys: pytest.CaptureFixture[str], config: Config, *batches: m.LogBatch, **kw: object
) -> tuple[str, str]:
    async def run() -> None:
        printer = LogPrinter(config, NODE, Clock(), **kw)  # type: ignore[arg-type]
        for b in batches:
            printer.show(b)
        printer.flush()

    asyncio.run(run())
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_lines_carry_rays_prefix_and_the_node(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = printed(
        capsys,
        Config(dedup_logs=False),
        batch(5, "hi"),
        batch(6, "oops", is_err=True, node=OTHER_NODE, task=""),
    )
    assert out == f"(f pid=5, node={NODE.hex()[:8]}) hi\n"
    assert err == f"(pid=6, node={OTHER_NODE.hex()[:8]}, ip=10.0.0.2) oops\n"


def test_dedup_off_prints_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = printed(capsys, Config(dedup_logs=False), batch(1, "same"), batch(2, "same"), batch(3, "same"))
    assert out.count("same") == 3 and "repeated" not in out


def test_structured_output_is_printed_without_the_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = printed(capsys, Config(), batch(1, '{"message": "x"}'), job_config={"logging_config": {}})
    assert out == '{"message": "x"}\n'


def test_held_lines_are_printed_with_their_count_when_the_driver_leaves(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = printed(capsys, Config(), *(batch(pid, "epoch done") for pid in range(1, 5)))
    assert out.splitlines()[0].endswith("epoch done")
    assert "(f pid=4" in out and "epoch done [repeated 3x across cluster]" in out


class Timers:
    """A fake ``call_later``: what was scheduled, run when the test says."""

    def __init__(self) -> None:
        self.due: list[tuple[float, object]] = []

    def __call__(self, delay: float, fn: object) -> Timers:
        self.due.append((delay, fn))
        return self

    def cancel(self) -> None:
        self.due.clear()

    def fire(self) -> None:
        due, self.due = self.due, []
        for _delay, fn in due:
            fn()  # type: ignore[operator]


def test_the_window_ends_on_a_timer_without_more_output(capsys: pytest.CaptureFixture[str]) -> None:
    clock, timers = Clock(), Timers()
    printer = LogPrinter(Config(), NODE, clock, call_later=timers)
    for pid in (1, 2, 3):
        printer.show(batch(pid, "ready"))
    assert [delay for delay, _ in timers.due] == [5.0]  # one timer, at the window's end
    clock.now += 5
    timers.fire()
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("(f pid=3, node=") and "ready [repeated 2x across cluster]" in last
    assert timers.due == []  # nothing held any more: no timer
    printer.show(batch(4, "ready"))
    printer.show(batch(5, "ready"))
    assert len(timers.due) == 1
    printer.flush()
    assert timers.due == [] and "ready [repeated 2x across cluster]" in capsys.readouterr().out


@pytest.mark.parametrize("setting", ["MANTA_DEDUP_LOGS_ALLOW_REGEX", "MANTA_DEDUP_LOGS_SKIP_REGEX"])
def test_a_bad_pattern_is_a_config_error_naming_the_setting(setting: str) -> None:
    # Refused where the configuration is read, not later in every driver's core worker.
    with pytest.raises(ValueError, match=setting):
        Config.from_env({setting: "("})
    with pytest.raises(ValueError, match=setting):
        Config(**{setting.removeprefix("MANTA_").lower(): "[a-"})  # set in code too
    field = setting.removeprefix("MANTA_").lower()
    assert getattr(Config.from_env({setting: "^ok$"}), field) == "^ok$"

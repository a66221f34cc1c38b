"""Worker output held for a job whose driver has not subscribed (yet)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from manta._private.gcs.log_hold import LogHold


def test_held_batches_go_to_the_next_subscriber_in_order_and_once() -> None:
    hold: LogHold[str] = LogHold(max_age_s=60)
    hold.hold(b"a", "a1", 10, now=0)
    hold.hold(b"b", "b1", 10, now=1)
    hold.hold(b"a", "a2", 10, now=2)
    assert hold.take(b"a", now=3) == ["a1", "a2"]
    assert hold.take(b"a", now=3) == []
    assert hold.take(b"b", now=3) == ["b1"]
    assert hold.chars == 0


def test_batches_older_than_the_age_limit_are_not_handed_over() -> None:
    hold: LogHold[str] = LogHold(max_age_s=5)
    hold.hold(b"a", "old", 10, now=0)
    hold.hold(b"a", "new", 10, now=4)
    assert hold.take(b"a", now=7) == ["new"]


def test_old_batches_are_swept_even_for_jobs_never_subscribed() -> None:
    hold: LogHold[str] = LogHold(max_age_s=5)
    hold.hold(b"silent", "x", 100, now=0)
    hold.hold(b"other", "y", 1, now=10)  # a later hold sweeps what is too old
    assert hold.chars == 1
    assert hold.take(b"silent", now=10) == []


def test_a_job_over_its_share_loses_its_oldest_batches() -> None:
    hold: LogHold[str] = LogHold(max_age_s=60, max_chars_per_job=25, max_chars=1000)
    for i in range(5):
        hold.hold(b"a", f"a{i}", 10, now=i)
    hold.hold(b"b", "b0", 10, now=5)
    assert hold.take(b"a", now=6) == ["a3", "a4"]
    assert hold.take(b"b", now=6) == ["b0"]


def test_a_batch_larger_than_a_jobs_share_is_dropped_not_an_error() -> None:
    hold: LogHold[str] = LogHold(max_age_s=60, max_chars_per_job=25)
    hold.hold(b"a", "small", 10, now=0)
    hold.hold(b"a", "huge", 30, now=1)
    assert hold.take(b"a", now=2) == [] and hold.chars == 0
    hold.hold(b"a", "next", 5, now=3)  # and the job goes on being held
    assert hold.take(b"a", now=4) == ["next"]


def test_over_the_total_the_oldest_batch_of_any_job_goes() -> None:
    hold: LogHold[str] = LogHold(max_age_s=60, max_chars_per_job=100, max_chars=30)
    hold.hold(b"a", "a0", 10, now=0)
    hold.hold(b"b", "b0", 10, now=1)
    hold.hold(b"a", "a1", 10, now=2)
    hold.hold(b"b", "b1", 10, now=3)
    assert hold.take(b"a", now=4) == ["a1"]
    assert hold.take(b"b", now=4) == ["b0", "b1"]


def test_forget_drops_a_finished_jobs_output() -> None:
    hold: LogHold[str] = LogHold(max_age_s=60)
    hold.hold(b"a", "a0", 10, now=0)
    hold.forget(b"a")
    assert hold.chars == 0 and hold.take(b"a", now=1) == []


@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.integers(0, 40)), max_size=60))
def test_bounds_hold_whatever_arrives(arrivals: list[tuple[bytes, int]]) -> None:
    hold: LogHold[int] = LogHold(max_age_s=60, max_chars_per_job=50, max_chars=80)
    for t, (job, chars) in enumerate(arrivals):
        hold.hold(job, t, chars, now=t)
        assert hold.chars <= 80
    taken = [hold.take(job, now=len(arrivals)) for job in (b"a", b"b", b"c")]
    assert hold.chars == 0
    for batches in taken:
        assert batches == sorted(batches)  # oldest first
        assert sum(arrivals[t][1] for t in batches) <= 50

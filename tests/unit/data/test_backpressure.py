"""The launch decision under the memory budget and CPU slots."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from manta.data._internal.backpressure import Budget, Candidate, Usage, may_launch

BUDGET = Budget(object_store_bytes=1000, cpus=2, gpus=0)


def _candidate(**kwargs) -> Candidate:
    values = {"running": 1, "max_running": 4, "outputs_waiting_bytes": 0, "task_output_estimate": 100,
              "task_cpus": 1, "task_gpus": 0} | kwargs  # fmt: skip
    return Candidate(**values)


def test_a_task_starts_when_its_output_fits():
    assert may_launch(_candidate(), Usage(800, 1, 0), BUDGET)


def test_a_task_waits_when_its_output_would_not_fit():
    assert not may_launch(_candidate(), Usage(950, 1, 0), BUDGET)


def test_cpu_slots_bound_the_tasks():
    assert not may_launch(_candidate(), Usage(0, 2, 0), BUDGET)


def test_the_concurrency_cap_holds_even_with_room():
    assert not may_launch(_candidate(running=4), Usage(0, 0, 0), BUDGET)


def test_an_idle_operator_with_drained_outputs_always_gets_one_task():
    idle = _candidate(running=0, task_output_estimate=10_000)
    assert may_launch(idle, Usage(5_000, 2, 0), BUDGET)
    assert not may_launch(_candidate(running=0, outputs_waiting_bytes=1, task_output_estimate=10_000),
                          Usage(5_000, 2, 0), BUDGET)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    running=st.integers(0, 8), waiting=st.integers(0, 2000), estimate=st.integers(0, 2000),
    used=st.integers(0, 2000), cpus=st.floats(0, 3),
)  # fmt: skip
def test_a_launch_past_the_budget_happens_only_to_keep_an_idle_operator_moving(
    running, waiting, estimate, used, cpus
):
    candidate = _candidate(running=running, outputs_waiting_bytes=waiting, task_output_estimate=estimate)
    launched = may_launch(candidate, Usage(used, cpus, 0), BUDGET)
    over = used + estimate > BUDGET.object_store_bytes or cpus + 1 > BUDGET.cpus
    if launched and over:
        assert running == 0 and waiting == 0
    if running >= candidate.max_running:
        assert not launched

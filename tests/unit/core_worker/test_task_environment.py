"""The variables a worker sets for tasks: a task's GPUs (and what was there before coming
back when the next task needs none) and its CPU threads."""

from __future__ import annotations

import os

import pytest

from manta._private.core_worker.task_environment import TaskEnvironment


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy of the environment: what the code under test sets must not reach later tests
    # (the clusters they start would inherit it).
    monkeypatch.setattr(os, "environ", dict(os.environ))


def test_gpus_come_and_go_and_the_workers_own_setting_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    env = TaskEnvironment(is_driver=False)
    env.enter(["0", "1"], {"CPU": 1.0, "GPU": 2.0})
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    env.enter(None, {"CPU": 1.0})  # a CPU task must not see the previous task's GPUs
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    env.enter(["3"], {})
    env.enter(None, {})
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_omp_threads_follow_whole_cpus_unless_the_user_set_them() -> None:
    os.environ.pop("OMP_NUM_THREADS", None)
    env = TaskEnvironment(is_driver=False)
    env.enter(None, {"CPU": 2.5})
    assert os.environ["OMP_NUM_THREADS"] == "2"
    env.enter(None, {"CPU": 0.5})
    assert os.environ["OMP_NUM_THREADS"] == "1"
    # A task (or its runtime_env) that sets it makes it the user's: later tasks keep it.
    os.environ["OMP_NUM_THREADS"] = "6"
    env.enter(None, {"CPU": 2.0})
    assert os.environ["OMP_NUM_THREADS"] == "6"
    os.environ["OMP_NUM_THREADS"] = "8"
    user = TaskEnvironment(is_driver=False)
    user.enter(None, {"CPU": 1.0})
    assert os.environ["OMP_NUM_THREADS"] == "8"
    del os.environ["OMP_NUM_THREADS"]
    TaskEnvironment(is_driver=True).enter(None, {"CPU": 4.0})  # never in a driver
    assert "OMP_NUM_THREADS" not in os.environ

"""The homes of Ray's private names, as far as they work without a cluster."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import manta
from manta.compat.ray_common import test_utils as common_test_utils
from manta.compat.ray_common import utils as common_utils
from manta.compat.ray_private import client_mode_hook, utils, worker
from manta.compat.ray_private import test_utils as private_test_utils
from manta.exceptions import RaySystemError


def test_wait_for_condition_returns_once_the_predicate_holds() -> None:
    calls = itertools.count()
    private_test_utils.wait_for_condition(lambda: next(calls) >= 3, timeout=5, retry_interval_ms=1)
    assert next(calls) == 4


def test_wait_for_condition_passes_kwargs_and_can_raise() -> None:
    private_test_utils.wait_for_condition(lambda x: x == 1, x=1)

    def broken() -> bool:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        private_test_utils.wait_for_condition(broken, raise_exceptions=True)


def test_wait_for_condition_timeout_names_the_last_exception() -> None:
    def broken() -> bool:
        raise KeyError("inside")

    with pytest.raises(RuntimeError, match="wasn't met before the timeout expired") as info:
        private_test_utils.wait_for_condition(broken, timeout=0.02, retry_interval_ms=1)
    assert "KeyError: 'inside'" in str(info.value)
    with pytest.raises(RuntimeError, match=r"timeout expired\.$"):
        private_test_utils.wait_for_condition(lambda: False, timeout=0.02, retry_interval_ms=1)


def test_async_wait_for_condition_takes_sync_and_async_predicates() -> None:
    calls = itertools.count()

    async def eventually() -> bool:
        return next(calls) >= 2

    asyncio.run(common_test_utils.async_wait_for_condition(eventually, retry_interval_ms=1))
    asyncio.run(common_test_utils.async_wait_for_condition(lambda: True))
    with pytest.raises(RuntimeError, match="timeout expired"):
        asyncio.run(
            common_test_utils.async_wait_for_condition(lambda: False, timeout=0.02, retry_interval_ms=1)
        )


def test_wait_for_assertion_reraises_the_assertion() -> None:
    def never() -> None:
        raise AssertionError("still wrong")

    with pytest.raises(AssertionError, match="still wrong"):
        private_test_utils.wait_for_assertion(never, timeout=0.02, retry_interval_ms=1)
    private_test_utils.wait_for_assertion(lambda: None)


def test_the_coordination_actors_are_remote_classes_without_cpus() -> None:
    for actor in (private_test_utils.SignalActor, private_test_utils.Semaphore):
        assert isinstance(actor, manta.actor.ActorClass)
    assert private_test_utils.SignalActor is common_test_utils.SignalActor


def test_client_mode_hook_leaves_functions_alone() -> None:
    def f() -> int:
        return 1

    assert client_mode_hook.client_mode_hook(f) is f
    assert client_mode_hook.client_mode_hook(local_only_kwargs=("x",))(f) is f
    assert client_mode_hook.client_mode_wrap(f) is f
    assert not client_mode_hook.client_mode_should_convert()
    with client_mode_hook.disable_client_hook():
        pass


def test_small_utils() -> None:
    assert common_utils.hex_to_binary(common_utils.binary_to_hex(b"\x01\xff")) == b"\x01\xff"
    assert utils.binary_to_hex is common_utils.binary_to_hex
    assert common_utils.decode(b"x") == "x" and common_utils.decode(None, allow_none=True) == ""
    with pytest.raises(ValueError, match="must be a bytes object"):
        common_utils.decode("x")  # type: ignore[arg-type]
    assert len(common_utils.get_random_alphanumeric_string(12)) == 12
    assert utils.get_num_cpus() >= 1
    assert utils.get_system_memory() > utils.get_used_memory() > 0
    assert utils.format_error_message("T\nw1\nw2\nuser", task_exception=True) == "T\nuser"
    assert utils.ensure_str(b"a") == "a" and utils.is_main_thread()


def test_event_loop_helper_makes_one_when_there_is_none() -> None:
    async def running() -> bool:
        return common_utils.get_or_create_event_loop() is asyncio.get_running_loop()

    assert asyncio.run(running())


def test_global_worker_before_init() -> None:
    assert not manta.is_initialized()
    gw = worker.global_worker
    assert gw.mode is None and not gw.connected and gw.node is None
    assert worker._global_node is None  # type: ignore[attr-defined]
    assert gw.current_job_id.is_nil()
    with pytest.raises(RaySystemError, match=r"ray\.init"):
        gw.check_connected()
    with pytest.raises(RaySystemError):
        gw.current_task_id  # noqa: B018
    with pytest.raises(RaySystemError):
        gw.core_worker  # noqa: B018  (a view of the connected core worker)
    with pytest.raises(AttributeError, match="no counterpart in Manta"):
        gw.function_actor_manager  # noqa: B018
    assert worker.get is manta.get and worker.RayContext is manta._private.api.context.InitContext

"""Option validation with Ray's error texts, and the resources a task asks for."""

from __future__ import annotations

import re
from typing import Any

import pytest

from manta._private.api.options import (
    ACTOR_OPTIONS,
    TASK_OPTIONS,
    generator_mode,
    task_resources,
    validate,
)
from manta._private.api.scheduling import NodeAffinitySchedulingStrategy


def check_task(**options: Any) -> None:
    validate(options, TASK_OPTIONS, "remote functions")


def test_valid_task_options_pass() -> None:
    check_task(
        num_cpus=0.5,
        num_gpus=1,
        memory=1024,
        resources={"custom": 2},
        max_retries=-1,
        retry_exceptions=[ValueError],
        num_returns=2,
        max_calls=0,
        name="f",
        scheduling_strategy="SPREAD",
        runtime_env={"env_vars": {"A": "1"}},
    )
    check_task(num_cpus=None, max_retries=None, retry_exceptions=True, scheduling_strategy=None)
    check_task(scheduling_strategy=NodeAffinitySchedulingStrategy("ab" * 28, soft=True))


def test_unknown_keyword_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        check_task(foo=1)
    assert (
        str(info.value)
        == f"Invalid option keyword foo for remote functions. Valid ones are {list(TASK_OPTIONS)}."
    )


def test_task_only_option_is_invalid_for_actors() -> None:
    with pytest.raises(ValueError, match="Invalid option keyword max_retries for actors"):
        validate({"max_retries": 1}, ACTOR_OPTIONS, "actors")
    validate({"max_restarts": -1, "max_concurrency": 4, "namespace": "ns"}, ACTOR_OPTIONS, "actors")


@pytest.mark.parametrize("name", ["num_cpus", "num_gpus", "memory", "object_store_memory"])
def test_negative_quantity(name: str) -> None:
    with pytest.raises(ValueError, match=f"^The quantity of resource {name} cannot be negative$"):
        check_task(**{name: -1})


@pytest.mark.parametrize("value", ["1", [1], True])
def test_quantity_of_the_wrong_type(value: Any) -> None:
    with pytest.raises(TypeError) as info:
        check_task(num_cpus=value)
    assert str(info.value) == (
        "The type of keyword 'num_cpus' must be (<class 'float'>, <class 'int'>, <class 'NoneType'>), "
        f"but received type {type(value)}"
    )


def test_resources_option_errors() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword"
        ),
    ):
        check_task(resources={"CPU": 1})
    with pytest.raises(ValueError, match="Use the 'num_cpus'"):
        check_task(resources={"GPU": 1})
    with pytest.raises(ValueError, match=r"^The quantity of resource custom cannot be negative$"):
        check_task(resources={"custom": -0.5})
    with pytest.raises(TypeError, match="The type of keyword 'resources' must be"):
        check_task(resources=[("custom", 1)])
    with pytest.raises(TypeError, match="the quantity of resource custom must be a number"):
        check_task(resources={"custom": "1"})


def test_the_bundle_resource_is_reserved() -> None:
    # Placement groups use it to steer work into their bundles; Ray refuses it too.
    for check in (check_task, lambda **o: validate(o, ACTOR_OPTIONS, "actors")):
        with pytest.raises(ValueError, match=r"should not include `bundle` which is reserved for Ray"):
            check(resources={"bundle": 1})
    check_task(resources={"bundle_size": 1})  # only the exact name


def test_retry_exceptions_errors() -> None:
    with pytest.raises(TypeError) as info:
        check_task(retry_exceptions="yes")
    assert str(info.value) == (
        "The type of keyword 'retry_exceptions' must be (<class 'bool'>, <class 'list'>, <class 'tuple'>), "
        "but received type <class 'str'>"
    )
    for bad in ([ValueError, "KeyError"], [ValueError()], [int]):
        with pytest.raises(
            ValueError, match=r"^retry_exceptions must be either a boolean or a list of exceptions$"
        ):
            check_task(retry_exceptions=bad)


@pytest.mark.parametrize("value", [-2, -100])
def test_max_retries_below_minus_one(value: int) -> None:
    with pytest.raises(ValueError) as info:
        check_task(max_retries=value)
    assert str(info.value) == (
        "The keyword 'max_retries' only accepts None, 0, -1 or a positive integer, where -1 represents infinity."
    )


def test_max_retries_type() -> None:
    with pytest.raises(TypeError, match="The type of keyword 'max_retries' must be"):
        check_task(max_retries=1.5)


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_bad_num_returns(value: Any) -> None:
    with pytest.raises(
        ValueError, match="The keyword 'num_returns' only accepts None, a non-negative integer"
    ):
        check_task(num_returns=value)


@pytest.mark.parametrize("value", ["streaming", "dynamic"])
def test_generator_num_returns_is_explained(value: str) -> None:
    with pytest.raises(ValueError, match="can only be used with generator functions"):
        generator_mode("plain", False, value)
    check_task(num_returns=value)  # fine on its own: the function decides


def test_bad_max_calls() -> None:
    with pytest.raises(
        ValueError, match=re.escape("The keyword 'max_calls' only accepts None, 0 or a positive integer.")
    ):
        check_task(max_calls=-1)


def test_bad_scheduling_strategy() -> None:
    with pytest.raises(ValueError, match=r"Invalid scheduling_strategy value RANDOM\. Valid values are"):
        check_task(scheduling_strategy="RANDOM")


def test_runtime_env_option_is_validated() -> None:
    with pytest.raises(TypeError, match="The type of keyword 'runtime_env' must be"):
        check_task(runtime_env="env")
    with pytest.raises(ValueError, match="runtime_env\\['conda'\\] is not supported by Manta"):
        check_task(runtime_env={"conda": ["requests"]})


def test_task_resources_defaults_to_one_cpu() -> None:
    assert task_resources({}) == {"CPU": 1.0}
    assert task_resources({"num_cpus": None}) == {"CPU": 1.0}
    assert task_resources({}, default_cpus=0) == {}


def test_task_resources_collects_every_kind() -> None:
    assert task_resources({"num_cpus": 2, "num_gpus": 0.5, "memory": 100, "resources": {"custom": 3}}) == {
        "CPU": 2.0,
        "GPU": 0.5,
        "memory": 100.0,
        "custom": 3.0,
    }
    assert task_resources({"num_cpus": 0, "num_gpus": 0, "resources": {"zero": 0}}) == {}
    assert all(type(v) is float for v in task_resources({"num_cpus": 3, "num_gpus": 2}).values())


def test_task_resources_rejects_fractional_gpus_above_one() -> None:
    with pytest.raises(ValueError) as info:
        task_resources({"num_gpus": 1.5})
    assert (
        str(info.value)
        == "GPU resource quantities >1 must be whole numbers. The specified quantity 1.5 is invalid."
    )
    assert task_resources({"num_gpus": 2.0}) == {"CPU": 1.0, "GPU": 2.0}


def test_fractional_gpus_above_one_are_refused_when_the_options_are_given() -> None:
    """BUG: the module promises every option is checked when given, as Ray does; but
    ``validate`` accepts num_gpus=1.5, so ``@remote(num_gpus=1.5)`` and ``.options(num_gpus=1.5)``
    succeed and the error only comes at ``.remote()``."""
    with pytest.raises(ValueError, match="GPU resource quantities >1 must be whole numbers"):
        check_task(num_gpus=1.5)


def test_quantities_finer_than_the_resource_unit_are_refused() -> None:
    """BUG: Ray refuses num_cpus=0.00001 ("The precision of the fractional quantity of
    resource num_cpus cannot go beyond 0.0001"); Manta accepts it, and the scheduler rounds
    the request to zero CPUs, so the task runs with no CPU reserved."""
    with pytest.raises(ValueError, match=r"cannot go beyond 0\.0001"):
        check_task(num_cpus=0.00001)

"""Validating ``@remote``/``.options()`` keywords and turning them into resources.

Names, defaults and error texts follow Ray, so code that catches Ray's messages works.
Everything is checked when the options are given (before anything is submitted).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from manta._private.api.scheduling import label_selector_wire, strategy_wire
from manta._private.common.deprecation import RayDeprecationWarning
from manta._private.common.resources import BUNDLE_MARKER, INSTANCE_RESOURCES, PRECISION
from manta._private.rpc.messages import GENERATOR_DYNAMIC, GENERATOR_STREAMING
from manta._private.runtime_env.validation import validate_runtime_env

_Check = Callable[[str, Any], None]


def _types(*types: type) -> _Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types and int in types):
            raise TypeError(f"The type of keyword '{name}' must be {types}, but received type {type(value)}")

    return check


def _quantity(name: str, value: Any) -> None:
    if value is None:
        return
    _types(float, int, type(None))(name, value)
    _check_amount(name, value)
    if name == "num_gpus" and value > 1 and value != int(value):
        raise ValueError(
            f"GPU resource quantities >1 must be whole numbers. The specified quantity {value} is invalid."
        )


def _check_amount(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"The quantity of resource {name} cannot be negative")
    scaled = value * PRECISION
    if abs(scaled - round(scaled)) > 1e-6:
        raise ValueError(f"The precision of resource {name} cannot go beyond {1 / PRECISION}: got {value}")


def _resources(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(
            f"The type of keyword 'resources' must be (<class 'dict'>, <class 'NoneType'>), but received type {type(value)}"
        )
    for key, amount in value.items():
        if key in ("CPU", "GPU"):
            raise ValueError(
                "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword"
            )
        if key == BUNDLE_MARKER:
            # Placement groups steer work into their bundles with it.
            raise ValueError(
                f"The resource should not include `{BUNDLE_MARKER}` which is reserved for Ray-compatible "
                f"placement groups. resources: {value}"
            )
        if not isinstance(key, str):
            raise TypeError(f"resource names must be strings, got {key!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError(f"the quantity of resource {key} must be a number, got {amount!r}")
        _check_amount(key, amount)


def _num_returns(name: str, value: Any) -> None:
    if value is None or value in ("streaming", "dynamic"):
        return  # whether the function is a generator is checked with the function
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            "The keyword 'num_returns' only accepts None, a non-negative integer, 'streaming' "
            "(for generators), or 'dynamic'."
        )


def _backpressure(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value == 0:
        raise ValueError(
            f"{name}=0 is not allowed. Use a value > 0 (1 makes the generator produce one item "
            "each time `next` is called, like a Python generator), or -1 to disable it."
        )


def generator_mode(name: str, is_generator: bool, num_returns: Any) -> int:
    """The wire form of a function's generator mode (messages.GENERATOR_*), checking that
    'streaming' and 'dynamic' go with generator functions, as Ray does."""
    if num_returns in ("streaming", "dynamic") and not is_generator:
        raise ValueError(
            f"num_returns='{num_returns}' can only be used with generator functions (functions "
            f"that use 'yield'). The decorated function {name} is not a generator function."
        )
    if num_returns == "dynamic":
        warnings.warn(
            "num_returns='dynamic' is deprecated and will be removed in a future release. Use "
            "num_returns='streaming' instead.",
            RayDeprecationWarning,
            stacklevel=4,
        )
        return GENERATOR_DYNAMIC
    if is_generator and num_returns in (None, "streaming"):
        return GENERATOR_STREAMING
    return 0


def _max_retries(name: str, value: Any) -> None:
    _types(int, type(None))(name, value)
    if value is not None and value < -1:
        raise ValueError(
            f"The keyword '{name}' only accepts None, 0, -1 or a positive integer, where -1 represents infinity."
        )


def _retry_exceptions(name: str, value: Any) -> None:
    _types(bool, list, tuple)(name, value)
    if isinstance(value, (list, tuple)) and not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        raise ValueError("retry_exceptions must be either a boolean or a list of exceptions")


def _max_calls(name: str, value: Any) -> None:
    _types(int, type(None))(name, value)
    if value is not None and value < 0:
        raise ValueError("The keyword 'max_calls' only accepts None, 0 or a positive integer.")


def _strategy(name: str, value: Any) -> None:
    strategy_wire(value)


def _label_selector(name: str, value: Any) -> None:
    _types(dict, type(None))(name, value)
    if value:
        label_selector_wire(value)


def _runtime_env(name: str, value: Any) -> None:
    _types(dict, type(None))(name, value)
    validate_runtime_env(value)


def _any(name: str, value: Any) -> None:
    pass


_COMMON: dict[str, _Check] = {
    "label_selector": _label_selector,
    "fallback_strategy": _any,
    "accelerator_type": _types(str, type(None)),
    "memory": _quantity,
    "name": _types(str, type(None)),
    "num_cpus": _quantity,
    "num_gpus": _quantity,
    "object_store_memory": _quantity,
    "placement_group": _any,
    "placement_group_bundle_index": _types(int),
    "placement_group_capture_child_tasks": _types(bool, type(None)),
    "resources": _resources,
    "runtime_env": _runtime_env,
    "scheduling_strategy": _strategy,
    "enable_task_events": _types(bool),
    "_labels": _types(dict, type(None)),
}

TASK_OPTIONS: dict[str, _Check] = {
    **_COMMON,
    "max_calls": _max_calls,
    "max_retries": _max_retries,
    "num_returns": _num_returns,
    "retry_exceptions": _retry_exceptions,
    "_generator_backpressure_num_objects": _backpressure,
    "_num_objects_per_yield": _any,
}

ACTOR_OPTIONS: dict[str, _Check] = {
    **_COMMON,
    "concurrency_groups": _types(dict, list, type(None)),
    "enable_tensor_transport": _types(bool),
    "lifetime": _any,
    "max_concurrency": _types(int, type(None)),
    "max_restarts": _max_retries,
    "max_task_retries": _max_retries,
    "max_pending_calls": _types(int),
    "namespace": _types(str, type(None)),
    "get_if_exists": _types(bool),
    "allow_out_of_order_execution": _types(bool),
    "_actor_generator_backpressure_num_objects": _any,
}


ACTOR_METHOD_OPTIONS: dict[str, _Check] = {
    "num_returns": _num_returns,
    "_generator_backpressure_num_objects": _backpressure,
    "concurrency_group": _types(str, type(None)),
    "max_task_retries": _max_retries,
    "retry_exceptions": _retry_exceptions,
    "name": _types(str, type(None)),
    "enable_task_events": _types(bool),
}


def validate(options: dict[str, Any], valid: dict[str, _Check], kind: str) -> None:
    for name, value in options.items():
        check = valid.get(name)
        if check is None:
            raise ValueError(f"Invalid option keyword {name} for {kind}. Valid ones are {list(valid)}.")
        check(name, value)


def task_resources(options: dict[str, Any], default_cpus: float = 1) -> dict[str, float]:
    """The resource request of a task or actor: CPU, GPU, memory and custom ones."""
    cpus = options.get("num_cpus")
    request: dict[str, float] = {"CPU": default_cpus if cpus is None else cpus}
    if options.get("num_gpus"):
        request["GPU"] = options["num_gpus"]
    if options.get("memory"):
        request["memory"] = options["memory"]
    for name, amount in (options.get("resources") or {}).items():
        request[name] = amount
    for name in INSTANCE_RESOURCES:
        amount = request.get(name, 0)
        if amount > 1 and amount != int(amount):
            raise ValueError(
                f"{name} resource quantities >1 must be whole numbers. "
                f"The specified quantity {amount} is invalid."
            )
    return {k: float(v) for k, v in request.items() if v}

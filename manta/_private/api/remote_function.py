"""``@remote`` on a function: a ``RemoteFunction`` with ``.remote()`` and ``.options()``."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

from manta._private.api import call_check, context, runtime_env
from manta._private.api.call_check import CallCheck
from manta._private.api.options import TASK_OPTIONS, generator_mode, task_resources, validate
from manta._private.api.scheduling import group_context, group_request, in_placement_group, strategy_wire
from manta._private.core_worker.function_manager import FunctionManager
from manta._private.rpc.messages import GENERATOR_STREAMING


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Options turned into what a submission needs, once per options dict."""

    resources: dict[str, float]
    strategy: Any
    num_returns: int
    max_retries: int | None
    retry_exceptions: bool | tuple[type, ...]
    name: str | None
    runtime_env: dict[str, Any] | None
    max_calls: int
    # Its resources outside any group, and the group it is placed in, if any.
    own_resources: dict[str, float]
    placement_group: list[Any] | None
    explicit_strategy: bool
    # messages.GENERATOR_* for generator tasks, and their backpressure (0: none).
    generator: int
    backpressure: int
    task_events: bool


def _prepare(options: dict[str, Any], function: Any) -> _Prepared:
    validate(options, TASK_OPTIONS, "remote functions")
    is_generator = inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function)
    generator = generator_mode(function.__qualname__, is_generator, options.get("num_returns"))
    own = task_resources(options)
    resources = in_placement_group(own, options.get("scheduling_strategy"), function.__name__)
    num_returns = options.get("num_returns")
    retry_exceptions = options.get("retry_exceptions", False)
    if isinstance(retry_exceptions, list):
        retry_exceptions = tuple(retry_exceptions)
    return _Prepared(
        resources=resources,
        strategy=strategy_wire(options.get("scheduling_strategy"), options.get("label_selector")),
        num_returns=1 if num_returns is None or generator else num_returns,
        max_retries=options.get("max_retries"),
        retry_exceptions=retry_exceptions,
        name=options.get("name"),
        runtime_env=options.get("runtime_env"),
        max_calls=_max_calls(options, resources),
        own_resources=own,
        placement_group=group_context(options.get("scheduling_strategy")),
        explicit_strategy=options.get("scheduling_strategy") is not None,
        generator=generator,
        backpressure=max(options.get("_generator_backpressure_num_objects") or 0, 0),
        task_events=options.get("enable_task_events", True),
    )


class RemoteFunction:
    """A function that runs as a task. Call ``.remote(*args, **kwargs)`` to submit it."""

    def __init__(self, function: Any, options: dict[str, Any]) -> None:
        self._function = function
        self._options = options
        self._prepared = _prepare(options, function)
        # Read at the first call, not here: unpickling a function that refers to itself
        # (a recursive task) builds this object before the function has its defaults.
        self._call_check: CallCheck | None = None
        self._pickled: tuple[bytes, bytes] | None = None
        self._qualified_name = f"{function.__module__}.{function.__qualname__}"
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running '{self._qualified_name}()', "
            f"try '{self._qualified_name}.remote()'."
        )

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote(args, kwargs, self._prepared)

    def options(self, **options: Any) -> _BoundOptions:
        """A copy of this function with some options replaced, for one or more calls."""
        return _BoundOptions(self, {**self._options, **options})

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._call_check is None:
            self._call_check = call_check.of_function(self._function, self._function.__qualname__)
        self._call_check.check(args, kwargs)

    def _remote(self, args: tuple[Any, ...], kwargs: dict[str, Any], prepared: _Prepared) -> Any:
        worker = context.ensure_initialized()
        self._check_arguments(args, kwargs)
        max_retries = prepared.max_retries
        resources, group = prepared.resources, prepared.placement_group
        if group is None and not prepared.explicit_strategy:
            current = worker.context.placement_group
            if current is not None and current[2]:
                # Submitted from a task in a group that captures its children: placed there too.
                group = [current[0], -1, True]
                resources = group_request(prepared.own_resources, current[0].hex(), -1)
        refs = worker.submit_task(
            function_id=self._export(worker),
            function_name=self._qualified_name,
            name=prepared.name or self._function.__name__,
            args=args,
            kwargs=kwargs,
            num_returns=prepared.num_returns,
            resources=resources,
            max_retries=worker.config.task_max_retries if max_retries is None else max_retries,
            retry_exceptions=prepared.retry_exceptions,
            runtime_env=runtime_env.for_submission(worker, prepared.runtime_env),
            strategy=prepared.strategy,
            max_calls=prepared.max_calls,
            placement_group=group,
            generator=prepared.generator,
            backpressure=prepared.backpressure,
            task_events=prepared.task_events,
        )
        if prepared.generator == GENERATOR_STREAMING:
            return worker.stream_of(refs[0])
        if prepared.num_returns == 1:
            return refs[0]
        if prepared.num_returns == 0:
            return None
        return refs

    def _export(self, worker: Any) -> bytes:
        if self._pickled is None:
            self._pickled = FunctionManager.pickle_function(self._function)
        function_id, pickled = self._pickled
        worker.functions.export(worker.job_id, function_id, pickled, self._function)
        return function_id

    def __reduce__(self) -> Any:
        return (RemoteFunction, (self._function, self._options))


class _BoundOptions:
    """What ``RemoteFunction.options(...)`` returns: ``.remote()`` with those options."""

    def __init__(self, remote_function: RemoteFunction, options: dict[str, Any]) -> None:
        self._remote_function = remote_function
        self._options = options
        self._prepared = _prepare(options, remote_function._function)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote_function._remote(args, kwargs, self._prepared)

    def options(self, **options: Any) -> _BoundOptions:
        return _BoundOptions(self._remote_function, {**self._options, **options})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote_function(*args, **kwargs)


def remote(*args: Any, **kwargs: Any) -> Any:
    """Make a function remote: ``@remote`` or ``@remote(num_cpus=..., ...)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError(
            "The @manta.remote decorator must be applied either with no arguments and no "
            "parentheses, for example '@manta.remote', or with keyword options, for example "
            f"'@manta.remote(num_returns=2, resources={{\"CustomResource\": 1}})'. Valid options: {list(TASK_OPTIONS)}"
        )
    return functools.partial(_make_remote, options=kwargs)


def _make_remote(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        from manta._private.api.actor import ActorClass

        return ActorClass(target, options)
    if not callable(target):
        raise TypeError(f"@remote needs a function, got {type(target).__name__}")
    return RemoteFunction(target, options)


def _max_calls(options: dict[str, Any], resources: dict[str, float]) -> int:
    """As in Ray: unlimited by default, but a GPU task's worker exits after one call, so
    whatever the task left on the GPU is released."""
    value = options.get("max_calls")
    if value is None:
        return 1 if resources.get("GPU") else 0
    return int(value)

"""``@remote`` on a class: ``ActorClass``, ``ActorHandle`` and ``ActorMethod``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import cloudpickle

from manta._private.api import call_check, context, runtime_env
from manta._private.api.call_check import CallCheck
from manta._private.api.options import (
    ACTOR_METHOD_OPTIONS,
    ACTOR_OPTIONS,
    generator_mode,
    task_resources,
    validate,
)
from manta._private.api.scheduling import (
    PlacementGroupSchedulingStrategy,
    group_context,
    group_request,
    in_placement_group,
    strategy_wire,
)
from manta._private.common.ids import ActorID
from manta._private.core_worker.actor_runtime import READY_METHOD, TERMINATE_METHOD, ActorExit
from manta._private.core_worker.function_manager import FunctionManager
from manta._private.rpc import messages as m

_SPECIAL_METHODS = (READY_METHOD, TERMINATE_METHOD)
_METHOD_OPTIONS = "__manta_method_options__"
# A method attribute (Ray's name): a function that wraps the caller's side of ``.remote()``,
# ``decorator(invoke)(args, kwargs)``, where ``invoke(args, kwargs)`` submits the call.
# It travels with the @method options, so handles made anywhere (get_actor, a handle
# passed to a task) apply it.
_INVOCATION_DECORATOR = "__ray_invocation_decorator__"


def method(**options: Any) -> Any:
    """Set per-method defaults: ``@manta.method(num_returns=2, concurrency_group="io")``."""
    validate(options, ACTOR_METHOD_OPTIONS, "actor methods")

    def decorate(fn: Any) -> Any:
        setattr(fn, _METHOD_OPTIONS, options)
        return fn

    return decorate


@dataclass(frozen=True, slots=True)
class _ClassMeta:
    # name -> [num_returns, concurrency_group, other @method options or None, is a generator]
    # (the wire form of ActorSpec.methods; the other options are pickled, as exception
    # classes may be in them)
    methods: dict[str, list[Any]]
    is_async: bool


def _class_meta(cls: type) -> _ClassMeta:
    methods: dict[str, list[Any]] = {}
    is_async = False
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") and name.endswith("__"):
            continue
        fn = inspect.unwrap(member) if callable(member) else None
        if fn is None or not (inspect.isfunction(fn) or inspect.ismethod(fn)):
            continue
        options = dict(getattr(member, _METHOD_OPTIONS, {}))
        decorator = getattr(member, _INVOCATION_DECORATOR, None)
        if decorator is not None:
            options[_INVOCATION_DECORATOR] = decorator
        num_returns = options.pop("num_returns", None)
        group = options.pop("concurrency_group", "") or ""
        others = cloudpickle.dumps(options) if options else None
        is_generator = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
        methods[name] = [num_returns, group, others, is_generator, _parameters(cls, name, member)]
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            is_async = True
    return _ClassMeta(methods, is_async)


def _parameters(cls: type, name: str, member: Any) -> list[list[Any]] | None:
    """A method's parameters after ``self`` as ``[name, kind, has a default]`` (the wire
    form), so that callers check their arguments; None when they cannot be read."""
    try:
        params = list(inspect.signature(member).parameters.values())
    except (TypeError, ValueError):
        return None
    if inspect.isfunction(member) and not isinstance(inspect.getattr_static(cls, name), staticmethod):
        params = params[1:]  # self
    return [[p.name, int(p.kind), p.default is not p.empty] for p in params]


class ActorClass:
    """A class made remote. ``.remote(*args)`` creates an actor and returns its handle."""

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        validate(options, ACTOR_OPTIONS, "actors")
        self._cls = cls
        self._options = options
        self._meta = _class_meta(cls)
        self._pickled: tuple[bytes, bytes] | None = None
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self._cls.__name__}()', "
            f"use '{self._cls.__name__}.remote()'."
        )

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._remote(args, kwargs, self._options)

    def options(self, **options: Any) -> _ActorClassOptions:
        validate(options, ACTOR_OPTIONS, "actors")
        return _ActorClassOptions(self, {**self._options, **options})

    def _remote(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> ActorHandle:
        worker = context.ensure_initialized()
        _check_constructor_arguments(self._cls, args, kwargs)
        spec = self._spec(worker, options)
        existing = worker.actors.create(spec, args, kwargs, bool(options.get("get_if_exists")))
        if existing is not None:
            return handle_from_info(existing)
        return ActorHandle(spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries, spec.is_async)

    def _spec(self, worker: Any, options: dict[str, Any]) -> m.ActorSpec:
        lifetime = options.get("lifetime")
        if lifetime not in (None, "detached", "non_detached"):
            raise ValueError(f"lifetime must be None, 'detached' or 'non_detached', got {lifetime!r}")
        name = options.get("name") or ""
        if options.get("get_if_exists") and not name:
            raise ValueError("get_if_exists=True needs a name: the actor is found by it")
        held = task_resources(options, default_cpus=0)
        # As in Ray: an actor that does not ask for CPUs needs one to be placed, holds none
        # (inside a placement group, its bundle was placed already: it needs only that).
        placement = (
            {**held, "CPU": max(held.get("CPU", 0.0), 1.0)} if options.get("num_cpus") is None else held
        )
        strategy = options.get("scheduling_strategy")
        in_group = group_context(strategy)
        if isinstance(strategy, PlacementGroupSchedulingStrategy):
            # Its bundle must also fit what it needs to be created (Ray checks this too).
            needs = placement if placement != held else None
            held = placement = in_placement_group(held, strategy, self._cls.__name__, needs)
        elif strategy is None and worker.context.placement_group and worker.context.placement_group[2]:
            # Made by a task in a group that captures its children: placed there too.
            pg_id = worker.context.placement_group[0]
            in_group = [pg_id, -1, True]
            held = placement = group_request(held, pg_id.hex(), -1)
        is_async = self._meta.is_async
        max_concurrency = options.get("max_concurrency")
        if max_concurrency is None:
            max_concurrency = 1000 if is_async else 1
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        groups = options.get("concurrency_groups") or {}
        if isinstance(groups, list):
            groups = {group: 1 for group in groups}
        for group, limit in groups.items():
            if not isinstance(group, str) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"concurrency_groups maps names to a positive int, got {group!r}: {limit!r}")
        for method_name, (_, group, _others, _generator, _params) in self._meta.methods.items():
            if group and group not in groups:
                raise ValueError(
                    f"method {method_name} uses the concurrency group {group!r}, which the actor does "
                    f"not define; defined groups: {sorted(groups)}"
                )
        function_id, pickled = self._pickled = self._pickled or FunctionManager.pickle_function(self._cls)
        worker.functions.export(worker.job_id, function_id, pickled, self._cls)
        return m.ActorSpec(
            actor_id=ActorID.of(worker.job_id),
            job_id=worker.job_id,
            class_name=self._cls.__name__,
            module=self._cls.__module__,
            function_id=function_id,
            args=b"",
            ref_args=[],
            resources=held,
            placement=placement,
            owner=worker.address,
            name=name,
            namespace=options.get("namespace") or worker.namespace,
            detached=lifetime == "detached",
            max_restarts=options.get("max_restarts") or 0,
            max_task_retries=options.get("max_task_retries") or 0,
            max_concurrency=max_concurrency,
            concurrency_groups=groups,
            is_async=is_async,
            runtime_env=runtime_env.for_submission(worker, options.get("runtime_env")),
            strategy=strategy_wire(options.get("scheduling_strategy"), options.get("label_selector")),
            methods=self._meta.methods if options.get("enable_task_events", True) else _untracked(self._meta),
            max_pending_calls=max(options.get("max_pending_calls") or 0, 0),
            placement_group=in_group,
            task_events=options.get("enable_task_events", True),
        )


def _untracked(meta: _ClassMeta) -> dict[str, list[Any]]:
    """The methods table of an actor made with enable_task_events=False: its calls record
    no events, unless a method says otherwise (``@method(enable_task_events=True)``)."""
    methods = {}
    for name, (num_returns, group, others, is_generator, params) in meta.methods.items():
        options = {"enable_task_events": False, **(cloudpickle.loads(others) if others else {})}
        methods[name] = [num_returns, group, cloudpickle.dumps(options), is_generator, params]
    return methods


class _ActorClassOptions:
    def __init__(self, actor_class: ActorClass, options: dict[str, Any]) -> None:
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._actor_class._remote(args, kwargs, self._options)

    def options(self, **options: Any) -> _ActorClassOptions:
        validate(options, ACTOR_OPTIONS, "actors")
        return _ActorClassOptions(self._actor_class, {**self._options, **options})


def _check_constructor_arguments(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{cls.__qualname__}.remote(): {e}") from None


class ActorHandle:
    """A reference to an actor: its methods are called with ``handle.method.remote(...)``."""

    def __init__(
        self,
        actor_id: ActorID,
        class_name: str,
        methods: dict[str, list[Any]],
        max_task_retries: int,
        is_async: bool = False,
    ) -> None:
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        self._is_async = is_async
        worker = context.current_worker()
        self._counted = worker
        if worker is not None:
            worker.actors.add_handle(actor_id)

    def __del__(self) -> None:
        counted = getattr(self, "_counted", None)
        if counted is not None:
            try:
                counted.actors.drop_handle(self._actor_id)
            except Exception:  # interpreter shutdown
                pass

    def __getattr__(self, name: str) -> ActorMethod:
        if name in self.__dict__.get("_methods", {}) or name in _SPECIAL_METHODS:
            # What a method's table entry means is read once per handle and name: a handle
            # called in a loop builds only the ActorMethod. (Not the ActorMethod itself:
            # it refers to the handle, and a cycle would delay the actor's end to a GC.)
            known = self.__dict__.setdefault("_parts_by_method", {})
            parts = known.get(name)
            if parts is None:
                parts = known[name] = self._method_parts(name)
            return ActorMethod(self, name, *parts)
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"'{self.__dict__.get('_class_name', '?')}' actor has no method '{name}'. Its methods: "
            f"{sorted(self.__dict__.get('_methods', {}))}"
        )

    def _method_parts(self, name: str) -> tuple[dict[str, Any], bool, CallCheck]:
        num_returns, group, others, is_generator, params = self._methods.get(
            name, [None, "", None, False, None]
        )
        options = cloudpickle.loads(others) if others else {}
        options = {**options, "num_returns": num_returns, "concurrency_group": group}
        return options, is_generator, call_check.of_wire(params, f"{self._class_name}.{name}")

    def __reduce__(self) -> Any:
        counted = self._counted
        if counted is not None:
            counted.actors.handle_escaped(self._actor_id)
        return (
            _rebuild_handle,
            (bytes(self._actor_id), self._class_name, self._methods, self._max_task_retries, self._is_async),
        )

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id


def _rebuild_handle(
    raw_id: bytes, class_name: str, methods: dict[str, list[Any]], max_task_retries: int, is_async: bool
) -> ActorHandle:
    return ActorHandle(ActorID(raw_id), class_name, methods, max_task_retries, is_async)


def handle_from_info(info: m.ActorInfo) -> ActorHandle:
    return ActorHandle(info.actor_id, info.class_name, info.methods, info.max_task_retries, info.is_async)


class ActorMethod:
    """``handle.method``: call it with ``.remote(...)``; ``.options(num_returns=...)``."""

    def __init__(
        self,
        handle: ActorHandle,
        name: str,
        options: dict[str, Any],
        is_generator: bool = False,
        call_check: CallCheck | None = None,
    ) -> None:
        self._handle = handle
        self._name = name
        self._options = options  # shared by a handle's methods of this name: never changed
        self._is_generator = is_generator
        self._call_check = call_check

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actor methods cannot be called directly. Instead of running 'object.{self._name}()', "
            f"try 'object.{self._name}.remote()'."
        )

    def options(self, **options: Any) -> ActorMethod:
        validate(options, ACTOR_METHOD_OPTIONS, "actor methods")
        return ActorMethod(
            self._handle, self._name, {**self._options, **options}, self._is_generator, self._call_check
        )

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        decorator = self._options.get(_INVOCATION_DECORATOR)
        if decorator is not None:
            return decorator(self._invoke)(args, kwargs)
        return self._invoke(args, kwargs)

    def _invoke(self, args: Any, kwargs: Any) -> Any:
        worker = context.ensure_initialized()
        if self._call_check is not None:  # wrong arguments fail here, at the call, as in Ray
            self._call_check.check(args or (), kwargs or {})
        options = self._options
        num_returns = options.get("num_returns")
        generator = generator_mode(self._name, self._is_generator, num_returns)
        if num_returns is None or generator:
            num_returns = 1
        retry_exceptions = options.get("retry_exceptions", False)
        if isinstance(retry_exceptions, list):
            retry_exceptions = tuple(retry_exceptions)
        handle = self._handle
        max_task_retries = options.get("max_task_retries")
        qualified = f"{handle._class_name}.{self._name}"
        refs = worker.actors.call(
            handle._actor_id,
            self._name,
            tuple(args or ()),
            dict(kwargs or {}),
            num_returns=num_returns,
            name=options.get("name") or qualified,
            function_name=qualified,
            task_events=options.get("enable_task_events", True),
            concurrency_group=options.get("concurrency_group") or "",
            max_task_retries=handle._max_task_retries if max_task_retries is None else max_task_retries,
            retry_exceptions=retry_exceptions,
            generator=generator,
            backpressure=max(options.get("_generator_backpressure_num_objects") or 0, 0),
        )
        if generator == m.GENERATOR_STREAMING:
            return worker.stream_of(refs[0])
        if num_returns == 1:
            return refs[0]
        if num_returns == 0:
            return None
        return refs


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the live actor named ``name`` in ``namespace`` (default: this job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    worker = context.ensure_initialized()
    info = worker.actors.lookup(name, namespace if namespace is not None else worker.namespace)
    if info is None:
        raise ValueError(
            f"Failed to look up actor with name '{name}'. This could because 1. You are trying to "
            "look up a named actor you didn't create. 2. The named actor died. 3. You did not use "
            "a namespace matching the namespace of the actor."
        )
    return handle_from_info(info)


def kill(actor: Any, *, no_restart: bool = True) -> None:
    """Kill an actor now (queued calls fail). With ``no_restart=False`` it may restart."""
    if not isinstance(actor, ActorHandle):
        raise ValueError(
            f"manta.kill() only supported for actors. For tasks, try manta.cancel(). Got: {type(actor)}."
        )
    context.ensure_initialized().actors.kill(actor._actor_id, no_restart)


def list_named_actors(all_namespaces: bool = False) -> list[Any]:
    """Names of the live named actors of this namespace (or dicts, for all namespaces)."""
    worker = context.ensure_initialized()
    pairs = worker.actors.list_named(worker.namespace, all_namespaces)
    if all_namespaces:
        return [{"name": name, "namespace": ns} for ns, name in pairs]
    return [name for _, name in pairs]


def exit_actor() -> None:
    """End the current actor after this call: its ``__ray_shutdown__`` hook runs and it
    is not restarted. Pending and future calls fail with ``ActorDiedError``."""
    worker = context.current_worker()
    if worker is None or worker.actor_id is None:
        where = "a task" if worker is not None and not worker.is_driver else "the driver"
        raise TypeError(
            f"exit_actor API is called on a non-actor worker ({where}). Call it inside an actor "
            "method to exit the actor gracefully."
        )
    raise ActorExit("exit_actor() was called")

"""Turning ``map``/``map_batches`` arguments into a compute strategy and remote arguments,
with Ray's rules and error messages for the combinations it refuses."""

from __future__ import annotations

from typing import Any

from manta.data._internal.logical import ActorPoolStrategy, Compute, TaskPoolStrategy


def compute_strategy(fn: Any, compute: Any, concurrency: Any, constructor_args: Any) -> Compute:
    is_class = isinstance(fn, type)
    if not is_class and constructor_args is not None:
        raise ValueError(
            "fn_constructor_args can only be given when fn is a callable class (one instance of it "
            f"runs in each actor of the pool), but fn is {fn!r}"
        )
    if compute is not None:
        if compute == "tasks":
            compute = TaskPoolStrategy()
        if compute == "actors":
            compute = ActorPoolStrategy()
        if is_class and isinstance(compute, TaskPoolStrategy):
            raise ValueError(
                f"The callable class {fn!r} cannot run with compute={compute!r}: a class runs on an "
                "actor pool. Pass compute=ActorPoolStrategy(...) or concurrency=n, or leave both unset."
            )
        if not is_class and isinstance(compute, ActorPoolStrategy):
            raise ValueError(
                f"The function {fn!r} cannot run with compute={compute!r}: actor pools run callable "
                "classes. Pass a class, or leave compute unset to run the function as tasks."
            )
        if not isinstance(compute, (TaskPoolStrategy, ActorPoolStrategy)):
            raise ValueError(f"compute must be a TaskPoolStrategy or an ActorPoolStrategy, got {compute!r}")
        return compute
    if concurrency is None:
        return ActorPoolStrategy(min_size=1) if is_class else TaskPoolStrategy()
    if isinstance(concurrency, tuple):
        if len(concurrency) not in (2, 3) or not all(isinstance(c, int) for c in concurrency):
            raise ValueError(f"concurrency must be an int or a tuple (min, max) of ints, got {concurrency!r}")
        if not is_class:
            raise ValueError(
                f"concurrency={concurrency!r} (a range of pool sizes) needs a callable class, but fn is "
                f"{fn!r}; use concurrency=n to cap how many tasks of a function run at once"
            )
        return ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    if isinstance(concurrency, int) and not isinstance(concurrency, bool):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        return ActorPoolStrategy(size=concurrency) if is_class else TaskPoolStrategy(size=concurrency)
    raise ValueError(f"concurrency must be an int or a tuple (min, max) of ints, got {concurrency!r}")


def remote_args(
    num_cpus: float | None, num_gpus: float | None, memory: float | None, extra: dict[str, Any]
) -> dict[str, Any]:
    args = dict(extra)
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("memory", memory)):
        if value is not None:
            args[name] = value
    return {key: value for key, value in args.items() if value is not None}

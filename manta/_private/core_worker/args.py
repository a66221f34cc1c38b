"""Packing a call's arguments into a task spec and unpacking them in the worker.

Top-level ``ObjectRef`` arguments are replaced by numbered slots and resolved to their
values before the task runs; refs nested deeper travel as refs. The rest of the
arguments are pickled once into an inline blob. When that blob would be large, each large
argument is put into the object store first and passed as a ref, so specs stay small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from manta._private import serialization
from manta._private.core_worker.object_ref import ObjectRef


class Slot:
    """Stands for the ``index``-th resolved ref argument."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (Slot, (self.index,))


EMPTY_ARGS = serialization.to_inline(serialization.serialize(((), {})))


@dataclass(frozen=True, slots=True)
class Packed:
    """Arguments as ``pack`` packs them (a remote driver packs its own, so that its
    session on the head passes them on unread)."""

    blob: bytes
    ref_args: Sequence[ObjectRef]
    nested: Sequence[ObjectRef]


_NO_ARGS = Packed(EMPTY_ARGS, (), ())  # shared: a frozen record's construction shows per task


def pack(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    max_inline: int,
    put: Callable[[serialization.SerializedObject], ObjectRef],
    describe: str,
) -> Packed:
    """The inline blob, the top-level ref arguments, and the refs nested inside them."""
    if not args and not kwargs:
        return _NO_ARGS
    if serialization.all_plain(args) and serialization.all_plain(kwargs.values()):
        plain = serialization.serialize_plain((args, kwargs))  # no refs, no slots
        if plain.total_size < max_inline:
            return Packed(serialization.to_inline(plain), (), ())
    refs: list[ObjectRef] = []

    def slot(value: Any) -> Any:
        if isinstance(value, ObjectRef):
            refs.append(value)
            return Slot(len(refs) - 1)
        return value

    slotted_args = tuple(slot(v) for v in args)
    slotted_kwargs = {k: slot(v) for k, v in kwargs.items()}
    obj = _serialize((slotted_args, slotted_kwargs), args, kwargs, describe)
    if obj.total_size >= max_inline:
        # Move each large argument into the store; what remains is small.
        slotted_args = tuple(_spill(v, refs, max_inline, put) for v in slotted_args)
        slotted_kwargs = {k: _spill(v, refs, max_inline, put) for k, v in slotted_kwargs.items()}
        obj = _serialize((slotted_args, slotted_kwargs), args, kwargs, describe)
    return Packed(serialization.to_inline(obj), refs, obj.contained_refs)


def _spill(
    value: Any,
    refs: list[ObjectRef],
    max_inline: int,
    put: Callable[[serialization.SerializedObject], ObjectRef],
) -> Any:
    if isinstance(value, Slot):
        return value
    obj = serialization.serialize(value)
    if obj.total_size < max_inline // 4:
        return value
    refs.append(put(obj))
    return Slot(len(refs) - 1)


def _serialize(
    packed: Any, args: tuple[Any, ...], kwargs: dict[str, Any], describe: str
) -> serialization.SerializedObject:
    try:
        return serialization.serialize(packed)
    except Exception as e:
        culprit = _find_unpicklable(args, kwargs)
        raise TypeError(
            f"Could not serialize the argument {culprit} for {describe}: {type(e).__name__}: {e}. "
            "Arguments are pickled to reach the worker; pass something picklable, or create "
            "the object inside the task instead."
        ) from e


def _find_unpicklable(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    named = [(f"#{i} ({short_repr(v)})", v) for i, v in enumerate(args)]
    named += [(f"{k!r} ({short_repr(v)})", v) for k, v in kwargs.items()]
    for name, value in named:
        try:
            serialization.serialize(value)
        except Exception:
            return name
    return "(one of them)"


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 80 characters for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def unpack(blob: bytes, values: list[Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Rebuild (args, kwargs), putting ``values[i]`` in the place of slot ``i``."""
    args, kwargs = serialization.from_inline(blob)
    if values:
        args = tuple(values[v.index] if type(v) is Slot else v for v in args)
        kwargs = {k: values[v.index] if type(v) is Slot else v for k, v in kwargs.items()}
    return args, kwargs

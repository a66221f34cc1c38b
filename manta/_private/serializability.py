"""``inspect_serializability``: which part of a value stops it from pickling (Ray's
``ray.util.check_serialize``).

A value that fails to pickle is opened up: a function into its closure variables, the
globals it uses and its defaults; a container into its items; any other object into its
attributes. Each member is pickled on its own, and the walk goes on into the members that
fail, ``depth`` levels down. The deepest failing members are the culprits: they are
printed as a tree (members that pickle are left out) and returned as ``FailureTuple``s.
A value that fails while none of its members does (the failure comes from the
combination, or from a ``__reduce__`` of its own) is itself the culprit.

Pickling here is Manta's own (the serializers registered with ``register_serializer``
apply, ObjectRefs inside the value are not pinned), so a value that passes would also pass
``put`` and task arguments.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping
from typing import IO, Any

from manta._private import serialization

_RULE = "=" * 80


class FailureTuple:
    """One member that does not pickle.

    ``obj`` is the member, ``path`` the names leading to it from the inspected value (the
    inspected value's own name first, when one was given), ``parent`` the value holding it
    (None for the inspected value itself). ``name`` is the last name of the path.
    """

    def __init__(self, obj: Any, path: tuple[str, ...], parent: Any) -> None:
        self.obj = obj
        self.path = path
        self.parent = parent

    @property
    def name(self) -> str | None:
        return self.path[-1] if self.path else None

    def __repr__(self) -> str:
        path = " -> ".join(self.path) or "unknown"
        return f"FailTuple({self.name or 'unknown'} [path={path}, obj={self.obj!r}, parent={self.parent!r}])"


class _Printer:
    def __init__(self, print_file: IO[str] | None) -> None:
        self.file = print_file
        self.level = 0

    def line(self, text: str) -> None:
        print("    " * self.level + text, file=self.file)


def _short(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= 120 else text[:117] + "..."


def _pickle_error(obj: Any) -> Exception | None:
    try:
        # dumps_collecting: ObjectRefs met on the way are only noted, not pinned as
        # pickled-out-of-band refs would be.
        serialization.dumps_collecting(obj)
    except Exception as e:
        return e
    return None


def inspect_serializability(
    base_obj: Any,
    name: str | None = None,
    depth: int = 3,
    print_file: IO[str] | None = None,
) -> tuple[bool, set[FailureTuple]]:
    """Find the members of ``base_obj`` that fail to pickle, and print the search as a tree.

    Args:
        base_obj: the value to check (a function, a class, an instance, a container).
        name: a name for ``base_obj`` in the output and in the failures' paths.
        depth: how many levels of members to open up below ``base_obj``.
        print_file: where the tree is printed (``print``'s ``file``: stdout when None).

    Returns:
        ``(serializable, failures)``: True and an empty set when ``base_obj`` pickles;
        otherwise False and the culprits found as ``FailureTuple``s.
    """
    printer = _Printer(print_file)
    failures: set[FailureTuple] = set()
    heading = f"Checking Serializability of {_short(base_obj)}"
    printer.line(_RULE)
    printer.line(heading)
    printer.line(_RULE)
    path = (name,) if name is not None else ()
    ok = _check(base_obj, path, None, depth, failures, printer, set())
    if ok:
        printer.line("Serialization succeeded: nothing to report.")
    else:
        printer.line(_RULE)
        printer.line(f"{len(failures)} member(s) found to be non-serializable:")
        for failure in sorted(failures, key=lambda f: f.path):
            printer.line(f"    {failure!r}")
        printer.line(
            "Others may hide behind them. Remove these from what the function or object "
            "captures (create them inside the task or actor instead), or register a "
            "serializer for their class with manta.util.register_serializer."
        )
    printer.line(_RULE)
    return ok, failures


def _check(
    obj: Any,
    path: tuple[str, ...],
    parent: Any,
    depth: int,
    failures: set[FailureTuple],
    printer: _Printer,
    on_path: set[int],
) -> bool:
    """True when ``obj`` pickles; otherwise record its culprits in ``failures``."""
    error = _pickle_error(obj)
    if error is None:
        return True  # members that pickle are left out of the tree
    if parent is not None:
        label = path[-1] if path[-1].startswith("[") else f"'{path[-1]}'"
        printer.line(f"Serializing {label} {_short(obj)}...")
    printer.line(f"!!! FAIL serialization: {error}")
    if depth > 0:
        on_path.add(id(obj))
        try:
            # A member that is one of its own ancestors (a cycle) is explained there already.
            members = [(label, member) for label, member in _members(obj) if id(member) not in on_path]
            failing = False
            if members:
                printer.line(f"Inspecting {_describe(obj)}:")
                printer.level += 1
                for name, member in members:
                    if not _check(member, (*path, name), obj, depth - 1, failures, printer, on_path):
                        failing = True
                printer.level -= 1
        finally:
            on_path.discard(id(obj))
        if failing:
            return False
        if members:
            printer.line(
                "WARNING: each of its members pickles on its own: the failure comes from "
                "the value itself or from its members together."
            )
    failures.add(FailureTuple(obj, path, parent))
    return False


def _describe(obj: Any) -> str:
    if inspect.isfunction(obj):
        return f"the closure of '{obj.__qualname__}'"
    if inspect.isclass(obj):
        return f"the attributes of class '{obj.__qualname__}'"
    if isinstance(obj, Mapping | list | tuple | set | frozenset):
        return f"the items of a {type(obj).__name__}"
    return f"the attributes of a {type(obj).__name__} instance"


def _members(obj: Any) -> Iterator[tuple[str, Any]]:
    """(label, member) for what pickling ``obj`` pickles too, as far as it can be told."""
    if inspect.isfunction(obj):
        yield from _function_members(obj)
    elif inspect.ismethod(obj):
        yield "__self__", obj.__self__
        yield "__func__", obj.__func__
    elif isinstance(obj, functools.partial):
        yield "func", obj.func
        for i, arg in enumerate(obj.args):
            yield f"args[{i}]", arg
        for key, value in obj.keywords.items():
            yield key, value
    elif isinstance(obj, Mapping):
        for key, value in list(obj.items()):
            yield f"[{key!r}]", value
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, item in enumerate(obj):
            yield f"[{i}]", item
    elif inspect.isclass(obj):
        for key, value in list(vars(obj).items()):
            if not (key.startswith("__") and key.endswith("__")):
                yield key, value
    else:
        yield from _instance_members(obj)


def _function_members(fn: Any) -> Iterator[tuple[str, Any]]:
    try:
        closure = inspect.getclosurevars(fn)
    except (TypeError, ValueError):  # a code object getclosurevars cannot read
        closure = None
    if closure is not None:
        yield from closure.nonlocals.items()
        yield from closure.globals.items()
    for i, default in enumerate(fn.__defaults__ or ()):
        yield f"__defaults__[{i}]", default
    yield from (fn.__kwdefaults__ or {}).items()


def _instance_members(obj: Any) -> Iterator[tuple[str, Any]]:
    seen: set[str] = set()
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        for key, value in list(attributes.items()):
            seen.add(key)
            yield key, value
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in seen or slot in ("__dict__", "__weakref__"):
                continue
            seen.add(slot)
            try:
                yield slot, getattr(obj, slot)
            except AttributeError:  # an unset slot
                continue

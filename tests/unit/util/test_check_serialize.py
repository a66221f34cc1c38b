"""inspect_serializability: the culprits found, and the tree printed on the way."""

from __future__ import annotations

import functools
import io
import threading

from manta.util import inspect_serializability
from manta.util.check_serialize import FailureTuple

LOCK = threading.Lock()


def _uses_global_lock() -> bool:
    return LOCK.locked()


class _Holder:
    def __init__(self) -> None:
        self.number = 1
        self.settings = {"retries": [3, threading.Lock()]}


class _Slotted:
    __slots__ = ("lock", "name")

    def __init__(self) -> None:
        self.name = "x"
        self.lock = threading.Lock()


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.lock = threading.Lock()


class _Refuses:
    def __reduce__(self) -> object:
        raise TypeError("I refuse")


def _inspect(obj: object, **kwargs: object) -> tuple[bool, set[FailureTuple], str]:
    out = io.StringIO()
    ok, failures = inspect_serializability(obj, print_file=out, **kwargs)  # type: ignore[arg-type]
    return ok, failures, out.getvalue()


def test_a_serializable_value_passes_with_no_failures() -> None:
    ok, failures, text = _inspect({"a": [1, 2.0, "three"], "b": (None,)}, name="config")
    assert ok is True
    assert failures == set()
    assert "Checking Serializability of" in text
    assert "FAIL" not in text


def test_a_closure_capturing_a_lock_names_the_lock() -> None:
    lock = threading.Lock()

    def task() -> bool:
        return lock.locked()

    ok, failures, text = _inspect(task, name="task")
    assert ok is False
    [failure] = failures
    assert failure.obj is lock
    assert failure.path == ("task", "lock")
    assert failure.name == "lock"
    assert failure.parent is task
    assert "Inspecting the closure of" in text and "'lock'" in text
    assert text.count("!!! FAIL serialization") == 2  # the function, then the lock
    assert "FailTuple(lock [path=task -> lock" in text


def test_a_global_the_function_uses_is_found() -> None:
    # Module-level functions pickle by reference; one made by value shows its globals.
    func = type(_uses_global_lock)(_uses_global_lock.__code__, {"LOCK": LOCK}, "uses_lock")
    ok, failures, _ = _inspect(func)
    assert not ok
    assert [f.obj for f in failures] == [LOCK]


def test_nested_members_are_followed_to_the_culprit() -> None:
    ok, failures, text = _inspect(_Holder(), depth=4)
    assert not ok
    [failure] = failures
    assert failure.path == ("settings", "['retries']", "[1]")
    assert "'number'" not in text  # members that pickle stay out of the tree


def test_depth_bounds_the_walk() -> None:
    holder = _Holder()
    ok, failures, _ = _inspect(holder, depth=1)
    assert not ok
    [failure] = failures
    assert failure.obj is holder.settings  # could not go further down
    _, failures, _ = _inspect(holder, depth=0)
    assert [f.obj for f in failures] == [holder]


def test_slots_partials_and_cycles() -> None:
    slotted = _Slotted()
    _, failures, _ = _inspect(slotted)
    assert [f.path for f in failures] == [("lock",)]

    cycle = _Cycle()
    _, failures, _ = _inspect(cycle, depth=5)
    assert [f.obj for f in failures] == [cycle.lock]

    part = functools.partial(print, threading.Lock(), sep=" ")
    _, failures, _ = _inspect(part)
    assert [f.path for f in failures] == [("args[0]",)]


def test_a_value_failing_on_its_own_is_the_culprit() -> None:
    value = _Refuses()
    ok, failures, text = _inspect(value)
    assert not ok
    assert [f.obj for f in failures] == [value]
    assert "I refuse" in text


def test_prints_to_stdout_by_default(capsys: object) -> None:
    inspect_serializability(threading.Lock())
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "!!! FAIL serialization" in out

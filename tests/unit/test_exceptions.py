"""The public error tree: Ray's names and bases, and task errors that are also their cause."""

from __future__ import annotations

import errno
import logging
import pickle

import pytest

from manta import exceptions
from manta.exceptions import (
    GetTimeoutError,
    InternalError,
    ObjectLostError,
    OwnerDiedError,
    RayError,
    RaySystemError,
    RayTaskError,
    ReferenceCountingAssertionError,
    TaskCancelledError,
    WorkerCrashedError,
)


class CodedError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def task_error(cause: BaseException | None) -> RayTaskError:
    return RayTaskError("mod.f", "Traceback (most recent call last):\n  boom\n", cause, pid=12, ip="10.0.0.1")


def test_dual_type_is_both_ray_task_error_and_the_cause() -> None:
    cause = ValueError("bad value")
    dual = task_error(cause).as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, ValueError)
    cls = type(dual)
    assert cls.__name__ == cls.__qualname__ == "RayTaskError(ValueError)"
    assert cls.__module__ == "manta.exceptions"
    assert cls.__mro__[1] is RayTaskError
    assert cls.__mro__.index(RayError) < cls.__mro__.index(ValueError)
    assert dual.cause is cause
    assert dual.args == (cause,)
    assert dual.function_name == "mod.f"
    assert (dual.pid, dual.ip) == (12, "10.0.0.1")
    with pytest.raises(ValueError):
        raise dual


def test_dual_class_is_reused_per_cause_type() -> None:
    first = task_error(KeyError("a")).as_instanceof_cause()
    second = task_error(KeyError("b")).as_instanceof_cause()
    assert type(first) is type(second)
    assert isinstance(first, LookupError)


def test_attributes_read_through_to_the_cause() -> None:
    dual = task_error(CodedError(7)).as_instanceof_cause()
    assert isinstance(dual, CodedError)
    assert dual.code == 7
    with pytest.raises(AttributeError):
        _ = dual.no_such_attribute  # type: ignore[attr-defined]


def test_str_names_the_function_and_where_it_ran() -> None:
    error = RayTaskError(
        "mod.f", "Traceback ...\nValueError: x\n", ValueError("x"), pid=3, ip="h", node_id="abcdef0123"
    )
    text = str(error.as_instanceof_cause())
    assert text.startswith("manta::mod.f() (pid=3, ip=h, node=abcdef01)")
    assert text.endswith("ValueError: x")
    assert repr(error) == "RayTaskError(ValueError('x'))"


def test_as_instanceof_cause_returns_itself_when_there_is_nothing_to_mix_in() -> None:
    no_cause = task_error(None)
    assert no_cause.as_instanceof_cause() is no_cause
    nested = task_error(task_error(ValueError()))
    assert nested.as_instanceof_cause() is nested
    dual = task_error(ValueError()).as_instanceof_cause()
    assert dual.as_instanceof_cause() is dual


def test_pickling_keeps_the_dual_type() -> None:
    dual = task_error(CodedError(3)).as_instanceof_cause()
    back = pickle.loads(pickle.dumps(dual))
    assert type(back) is type(dual)
    assert isinstance(back, CodedError) and isinstance(back, RayTaskError)
    assert back.code == 3
    assert str(back) == str(dual)
    plain = pickle.loads(pickle.dumps(task_error(ValueError("v"))))
    assert type(plain) is RayTaskError
    assert isinstance(plain.cause, ValueError)


def test_os_errors_become_dual_too() -> None:
    """BUG: for causes with their own C-level __new__ (OSError and its subclasses:
    FileNotFoundError, PermissionError, ConnectionError, TimeoutError...), the dual
    instance is made with BaseException.__new__, which raises TypeError ("not safe, use
    OSError.__new__()"), and as_instanceof_cause silently returns the plain RayTaskError,
    so ``except FileNotFoundError`` around ``get`` does not catch it (it does in Ray)."""
    cause = FileNotFoundError(errno.ENOENT, "missing.txt")
    dual = task_error(cause).as_instanceof_cause()
    assert isinstance(dual, RayTaskError)
    assert isinstance(dual, FileNotFoundError)


def test_error_tree_bases() -> None:
    assert issubclass(GetTimeoutError, RayError) and issubclass(GetTimeoutError, TimeoutError)
    with pytest.raises(TimeoutError):
        raise GetTimeoutError("get timed out")
    assert issubclass(ReferenceCountingAssertionError, ObjectLostError)
    assert issubclass(ReferenceCountingAssertionError, AssertionError)
    assert issubclass(OwnerDiedError, ObjectLostError)
    assert issubclass(InternalError, RaySystemError)
    assert issubclass(exceptions.ActorDiedError, exceptions.RayActorError)
    assert issubclass(exceptions.AuthenticationError, RayError)
    assert issubclass(exceptions.VersionMismatchError, RayError)
    assert issubclass(exceptions.RemoteSessionEndedError, RayError)
    assert issubclass(exceptions.RemoteSessionEndedError, ConnectionError)
    assert exceptions.MantaError is RayError
    assert exceptions.MantaTaskError is RayTaskError


def test_every_public_error_is_a_ray_error() -> None:
    errors = [v for v in vars(exceptions).values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert len(errors) > 20
    for error in errors:
        if error.__module__ == "manta.exceptions":
            assert issubclass(error, RayError), error


def test_messages() -> None:
    assert str(TaskCancelledError("abc")) == "Task: abc was cancelled."
    assert str(TaskCancelledError()) == "The task was cancelled."
    assert str(TaskCancelledError("abc", "custom")) == "custom"
    assert "worker died unexpectedly" in str(WorkerCrashedError())
    assert str(WorkerCrashedError("why")) == "why"
    assert str(ObjectLostError("ff" * 28)).startswith(f"Failed to retrieve object {'ff' * 28}.")
    assert "has died" in str(OwnerDiedError("ab", owner_address="1.2.3.4:5"))
    assert "(owner at 1.2.3.4:5)" in str(OwnerDiedError("ab", owner_address="1.2.3.4:5"))
    assert "this is a bug in Manta" in str(InternalError("invariant"))
    assert str(RaySystemError("x", "tb")) == "System error: x\ntraceback: tb"


@pytest.mark.parametrize(
    "error",
    [
        TaskCancelledError("t"),
        WorkerCrashedError("w"),
        ObjectLostError("o", "addr", "site", "detail"),
        OwnerDiedError("o", "addr"),
        GetTimeoutError("g"),
        exceptions.RayActorError(error_msg="dead", actor_id="a1"),
        exceptions.UnserializableException("trace"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle(error: BaseException) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)


class TwoArgs(Exception):
    def __init__(self, one: str, two: str) -> None:
        super().__init__(one, two)
        self.one, self.two = one, two

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return TwoArgs, (self.one, self.two)


def test_a_dual_error_pickles_with_its_cause_attributes() -> None:
    dual = RayTaskError("f", "tb", TwoArgs("a", "b")).make_dual_exception_instance()
    back = pickle.loads(pickle.dumps(dual))
    assert isinstance(back, RayTaskError) and isinstance(back, TwoArgs)
    assert (back.one, back.two) == ("a", "b")


class NoSubclasses(Exception):
    def __init_subclass__(cls, /, *args: object, **kwargs: object) -> None:
        raise TypeError("this class is final")


def test_a_cause_that_cannot_be_subclassed_is_raised_as_the_task_error_alone() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("manta.exceptions")
    logger.addHandler(handler)  # directly: a driver's logging setup may stop propagation
    try:
        error = RayTaskError("f", "tb", NoSubclasses("from the task"))
        raised = error.as_instanceof_cause()
    finally:
        logger.removeHandler(handler)
    assert raised is error and isinstance(raised.cause, NoSubclasses)
    assert any(
        "You can use `ray_task_error.cause` to access the user exception." in r.getMessage() for r in records
    )

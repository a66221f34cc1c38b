"""The public error tree. Names and bases match Ray's, so ``except ray.exceptions.X`` works.

    RayError (Exception)
    ├── RayTaskError             a task raised; at ``get`` also an instance of the cause's type
    ├── RayActorError
    │   ├── ActorDiedError
    │   └── ActorUnavailableError
    ├── TaskCancelledError
    ├── WorkerCrashedError
    ├── NodeDiedError
    ├── LocalRayletDiedError
    ├── ObjectLostError
    │   ├── OwnerDiedError
    │   ├── ObjectFreedError
    │   ├── ObjectFetchTimedOutError
    │   ├── ObjectReconstructionFailedError
    │   └── ReferenceCountingAssertionError (also AssertionError)
    ├── GetTimeoutError          (also TimeoutError)
    ├── ObjectStoreFullError, OutOfDiskError
    ├── OutOfMemoryError         the node's memory monitor killed the task's worker
    ├── TaskUnschedulableError, ActorUnschedulableError
    ├── TaskPlacementGroupRemoved, ActorPlacementGroupRemoved
    ├── RuntimeEnvSetupError
    ├── PendingCallsLimitExceeded
    ├── AsyncioActorExit
    ├── UnserializableException  a task's exception could not be sent back as itself
    ├── AuthenticationError      a connection was refused at the handshake
    ├── PermissionDeniedError    the caller's token lacks the role a request needs (also PermissionError)
    ├── VersionMismatchError     peers run incompatible Manta versions
    ├── ClusterStartError        a local cluster's daemon failed to start (also RuntimeError)
    ├── RemoteSessionEndedError  a remote driver's session on the head ended (also ConnectionError)
    ├── RpcError                 a transport failure (internal; translated at the edges)
    └── RaySystemError
        └── InternalError        an invariant broke inside Manta: a bug, please report it

``Manta*`` aliases name the same classes for code that does not think in Ray's terms.
"""

from __future__ import annotations

import logging
from typing import Any

_logger = logging.getLogger(__name__)


class RayError(Exception):
    """Base of every error Manta raises on purpose."""


class RaySystemError(RayError):
    def __init__(self, client_exc: Any = None, traceback_str: str | None = None) -> None:
        super().__init__(client_exc)
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self) -> str:
        text = f"System error: {self.client_exc}"
        if self.traceback_str:
            text += f"\ntraceback: {self.traceback_str}"
        return text


class InternalError(RaySystemError):
    """An invariant inside Manta broke. This is a bug: please report it with the logs."""

    def __str__(self) -> str:
        return (
            f"internal error (this is a bug in Manta, please report it with the session "
            f"logs): {self.client_exc}"
        )


class RpcError(RayError):
    """A connection failed or a peer answered with an error."""


class AuthenticationError(RayError):
    """The peer refused the connection: the cluster token is missing or wrong."""


class PermissionDeniedError(RayError, PermissionError):
    """The caller's credential is valid but its role does not allow the request (a
    ``read`` token asking to run code, a user token acting as a node)."""


class ClusterStartError(RayError, RuntimeError):
    """A daemon of a cluster being started here (``init()``, ``manta start``) failed to
    start; the message carries the tail of its log."""


class VersionMismatchError(RayError):
    """The peer runs a Manta version this one cannot talk to."""


class RemoteSessionEndedError(RayError, ConnectionError):
    """A remote driver's session on the head ended (the driver was away longer than the
    grace period, the head restarted, or the session's process died): what it owned, its
    non-detached actors and its objects, went with it."""


class CrossLanguageError(RayError):
    pass


class UserCodeException(RayError):
    pass


class UnserializableException(RayError):
    """A task's exception could not be pickled or unpickled; holds its rendered text."""

    def __init__(self, original_stack_trace: str) -> None:
        super().__init__(original_stack_trace)
        self.original_stack_trace = original_stack_trace

    def __str__(self) -> str:
        return (
            "the task's exception could not be sent back as itself (it does not pickle "
            "and unpickle cleanly; give it a __reduce__ that rebuilds it). What it said:\n"
            + self.original_stack_trace
        )


# Classes built on demand that are both RayTaskError and the cause's type.
_dual_classes: dict[type, type] = {}


class RayTaskError(RayError):
    """A task (or actor method) raised. At ``get`` it is also an instance of the cause's type.

    ``cause`` is the original exception, ``traceback_str`` the rendered remote traceback,
    and the message names the function, the worker's pid, its node and address.
    """

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException | None,
        proctitle: str | None = None,
        pid: int | None = None,
        ip: str | None = None,
        actor_repr: str | None = None,
        actor_id: str | None = None,
        node_id: str | None = None,
    ) -> None:
        # Not super(): in the classes built by as_instanceof_cause, the next class in the
        # MRO is the cause's type, whose __init__ would overwrite its attributes here.
        BaseException.__init__(self, cause)
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.proctitle = proctitle or f"manta::{function_name}"
        self.pid = pid
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = actor_id
        self.node_id = node_id

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.function_name,
            self.traceback_str,
            self.cause,
            self.proctitle,
            self.pid,
            self.ip,
            self.actor_repr,
            self.actor_id,
            self.node_id,
        )

    def __str__(self) -> str:
        where = [f"pid={self.pid}", f"ip={self.ip}"]
        if self.node_id:
            where.append(f"node={self.node_id[:8]}")
        if self.actor_id:
            where.append(f"actor_id={self.actor_id}")
            if self.actor_repr:
                where.append(f"repr={self.actor_repr}")
        header = f"{self.proctitle}() ({', '.join(where)})"
        return f"{header}\n{self.traceback_str.rstrip()}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cause!r})"

    def make_dual_exception_instance(self) -> RayTaskError:
        """Ray's name for ``as_instanceof_cause``."""
        return self.as_instanceof_cause()

    def __reduce__(self) -> Any:
        return (_rebuild_task_error, (self._fields(), type(self) is not RayTaskError))

    def as_instanceof_cause(self) -> RayTaskError:
        """This error as an instance of both RayTaskError and the cause's type."""
        cause_cls = type(self.cause)
        if (
            self.cause is None
            or not issubclass(cause_cls, Exception)  # never a SystemExit or KeyboardInterrupt at get
            or issubclass(cause_cls, RayTaskError)
            or type(self) is not RayTaskError
        ):
            return self
        dual = _dual_classes.get(cause_cls)
        if dual is None:
            try:
                dual = type(
                    f"RayTaskError({cause_cls.__name__})",
                    (RayTaskError, cause_cls),
                    {"__module__": RayTaskError.__module__, "__getattr__": _cause_getattr},
                )
            except TypeError as e:
                # A layout or metaclass we cannot mix in, or a class that forbids subclasses.
                _logger.warning(
                    "The exception %s cannot be subclassed (%s). This exception is raised as "
                    "RayTaskError only. You can use `ray_task_error.cause` to access the user "
                    "exception.",
                    cause_cls.__name__,
                    e,
                )
                return self
            dual.__qualname__ = dual.__name__
            _dual_classes[cause_cls] = dual
        try:
            # The cause type's own __new__ (OSError insists on its own).
            instance: RayTaskError = dual.__new__(dual)  # type: ignore[call-overload]
        except Exception:
            return self
        RayTaskError.__init__(instance, *self._fields())
        instance.args = (self.cause,)
        return instance


def _cause_getattr(self: RayTaskError, name: str) -> Any:
    # Attributes of the original exception (e.g. ``errno``) read through to the cause.
    cause = self.__dict__.get("cause")
    if cause is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(cause, name)


def _rebuild_task_error(fields: tuple[Any, ...], dual: bool) -> RayTaskError:
    error = RayTaskError(*fields)
    return error.as_instanceof_cause() if dual else error


class RayActorError(RayError):
    """An actor could not run the call: it died, or was never created."""

    def __init__(
        self, cause: Any = None, *, error_msg: str | None = None, actor_id: str | None = None
    ) -> None:
        self.actor_id = actor_id
        self.error_msg = error_msg or "The actor died unexpectedly before finishing this task."
        super().__init__(self.error_msg)
        self.cause = cause

    def __str__(self) -> str:
        return self.error_msg


class ActorDiedError(RayActorError):
    pass


class ActorUnavailableError(RayActorError):
    pass


class ActorAlreadyExistsError(ValueError, RayError):
    pass


class ActorHandleNotFoundError(ValueError, RayError):
    pass


class TaskCancelledError(RayError):
    def __init__(self, task_id: Any = None, error_message: str | None = None) -> None:
        super().__init__(task_id, error_message)
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self) -> str:
        if self.error_message:
            return self.error_message
        return f"Task: {self.task_id} was cancelled." if self.task_id else "The task was cancelled."


class WorkerCrashedError(RayError):
    """The worker process died while running the task, and retries ran out."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (
            "The worker died unexpectedly while executing this task. "
            "Check the worker-*.err files in the session's logs directory."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class LocalRayletDiedError(RayError):
    def __str__(self) -> str:
        return "The node daemon this process was connected to has died."


class NodeDiedError(RayError):
    pass


class ObjectLostError(RayError):
    """Every copy of the object is gone and it cannot be rebuilt."""

    def __init__(
        self, object_ref_hex: str = "", owner_address: str = "", call_site: str = "", detail: str = ""
    ) -> None:
        super().__init__(object_ref_hex, owner_address, call_site, detail)
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = call_site
        self.detail = detail

    def _base(self) -> str:
        text = f"Failed to retrieve object {self.object_ref_hex}."
        if self.call_site:
            text += f" It was created at: {self.call_site}."
        return text

    def __str__(self) -> str:
        return (
            self._base()
            + " "
            + (self.detail or "All copies of it are lost and it cannot be rebuilt from lineage.")
        )


class OwnerDiedError(ObjectLostError):
    def __str__(self) -> str:
        where = f" (owner at {self.owner_address})" if self.owner_address else ""
        return (
            self._base()
            + (
                f" The worker that owned it{where} has died, and objects die with their owner. "
                + (self.detail or "")
            ).rstrip()
        )


class ObjectFreedError(ObjectLostError):
    def __str__(self) -> str:
        return (
            self._base()
            + " "
            + (self.detail or "It was already freed: every reference to it had been dropped.")
        )


class ObjectFetchTimedOutError(ObjectLostError):
    pass


class ObjectReconstructionFailedError(ObjectLostError):
    pass


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    pass


class GetTimeoutError(RayError, TimeoutError):
    """``get`` or ``wait`` ran out of time."""


class PlasmaObjectNotAvailable(RayError):
    pass


class OufOfBandObjectRefSerializationException(RayError):
    """An ObjectRef was pickled outside Manta while that is switched off. (Ray's name,
    spelling included, so code that catches it keeps working.)"""


OutOfBandObjectRefSerializationException = OufOfBandObjectRefSerializationException


class ObjectStoreFullError(RayError):
    pass


class OutOfDiskError(RayError):
    pass


class OutOfMemoryError(RayError):
    """The node's memory monitor killed the worker running the task (the node was nearly
    out of memory), and the task's retries are spent. The message names the node, the
    worker's pid, the memory in use and the threshold, and what to change."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or "Task was killed due to the node running low on memory."

    def __str__(self) -> str:
        return self.message


class TaskUnschedulableError(RayError):
    pass


class ActorUnschedulableError(RayError):
    pass


class TaskPlacementGroupRemoved(RayError):
    pass


class ActorPlacementGroupRemoved(RayError):
    pass


class RuntimeEnvSetupError(RayError):
    pass


class PendingCallsLimitExceeded(RayError):
    pass


class AsyncioActorExit(RayError):
    pass


class ObjectRefStreamEndOfStreamError(RayError):
    pass


MantaError = RayError
MantaTaskError = RayTaskError
MantaActorError = RayActorError

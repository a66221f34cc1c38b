"""Counting ref arguments down, and what a borrower stores for a fetched object: pure decisions."""

from __future__ import annotations

from manta._private import serialization
from manta._private.common.ids import NodeID, ObjectID, WorkerID
from manta._private.core_worker.arg_resolution import ArgResolution
from manta._private.core_worker.memory_store import StoredObject
from manta._private.core_worker.object_manager import ObjectManager, fetch_outcome
from manta._private.rpc.messages import Address, ArgValue, ObjectStatus
from manta._private.rpc.transport import ConnectionLost
from manta.exceptions import ObjectFreedError, ObjectLostError, OwnerDiedError

IDS = [ObjectID.from_random() for _ in range(3)]
NODE = NodeID.from_random()
BLOB = serialization.to_inline(serialization.serialize("v"))
VALUE = StoredObject(BLOB, None, len(BLOB), False)


def error_blob(error: BaseException) -> bytes:
    return serialization.to_inline(serialization.serialize(error, serialization.FLAG_ERROR))


def test_ready_once_every_argument_is_here_in_any_order() -> None:
    resolution = ArgResolution(3)
    assert not resolution.ready(2, IDS[2], StoredObject(None, NODE, 100, False))
    assert not resolution.ready(0, IDS[0], VALUE)
    assert resolution.values == [
        ArgValue(IDS[0], BLOB, None, len(BLOB)),
        None,
        ArgValue(IDS[2], None, NODE, 100),
    ]
    assert resolution.ready(1, IDS[1], VALUE)
    assert [a.object_id for a in resolution.args] == IDS
    assert resolution.failed_arg() is None


def test_the_first_argument_holding_an_error_fails_the_task() -> None:
    first, second = error_blob(ValueError("a")), error_blob(KeyError("b"))
    resolution = ArgResolution(3)
    resolution.ready(2, IDS[2], StoredObject(second, None, len(second), True))
    resolution.ready(0, IDS[0], VALUE)
    resolution.ready(1, IDS[1], StoredObject(first, None, len(first), True))
    assert resolution.failed_arg() == first


def test_a_value_in_a_store_is_never_an_error_here() -> None:
    # Only inline values are looked into; the worker finds out about the rest.
    resolution = ArgResolution(1)
    assert resolution.ready(0, IDS[0], StoredObject(None, NODE, 10, True))
    assert resolution.failed_arg() is None


# -- fetch_outcome -------------------------------------------------------------------------------

OID = IDS[0]
OWNER = Address(NODE, WorkerID.from_random(), "10.0.0.1", 7000, "", 4242)


def decoded(obj: StoredObject) -> BaseException:
    assert obj.is_error and obj.inline is not None and ObjectManager.is_error_blob(obj.inline)
    error = serialization.from_inline(obj.inline)
    assert isinstance(error, BaseException)
    return error


def test_an_unreachable_owner_is_reported_as_dead() -> None:
    for failure in (ConnectionLost("closed"), OSError("refused")):
        error = decoded(fetch_outcome(OID, OWNER, failure, this_pid=1))
        assert isinstance(error, OwnerDiedError)
        assert "10.0.0.1:7000 pid=4242" in str(error) and str(failure) in str(error)


def test_an_owner_that_was_an_earlier_session_of_this_process_says_so() -> None:
    error = decoded(fetch_outcome(OID, OWNER, ConnectionLost("closed"), this_pid=OWNER.pid))
    assert isinstance(error, OwnerDiedError) and "earlier session of this process" in str(error)


def test_other_failures_lose_the_object() -> None:
    error = decoded(fetch_outcome(OID, OWNER, RuntimeError("bad reply"), this_pid=1))
    assert isinstance(error, ObjectLostError) and "bad reply" in str(error)


def test_an_object_its_owner_no_longer_has_was_freed() -> None:
    status = ObjectStatus(OID, False, None, None, 0, "freed")
    assert isinstance(decoded(fetch_outcome(OID, OWNER, status, this_pid=1)), ObjectFreedError)


def test_a_value_is_stored_as_it_is_flagged_if_it_is_an_error() -> None:
    status = ObjectStatus(OID, True, BLOB, None, len(BLOB), "")
    assert fetch_outcome(OID, OWNER, status, this_pid=1) == VALUE
    in_store = ObjectStatus(OID, True, None, NODE, 1 << 20, "")
    assert fetch_outcome(OID, OWNER, in_store, this_pid=1) == StoredObject(None, NODE, 1 << 20, False)
    blob = error_blob(ValueError("boom"))
    failed = ObjectStatus(OID, True, blob, None, len(blob), "")
    assert fetch_outcome(OID, OWNER, failed, this_pid=1) == StoredObject(blob, None, len(blob), True)

"""The message codec: immutable records, nesting, typed ids, and hostile input."""

from __future__ import annotations

import pickle
import re

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta._private.common.ids import (
    ActorID,
    JobID,
    LeaseID,
    NodeID,
    ObjectID,
    PlacementGroupID,
    TaskID,
    WorkerID,
)
from manta._private.rpc import codec
from manta._private.rpc.codec import DecodeError, message
from manta._private.rpc.messages import (
    Address,
    ArgValue,
    FreeObjects,
    GetNodes,
    JobFinished,
    KvGet,
    LeaseGrant,
    ReturnObject,
    TaskSpec,
    WorkerExit,
)


def address() -> Address:
    return Address(NodeID.from_random(), WorkerID.from_random(), "127.0.0.1", 4321, "/tmp/s", 99)


def task_spec() -> TaskSpec:
    job = JobID.from_int(1)
    task = TaskID.for_normal_task(job)
    arg = ArgValue(ObjectID.for_put(task, 0), None, NodeID.from_random(), 10)
    values = dict(
        task_id=task,
        job_id=job,
        parent_task_id=TaskID.for_driver(job),
        name="f",
        function_id=b"fid",
        function_name="mod.f",
        args=b"\x01\x02",
        ref_args=[arg, ArgValue(ObjectID.for_return(task, 1), b"x", None, 1)],
        num_returns=1,
        owner=address(),
        attempt=0,
        resources={"CPU": 1.0},
        runtime_env={"env_vars": {"A": "1"}},
        depth=2,
        max_calls=0,
        actor_id=ActorID.of(job),
        method="m",
        concurrency_group="io",
        placement_group=[PlacementGroupID.from_random(), 1, True],
        generator=1,
        backpressure=2,
        task_events=False,
    )
    # Built by field name so that a field added to TaskSpec fails here, loudly, first.
    return TaskSpec(**{name: values[name] for name in codec.fields_of(TaskSpec)})


MARK = msgpack.ExtType(1, b"")


def frame(*values: object) -> bytes:
    """A message array carrying raw values, as a broken or hostile peer might send."""
    return msgpack.packb([MARK, *values], use_bin_type=True)


def test_records_are_immutable() -> None:
    msg = KvGet("ns", b"k")
    with pytest.raises(AttributeError, match=r"KvGet is immutable; use codec.replace\(\)"):
        msg.namespace = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del msg.key
    with pytest.raises(AttributeError):
        msg.extra = 1  # type: ignore[attr-defined]
    assert msg.namespace == "ns"


def test_equality_hash_and_repr() -> None:
    assert KvGet("ns", b"k") == KvGet("ns", b"k")
    assert KvGet("ns", b"k") != KvGet("ns", b"j")
    assert KvGet("ns", b"k") != ("ns", b"k")
    assert hash(KvGet("ns", b"k")) == hash(KvGet("ns", b"k"))
    assert repr(KvGet("ns", b"k")) == "KvGet(namespace='ns', key=b'k')"
    assert repr(GetNodes()) == "GetNodes()"
    assert GetNodes() == GetNodes()
    # Records holding lists and dicts still hash.
    assert hash(FreeObjects([ObjectID.nil()])) == hash(FreeObjects([ObjectID.nil()]))
    spec = task_spec()
    assert hash(spec) == hash(codec.replace(spec))


def test_constructor_takes_keywords_and_checks_arity() -> None:
    assert KvGet(namespace="a", key=b"b") == KvGet("a", b"b")
    with pytest.raises(TypeError):
        KvGet("a")  # type: ignore[call-arg]


def test_fields_of_and_replace() -> None:
    assert codec.fields_of(KvGet) == ("namespace", "key")
    spec = task_spec()
    retried = codec.replace(spec, attempt=1)
    assert retried.attempt == 1
    assert spec.attempt == 0
    assert codec.replace(retried, attempt=0) == spec
    with pytest.raises(TypeError):
        codec.replace(spec, no_such_field=1)


def test_records_pickle() -> None:
    spec = task_spec()
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_methods_of_the_declaring_class_survive() -> None:
    addr = address()
    assert addr.for_peer_on(addr.node_id) == "unix:/tmp/s"
    assert addr.for_peer_on(NodeID.from_random()) == "127.0.0.1:4321"
    assert Address.for_peer_on.__doc__


def test_nested_round_trip_rebuilds_typed_ids() -> None:
    spec = task_spec()
    back = codec.decode(codec.encode(spec))
    assert back == spec
    assert type(back.task_id) is TaskID
    assert type(back.job_id) is JobID
    assert type(back.owner) is Address
    assert type(back.owner.node_id) is NodeID
    assert type(back.owner.worker_id) is WorkerID
    assert type(back.ref_args[0]) is ArgValue
    assert type(back.ref_args[0].object_id) is ObjectID
    # Optional ids come back typed when present and as None when absent.
    assert type(back.ref_args[0].node_id) is NodeID
    assert back.ref_args[1].node_id is None


def test_list_of_ids_and_optional_ints() -> None:
    ids = [ObjectID.from_random() for _ in range(3)]
    back = codec.decode(codec.encode(FreeObjects(ids)))
    assert back.object_ids == ids
    assert all(type(i) is ObjectID for i in back.object_ids)
    exit_ = WorkerExit(WorkerID.from_random(), 12, None, 9, "killed")
    assert codec.decode(codec.encode(exit_)) == exit_


def test_messages_nest_in_plain_containers() -> None:
    value = [
        0,
        7,
        {"grant": LeaseGrant(LeaseID.from_random(), WorkerID.from_random(), address(), {}, {"GPU": ["0"]})},
    ]
    back = codec.decode(codec.encode(value))
    assert back == value
    assert type(back[2]["grant"].lease_id) is LeaseID


def test_tuples_travel_as_lists() -> None:
    assert codec.decode(codec.encode((1, (2, 3)))) == [1, [2, 3]]


def test_unencodable_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot encode object in an RPC message"):
        codec.encode(KvGet("ns", object()))  # type: ignore[arg-type]


def test_duplicate_tag_is_refused() -> None:
    with pytest.raises(RuntimeError, match="message tag 1 is used by both"):

        @message(1)
        class Clash:
            x: int


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "undecodable frame"),
        (b"\xc1", "undecodable frame"),  # a byte msgpack never uses
        (b"\x93\x01", "undecodable frame"),  # truncated array
        (b"\x01\x02", "undecodable frame"),  # trailing data
        (msgpack.packb(msgpack.ExtType(9, b"")), "unknown msgpack extension 9"),
        (frame(), "malformed message"),
        (msgpack.packb(msgpack.ExtType(1, b"\x05")), "unknown msgpack extension 1"),
        (msgpack.packb([MARK, b"\xc1"]), "unknown message tag"),
        (frame(65_000, 1), "unknown message tag 65000"),
        (frame("KvGet", "ns", b"k"), "unknown message tag 'KvGet'"),
        (frame(15, "ns"), "malformed KvGet"),  # too few fields
        (frame(15, "ns", b"k", b"extra"), "malformed KvGet"),  # too many
        (frame(21, b"\x00"), "malformed JobFinished"),  # JobID of the wrong size
        (frame(21, None), "malformed JobFinished"),  # JobID missing
        (frame(21, "abcd"), "malformed JobFinished"),  # str where an id belongs
        (frame(50, [b"short"]), "malformed FreeObjects"),
        (frame(50, 7), "malformed FreeObjects"),  # not a list
    ],
)
def test_malformed_frames_raise_decode_error(data: bytes, what: str) -> None:
    with pytest.raises(DecodeError, match=what):
        codec.decode(data)


def test_invalid_utf8_string_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"\xa2\xff\xfe")


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_decode_accepts_memoryview() -> None:
    assert codec.decode(memoryview(codec.encode(JobFinished(JobID.from_int(3))))) == JobFinished(
        JobID.from_int(3)
    )


_plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=15,
)


@given(_plain)
def test_plain_values_round_trip(value: object) -> None:
    assert codec.decode(codec.encode(value)) == value


@given(
    st.binary(min_size=28, max_size=28),
    st.one_of(st.none(), st.binary()),
    st.one_of(st.none(), st.binary(min_size=28, max_size=28)),
    st.integers(0, 2**40),
)
def test_return_object_round_trip(oid: bytes, inline: bytes | None, node: bytes | None, size: int) -> None:
    msg = ReturnObject(ObjectID(oid), inline, size, None if node is None else NodeID(node))
    back = codec.decode(codec.encode(msg))
    assert back == msg
    assert (back.node_id is None) or type(back.node_id) is NodeID


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except DecodeError:
        pass


@message(9001)
class WithDefaults:
    required: int
    optional: str = "default"


def test_trailing_fields_may_have_defaults() -> None:
    assert WithDefaults(1) == WithDefaults(1, "default")
    assert WithDefaults(1, optional="o").optional == "o"
    assert codec.decode(codec.encode(WithDefaults(2, "x"))) == WithDefaults(2, "x")
    # A peer that does not know the new field yet sends only the old ones.
    assert codec.decode(frame(9001, 3)) == WithDefaults(3)
    with pytest.raises(AttributeError, match="immutable"):
        WithDefaults(1).optional = "changed"  # type: ignore[misc]


def grant() -> LeaseGrant:
    return LeaseGrant(LeaseID.from_random(), WorkerID.from_random(), address(), {"CPU": 1.0}, {})


def _raw(msg: object) -> list:
    """A message as the plain array a peer sends, to tamper with."""
    return msgpack.unpackb(
        codec.encode(msg), raw=False, ext_hook=lambda code, data: msgpack.ExtType(code, data)
    )


def _tampered(msg: object, index: int, value: object) -> bytes:
    raw = _raw(msg)
    raw[2 + index] = value
    return msgpack.packb(raw, use_bin_type=True)


@pytest.mark.parametrize(
    ("msg", "index", "value", "field"),
    [
        (KvGet("ns", b"k"), 0, 5, "KvGet.namespace"),  # int where a str belongs
        (KvGet("ns", b"k"), 1, "k", "KvGet.key"),  # str where bytes belong
        (WorkerExit(WorkerID.from_random(), 1, 0, None, ""), 1, 1.5, "WorkerExit.pid"),
        (WorkerExit(WorkerID.from_random(), 1, 0, None, ""), 1, True, "WorkerExit.pid"),  # bool is no int
        (grant(), 3, {"CPU": float("nan")}, "LeaseGrant.resources value"),
        (grant(), 3, {"CPU": "lots"}, "LeaseGrant.resources value"),
        (grant(), 3, {1: 1.0}, "LeaseGrant.resources key"),
        (grant(), 2, None, "LeaseGrant.address"),
    ],
)
def test_fields_of_the_wrong_type_are_refused_naming_the_field(
    msg: object, index: int, value: object, field: str
) -> None:
    with pytest.raises(DecodeError, match=re.escape(field)):
        codec.decode(_tampered(msg, index, value))


def test_a_malformed_nested_message_says_which_field_is_wrong() -> None:
    raw = _raw(grant())
    raw[4][7] = "not-a-pid"  # Address.pid inside LeaseGrant.address
    with pytest.raises(DecodeError, match=r"malformed LeaseGrant: .*Address\.pid"):
        codec.decode(msgpack.packb(raw, use_bin_type=True))


def test_inside_a_frame_a_malformed_message_decodes_as_malformed() -> None:
    frame_ = [0, 7, _raw(KvGet("ns", b"k"))]
    frame_[2][3] = 5  # the key
    body = codec.decode(msgpack.packb(frame_, use_bin_type=True))[2]
    assert type(body) is codec.Malformed and body.cls is KvGet and "KvGet.key" in body.reason


def test_ints_are_accepted_for_floats_and_trailing_defaults_may_be_left_out() -> None:
    decoded = codec.decode(_tampered(grant(), 3, {"CPU": 2}))
    assert decoded.resources == {"CPU": 2}
    raw = _raw(ReturnObject(ObjectID.from_random(), b"x", 1, None))
    assert len(raw) == 2 + 5
    shorter = codec.decode(msgpack.packb(raw[:-1], use_bin_type=True))  # no `contained`
    assert shorter.contained is None


def test_decoded_ids_are_of_their_id_class() -> None:
    decoded = codec.decode(codec.encode(JobFinished(JobID.from_int(3))))
    assert type(decoded.job_id) is JobID and decoded.job_id == JobID.from_int(3)

"""Packing call arguments: ref slots, spilling large values, and unpicklable arguments."""

from __future__ import annotations

import threading

import pytest

from manta._private import serialization
from manta._private.common.ids import JobID, ObjectID, TaskID
from manta._private.core_worker import args as argpack
from manta._private.core_worker.object_ref import ObjectRef

TASK = TaskID.for_driver(JobID.from_int(1))


def ref(i: int) -> ObjectRef:
    return ObjectRef(ObjectID.for_put(TASK, i))


class Store:
    """Stands in for ``put``: keeps what was spilled, hands out refs."""

    def __init__(self) -> None:
        self.objects: dict[ObjectID, object] = {}

    def put(self, obj: serialization.SerializedObject) -> ObjectRef:
        new = ref(1000 + len(self.objects))
        self.objects[new.id] = serialization.from_inline(serialization.to_inline(obj))
        return new


def pack(*args: object, max_inline: int = 100 * 1024, store: Store | None = None, **kwargs: object):
    store = store or Store()
    packed = argpack.pack(args, kwargs, max_inline=max_inline, put=store.put, describe="remote function f")
    return packed.blob, packed.ref_args, packed.nested


def test_no_arguments() -> None:
    blob, refs, nested = pack()
    assert blob is argpack.EMPTY_ARGS
    assert not refs and not nested
    assert argpack.unpack(blob, []) == ((), {})


def test_plain_arguments_round_trip() -> None:
    blob, refs, nested = pack(1, "two", [3], key={"k": 4})
    assert not refs and not nested
    assert argpack.unpack(blob, []) == ((1, "two", [3]), {"key": {"k": 4}})


def test_plain_scalars_round_trip_and_subclasses_keep_their_type() -> None:
    # Plain scalars take the C pickler alone; an int subclass must not be mistaken for one.
    class Code(int):
        pass

    blob, refs, nested = pack(None, True, 1.5, "s", b"b", Code(7), k=2**70)
    assert not refs and not nested
    args, kwargs = argpack.unpack(blob, [])
    assert args[:5] == (None, True, 1.5, "s", b"b") and kwargs == {"k": 2**70}
    assert type(args[5]) is Code and args[5] == 7


def test_top_level_refs_become_slots() -> None:
    a, b = ref(0), ref(1)
    blob, refs, nested = pack(1, a, "x", k=b)
    assert refs == [a, b]
    assert nested == []  # slots, not refs, travel in the blob
    args, kwargs = argpack.unpack(blob, ["value-a", "value-b"])
    assert args == (1, "value-a", "x")
    assert kwargs == {"k": "value-b"}


def test_the_same_ref_twice_takes_two_slots() -> None:
    a = ref(0)
    blob, refs, _ = pack(a, a)
    assert refs == [a, a]
    assert argpack.unpack(blob, ["v0", "v1"]) == (("v0", "v1"), {})


def test_nested_refs_travel_as_refs() -> None:
    inner, other = ref(3), ref(4)
    blob, refs, nested = pack([inner], {"deep": (inner, other)})
    assert refs == []
    assert set(nested) == {inner, other}
    args, _ = argpack.unpack(blob, [])
    assert args[0] == [inner]
    assert isinstance(args[0][0], ObjectRef)


def test_large_arguments_are_spilled_and_small_ones_stay() -> None:
    store = Store()
    big = b"x" * 10_000
    blob, refs, _ = pack(big, 7, big_kw=big, small_kw="s", max_inline=4096, store=store)
    assert len(refs) == 2
    assert len(blob) < 4096
    values = [store.objects[r.id] for r in refs]
    assert argpack.unpack(blob, values) == ((big, 7), {"big_kw": big, "small_kw": "s"})


def test_spilling_keeps_existing_ref_slots() -> None:
    store = Store()
    a = ref(0)
    big = b"y" * 10_000
    blob, refs, _ = pack(a, big, max_inline=4096, store=store)
    assert refs[0] == a and len(refs) == 2
    args, _ = argpack.unpack(blob, ["va", store.objects[refs[1].id]])
    assert args == ("va", big)


def test_unpicklable_positional_argument_is_named() -> None:
    lock = threading.Lock()
    with pytest.raises(TypeError) as info:
        pack(1, lock)
    text = str(info.value)
    assert text.startswith("Could not serialize the argument #1 (<unlocked _thread.lock object")
    assert "for remote function f" in text
    assert "pass something picklable" in text
    assert isinstance(info.value.__cause__, TypeError)


def test_unpicklable_keyword_argument_is_named() -> None:
    with pytest.raises(TypeError, match=r"Could not serialize the argument 'lock' \(<unlocked _thread.lock"):
        pack(1, lock=threading.Lock())


def test_long_reprs_are_shortened() -> None:
    class Unpicklable:
        def __reduce__(self) -> object:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            return "U" * 200

    with pytest.raises(TypeError) as info:
        pack(Unpicklable())
    assert "#0 (" + "U" * 77 + "...)" in str(info.value)
    assert "RuntimeError: no" in str(info.value)

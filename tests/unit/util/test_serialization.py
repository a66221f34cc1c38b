"""register_serializer/deregister_serializer: the Pickler uses them, and only while registered."""

from __future__ import annotations

import pickle
import threading

import pytest

from manta._private import serialization
from manta.util import deregister_serializer, register_serializer


class Guarded:
    """A value with a lock inside: does not pickle without help."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.lock = threading.Lock()


class GuardedChild(Guarded):
    pass


def _round_trip(value: object) -> object:
    obj = serialization.serialize(value)
    return serialization.deserialize(obj.data, obj.buffers)


@pytest.fixture
def registered():
    register_serializer(Guarded, serializer=lambda g: g.value, deserializer=lambda v: Guarded(v))
    yield
    deregister_serializer(Guarded)


def test_unregistered_class_does_not_pickle() -> None:
    with pytest.raises(TypeError, match="lock"):
        serialization.serialize(Guarded(1))


def test_registered_class_round_trips(registered: None) -> None:
    back = _round_trip({"item": Guarded(7), "list": [Guarded(8)]})
    assert isinstance(back, dict)
    assert back["item"].value == 7 and back["list"][0].value == 8
    assert isinstance(back["item"].lock, type(threading.Lock()))


def test_the_deserializer_travels_with_the_value(registered: None) -> None:
    data = serialization.dumps(Guarded(5))
    deregister_serializer(Guarded)
    # Loading needs no registration: another process could do the same.
    assert pickle.loads(data).value == 5


def test_deregister_restores_the_failure(registered: None) -> None:
    assert _round_trip(Guarded(1)).value == 1  # type: ignore[attr-defined]
    deregister_serializer(Guarded)
    with pytest.raises(TypeError):
        serialization.serialize(Guarded(1))
    deregister_serializer(Guarded)  # a second time: no effect


def test_subclasses_need_their_own_registration(registered: None) -> None:
    with pytest.raises(TypeError):
        serialization.serialize(GuardedChild(1))


def test_registering_a_non_class_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expects a class"):
        register_serializer(Guarded(1), serializer=str, deserializer=int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        register_serializer(Guarded, serializer=None, deserializer=int)  # type: ignore[arg-type]

"""Custom serializers for classes that do not pickle (Ray's ``ray.util.serialization``).

A registration applies in the process that makes it, as in Ray: to its ``put`` values,
the arguments of the tasks and actor calls it submits, and the values it returns. Other
processes need no registration to load such a value (the deserializer travels inside it),
but a worker that must *produce* such a value (return it, put it, pass it on) has to
register the serializer itself, e.g. at the top of the task or in an actor's constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manta._private import custom_serializers


def register_serializer(
    cls: type, *, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]
) -> None:
    """Pickle instances of ``cls`` as ``serializer(obj)``, rebuilt by ``deserializer``.

    Args:
        cls: the class; instances of exactly this class use the serializer (register
            subclasses separately).
        serializer: turns an instance into a value that pickles (e.g. a dict of its state).
        deserializer: turns that value back into an instance. It is pickled with every
            value, so it must pickle itself (a lambda or a function both do).

    Raises:
        TypeError: ``cls`` is not a class, or the serializers are not callable.
    """
    custom_serializers.register(cls, serializer, deserializer)


def deregister_serializer(cls: type) -> None:
    """Stop using the serializer registered for ``cls`` in this process (no effect when
    there is none)."""
    custom_serializers.deregister(cls)


__all__ = ["deregister_serializer", "register_serializer"]

"""Serializers registered by users (``manta.util.register_serializer``): one registry per process.

As in Ray, a registration changes how *this process* pickles instances of the class: it
applies to ``put``, task arguments and the values this process returns, not to other
processes. Nothing has to be registered where the value is loaded: the deserializer is
pickled into the value itself (by reference when it is importable, by value when it is a
lambda or lives in ``__main__``), so every worker can rebuild the instance.

``REDUCERS`` is the first map of the Pickler's dispatch table (see ``serialization``), so
a registration takes effect at the next pickle, in every thread, with no copying.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# type -> reducer (``obj -> (deserializer, (serialized,))``). Exact types only, as pickle's
# dispatch table matches them: a subclass needs its own registration, as in Ray.
REDUCERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def register(cls: type, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]) -> None:
    """Pickle instances of exactly ``cls`` as ``deserializer(serializer(obj))``."""
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer expects a class, got {cls!r}")
    if not callable(serializer) or not callable(deserializer):
        raise TypeError("serializer and deserializer must be callable")

    def reduce(obj: Any) -> tuple[Any, ...]:
        return deserializer, (serializer(obj),)

    REDUCERS[cls] = reduce


def deregister(cls: type) -> None:
    """Forget ``cls``'s serializer; nothing happens when there is none."""
    REDUCERS.pop(cls, None)

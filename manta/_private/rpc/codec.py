"""The one codec for RPC messages: immutable record classes <-> msgpack.

A message class is declared with ``@message(tag)``; the tag is its stable wire number.
An instance travels as a msgpack array ``[MARK, tag, field1, field2, ...]`` (MARK is a
reserved empty extension value), so messages nest inside each other and inside plain
lists and dicts with no schema beyond the class itself. Fields annotated with an id type (``ObjectID``,
``ObjectID | None``, ``list[ObjectID]``) are rebuilt as that type on decode.
"""

from __future__ import annotations

import inspect
import operator
import threading
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgpack

from manta._private.common.ids import BaseID

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: Any) -> Any:
        return lambda f: f


_EXT_MESSAGE = 1
_T = TypeVar("_T")

_by_type: dict[type, tuple[int, Callable[[Any], tuple[Any, ...]]]] = {}
_by_tag: dict[int, tuple[type, list[tuple[int, Callable[[Any], Any]]]]] = {}


class DecodeError(ValueError):
    """A frame that is not a valid message: the peer is broken or hostile."""


@dataclass_transform(frozen_default=True)
def message(tag: int) -> Callable[[type[_T]], type[_T]]:
    """Make ``cls`` an immutable, slotted record class and register it under ``tag``.

    Like ``@dataclass(frozen=True, slots=True)`` for plain annotated fields, at a tenth of
    the import cost (dataclass generation dominated the package's import time)."""

    def register(cls: type[_T]) -> type[_T]:
        if tag in _by_tag:
            raise RuntimeError(f"message tag {tag} is used by both {_by_tag[tag][0]} and {cls}")
        record = _make_record(cls)
        names = record.__message_fields__  # type: ignore[attr-defined]
        getter: Callable[[Any], tuple[Any, ...]]
        if len(names) == 1:
            single = operator.attrgetter(names[0])
            getter = lambda obj: (single(obj),)  # noqa: E731 - attrgetter of one name is no tuple
        elif names:
            getter = operator.attrgetter(*names)
        else:
            getter = lambda _obj: ()  # noqa: E731
        _by_type[record] = (tag, getter)
        _by_tag[tag] = (record, [])
        return record

    return register


def _make_record(cls: type) -> type:
    names = tuple(inspect.get_annotations(cls))
    # Defaults (trailing fields only, as in dataclasses) move from class attributes into
    # __init__: a class attribute would clash with the slot of the same name.
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    namespace = {
        k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__") and k not in defaults
    }
    namespace["__slots__"] = names
    namespace["__message_fields__"] = names
    args = ", ".join(f"{n}=_d_{n}" if n in defaults else n for n in names)
    body = "".join(f"    _set(self, {n!r}, {n})\n" for n in names) or "    pass\n"
    scope: dict[str, Any] = {"_set": object.__setattr__, **{f"_d_{n}": v for n, v in defaults.items()}}
    exec(f"def __init__(self, {args}):\n{body}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    namespace["__init__"] = init
    namespace["__repr__"] = _record_repr
    namespace["__eq__"] = _record_eq
    namespace["__hash__"] = _record_hash
    namespace["__setattr__"] = _record_frozen
    namespace["__delattr__"] = _record_frozen
    namespace["__reduce__"] = _record_reduce
    return type(cls.__name__, cls.__bases__, namespace)


def _record_repr(self: Any) -> str:
    fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__message_fields__)
    return f"{type(self).__name__}({fields})"


def _record_eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return all(getattr(self, n) == getattr(other, n) for n in self.__message_fields__)


def _record_hash(self: Any) -> int:
    return hash(tuple(_hashable(getattr(self, n)) for n in self.__message_fields__))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _record_frozen(self: Any, name: str, value: Any = None) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable; use codec.replace()")


def _record_reduce(self: Any) -> Any:
    return (type(self), tuple(getattr(self, n) for n in self.__message_fields__))


def fields_of(cls: type) -> tuple[str, ...]:
    return cls.__message_fields__  # type: ignore[attr-defined, no-any-return]


def replace(obj: _T, **changes: Any) -> _T:
    """A copy of message ``obj`` with some fields changed."""
    values = {n: getattr(obj, n) for n in fields_of(type(obj))}
    values.update(changes)
    return type(obj)(**values)


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How to rebuild a decoded field of this annotation, or None if it decodes as-is."""
    if isinstance(annotation, type) and issubclass(annotation, BaseID):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        optional = _converter(next(a for a in args if a is not type(None)))
        if optional is not None:
            return lambda v: None if v is None else optional(v)
    if origin is list and args:
        element = _converter(args[0])
        if element is not None:
            return lambda v: [element(x) for x in v]
    return None


def _resolve_converters(tag: int) -> list[tuple[int, Callable[[Any], Any]]]:
    cls, converters = _by_tag[tag]
    if not converters:
        hints = typing.get_type_hints(cls)
        for index, name in enumerate(fields_of(cls)):
            conv = _converter(hints[name])
            if conv is not None:
                converters.append((index, conv))
        converters.append((-1, _identity))  # marks "resolved", skipped when applying
    return converters


def _identity(value: Any) -> Any:
    return value


# A message travels as a msgpack array ``[MARK, tag, field1, ...]``: MARK is an empty
# extension value that nothing else produces, so the decoder's list hook recognises
# messages, and nested messages need no nested pack call (each pack call costs a Packer).
_MARK = msgpack.ExtType(_EXT_MESSAGE, b"")


class _Marker:
    __slots__ = ()


_MARKER = _Marker()
_local = threading.local()


def _default(obj: Any) -> Any:
    entry = _by_type.get(type(obj))
    if entry is None:
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"cannot encode {type(obj).__name__} in an RPC message")
    tag, getter = entry
    return [_MARK, tag, *getter(obj)]


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _EXT_MESSAGE or data:
        raise DecodeError(f"unknown msgpack extension {code}")
    return _MARKER


def _list_hook(values: list[Any]) -> Any:
    if not values or values[0] is not _MARKER:
        return values
    if len(values) < 2:
        raise DecodeError("malformed message")
    entry = _by_tag.get(values[1])
    if entry is None:
        raise DecodeError(f"unknown message tag {values[1]!r}")
    cls, converters = entry
    args = values[2:]
    try:
        for index, conv in converters or _resolve_converters(values[1]):
            if index >= 0:
                args[index] = conv(args[index])
        return cls(*args)
    except (TypeError, ValueError, IndexError) as e:
        raise DecodeError(f"malformed {cls.__name__}: {e}") from None


def encode(obj: Any) -> bytes:
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)
    try:
        return packer.pack(obj)
    except BaseException:
        packer.reset()  # a failed pack leaves partial output in the buffer
        raise


def decode(data: bytes | memoryview) -> Any:
    try:
        return msgpack.unpackb(
            data, ext_hook=_ext_hook, list_hook=_list_hook, raw=False, strict_map_key=False
        )
    except DecodeError:
        raise
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise DecodeError(f"undecodable frame: {type(e).__name__}: {e}") from None

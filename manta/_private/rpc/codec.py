"""The one codec for RPC messages: immutable record classes <-> msgpack.

A message class is declared with ``@message(tag)``; the tag is its stable wire number.
An instance travels as a msgpack array ``[MARK, tag, field1, field2, ...]`` (MARK is a
reserved empty extension value), so messages nest inside each other and inside plain
lists and dicts with no schema beyond the class itself. Fields annotated with an id type (``ObjectID``,
``ObjectID | None``, ``list[ObjectID]``) are rebuilt as that type on decode.
"""

from __future__ import annotations

import inspect
import math
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
# tag -> (message class, its checking builder once made; see ``_builder``)
_by_tag: dict[int, tuple[type, Callable[..., Any] | None]] = {}


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
        _by_tag[tag] = (record, None)
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
    namespace["__repr__"] = _record_repr
    namespace["__eq__"] = _record_eq
    namespace["__hash__"] = _record_hash
    namespace["__setattr__"] = _record_frozen
    namespace["__delattr__"] = _record_frozen
    namespace["__reduce__"] = _record_reduce
    record = type(cls.__name__, cls.__bases__, namespace)
    args = ", ".join(f"{n}=_d_{n}" if n in defaults else n for n in names)
    # Each field is set through its slot's own setter, past the frozen __setattr__: a
    # third faster than object.__setattr__ by name (a TaskSpec is made for every task).
    body = "".join(f"    _s_{n}(self, {n})\n" for n in names) or "    pass\n"
    scope: dict[str, Any] = {f"_d_{n}": v for n, v in defaults.items()}
    scope.update({f"_s_{n}": record.__dict__[n].__set__ for n in names})
    exec(f"def __init__(self, {args}):\n{body}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    record.__init__ = init  # type: ignore[misc]
    return record


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


class _BuilderSource:
    """Writes the source of one message class's builder: a function that checks every
    decoded field against its annotation (a peer's mistake becomes a DecodeError here,
    not a crash in a handler) and rebuilds id fields, in one call per message."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.scope: dict[str, Any] = {"_bad": _bad, "_finite": math.isfinite, "_new_bytes": bytes.__new__}
        self._temps = 0

    def name(self, value: Any) -> str:
        name = f"_c{len(self.scope)}"
        self.scope[name] = value
        return name

    def _temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def check(self, var: str, annotation: Any, what: str, indent: str) -> None:
        """Lines that check (and, for ids, rebuild) ``var`` of type ``annotation``."""
        add = self.lines.append
        bad = f"{indent}    raise _bad({what!r}, {var})"
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is Any:
            return
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1 or len(args) != 2:
                raise TypeError(f"unsupported message field type {annotation!r}")
            add(f"{indent}if {var} is not None:")
            self.check(var, inner[0], what, indent + "    ")
        elif isinstance(annotation, type) and issubclass(annotation, BaseID):
            # BaseID's own __new__, inline: a message carries up to a dozen ids.
            add(f"{indent}if type({var}) is not bytes or len({var}) != {annotation.SIZE}:")
            add(f"{indent}    {var} = {self.name(annotation)}({var})")  # raises, saying why
            add(f"{indent}else:")
            add(f"{indent}    {var} = _new_bytes({self.name(annotation)}, {var})")
        elif annotation is float:
            add(f"{indent}if (type({var}) is not float and type({var}) is not int) or not _finite({var}):")
            add(bad)
        elif annotation in (int, str, bytes, bool) or annotation in _by_type:
            add(f"{indent}if type({var}) is not {self.name(annotation)}:")
            add(bad)
        elif origin is list:
            add(f"{indent}if type({var}) is not list:")
            add(bad)
            self._elements(var, args[0], what, indent)
        elif origin is dict:
            add(f"{indent}if type({var}) is not dict:")
            add(bad)
            key, value = args
            if key is not str:
                raise TypeError(f"unsupported message field type {annotation!r}")
            k = self._temp()
            add(f"{indent}for {k} in {var}:")
            add(f"{indent}    if type({k}) is not str:")
            add(f"{indent}        raise _bad({what + ' key'!r}, {k})")
            if value is not Any:
                v = self._temp()
                add(f"{indent}for {v} in {var}.values():")
                self._no_rebuild(value)
                self.check(v, value, what + " value", indent + "    ")
        else:
            raise TypeError(f"unsupported message field type {annotation!r}")

    def _elements(self, var: str, element: Any, what: str, indent: str) -> None:
        if element is Any:
            return
        if isinstance(element, type) and issubclass(element, BaseID):
            self.lines.append(f"{indent}{var} = [{self.name(element)}(_e) for _e in {var}]")
            return
        e = self._temp()
        self.lines.append(f"{indent}for {e} in {var}:")
        self._no_rebuild(element)
        self.check(e, element, what + " element", indent + "    ")

    @staticmethod
    def _no_rebuild(annotation: Any) -> None:
        # Rebuilding inside a loop would rebind the loop variable only.
        if isinstance(annotation, type) and issubclass(annotation, BaseID):
            raise TypeError(f"ids are only supported directly or in lists, not in {annotation!r}")


class Malformed:
    """Stands for a message whose fields do not match its class: the frame was sound, so
    the connection lives on, and the receiver answers a request with this error."""

    __slots__ = ("cls", "reason")

    def __init__(self, cls: type, reason: str) -> None:
        self.cls = cls
        self.reason = reason

    def __repr__(self) -> str:
        return f"Malformed({self.reason!r})"


def _bad(what: str, value: Any) -> DecodeError:
    if type(value) is Malformed:  # a nested message was already found wrong: say why
        return DecodeError(value.reason)
    return DecodeError(f"field {what} has a value of type {type(value).__name__}: {value!r:.80}")


def _builder(tag: int) -> Callable[[list[Any]], Any]:
    """The checking builder of message ``tag`` (made on first use, then cached)."""
    cls, builder = _by_tag[tag]
    if builder is None:
        hints = typing.get_type_hints(cls)
        names = fields_of(cls)
        source = _BuilderSource()
        params = [f"a{i}" for i in range(len(names))]
        for i, name in enumerate(names):
            source.check(params[i], hints[name], f"{cls.__name__}.{name}", "    ")
        # Trailing fields with defaults may be left out by the sender, as in __init__.
        defaults = cls.__init__.__defaults__ or ()  # type: ignore[misc]
        first_default = len(names) - len(defaults)
        signature = [
            p if i < first_default else f"{p}={source.name(defaults[i - first_default])}"
            for i, p in enumerate(params)
        ]
        body = "\n".join(source.lines) or "    pass"
        source.scope["_cls"] = cls
        code = f"def build({', '.join(signature)}):\n{body}\n    return _cls({', '.join(params)})\n"
        exec(code, source.scope)
        builder = source.scope["build"]
        _by_tag[tag] = (cls, builder)
    return builder


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
    cls, builder = entry
    try:
        return (builder or _builder(values[1]))(*values[2:])
    except (TypeError, ValueError, IndexError) as e:
        return Malformed(cls, f"malformed {cls.__name__}: {e}")


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
    """The value in ``data``. A malformed message raises DecodeError, except one nested
    in a list (a transport frame), which decodes as ``Malformed`` for the receiver to refuse."""
    try:
        value = msgpack.unpackb(
            data, ext_hook=_ext_hook, list_hook=_list_hook, raw=False, strict_map_key=False
        )
    except DecodeError:
        raise
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise DecodeError(f"undecodable frame: {type(e).__name__}: {e}") from None
    if type(value) is Malformed:
        raise DecodeError(value.reason)
    return value

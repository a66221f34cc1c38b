"""Checking a ``.remote(...)`` call's arguments against the function's parameters, at the
call, as Ray does: a wrong call fails in the caller, not later in a worker."""

from __future__ import annotations

import inspect
from typing import Any


class CallCheck:
    """A function's signature, with the common case (plain positional parameters, called
    positionally) checked by counting: ``Signature.bind`` costs a tenth of a task's submit."""

    __slots__ = ("_arity", "_describe", "_signature")

    def __init__(self, signature: inspect.Signature | None, describe: str) -> None:
        self._signature = signature
        self._arity = _simple_arity(signature)
        self._describe = describe

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        arity = self._arity
        if arity is not None and not kwargs and arity[0] <= len(args) <= arity[1]:
            return
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{self._describe}.remote(): {e}") from None


def of_function(function: Any, describe: str) -> CallCheck:
    try:
        signature: inspect.Signature | None = inspect.signature(function)
    except (TypeError, ValueError):
        signature = None
    return CallCheck(signature, describe)


def of_wire(params: list[list[Any]] | None, describe: str) -> CallCheck:
    """From an actor method's parameters in their wire form, ``[name, kind, has a default]``."""
    signature = None
    if params is not None:
        try:
            signature = inspect.Signature(
                [
                    inspect.Parameter(
                        name,
                        inspect._ParameterKind(kind),
                        default=None if has_default else inspect.Parameter.empty,
                    )
                    for name, kind, has_default in params
                ]
            )
        except (TypeError, ValueError):
            signature = None
    return CallCheck(signature, describe)


def _simple_arity(signature: inspect.Signature | None) -> tuple[int, int] | None:
    """(min, max) positional arguments when the signature is plain positional parameters."""
    if signature is None:
        return None
    params = list(signature.parameters.values())
    if any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
        return None
    required = sum(1 for p in params if p.default is p.empty)
    return required, len(params)

"""Markers of API stability, as in ``ray.util.annotations``.

``PublicAPI``, ``DeveloperAPI`` and ``Deprecated`` mark what they decorate (Ray's libraries
and users' code apply them) and change nothing else; ``RayDeprecationWarning`` is what
Manta's deprecated Ray APIs warn with, so that filters written for Ray apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manta._private.common.deprecation import RayDeprecationWarning

__all__ = ["Deprecated", "DeveloperAPI", "PublicAPI", "RayDeprecationWarning"]


def _marker(kind: str) -> Callable[..., Any]:
    def mark(*args: Any, **kwargs: Any) -> Any:
        def apply(obj: Any) -> Any:
            try:
                obj._annotated = kind
                obj._annotated_args = dict(kwargs)
            except (AttributeError, TypeError):
                pass  # a builtin or slotted object: the marker is only informative
            return obj

        if len(args) == 1 and not kwargs and callable(args[0]):
            return apply(args[0])  # used bare: @PublicAPI
        return apply  # used with arguments: @PublicAPI(stability="beta")

    mark.__name__ = kind
    return mark


PublicAPI = _marker("PublicAPI")
DeveloperAPI = _marker("DeveloperAPI")
Deprecated = _marker("Deprecated")

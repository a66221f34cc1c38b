"""``ray._private.client_mode_hook``: how Ray routes an API call to Ray Client when one
is connected. Manta has no Ray Client, so every call takes the ordinary path: the
decorators return the function unchanged and nothing ever converts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "client_mode_hook",
    "client_mode_should_convert",
    "client_mode_wrap",
    "disable_client_hook",
    "is_client_mode_enabled",
]

# Whether this process talks to a cluster through Ray Client: never, in Manta.
is_client_mode_enabled = False


def client_mode_hook(func: F | None = None, *, local_only_kwargs: tuple[str, ...] = ()) -> Any:
    """``@client_mode_hook`` or ``@client_mode_hook(local_only_kwargs=...)``: the function
    itself."""

    def decorator(f: F) -> F:
        return f

    return decorator if func is None else decorator(func)


def client_mode_wrap(func: F) -> F:
    return func


def client_mode_should_convert() -> bool:
    return False


@contextmanager
def disable_client_hook() -> Iterator[None]:
    yield None

"""``ray._common.utils``: the small helpers Ray's tests and libraries take from it."""

from __future__ import annotations

import asyncio
import binascii
import errno
import os
import secrets
import string

__all__ = [
    "binary_to_hex",
    "decode",
    "get_or_create_event_loop",
    "get_random_alphanumeric_string",
    "hex_to_binary",
    "try_to_create_directory",
]


def get_or_create_event_loop() -> asyncio.AbstractEventLoop:
    """The running event loop; else this thread's, made and set if it has none."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    try:
        return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop


def binary_to_hex(identifier: bytes) -> str:
    return binascii.hexlify(identifier).decode()


def hex_to_binary(hex_identifier: str) -> bytes:
    return binascii.unhexlify(hex_identifier)


def decode(byte_str: bytes | None, allow_none: bool = False, encode_type: str = "utf-8") -> str:
    """``byte_str`` as text; with ``allow_none``, None gives "". ValueError for non-bytes."""
    if byte_str is None and allow_none:
        return ""
    if not isinstance(byte_str, bytes):
        raise ValueError(f"The argument {byte_str!r} must be a bytes object.")
    return byte_str.decode(encode_type)


_ALPHANUMERIC = string.ascii_lowercase + string.digits


def get_random_alphanumeric_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def try_to_create_directory(directory_path: str) -> None:
    """Create the directory (and its parents) if it does not exist; races are fine."""
    try:
        os.makedirs(os.path.expanduser(directory_path), exist_ok=True)
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise

"""Messages of the client port (tags 210-219): a remote driver on a machine with no Manta
node talks to its session on the head (a driver there that owns what the remote one
makes) through the head's client server, which relays them both ways.

Calls carry a sequence number: a client that lost its connection sends again what it has
no answer to, and the session answers each number once (it runs it once and keeps the
answer until the client acknowledges it). Payloads are pickles; large out-of-band buffers
travel as ``ClientPart``s before the call or reply they belong to.
"""

from __future__ import annotations

from typing import Any

from manta._private.rpc.codec import message


@message(210)
class ClientOpen:
    """Start a session (``session`` empty) or take up the one named, within its grace
    period. ``options``: the pickled keyword arguments of the client's ``init()``.
    ``role``: set by the client server from the token (what the client says is ignored).
    Answered with ``ClientOpened``."""

    session: str
    secret: str
    options: bytes
    role: str


@message(211)
class ClientOpened:
    session: str
    secret: str
    resumed: bool
    # Pickled: the driver's ids, namespace, address and the settings the client mirrors.
    info: bytes


@message(212)
class ClientCall:
    """Carry out the operation pickled in ``payload`` (api/client_ops.py; its out-of-band
    buffers in ``buffers``, or sent before as ``parts`` parts). ``ops``: reference holds
    and releases made since the last call, applied first and in order. ``acked``: every
    call up to it has its answer (the session may forget those). A ``ClientResult``."""

    seq: int
    acked: int
    payload: bytes
    buffers: list[bytes]
    parts: int
    ops: list[list[Any]]
    # A submission's return ids (the client made their refs): what fails if it cannot run.
    returns: list[bytes]


@message(213)
class ClientResult:
    """``ok``: ``payload`` pickles the return value; else the exception raised."""

    ok: bool
    payload: bytes
    buffers: list[bytes]
    parts: int


@message(214)
class ClientPart:
    """``data`` at ``offset`` of out-of-band buffer ``index`` (``total`` bytes long) of the
    call or the answer numbered ``seq``."""

    seq: int
    index: int
    offset: int
    total: int
    data: bytes


@message(215)
class ClientOutput:
    """What the session printed (its workers' output, its warnings), for the client to print."""

    is_err: bool
    text: str


@message(216)
class ClientAck:
    """Every call up to ``acked`` has its answer, and so do those in ``received``: the
    session may forget those answers (one call that waits long holds back no others)."""

    acked: int
    received: list[int]

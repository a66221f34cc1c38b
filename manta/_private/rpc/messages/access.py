"""Messages of the gcs's access service: user tokens and the audit log (tags 150-169).

Token requests come from the head's HTTP service on behalf of an admin; the audit log is
written by the gcs and by the HTTP service.
"""

from __future__ import annotations

from typing import Any

from manta._private.rpc.codec import message


@message(150)
class IssueToken:
    role: str
    name: str
    by: str  # the name of the token that asked (for the audit log)


@message(151)
class ListTokens:
    pass


@message(152)
class RevokeToken:
    ref: str  # a token id, or an active token's name
    by: str


@message(153)
class RotateToken:
    ref: str
    retire_after_s: float | None
    by: str


@message(154)
class VerifyToken:
    """Reply: ``[role, name]`` of a valid token, else None."""

    token: bytes


@message(155)
class AuditAppend:
    """An event for the audit log, from another cluster component (the HTTP service)."""

    event: str
    fields: dict[str, Any]


@message(156)
class ReadAudit:
    """Reply: up to ``limit`` events with a sequence number above ``after``, oldest first."""

    after: int
    limit: int

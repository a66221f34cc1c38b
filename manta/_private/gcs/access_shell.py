"""The gcs's access service: it decides what each credential grants, issues and revokes
user tokens, opens the read-only and submit-level requests to user roles, and writes the
audit log (its own events, and those the head's HTTP service sends)."""

from __future__ import annotations

import logging
from typing import Any

from manta._private.common.clock import Clock
from manta._private.gcs.audit import AuditLog
from manta._private.gcs.storage import Storage
from manta._private.gcs.tokens import TokenRegistry
from manta._private.rpc import messages as m
from manta._private.rpc.auth import Grant, cluster_only
from manta._private.rpc.messages import access as a
from manta._private.rpc.transport import Connection, Dispatcher, Handler

logger = logging.getLogger(__name__)

# What user roles may ask the gcs over RPC; everything else stays ``cluster`` (the
# Dispatcher's default). Code runs only through drivers on a node, which hold the
# cluster's credential, or through the HTTP job API, which checks roles itself.
USER_REQUESTS: dict[type, str] = {
    m.Ping: "read",
    m.GetNodes: "read",
    m.GetJob: "read",
    m.GetAllJobs: "read",
    m.KvGet: "read",
    m.KvKeys: "read",
    m.Subscribe: "read",
    m.GetActorInfo: "read",
    m.GetNamedActor: "read",
    m.ListNamedActors: "read",
    m.ListActors: "read",
    m.GetPlacementGroup: "read",
    m.ListPlacementGroups: "read",
    m.ListTasks: "read",
    m.SummarizeTasks: "read",
    m.TaskTimeline: "read",
    m.ExplainTask: "read",
    m.KvPut: "submit",
    m.KvDel: "submit",
    a.ListTokens: "admin",
    a.IssueToken: "admin",
    a.RevokeToken: "admin",
    a.RotateToken: "admin",
    a.ReadAudit: "admin",
}

# Requests whose every arrival is recorded (the attempt, with who made it).
AUDITED: dict[type, tuple[str, Any]] = {
    m.RegisterActor: (
        "actor_create",
        lambda msg: {
            "actor_id": msg.spec.actor_id.hex(),
            "class_name": msg.spec.class_name,
            "name": msg.spec.name,
            "namespace": msg.spec.namespace,
            "job_id": msg.spec.job_id.hex(),
        },
    ),
    m.KillActor: ("actor_kill", lambda msg: {"actor_id": msg.actor_id.hex(), "no_restart": msg.no_restart}),
    m.KvPut: (
        "kv_put",
        lambda msg: {"namespace": msg.namespace, "key": _key(msg.key), "bytes": len(msg.value)},
    ),
    m.KvDel: ("kv_delete", lambda msg: {"namespace": msg.namespace, "key": _key(msg.key)}),
    m.RegisterJob: ("driver_start", lambda msg: {"namespace": msg.namespace, "pid": msg.driver.pid}),
}


def _key(key: Any) -> str:
    return key[:200].decode("utf-8", "backslashreplace") if isinstance(key, bytes) else repr(key)[:200]


def who(conn: Connection) -> dict[str, Any]:
    """The audit log's account of a caller."""
    return {"by": conn.peer_name, "role": conn.peer_role, "kind": conn.peer_kind, "peer": conn.peer}


class AccessService:
    def __init__(self, storage: Storage, cluster_token: bytes, audit: AuditLog, clock: Clock) -> None:
        self._cluster = cluster_only(cluster_token)
        self._clock = clock
        self.tokens = TokenRegistry(storage, clock)
        self.audit = audit

    def verify(self, token: bytes) -> Grant | None:
        return self._cluster(token) or self.tokens.verify(token)

    def register_handlers(self, d: Dispatcher) -> None:
        """After every other handler is in: opens requests to user roles, wraps audited ones."""
        d.register(a.VerifyToken, self._h_verify)
        d.register(a.IssueToken, self._h_issue)
        d.register(a.ListTokens, lambda c, msg: self.tokens.listing())
        d.register(a.RevokeToken, self._h_revoke)
        d.register(a.RotateToken, self._h_rotate)
        d.register(
            a.AuditAppend,
            lambda c, msg: self.audit.record(msg.event, **{str(k): v for k, v in msg.fields.items()}),
        )
        d.register(a.ReadAudit, lambda c, msg: self.audit.read(msg.after, max(0, min(msg.limit, 10_000))))
        for message_type, role in USER_REQUESTS.items():
            entry = d.handler_for(message_type)
            assert entry is not None, message_type
            d.register(message_type, entry[0], role)
        for message_type, (event, describe) in AUDITED.items():
            entry = d.handler_for(message_type)
            assert entry is not None, message_type
            d.register(message_type, self._audited(entry[0], event, describe), entry[1])

    def _audited(self, handler: Handler, event: str, describe: Any) -> Handler:
        def audited(conn: Connection, msg: Any) -> Any:
            self.audit.record(event, **who(conn), **describe(msg))
            return handler(conn, msg)

        return audited

    def audit_named_lookups(self, d: Dispatcher, namespace_of: Any) -> None:
        """Records named-actor lookups in another namespace than the caller's job's (where
        the gcs knows it: a driver's), and every one made with a user token."""
        lookup, role = d.handler_for(m.GetNamedActor) or (None, "")
        assert lookup is not None

        def audited(conn: Connection, msg: m.GetNamedActor) -> Any:
            own = namespace_of(conn)
            if conn.peer_role != "cluster" or (own is not None and own != msg.namespace):
                self.audit.record("named_actor_lookup", **who(conn), name=msg.name, namespace=msg.namespace)
            return lookup(conn, msg)

        d.register(m.GetNamedActor, audited, role)

    @staticmethod
    def _by(conn: Connection, msg: Any) -> str:
        # The HTTP service asks on behalf of the token that called it; anyone else for itself.
        return str(msg.by) if conn.peer_role == "cluster" and msg.by else conn.peer_name

    def _h_verify(self, conn: Connection, msg: a.VerifyToken) -> list[str] | None:
        grant = self.verify(msg.token)
        return None if grant is None else [grant.role, grant.name]

    def _h_issue(self, conn: Connection, msg: a.IssueToken) -> dict[str, Any]:
        record, text = self.tokens.issue(msg.role, msg.name)
        self.audit.record(
            "token_create",
            by=self._by(conn, msg),
            token_id=record.token_id,
            name=record.name,
            role=record.role,
        )
        return {**record.public(self._clock.time()), "token": text}

    def _h_revoke(self, conn: Connection, msg: a.RevokeToken) -> dict[str, Any]:
        record = self.tokens.revoke(msg.ref)
        self.audit.record("token_revoke", by=self._by(conn, msg), token_id=record.token_id, name=record.name)
        return record.public(self._clock.time())

    def _h_rotate(self, conn: Connection, msg: a.RotateToken) -> dict[str, Any]:
        old, new, text = self.tokens.rotate(msg.ref, msg.retire_after_s)
        self.audit.record(
            "token_rotate",
            by=self._by(conn, msg),
            old_token_id=old.token_id,
            token_id=new.token_id,
            name=new.name,
            retire_at=old.retire_at,
        )
        return {
            **new.public(self._clock.time()),
            "token": text,
            "replaces": old.token_id,
            "retire_at": old.retire_at,
        }

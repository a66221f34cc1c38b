"""``manta token`` (issue, list, revoke, rotate user tokens) and ``manta audit`` (read or
follow the head's audit log), over the head's HTTP service with an admin token."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

import click

from manta._private.rpc.auth import USER_ROLES
from manta.cli import head
from manta.cli.access_client import AccessClient

# How often `manta audit --follow` asks for new events.
_FOLLOW_POLL_S = 1.0


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _show_issued(issued: dict[str, Any]) -> None:
    """The new token's facts, then the token alone on the last line (for scripts)."""
    click.echo(f"token {issued['token_id']} ({issued['name']}, role {issued['role']})", err=True)
    if issued.get("replaces"):
        retire = issued.get("retire_at")
        until = f"until {_when(retire)}" if retire else "until you revoke it"
        click.echo(f"replaces {issued['replaces']}, which keeps working {until}", err=True)
    click.echo("store it now: it is not shown again", err=True)
    click.echo(issued["token"])


@click.group()
def token() -> None:
    """Issue, list, revoke and rotate the tokens of a cluster (needs an admin token)."""


@token.command("create")
@click.option("--role", type=click.Choice(USER_ROLES), required=True, help="What the token may do.")
@click.option("--name", default=None, help="A name for it (default: made up), shown in the audit log.")
@head.address_option
@head.token_option
def create(role: str, name: str | None, address: str | None, token_file: str | None) -> None:
    """Issue a token; prints it alone on the last line."""
    client = head.client(address, token_file, AccessClient)
    _show_issued(head.call(client.issue_token, role, name))


@token.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@head.address_option
@head.token_option
def list_tokens(fmt: str, address: str | None, token_file: str | None) -> None:
    """The issued tokens (never their text)."""
    tokens = head.call(head.client(address, token_file, AccessClient).list_tokens)
    if fmt == "json":
        click.echo(json.dumps(tokens, indent=2))
        return
    rows = [("ID", "NAME", "ROLE", "ACTIVE", "CREATED", "NOTE")]
    for t in tokens:
        note = "revoked" if t["revoked_at"] else ""
        if t["rotated_to"]:
            note = f"rotated to {t['rotated_to']}" + (
                f", retires {_when(t['retire_at'])}" if t["retire_at"] else ""
            )
        rows.append(
            (
                t["token_id"],
                t["name"],
                t["role"],
                "yes" if t["active"] else "no",
                _when(t["created_at"]),
                note,
            )
        )
    head.echo_table(rows)


@token.command("revoke")
@click.argument("ref")
@head.address_option
@head.token_option
def revoke(ref: str, address: str | None, token_file: str | None) -> None:
    """Revoke the token with id REF (or the active one named REF)."""
    record = head.call(head.client(address, token_file, AccessClient).revoke_token, ref)
    click.echo(f"revoked token {record['token_id']} ({record['name']})")


@token.command("rotate")
@click.argument("ref")
@click.option(
    "--retire-after",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds the old token keeps working (default: until you revoke it).",
)
@head.address_option
@head.token_option
def rotate(ref: str, retire_after: float | None, address: str | None, token_file: str | None) -> None:
    """Issue a successor of token REF (same name and role); prints it on the last line."""
    client = head.client(address, token_file, AccessClient)
    _show_issued(head.call(client.rotate_token, ref, retire_after))


def _line(event: dict[str, Any]) -> str:
    rest = {k: v for k, v in event.items() if k not in ("seq", "time", "event")}
    fields = " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in rest.items())
    return f"{event['seq']:>6} {_when(event['time'])} {event['event']} {fields}".rstrip()


@click.command()
@click.option("--follow", is_flag=True, help="Keep printing new events as they come.")
@click.option(
    "--after", type=click.IntRange(min=0), default=0, help="Only events after this sequence number."
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, help="Most events per request.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="json: one object a line."
)
@head.address_option
@head.token_option
def audit(
    follow: bool, after: int, limit: int, fmt: str, address: str | None, token_file: str | None
) -> None:
    """Print the head's audit log: who did what, oldest first (needs an admin token)."""
    client = head.client(address, token_file, AccessClient)
    while True:
        events = head.call(client.read_audit, after, limit)
        for event in events:
            click.echo(json.dumps(event) if fmt == "json" else _line(event))
            after = max(after, int(event["seq"]))
        if len(events) >= limit:
            continue  # more are waiting
        if not follow:
            return
        time.sleep(_FOLLOW_POLL_S)

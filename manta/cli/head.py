"""What the commands that talk to the head's HTTP service share: where it is, which
token to send, and errors shown as one line with exit status 1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import click

from manta.job_submission.sdk import SubmissionClient

C = TypeVar("C", bound=SubmissionClient)

address_option = click.option(
    "--address",
    default=None,
    help="The head's dashboard, http://HOST:PORT (else $MANTA_ADDRESS, $RAY_ADDRESS, or the "
    "cluster running on this host).",
)
token_option = click.option(
    "--token-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="File holding the token to send: the cluster's, or one `manta token create` issued "
    "(else $MANTA_AUTH_TOKEN, or this host's session).",
)


def client(address: str | None, token_file: str | None, kind: type[C]) -> C:
    """A ``kind`` client of the head at ``address``, sending the token in ``token_file``."""
    headers = None
    if token_file:
        try:
            with open(token_file) as f:
                token = f.read().strip()
        except OSError as e:
            raise click.BadParameter(f"cannot read the token file: {e}", param_hint="--token-file") from None
        if not token:
            raise click.BadParameter(f"the token file {token_file} is empty", param_hint="--token-file")
        headers = {"Authorization": f"Bearer {token}"}
    try:
        return kind(address, headers=headers)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise click.ClickException(str(e)) from None


def echo_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows as aligned columns (the first row is the header); the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo(
            "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        )


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn``'s result, with the client's errors shown as one line and exit status 1."""
    try:
        return fn(*args, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None

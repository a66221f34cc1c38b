"""``manta logs``: list the cluster's log files and print or follow one, found by its name
or by the actor, task, worker pid or submitted job that wrote it (Ray's ``ray logs``:
``manta logs FILE`` is ``manta logs cluster FILE``).

It reads the node daemons directly with the cluster's credential, so it runs on a host of
the cluster; elsewhere, use the head's HTTP API (``/api/v0/logs``) with a token.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from manta.cli.cluster import running_session

_T = TypeVar("_T")
_TAIL_HELP = "Print the last N lines (default 1000; -1 for the whole file)."


class _LogsGroup(click.Group):
    """A first argument that is no subcommand is the ``cluster`` subcommand's (as in Ray:
    ``manta logs node.err --tail 20``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["cluster", *args]
        return super().parse_args(ctx, args)


def _common(nodes: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                "--address",
                default=None,
                help="The cluster's HOST:PORT (default: $MANTA_ADDRESS, else the newest cluster on this host).",
            ),
            click.option("-f", "--follow", is_flag=True, help="Keep printing what is written to it."),
            click.option("--tail", type=int, default=None, help=_TAIL_HELP),
            click.option("--timeout", type=int, default=30, show_default=True, help="Seconds per request."),
        ]
        if nodes:
            options += [
                click.option(
                    "-id", "--node-id", default=None, help="The node (its id, or 8+ leading hex digits)."
                ),
                click.option("-ip", "--node-ip", default=None, help="The node with this IP address."),
            ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


_ERR = click.option("--err", is_flag=True, help="The worker's stderr instead of its stdout.")


@click.group("logs", cls=_LogsGroup)
def logs() -> None:
    """List the cluster's log files, or print one (by name, actor, task, worker pid or job).

    \b
    manta logs                         every node's log files
    manta logs node.err --tail 50      the head node's node.err (its last 50 lines)
    manta logs actor --id ID -f        follow an actor's stdout
    manta logs task --id ID --err      a task's stderr
    manta logs worker --pid 1234       a worker's stdout
    manta logs job --id SUBMISSION_ID  a submitted job's driver output
    """


@logs.command("cluster")
@click.argument("glob_filter", required=False, default="*")
@_common()
def cluster_logs(glob_filter: str, node_id: str | None, node_ip: str | None, **kw: Any) -> None:
    """List the log files matching GLOB_FILTER on every node (or the one given); when one
    file matches, print it."""
    from manta._private.api import logs as api

    async def run(gcs: Any, token: bytes, config: Any) -> None:
        listings = await api.list_logs(gcs, token, config, node_id, node_ip, glob_filter)
        names = {row[0] for _info, listing in listings for row in listing.files}
        if glob_filter != "*" and len(names) == 1:
            target = await api.file_target(gcs, token, config, names.pop(), node_id, node_ip)
            await _print(target, token, config, **kw)
        elif not names and glob_filter != "*":
            raise api.LogLookupError(f"no log file matches {glob_filter!r} on {_where(node_id, node_ip)}")
        elif kw["follow"]:
            raise api.LogLookupError(f"--follow needs one file; {len(names)} match {glob_filter!r}", 400)
        else:
            click.echo(_listing(listings), nl=False)

    _run(kw["address"], run)


@logs.command("actor")
@click.option("-a", "--id", "actor_id", default=None, help="The actor's id.")
@click.option("-pid", "--pid", type=int, default=None, help="The pid of the actor's worker.")
@_ERR
@_common()
def actor_logs(
    actor_id: str | None, pid: int | None, err: bool, node_id: str | None, node_ip: str | None, **kw: Any
) -> None:
    """Print an actor's output (its worker's stdout, or stderr with --err)."""
    from manta._private.api import logs as api

    if (actor_id is None) == (pid is None):
        raise click.UsageError("give the actor's --id or its worker's --pid")

    async def run(gcs: Any, token: bytes, config: Any) -> None:
        if actor_id is not None:
            target = await api.actor_target(gcs, actor_id, err)
        else:
            assert pid is not None
            target = await api.pid_target(gcs, token, config, pid, node_id, node_ip, err)
        await _print(target, token, config, **kw)

    _run(kw["address"], run)


@logs.command("task")
@click.option("--id", "task_id", required=True, help="The task's id.")
@click.option("-a", "--attempt-number", type=int, default=0, show_default=True, help="Which attempt.")
@_ERR
@_common(nodes=False)
def task_logs(task_id: str, attempt_number: int, err: bool, **kw: Any) -> None:
    """Print what a task printed (the lines its worker wrote while it ran; for an actor's
    task, the actor's whole log)."""
    from manta._private.api import logs as api

    async def run(gcs: Any, token: bytes, config: Any) -> None:
        await _print(await api.task_target(gcs, task_id, attempt_number, err), token, config, **kw)

    _run(kw["address"], run)


@logs.command("worker")
@click.option("-pid", "--pid", type=int, required=True, help="The worker's pid.")
@_ERR
@_common()
def worker_logs(pid: int, err: bool, node_id: str | None, node_ip: str | None, **kw: Any) -> None:
    """Print a worker process's output."""
    from manta._private.api import logs as api

    async def run(gcs: Any, token: bytes, config: Any) -> None:
        await _print(
            await api.pid_target(gcs, token, config, pid, node_id, node_ip, err), token, config, **kw
        )

    _run(kw["address"], run)


@logs.command("job")
@click.option("--id", "submission_id", required=True, help="The job's submission id.")
@_common(nodes=False)
def job_logs(submission_id: str, **kw: Any) -> None:
    """Print the output of a submitted job's driver."""
    from manta._private.api import logs as api

    async def run(gcs: Any, token: bytes, config: Any) -> None:
        await _print(await api.job_target(gcs, token, config, submission_id), token, config, **kw)

    _run(kw["address"], run)


def _where(node_id: str | None, node_ip: str | None) -> str:
    return "that node" if node_id or node_ip else "any live node"


def _listing(listings: list[Any]) -> str:
    from manta._private.api.logs import categorize

    out = []
    for info, listing in listings:
        out.append(
            f"Node ID: {info.node_id.hex()} (IP: {info.host}{', head' if info.is_head else ''})\n---\n"
        )
        for group, names in sorted(categorize([row[0] for row in listing.files]).items()):
            out.append(f"{group}:\n" + "".join(f"- {name}\n" for name in names))
        out.append("\n")
    return "".join(out)


async def _print(
    target: Any, token: bytes, config: Any, *, follow: bool, tail: int | None, timeout: int, **_: Any
) -> None:
    from manta._private.api import logs as api

    lines = api.DEFAULT_TAIL if tail is None else tail
    if target.note:
        click.echo(target.note, err=True)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    connections = api.NodeConnections(lambda: (token, config), timeout=timeout)
    async with connections.connection(target.node) as conn:
        reader = api.LogReader(conn, target, lines, follow, timeout)
        if follow:
            # Ctrl-C ends the follow between reads (a cancelled wait_for may not end it).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, reader.stop)
        first = True
        async with contextlib.aclosing(reader.chunks()) as chunks:
            async for chunk in chunks:
                if isinstance(chunk, api.Notice):
                    sys.stdout.flush()
                    click.echo(f"--- {chunk.text} ---", err=True)
                    continue
                if first and reader.truncated:
                    # The lines that came, not the number asked for: fewer when they did not fit.
                    click.echo(
                        f"--- the last {reader.lines_kept} lines of {target.filename} on node "
                        f"{target.node.node_id.hex()[:12]} (--tail -1 for all of it) ---",
                        err=True,
                    )
                first = False
                sys.stdout.write(decoder.decode(chunk))
                sys.stdout.flush()


def _run(address: str | None, body: Callable[[Any, bytes, Any], Awaitable[_T]]) -> _T | None:
    """Run ``body(gcs, token, config)`` against the cluster at ``address`` (this host's),
    turning lookup failures, and a cluster that does not answer, into one-line errors."""
    from manta._private.api.logs import LogLookupError
    from manta._private.common.config import Config
    from manta._private.common.session import gcs_address_of, read_token
    from manta._private.rpc.endpoints import connect
    from manta._private.rpc.transport import ConnectionLost, Dispatcher
    from manta.exceptions import AuthenticationError, RpcError

    session_dir, info = running_session(address)
    token = read_token(session_dir)
    config = Config.from_env()
    gcs_address = gcs_address_of(info)

    async def main() -> _T:
        gcs = await connect(
            gcs_address, token, Dispatcher(), kind="cli", max_frame_bytes=config.max_frame_bytes
        )
        try:
            return await body(gcs, token, config)
        finally:
            gcs.close()

    try:
        return asyncio.run(main())
    except LogLookupError as e:
        raise click.ClickException(str(e)) from None
    except ConnectionLost as e:
        raise click.ClickException(f"cannot reach the cluster: {e}") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise click.ClickException(
            "the cluster did not answer in time (--timeout seconds per request): is the node busy "
            "or unreachable? Try again, or with a larger --timeout"
        ) from None
    except (RpcError, AuthenticationError) as e:  # a node's handler failed, or refused us
        raise click.ClickException(f"the cluster could not answer: {e or type(e).__name__}") from None
    except KeyboardInterrupt:  # the end of --follow
        return None

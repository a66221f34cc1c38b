"""``manta``: start, stop and inspect Manta clusters from the shell."""

from __future__ import annotations

import json

import click

from manta._private.common.version import __version__
from manta.cli.access import audit, token
from manta.cli.cert import cert
from manta.cli.cluster import cluster_gcs, running_session, start, status, stop
from manta.cli.job import job
from manta.cli.logs import logs
from manta.cli.state import get_command, list_command, summary_command, timeline_command, why_command


@click.group()
@click.version_option(__version__, prog_name="manta")
def cli() -> None:
    """Manta: Ray's programming model, fast to start and secure by default."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def memory(as_json: bool) -> None:
    """List every object: size, owner, where it lives and why it is still alive."""
    import asyncio
    import dataclasses

    from manta._private.api import memory as mem
    from manta._private.common.config import Config
    from manta._private.common.session import read_token
    from manta._private.rpc import messages as m

    with cluster_gcs(None) as gcs:
        states = gcs.call(m.GetNodes())
    session_dir, _info = running_session()
    reports = asyncio.run(mem.gather_reports(states, read_token(session_dir), Config.from_env()))
    nodes = mem.summarize(reports)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(n) for n in nodes], indent=2))
    else:
        click.echo(mem.render(nodes))


cli.add_command(start)
cli.add_command(stop)
cli.add_command(status)
cli.add_command(job)
cli.add_command(logs)
cli.add_command(token)
cli.add_command(audit)
cli.add_command(cert)
cli.add_command(list_command)
cli.add_command(get_command)
cli.add_command(summary_command)
cli.add_command(timeline_command)
cli.add_command(why_command)


def main() -> None:
    cli(prog_name="manta")


if __name__ == "__main__":
    main()

"""``manta list tasks``, ``manta get tasks ID``, ``manta summary tasks``, ``manta why ID`` and
``manta timeline``: the task-event store from the command line, as tables or as JSON or YAML
(Ray's ``ray list``/``ray get``/``ray summary``/``ray timeline``)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from manta._private.common import task_events as te
from manta.cli.cluster import cluster_gcs

_ADDRESS = click.option(
    "--address",
    default=None,
    help="The cluster's HOST:PORT (default: $MANTA_ADDRESS, else the newest cluster on this host).",
)
_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["default", "table", "json", "yaml"]),
    default="default",
    help="Output format (default: a table, or YAML with --detail).",
)
_RESOURCES = ("tasks",)
# A table's columns (the rest are in --format json/yaml and --detail); ids other than the
# task's are cut to their first 12 characters there.
_TABLE_COLUMNS = ("task_id", "attempt_number", "name", "state", "type", "node_id", "worker_pid", "error_type")
_SHORT = frozenset({"node_id", "worker_id", "job_id", "actor_id", "parent_task_id"})


@click.command("list")
@click.argument("resource", type=click.Choice(_RESOURCES))
@click.option(
    "--filter",
    "-f",
    "filters",
    multiple=True,
    metavar="COLUMN=VALUE",
    help="Keep records whose COLUMN is (=) or is not (!=) VALUE; repeat to combine. "
    "E.g. --filter state=FAILED.",
)
@click.option(
    "--limit", default=100, show_default=True, help=f"At most this many records (up to {te.MAX_LIMIT})."
)
@click.option("--detail", is_flag=True, help="Every field, not just the main columns.")
@_FORMAT
@_ADDRESS
def list_command(
    resource: str, filters: tuple[str, ...], limit: int, detail: bool, fmt: str, address: str | None
) -> None:
    """List the cluster's RESOURCE (tasks: every attempt the gcs's store keeps, oldest first)."""
    from manta._private.rpc import messages as m

    wire = [list(parse_filter(f)) for f in filters]
    if limit > te.MAX_LIMIT:
        click.echo(
            f"--limit {limit} is more than a listing returns; showing at most {te.MAX_LIMIT}.", err=True
        )
    with cluster_gcs(address) as gcs:
        listing: m.TaskListing = gcs.call(m.ListTasks(wire, max(0, min(limit, te.MAX_LIMIT)), detail))
    _show(listing.records, fmt, detail)
    if listing.matched > len(listing.records):
        click.echo(
            f"({len(listing.records)} of {listing.matched} matching; raise --limit to see more)", err=True
        )
    if listing.dropped:
        click.echo(f"({listing.dropped} task events were dropped before reaching the store)", err=True)


@click.command("get")
@click.argument("resource", type=click.Choice(_RESOURCES))
@click.argument("id")
@_FORMAT
@_ADDRESS
def get_command(resource: str, id: str, fmt: str, address: str | None) -> None:
    """Every field of one of the cluster's RESOURCE by ID (a task: each of its attempts)."""
    from manta._private.rpc import messages as m

    with cluster_gcs(address) as gcs:
        listing: m.TaskListing = gcs.call(m.ListTasks([["task_id", "=", id]], te.MAX_LIMIT, True))
    if not listing.records:
        raise click.ClickException(f"no task {id} in the cluster's task-event store")
    _show(listing.records, fmt, True)


@click.command("summary")
@click.argument("resource", type=click.Choice(_RESOURCES))
@_FORMAT
@_ADDRESS
def summary_command(resource: str, fmt: str, address: str | None) -> None:
    """Count the cluster's RESOURCE by function (or actor method) and state."""
    from manta._private.rpc import messages as m

    with cluster_gcs(address) as gcs:
        summary: dict[str, Any] = gcs.call(m.SummarizeTasks())
    if fmt in ("json", "yaml"):
        _dump({"cluster": summary}, fmt)
        return
    rows = [
        {
            "func_or_class_name": name,
            "type": entry["type"],
            "state_counts": ", ".join(f"{state}: {n}" for state, n in sorted(entry["state_counts"].items())),
        }
        for name, entry in sorted(summary["summary"].items())
    ]
    title = (
        f"{summary['total_tasks']} tasks, {summary['total_actor_tasks']} actor tasks "
        f"({summary['evicted']} older attempts evicted)"
    )
    _table(rows, ("func_or_class_name", "type", "state_counts"), title)


@click.command("timeline")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write (default: a new file here).",
)
@_ADDRESS
def timeline_command(output: str | None, address: str | None) -> None:
    """Write the tasks that ran as a Chrome trace (open it in https://ui.perfetto.dev)."""
    from manta._private.api.timeline import trace_events
    from manta._private.rpc import messages as m

    with cluster_gcs(address) as gcs:
        rows = gcs.call(m.TaskTimeline(), timeout=60)
    path = output or time.strftime("manta-timeline-%Y-%m-%d_%H-%M-%S.json")
    with open(path, "w") as f:
        json.dump(trace_events(rows, now=time.time()), f)
    click.echo(f"{len(rows)} task attempts written to {path}; open it in https://ui.perfetto.dev")


@click.command("why")
@click.argument("id")
@_ADDRESS
def why_command(id: str, address: str | None) -> None:
    """Why the task ID (or the task making the object ID) has not finished."""
    from manta._private.rpc import messages as m
    from manta.util.state.api import task_id_of

    try:
        task_id = task_id_of(id)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="ID") from None
    with cluster_gcs(address) as gcs:
        lines: list[str] = gcs.call(m.ExplainTask(task_id))
    click.echo("\n".join(lines))


def parse_filter(text: str) -> tuple[str, str, str]:
    """``COLUMN=VALUE`` or ``COLUMN!=VALUE`` as a (column, operator, value) filter."""
    op = "!=" if "!=" in text else "="
    key, sep, value = text.partition(op)
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: write COLUMN=VALUE or COLUMN!=VALUE", param_hint="--filter")
    try:
        te.check_filter(key, op)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--filter") from None
    return key, op, value.strip()


def _show(records: list[dict[str, Any]], fmt: str, detail: bool) -> None:
    if fmt == "default":
        fmt = "yaml" if detail else "table"
    if fmt == "table":
        _table(records, _TABLE_COLUMNS, f"{len(records)} records")
    else:
        _dump(records, fmt)


def _dump(value: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        import yaml

        click.echo(yaml.safe_dump(value, sort_keys=True), nl=False)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    # Piped output is for reading later or grepping: ids whole, not folded at 80 columns.
    width = None if sys.stdout.isatty() else 200
    Console(soft_wrap=False, width=width).print(table)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    return str(value)[:12] if column in _SHORT else str(value)

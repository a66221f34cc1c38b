"""``manta list RESOURCE``, ``manta get RESOURCE ID``, ``manta summary tasks|actors|objects``,
``manta why ID`` and ``manta timeline``: the state API (``manta.util.state``) from the
command line, as tables or as JSON or YAML (Ray's ``ray list``/``ray get``/``ray summary``/
``ray timeline``)."""

from __future__ import annotations

import dataclasses
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
    help="The cluster's HOST:PORT on this host, or the head's dashboard http://HOST:PORT (with "
    "$MANTA_AUTH_TOKEN) from elsewhere (default: $MANTA_ADDRESS, else the newest cluster here).",
)
_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["default", "table", "json", "yaml"]),
    default="default",
    help="Output format (default: a table, or YAML with --detail).",
)
_RESOURCES = ("actors", "jobs", "nodes", "objects", "placement_groups", "runtime_envs", "tasks", "workers")
# A table's columns (the rest are in --format json/yaml and --detail); ids other than the
# listed resource's own are cut to their first 12 characters there.
_TABLE_COLUMNS = {
    "tasks": ("task_id", "attempt_number", "name", "state", "type", "node_id", "worker_pid", "error_type"),
    "actors": ("actor_id", "class_name", "state", "name", "pid", "node_id"),
    "nodes": ("node_id", "node_ip", "is_head_node", "state", "node_name"),
    "workers": ("worker_id", "worker_type", "is_alive", "pid", "node_id", "exit_type"),
    "placement_groups": ("placement_group_id", "name", "state"),
    "objects": ("object_id", "object_size", "reference_type", "task_status", "type", "pid", "ip"),
    "jobs": ("job_id", "submission_id", "type", "status", "entrypoint"),
    "runtime_envs": ("runtime_env", "success", "creation_time_ms", "node_id"),
}
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
    from manta.util.state.api import fetch

    wanted = [parse_filter(resource, f) for f in filters]
    fetched = _ask(lambda: fetch(resource, _address(address), wanted, limit, 30, detail))
    _show(resource, [_plain(r) for r in fetched.records], fmt, detail)
    if fetched.matched > len(fetched.records):
        click.echo(
            f"({len(fetched.records)} of {fetched.matched} matching; raise --limit to see more)", err=True
        )
    for warning in fetched.warnings:
        click.echo(f"({warning})", err=True)


@click.command("get")
@click.argument("resource", type=click.Choice(_RESOURCES))
@click.argument("id")
@_FORMAT
@_ADDRESS
def get_command(resource: str, id: str, fmt: str, address: str | None) -> None:
    """Every field of one of the cluster's RESOURCE by ID (a task: each of its attempts; an
    object: each reference to it)."""
    from manta.util.state import common
    from manta.util.state.api import fetch, task_id_of

    if resource not in common.ID_COLUMNS:
        raise click.BadParameter(f"{resource} are listed, not gotten by id: use `manta list {resource}`")
    if resource == "tasks":
        try:
            id = task_id_of(id).hex()
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="ID") from None
    for column in common.id_columns(resource):
        condition = [(column, "=", id)]
        fetched = _ask(lambda c=condition: fetch(resource, _address(address), c, common.MAX_LIMIT, 30, True))
        if fetched.records:
            break
    if not fetched.records:
        noun = resource[:-1].replace("_", " ")
        raise click.ClickException(
            f"no {noun} with id {id!r} in the cluster (`manta list {resource}` lists them)"
        )
    _show(resource, [_plain(r) for r in fetched.records], fmt, True)


@click.command("summary")
@click.argument("resource", type=click.Choice(("actors", "objects", "tasks")))
@_FORMAT
@_ADDRESS
def summary_command(resource: str, fmt: str, address: str | None) -> None:
    """Count the cluster's RESOURCE: tasks by function (or actor method) and state, actors
    by class and state, objects by the call site that made them."""
    from manta.util import state

    summarize = getattr(state, f"summarize_{resource}")
    summary: dict[str, Any] = _ask(lambda: summarize(address=_address(address)))
    if fmt in ("json", "yaml"):
        _dump(summary, fmt)
        return
    cluster = summary["cluster"]
    if resource == "tasks":
        columns: tuple[str, ...] = ("func_or_class_name", "type", "state_counts")
        title = f"{cluster['total_tasks']} tasks, {cluster['total_actor_tasks']} actor tasks"
    elif resource == "actors":
        columns, title = ("class_name", "state_counts"), f"{cluster['total_actors']} actors"
    else:
        columns = ("call_site", "total_objects", "total_size_mb", "ref_type_counts")
        title = f"{cluster['total_objects']} objects, {cluster['total_size_mb']:.2f} MiB"
    rows = [
        {"call_site": key, **{k: _counts(v) if isinstance(v, dict) else v for k, v in entry.items()}}
        for key, entry in sorted(cluster["summary"].items())
    ]
    _table(rows, columns, title, own_id="")


def _plain(record: Any) -> dict[str, Any]:
    """A record as plain JSON/YAML values (a job's has enums and a DriverInfo)."""
    return record.to_json() if hasattr(record, "to_json") else dataclasses.asdict(record)  # type: ignore[no-any-return]


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {n}" for key, n in sorted(counts.items()))


def _address(address: str | None) -> str | None:
    from manta._private.common.config import Config

    return address or Config.from_env().address or None


def _ask(call: Any) -> Any:
    """A state call's answer; what went wrong as a message rather than a traceback."""
    try:
        return call()
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None


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
    from manta.util.state.api import explain, task_id_of

    try:
        task_id_of(id)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="ID") from None
    click.echo(_ask(lambda: explain(id, address=_address(address))))


def parse_filter(resource: str, text: str) -> tuple[str, str, str]:
    """``COLUMN=VALUE`` or ``COLUMN!=VALUE`` as a (column, operator, value) filter."""
    from manta.util.state import common

    op = "!=" if "!=" in text else "="
    key, sep, value = text.partition(op)
    key = key.strip()
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: write COLUMN=VALUE or COLUMN!=VALUE", param_hint="--filter")
    try:
        common.check_filters(resource, [(key, op, value)])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--filter") from None
    return key, op, value.strip()


def _show(resource: str, records: list[dict[str, Any]], fmt: str, detail: bool) -> None:
    from manta.util.state import common

    if fmt == "default":
        fmt = "yaml" if detail else "table"
    if fmt == "table":
        _table(
            records, _TABLE_COLUMNS[resource], f"{len(records)} records", common.ID_COLUMNS.get(resource, "")
        )
    else:
        _dump(records, fmt)


def _dump(value: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        import yaml

        click.echo(yaml.safe_dump(value, sort_keys=True), nl=False)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str, own_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(c, row.get(c), c != own_id) for c in columns))
    # Piped output is for reading later or grepping: ids whole, not folded at 80 columns.
    width = None if sys.stdout.isatty() else 200
    Console(soft_wrap=False, width=width).print(table)


def _cell(column: str, value: Any, shorten: bool) -> str:
    if value is None:
        return ""
    return str(value)[:12] if shorten and column in _SHORT else str(value)

"""``/api/v0/tasks``: the task-event store over HTTP, in the paths and shapes of Ray's state
API server (``filter_keys``/``filter_predicates``/``filter_values`` query lists, results
under ``data.result``), so tools written for Ray's can read it; any caller with the read
role may."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from manta._private.api.timeline import trace_events
from manta._private.common import task_events as te
from manta._private.rpc import messages as m
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import RequestError, Route, json_response


def task_query(query: Any) -> tuple[list[list[str]], int, bool, list[str]]:
    """(filters, limit, detail, warnings) from a listing's query parameters; RequestError
    for what cannot be answered, naming what can."""
    keys, ops, values = (
        query.getall(name, []) for name in ("filter_keys", "filter_predicates", "filter_values")
    )
    if not len(keys) == len(ops) == len(values):
        raise RequestError(
            "filter_keys, filter_predicates and filter_values must be given the same number of times "
            f"(got {len(keys)}, {len(ops)} and {len(values)})"
        )
    filters = []
    for key, op, value in zip(keys, ops, values, strict=True):
        try:
            te.check_filter(key, op)
        except ValueError as e:
            raise RequestError(str(e)) from None
        filters.append([key, op, value])
    raw_limit = query.get("limit", "100")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise RequestError(f"query parameter 'limit' must be an integer, got {raw_limit[:40]!r}") from None
    if limit < 0:
        raise RequestError(f"query parameter 'limit' must be at least 0, got {limit}")
    warnings = []
    if limit > te.MAX_LIMIT:
        warnings.append(f"limit={limit} is more than a listing returns; at most {te.MAX_LIMIT} are")
        limit = te.MAX_LIMIT
    detail = query.get("detail", "false").lower() in ("1", "true", "yes")
    return filters, limit, detail, warnings


def _answer(result: Any) -> web.Response:
    return json_response({"result": True, "msg": "", "data": {"result": result}})


def routes(gcs: GcsLink) -> list[Route]:
    async def list_tasks(request: web.Request) -> web.Response:
        filters, limit, detail, warnings = task_query(request.query)
        listing: m.TaskListing = await gcs.call(m.ListTasks(filters, limit, detail))
        if listing.dropped:
            warnings.append(f"{listing.dropped} task events were dropped before they reached the store")
        return _answer(
            {
                "result": listing.records,
                "total": listing.total,
                "num_filtered": listing.matched,
                "num_after_truncation": len(listing.records),
                "partial_failure_warning": "",
                "warnings": warnings,
            }
        )

    async def summarize_tasks(request: web.Request) -> web.Response:
        summary: dict[str, Any] = await gcs.call(m.SummarizeTasks())
        return _answer({"node_id_to_summary": {"cluster": summary}})

    async def timeline(request: web.Request) -> web.Response:
        rows = await gcs.call(m.TaskTimeline())
        return json_response(trace_events(rows, now=time.time()))

    return [
        Route(
            "GET",
            "/api/v0/tasks",
            list_tasks,
            "Task attempts, oldest first: ?limit= (default 100, at most 10000), ?detail=true, and "
            "filters as repeated ?filter_keys=&filter_predicates=&filter_values= (= or !=).",
        ),
        Route(
            "GET", "/api/v0/tasks/summarize", summarize_tasks, "Task attempts counted by function and state."
        ),
        Route(
            "GET", "/api/v0/tasks/timeline", timeline, "The task attempts that ran, as Chrome trace events."
        ),
    ]

"""``/api/v0/<resource>``: the state API over HTTP, in the paths and shapes of Ray's state
API server (``filter_keys``/``filter_predicates``/``filter_values`` query lists, results
under ``data.result``), so tools written for Ray's can read it, and ``manta.util.state``
with an ``http://`` address reads it. Records carry every field (the client drops the
detail ones it was not asked for). Any caller with the read role may."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from aiohttp import web

from manta._private.api.timeline import trace_events
from manta._private.rpc import messages as m
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.routing import Handler, RequestError, Route, int_query, json_response
from manta.util.state import common
from manta.util.state.api import task_id_of

_LISTED = ("actors", "nodes", "workers", "placement_groups", "objects", "jobs", "runtime_envs")


class ListingQuery(NamedTuple):
    filters: list[common.Filter]
    limit: int
    offset: int  # a Manta extension (Ray's API has none): pages of a long listing
    detail: bool
    warnings: list[str]


def listing_query(resource: str, request: web.Request) -> ListingQuery:
    """A listing's query parameters; RequestError for what cannot be answered, naming
    what can."""
    query = request.query
    keys, ops, values = (
        query.getall(name, []) for name in ("filter_keys", "filter_predicates", "filter_values")
    )
    if not len(keys) == len(ops) == len(values):
        raise RequestError(
            "filter_keys, filter_predicates and filter_values must be given the same number of times "
            f"(got {len(keys)}, {len(ops)} and {len(values)})"
        )
    try:
        filters = common.check_filters(resource, list(zip(keys, ops, values, strict=True)))
        limit, warning = common.capped_limit(int_query(request, "limit", common.DEFAULT_LIMIT, 0, 2**62))
    except ValueError as e:
        raise RequestError(str(e)) from None
    detail = query.get("detail", "false").lower() in ("1", "true", "yes")
    offset = int_query(request, "offset", 0, 0, 2**62)
    return ListingQuery(filters, limit, offset, detail, [warning] if warning else [])


def _answer(result: Any) -> web.Response:
    return json_response({"result": True, "msg": "", "data": {"result": result}})


def _listed(rows: list[Any], total: int, matched: int, warnings: list[str]) -> web.Response:
    return _answer(
        {
            "result": rows,
            "total": total,
            "num_filtered": matched,
            "num_after_truncation": len(rows),
            "partial_failure_warning": "",
            "warnings": warnings,
        }
    )


def _list_tasks(gcs: GcsLink) -> Handler:
    async def list_tasks(request: web.Request) -> web.Response:
        q = listing_query("tasks", request)
        warnings = q.warnings
        wire = [[k, op, str(v)] for k, op, v in q.filters]
        listing: m.TaskListing = await gcs.call(m.ListTasks(wire, q.limit, q.detail, q.offset))
        if listing.dropped:
            warnings.append(f"{listing.dropped} task events were dropped before they reached the store")
        return _listed(listing.records, listing.total, listing.matched, warnings)

    return list_tasks


def _lister(gcs: GcsLink, resource: str) -> Handler:
    async def list_resource(request: web.Request) -> web.Response:
        q = listing_query(resource, request)
        rows = await gcs.gatherer().rows(resource)
        chosen, matched = common.select(rows, q.filters, q.limit, q.offset)
        return _listed(list(chosen), len(rows), matched, q.warnings)

    return list_resource


def _getter(gcs: GcsLink, resource: str) -> Handler:
    async def get_resource(request: web.Request) -> web.Response:
        wanted = request.match_info["id"]
        rows = await gcs.gatherer().rows(resource)
        columns = common.id_columns(resource)
        found = next((hits for c in columns if (hits := [r for r in rows if str(r.get(c)) == wanted])), [])
        if not found:
            noun = resource[:-1].replace("_", " ")
            raise web.HTTPNotFound(text=f"no {noun} has id {wanted[:100]!r}; list_{resource} lists them")
        return _answer(found if resource == "objects" else found[0])

    return get_resource


def _summarizer(gcs: GcsLink, resource: str) -> Handler:
    async def summarize(request: web.Request) -> web.Response:
        if resource == "tasks":
            summary = common.public_task_summary(await gcs.call(m.SummarizeTasks()))
        else:
            rows = await gcs.gatherer().rows(resource)
            make = common.summarize_actors if resource == "actors" else common.summarize_objects
            summary = make(rows)
        return _answer({"node_id_to_summary": {"cluster": summary}})

    return summarize


def _timeline(gcs: GcsLink) -> Handler:
    async def timeline(request: web.Request) -> web.Response:
        rows = await gcs.call(m.TaskTimeline())
        return json_response(trace_events(rows, now=time.time()))

    return timeline


def _explain(gcs: GcsLink) -> Handler:
    async def explain(request: web.Request) -> web.Response:
        try:
            task_id = task_id_of(request.match_info["id"])
        except ValueError as e:
            raise RequestError(str(e)) from None
        return _answer(await gcs.call(m.ExplainTask(task_id)))

    return explain


_FILTERS_DOC = (
    "?limit= (default 100, at most 10000), ?offset= (skip that many: pages), ?detail=true, and filters as repeated "
    "?filter_keys=&filter_predicates=&filter_values= (= or !=) on any field of the records."
)


def routes(gcs: GcsLink) -> list[Route]:
    found = [
        Route("GET", "/api/v0/tasks", _list_tasks(gcs), "Task attempts, oldest first: " + _FILTERS_DOC),
        Route(
            "GET",
            "/api/v0/tasks/summarize",
            _summarizer(gcs, "tasks"),
            "Task attempts counted by function and state.",
        ),
        Route(
            "GET",
            "/api/v0/tasks/timeline",
            _timeline(gcs),
            "The task attempts that ran, as Chrome trace events.",
        ),
        Route(
            "GET",
            "/api/v0/tasks/{id}/explain",
            _explain(gcs),
            "Why a task (by its id, or an object id it returns) has not finished, as lines of reasons.",
            responses={200: "OK", 400: "Not a task or object id"},
        ),
    ]
    for resource in _LISTED:
        noun = resource.replace("_", " ")
        found.append(
            Route(
                "GET", f"/api/v0/{resource}", _lister(gcs, resource), f"The cluster's {noun}: " + _FILTERS_DOC
            )
        )
        if resource in ("actors", "objects"):
            found.append(
                Route(
                    "GET", f"/api/v0/{resource}/summarize", _summarizer(gcs, resource), f"The {noun} counted."
                )
            )
        if resource not in common.ID_COLUMNS:
            continue
        found.append(
            Route(
                "GET",
                f"/api/v0/{resource}/{{id}}",
                _getter(gcs, resource),
                f"One of the {noun} by its id (objects: every reference to it), every field.",
                responses={200: "OK", 404: "No such id"},
            )
        )
    return found

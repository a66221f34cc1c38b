"""``/metrics``: the cluster's metrics in Prometheus' text format (point Prometheus at the
head with a read token: ``authorization: {credentials: <token>}`` in its scrape config);
``/api/v0/metrics/history``: the last minutes of a few cluster-wide series, as JSON, for
the dashboard's charts. Any caller with the read role may read both."""

from __future__ import annotations

import math

from aiohttp import web

from manta._private.common.exposition import CONTENT_TYPE
from manta.dashboard.cluster_metrics import ClusterMetrics
from manta.dashboard.routing import RequestError, Route, json_response


def _since(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        since = float(raw)
    except ValueError:
        raise RequestError(
            f"query parameter 'since' must be a number (seconds since the epoch), got {raw[:40]!r}"
        ) from None
    if not math.isfinite(since):
        raise RequestError("query parameter 'since' must be a finite number")
    return since


def routes(metrics: ClusterMetrics) -> list[Route]:
    async def prometheus_metrics(request: web.Request) -> web.Response:
        return web.Response(body=await metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def metrics_history(request: web.Request) -> web.Response:
        return json_response(metrics.history_json(_since(request.query.get("since"))))

    async def node_use(request: web.Request) -> web.Response:
        return json_response(metrics.nodes)

    return [
        Route(
            "GET",
            "/api/v0/metrics/nodes",
            node_use,
            "Each node's use at the last sample, by node id: its host's CPU and memory, its object "
            "store's use and capacity, and the bytes it spilled.",
        ),
        Route(
            "GET",
            "/metrics",
            prometheus_metrics,
            "The cluster's metrics (the gcs's and every node's, with the user metrics of their processes) "
            "in Prometheus' text format.",
        ),
        Route(
            "GET",
            "/api/v0/metrics/history",
            metrics_history,
            "The last hour of cluster-wide CPU, memory, object store use, and tasks and actors by "
            "state, sampled every few seconds; ?since= (seconds since the epoch) returns only newer samples.",
        ),
    ]

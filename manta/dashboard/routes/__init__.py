"""One module per group of routes; ``all_routes`` gathers them for the server."""

from __future__ import annotations

from manta.dashboard.cluster_metrics import ClusterMetrics
from manta.dashboard.gcs_link import GcsLink
from manta.dashboard.job_manager import JobManager
from manta.dashboard.routing import Route


def all_routes(jobs: JobManager, gcs: GcsLink, max_upload: int, metrics: ClusterMetrics) -> list[Route]:
    from manta.dashboard.routes import actors, audit, logs, packages, state, tokens, version
    from manta.dashboard.routes import jobs as job_routes
    from manta.dashboard.routes import metrics as metric_routes

    return [
        *version.routes(),
        *job_routes.routes(jobs, gcs.audit),
        *packages.routes(jobs, max_upload),
        *tokens.routes(gcs),
        *audit.routes(gcs),
        *state.routes(gcs),
        *actors.routes(gcs),
        *logs.routes(gcs),
        *metric_routes.routes(metrics),
    ]

"""One module per group of routes; ``all_routes`` gathers them for the server."""

from __future__ import annotations

from manta.dashboard.job_manager import JobManager
from manta.dashboard.routing import Route


def all_routes(jobs: JobManager, max_upload: int) -> list[Route]:
    from manta.dashboard.routes import jobs as job_routes
    from manta.dashboard.routes import packages, version

    return [*version.routes(), *job_routes.routes(jobs), *packages.routes(jobs, max_upload)]

"""``manta.autoscaler.sdk`` (Ray's ``ray.autoscaler.sdk``): ask the autoscaler for capacity
ahead of the work that needs it."""

from __future__ import annotations

from manta._private.api.context import require_initialized
from manta._private.autoscaler import resource_request
from manta._private.rpc import messages as m

__all__ = ["request_resources"]


def request_resources(num_cpus: int | None = None, bundles: list[dict[str, float]] | None = None) -> None:
    """Have the cluster hold at least ``num_cpus`` one-CPU bundles plus ``bundles`` at once,
    counted against the nodes' totals (what runs there does not matter), until the next
    call replaces the request; ``request_resources(num_cpus=0)`` withdraws it. Returns at
    once: the autoscaler launches what is missing on its next round."""
    encoded = resource_request.encode(resource_request.bundles_of(num_cpus, bundles))
    worker = require_initialized("requesting resources")
    worker.call_gcs(m.KvPut(resource_request.NAMESPACE, resource_request.KEY, encoded, True))

"""The gcs's metrics: tasks and actors by state, placement groups, nodes, the task-event
store, and how long its requests take (``common/metric_defs.py`` names them).

Counted from the gcs's tables when asked (``GetMetrics``, from the head's HTTP service),
except tasks: the task-event store keeps its attempts counted by ``ray_tasks``'s labels
as its rows change, so a scrape costs as many steps as there are series, not a pass over
the store's 100,000 attempts (40 ms, every scrape and every history sample).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from manta._private.common import metric_defs as md
from manta._private.common import task_events as te
from manta._private.gcs import actor_manager as am
from manta._private.gcs.actor_manager import ActorRecord
from manta._private.gcs.node_manager import NodeRecord
from manta._private.gcs.pg_manager import GroupRecord
from manta._private.gcs.task_event_store import TaskEventStore
from manta._private.rpc.latency import LatencyHistogram

_SOURCE = "gcs"
_COMPONENT = "gcs"


def task_counts(store: TaskEventStore) -> dict[tuple[str, str, str, str], int]:
    """Attempts by (Name, State, IsRetry, JobId), from the store's kept counts."""
    return {
        (name, te.STATES[state], "1" if retry else "0", job.hex() if job else ""): n
        for (name, state, retry, job), n in store.counts().items()
    }


def actor_state(record: ActorRecord) -> str:
    """Ray's name for the actor's state (Ray splits pending into waiting for its
    constructor's arguments and waiting to be created)."""
    if record.state == am.PENDING:
        return "DEPENDENCIES_UNREADY" if record.waiting_args else "PENDING_CREATION"
    return record.state


def actor_counts(records: Iterable[ActorRecord]) -> Counter[tuple[str, str, str]]:
    """Actors by (Name, State, JobId)."""
    return Counter((r.spec.class_name, actor_state(r), r.spec.job_id.hex()) for r in records)


class GcsMetrics:
    def __init__(
        self,
        tasks: TaskEventStore,
        actors: dict[Any, ActorRecord],
        groups: dict[Any, GroupRecord],
        nodes: dict[Any, NodeRecord],
        latency: LatencyHistogram,
    ) -> None:
        self._tasks, self._actors, self._groups, self._nodes = tasks, actors, groups, nodes
        self.latency = latency

    def exposition(self) -> str:
        from manta._private.common import exposition as ex  # see its docstring: imported when first asked

        d = md.GCS_METRICS
        alive = sum(1 for n in self._nodes.values() if n.alive)
        families = [
            ex.family(
                d["ray_tasks"],
                (((*key, _SOURCE), n) for key, n in sorted(task_counts(self._tasks).items())),
            ),
            ex.family(
                d["ray_actors"],
                (((*key, _SOURCE), n) for key, n in sorted(actor_counts(self._actors.values()).items())),
            ),
            ex.family(
                d["ray_placement_groups"],
                (
                    ((state,), n)
                    for state, n in sorted(Counter(g.state for g in self._groups.values()).items())
                ),
            ),
            ex.family(d["ray_cluster_active_nodes"], [((), alive)]),
            ex.family(d["manta_cluster_dead_nodes"], [((), len(self._nodes) - alive)]),
            ex.family(d["ray_gcs_task_manager_task_events_stored"], [((), len(self._tasks))]),
            ex.family(
                d["ray_gcs_task_manager_task_events_dropped"],
                [(("STATUS_EVENT",), self._tasks.dropped_by_reporters)],
            ),
            ex.histogram(
                md.RPC_LATENCY.name,
                md.RPC_LATENCY.help,
                md.RPC_LATENCY.labels,
                self.latency.buckets_ms,
                (((method, _COMPONENT), counts) for method, counts in sorted(self.latency.by_method.items())),
            ),
        ]
        return ex.render(families).decode()

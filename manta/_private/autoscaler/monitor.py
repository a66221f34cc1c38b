"""The autoscaler's rounds (the shell around policy.plan): ask the gcs what the cluster
holds and waits for, decide, act through the node provider, and publish what it did and
why, for ``manta status``. A round that fails (the gcs away, a provider error) is logged
and the next one tries again: the autoscaler never dies of it."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from manta._private.autoscaler import resource_request
from manta._private.autoscaler.backoff import LaunchBackoff
from manta._private.autoscaler.config import AutoscalingConfig
from manta._private.autoscaler.policy import ClusterView, Plan, plan
from manta._private.autoscaler.provider import NodeProvider, ProviderError
from manta._private.autoscaler.view import IdleTimes, cluster_view
from manta._private.rpc import messages as m

logger = logging.getLogger("manta.autoscaler")

# Where each round's outcome is kept (namespace resource_request.NAMESPACE): `manta status` reads it.
STATUS_KEY = b"status"
_LIVE_ACTOR_STATES = ("ALIVE", "RESTARTING")
_KEEP_EVENTS = 10

Call = Callable[[Any], Awaitable[Any]]


class Monitor:
    def __init__(
        self,
        config: AutoscalingConfig,
        provider: NodeProvider,
        call: Call,
        join_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._provider = provider
        self._call = call
        self._join_timeout_s = join_timeout_s
        self._clock = clock
        self._idle = IdleTimes()
        self._backoff = LaunchBackoff()
        self._errors: deque[str] = deque(maxlen=_KEEP_EVENTS)
        self._ended: deque[str] = deque(maxlen=_KEEP_EVENTS)
        self._unjoined: dict[str, str] = {}  # launch id -> node type, until the node joins

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.round()
            except Exception as e:  # the gcs restarting, a provider hiccup: next round
                logger.warning("autoscaler round failed: %s: %s", type(e).__name__, e)
            await asyncio.sleep(interval_s)

    async def round(self) -> Plan:
        now = self._clock()
        view = await self._view(now)
        self._check_joins(view, now)
        decided = plan(self._config, view, now, self._join_timeout_s)
        await self._terminate(decided, now)
        await self._launch(decided, now)
        await self._publish(decided, view, now)
        return decided

    async def _view(self, now: float) -> ClusterView:
        nodes = await self._call(m.GetNodes())
        actors = await self._call(m.ListActors())
        waiting_actors = await self._call(m.GetActorDemand())
        groups = await self._call(m.ListPlacementGroups())
        try:
            raw = await self._call(m.KvGet(resource_request.NAMESPACE, resource_request.KEY))
            requested = resource_request.decode(raw)
        except ValueError as e:
            self._error(f"{e}; ignored (make one with request_resources)")
            requested = ()
        actor_nodes = {
            a.address.node_id.hex() for a in actors if a.state in _LIVE_ACTOR_STATES and a.address is not None
        }
        launched = await asyncio.to_thread(self._provider.launched)
        return cluster_view(
            self._config, nodes, actor_nodes, waiting_actors, groups, requested, launched, self._idle, now
        )

    def _check_joins(self, view: ClusterView, now: float) -> None:
        """A launched node that is gone before it joined is a failed launch: its type
        waits before the next (else a node that cannot start is relaunched every round)."""
        joined = {n.node_id for n in view.nodes if n.node_type}
        launching = {x.node_id for x in view.launching}
        for launch_id, name in list(self._unjoined.items()):
            if launch_id in joined:
                del self._unjoined[launch_id]
                self._backoff.succeeded(name)
            elif launch_id not in launching:
                del self._unjoined[launch_id]
                wait = self._backoff.failed(name, now)
                self._error(
                    f"the {name} node {launch_id} exited before it joined (its log says why); "
                    f"launching {name} again in {wait:.0f} s"
                )

    async def _terminate(self, decided: Plan, now: float) -> None:
        for launch_id, why in decided.terminate.items():
            logger.info("terminating node %s: %s", launch_id, why)
            try:
                await asyncio.to_thread(self._provider.terminate, launch_id)
            except ProviderError as e:
                self._error(f"terminating {launch_id} failed: {e}")
                continue
            self._ended.append(f"{_clock_text(now)} {launch_id}: {why}")

    async def _launch(self, decided: Plan, now: float) -> None:
        for name, count in sorted(decided.launch.items()):
            if not self._backoff.allowed(name, now):
                continue
            for _ in range(count):
                launch_id = f"{name}-{secrets.token_hex(4)}"
                try:
                    await asyncio.to_thread(self._provider.launch, self._config.node_types[name], launch_id)
                except ProviderError as e:
                    wait = self._backoff.failed(name, now)
                    self._error(f"launching a {name} node failed: {e}; trying again in {wait:.0f} s")
                    break
                self._unjoined[launch_id] = name

    def _error(self, text: str) -> None:
        logger.error("%s", text)
        self._errors.append(f"{_clock_text(self._clock())} {text}")

    async def _publish(self, decided: Plan, view: ClusterView, now: float) -> None:
        status = {
            "time": now,
            "nodes": sorted(n.node_id for n in view.nodes if n.node_type),
            "launching": sorted(x.node_id for x in view.launching if x.node_id not in decided.terminate),
            "reasons": decided.reasons,
            "unplaceable": decided.unplaceable,
            "errors": list(self._errors),
            "terminated": list(self._ended),
        }
        await self._call(m.KvPut(resource_request.NAMESPACE, STATUS_KEY, json.dumps(status).encode(), True))


def _clock_text(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))

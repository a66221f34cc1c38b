"""The gcs's actor state machine, driven by events alone: no sockets, no processes."""

from __future__ import annotations

from typing import Any

import pytest

from manta._private.common.ids import ActorID, JobID, LeaseID, NodeID, ObjectID, TaskID, WorkerID
from manta._private.gcs.actor_manager import (
    ALIVE,
    DEAD,
    PENDING,
    RESTARTING,
    ActorManager,
    CreateOnWorker,
    LeaseWorker,
    NameTaken,
    NodeView,
    Publish,
    StopWorker,
    Unschedulable,
)
from manta._private.rpc import codec
from manta._private.rpc.messages import ActorSpec, Address, LeaseGrant

JOB = JobID.from_random()


def address(worker_id: WorkerID | None = None, node_id: NodeID | None = None) -> Address:
    return Address(
        node_id or NodeID.from_random(), worker_id or WorkerID.from_random(), "127.0.0.1", 1, "", 42
    )


OWNER = address()


def spec(
    *,
    name: str = "",
    namespace: str = "ns",
    detached: bool = False,
    max_restarts: int = 0,
    cpus: float = 1.0,
    owner: Address = OWNER,
    job_id: JobID = JOB,
) -> ActorSpec:
    return ActorSpec(
        actor_id=ActorID.of(job_id),
        job_id=job_id,
        class_name="Counter",
        module="mod",
        function_id=b"f" * 8,
        args=b"",
        ref_args=[],
        resources={},
        placement={"CPU": cpus},
        owner=owner,
        name=name,
        namespace=namespace,
        detached=detached,
        max_restarts=max_restarts,
        max_task_retries=0,
        max_concurrency=1,
        concurrency_groups={},
        is_async=False,
        runtime_env=None,
        strategy=None,
        methods={"incr": [1, ""]},
        max_pending_calls=0,
    )


def node(cpus: float = 2.0) -> NodeView:
    return NodeView(NodeID.from_random(), {"CPU": cpus}, {"CPU": cpus})


def grant() -> LeaseGrant:
    worker_id = WorkerID.from_random()
    return LeaseGrant(LeaseID.from_random(), worker_id, address(worker_id), {"CPU": 1.0}, {})


def of_type(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def only(actions: list[Any], kind: type) -> Any:
    found = of_type(actions, kind)
    assert len(found) == 1, actions
    return found[0]


def published_states(actions: list[Any]) -> list[str]:
    return [a.info.state for a in of_type(actions, Publish)]


def make_alive(manager: ActorManager, s: ActorSpec, nodes: list[NodeView]) -> LeaseGrant:
    """Register ``s`` and take it through lease and creation to ALIVE."""
    _, actions = manager.register(s, False, nodes)
    lease = only(actions, LeaseWorker)
    g = grant()
    manager.lease_granted(s.actor_id, lease.generation, lease.node_id, g)
    assert published_states(manager.created(s.actor_id, lease.generation, None)) == [ALIVE]
    return g


def test_register_publishes_pending_and_leases_on_a_feasible_node() -> None:
    manager = ActorManager()
    small, big = node(cpus=1), node(cpus=8)
    s = spec(cpus=4)
    info, actions = manager.register(s, False, [small, big])
    assert info.state == PENDING and info.actor_id == s.actor_id and info.address is None
    assert isinstance(actions[0], Publish) and actions[0].info.state == PENDING
    lease = only(actions, LeaseWorker)
    assert lease.actor_id == s.actor_id and lease.node_id == big.node_id and lease.spec is s
    assert manager.info(s.actor_id).state == PENDING


def test_lease_prefers_the_node_with_the_most_free_resources() -> None:
    manager = ActorManager()
    busy = NodeView(NodeID.from_random(), {"CPU": 4}, {"CPU": 1})
    idle = NodeView(NodeID.from_random(), {"CPU": 4}, {"CPU": 4})
    _, actions = manager.register(spec(), False, [busy, idle])
    assert only(actions, LeaseWorker).node_id == idle.node_id


def test_no_feasible_node_is_unschedulable_and_stays_pending() -> None:
    manager = ActorManager()
    s = spec(cpus=100)
    info, actions = manager.register(s, False, [node(cpus=2)])
    assert info.state == PENDING
    assert not of_type(actions, LeaseWorker)
    unschedulable = only(actions, Unschedulable)
    assert unschedulable.actor_id == s.actor_id
    assert "Counter" in unschedulable.message and "100" in unschedulable.message
    assert manager.info(s.actor_id).state == PENDING
    # Nothing changed: retrying yields no lease either.
    assert not of_type(manager.retry_pending([node(cpus=2)]), LeaseWorker)
    assert manager.info(s.actor_id).state == PENDING


def test_retry_pending_schedules_once_a_node_fits() -> None:
    manager = ActorManager()
    s = spec(cpus=100)
    _, actions = manager.register(s, False, [])
    only(actions, Unschedulable)
    big = node(cpus=128)
    lease = only(manager.retry_pending([node(cpus=2), big]), LeaseWorker)
    assert lease.actor_id == s.actor_id and lease.node_id == big.node_id
    g = grant()
    create = only(manager.lease_granted(s.actor_id, lease.generation, big.node_id, g), CreateOnWorker)
    assert create.grant is g
    # An actor already placed is not leased again.
    assert manager.retry_pending([big]) == []


def test_an_actor_being_leased_is_not_leased_again_until_that_lease_ends() -> None:
    """Nodes change every second (the health check) while a slow lease waits: asking again
    each time would pile requests up on the node, all but one for nothing."""
    manager = ActorManager()
    n = node(cpus=4)
    s = spec(cpus=1, max_restarts=1)
    _, actions = manager.register(s, False, [n])
    first = only(actions, LeaseWorker)
    for _ in range(3):
        assert manager.retry_pending([n]) == []
    # The lease failed (the node refused, or went): it is asked for anew, once.
    second = only(manager.creation_failed(s.actor_id, first.generation, "lease refused", [n]), LeaseWorker)
    assert second.generation > first.generation and manager.retry_pending([n]) == []
    only(manager.lease_granted(s.actor_id, second.generation, n.node_id, grant()), CreateOnWorker)
    assert manager.retry_pending([n]) == []
    # No node fits for now: nothing is in flight, so the next change of nodes retries.
    waiting = spec(cpus=100)
    only(manager.register(waiting, False, [n])[1], Unschedulable)
    assert only(manager.retry_pending([n, node(cpus=128)]), LeaseWorker).actor_id == waiting.actor_id


def test_lease_granted_creates_on_the_worker_then_alive_is_published() -> None:
    manager = ActorManager()
    s = spec()
    n = node()
    _, actions = manager.register(s, False, [n])
    lease = only(actions, LeaseWorker)
    g = grant()
    actions = manager.lease_granted(s.actor_id, lease.generation, n.node_id, g)
    assert actions == [CreateOnWorker(s.actor_id, lease.generation, g, s)]
    assert manager.info(s.actor_id).state == PENDING
    actions = manager.created(s.actor_id, lease.generation, None)
    info = only(actions, Publish).info
    assert info.state == ALIVE and info.address == g.address
    assert manager.info(s.actor_id).address == g.address
    assert manager.actors[s.actor_id].worker_id == g.worker_id


def test_constructor_error_is_dead_with_creation_error_and_frees_the_name() -> None:
    manager = ActorManager()
    s = spec(name="counter", max_restarts=5)
    n = node()
    _, actions = manager.register(s, False, [n])
    lease = only(actions, LeaseWorker)
    g = grant()
    manager.lease_granted(s.actor_id, lease.generation, n.node_id, g)
    actions = manager.created(s.actor_id, lease.generation, b"the error blob")
    assert published_states(actions) == [DEAD]
    stop = only(actions, StopWorker)
    assert stop.worker_id == g.worker_id and stop.lease_id == g.lease_id and stop.node_id == n.node_id
    info = manager.info(s.actor_id)
    assert info.state == DEAD and info.creation_error == b"the error blob" and info.address is None
    assert "constructor" in info.death_cause
    assert info.num_restarts == 0  # a raising constructor is not restarted, even with restarts left
    assert manager.lookup("counter", "ns") is None
    assert manager.list_named("ns", False) == []
    # The name is free again.
    again = spec(name="counter")
    info, _ = manager.register(again, False, [n])
    assert info.actor_id == again.actor_id


def test_worker_death_with_restarts_left_restarts_with_a_higher_generation() -> None:
    manager = ActorManager()
    s = spec(max_restarts=1)
    n = node()
    _, actions = manager.register(s, False, [n])
    first = only(actions, LeaseWorker)
    g = grant()
    manager.lease_granted(s.actor_id, first.generation, n.node_id, g)
    manager.created(s.actor_id, first.generation, None)

    actions = manager.worker_died(g.worker_id, "exit code 1", [n])
    assert published_states(actions) == [RESTARTING]
    second = only(actions, LeaseWorker)
    assert second.generation > first.generation
    info = manager.info(s.actor_id)
    assert info.state == RESTARTING and info.num_restarts == 1 and info.death_cause == "exit code 1"
    assert info.address is None and info.last_address is None

    g2 = grant()
    only(manager.lease_granted(s.actor_id, second.generation, n.node_id, g2), CreateOnWorker)
    assert published_states(manager.created(s.actor_id, second.generation, None)) == [ALIVE]
    assert manager.info(s.actor_id).address == g2.address

    # No restarts left: the next death is final, with its cause.
    actions = manager.worker_died(g2.worker_id, "exit code 7", [n])
    assert published_states(actions) == [DEAD]
    assert not of_type(actions, LeaseWorker)
    info = manager.info(s.actor_id)
    assert info.state == DEAD and info.death_cause == "exit code 7" and info.num_restarts == 1
    # Where it ran last stays known once it is dead (and only then), as Ray's records show.
    assert info.address is None and info.last_address == g2.address


def test_stale_events_of_an_old_generation_are_ignored() -> None:
    manager = ActorManager()
    s = spec(max_restarts=3)
    n = node()
    _, actions = manager.register(s, False, [n])
    old = only(actions, LeaseWorker)
    g = grant()
    manager.lease_granted(s.actor_id, old.generation, n.node_id, g)
    manager.created(s.actor_id, old.generation, None)
    new = only(manager.worker_died(g.worker_id, "crash", [n]), LeaseWorker)
    assert new.generation > old.generation

    # A late grant for the old generation: its worker is returned, the record untouched.
    stale = grant()
    actions = manager.lease_granted(s.actor_id, old.generation, n.node_id, stale)
    assert actions == [StopWorker(n.node_id, stale.worker_id, stale.lease_id, actions[0].reason)]
    assert manager.actors[s.actor_id].worker_id is None
    # A late "created" or failure of the old generation changes nothing.
    assert manager.created(s.actor_id, old.generation, None) == []
    assert manager.creation_failed(s.actor_id, old.generation, "late", [n]) == []
    info = manager.info(s.actor_id)
    assert info.state == RESTARTING and info.num_restarts == 1
    # The old worker dying again is not a second loss.
    assert manager.worker_died(g.worker_id, "again", [n]) == []
    assert manager.info(s.actor_id).num_restarts == 1
    # The current generation proceeds.
    g2 = grant()
    only(manager.lease_granted(s.actor_id, new.generation, n.node_id, g2), CreateOnWorker)
    assert published_states(manager.created(s.actor_id, new.generation, None)) == [ALIVE]


def test_grant_for_an_unknown_or_dead_actor_stops_the_worker() -> None:
    manager = ActorManager()
    g = grant()
    unknown = ActorID.of(JOB)
    n = node()
    assert of_type(manager.lease_granted(unknown, 1, n.node_id, g), StopWorker)[0].worker_id == g.worker_id
    s = spec()
    _, actions = manager.register(s, False, [n])
    lease = only(actions, LeaseWorker)
    manager.kill(s.actor_id, True, "killed", [n])
    assert manager.info(s.actor_id).state == DEAD
    g2 = grant()
    actions = manager.lease_granted(s.actor_id, lease.generation, n.node_id, g2)
    assert only(actions, StopWorker).worker_id == g2.worker_id
    assert manager.info(s.actor_id).state == DEAD


def test_creation_failed_restarts_or_dies() -> None:
    manager = ActorManager()
    n = node()
    s = spec(max_restarts=0)
    _, actions = manager.register(s, False, [n])
    lease = only(actions, LeaseWorker)
    actions = manager.creation_failed(s.actor_id, lease.generation, "its node is gone", [n])
    assert published_states(actions) == [DEAD]
    assert manager.info(s.actor_id).death_cause == "its node is gone"


def test_max_restarts_minus_one_restarts_forever() -> None:
    manager = ActorManager()
    s = spec(max_restarts=-1)
    n = node()
    g = make_alive(manager, s, [n])
    generation = manager.actors[s.actor_id].generation
    for i in range(1, 51):
        actions = manager.worker_died(g.worker_id, f"crash {i}", [n])
        assert published_states(actions) == [RESTARTING]
        lease = only(actions, LeaseWorker)
        assert lease.generation > generation
        generation = lease.generation
        g = grant()
        manager.lease_granted(s.actor_id, lease.generation, n.node_id, g)
        assert published_states(manager.created(s.actor_id, lease.generation, None)) == [ALIVE]
        assert manager.info(s.actor_id).num_restarts == i


def test_kill_no_restart_stops_the_worker_and_is_dead() -> None:
    manager = ActorManager()
    s = spec(name="k", max_restarts=5)
    n = node()
    g = make_alive(manager, s, [n])
    actions = manager.kill(s.actor_id, True, "it was killed by `manta.kill`", [n])
    stops = of_type(actions, StopWorker)
    assert len(stops) == 1
    assert stops[0] == StopWorker(n.node_id, g.worker_id, g.lease_id, "it was killed by `manta.kill`")
    assert not of_type(actions, LeaseWorker)
    assert published_states(actions) == [DEAD]
    info = manager.info(s.actor_id)
    assert info.state == DEAD and "manta.kill" in info.death_cause and info.num_restarts == 0
    assert info.last_address == g.address
    assert manager.lookup("k", "ns") is None
    # Its worker's death, reported afterwards, changes nothing.
    assert manager.worker_died(g.worker_id, "killed", [n]) == []
    assert manager.kill(s.actor_id, True, "again", [n]) == []


def test_kill_with_restart_allowed_restarts() -> None:
    manager = ActorManager()
    s = spec(max_restarts=1)
    n = node()
    g = make_alive(manager, s, [n])
    actions = manager.kill(s.actor_id, False, "killed", [n])
    assert only(actions, StopWorker).worker_id == g.worker_id
    assert published_states(actions) == [RESTARTING]
    only(actions, LeaseWorker)
    assert manager.info(s.actor_id).num_restarts == 1


def test_kill_of_a_pending_actor_without_a_worker() -> None:
    manager = ActorManager()
    s = spec(cpus=100)
    manager.register(s, False, [node()])
    actions = manager.kill(s.actor_id, True, "killed", [node()])
    assert not of_type(actions, StopWorker)
    assert published_states(actions) == [DEAD]
    assert manager.retry_pending([node(cpus=128)]) == []


def test_exiting_then_worker_death_is_final() -> None:
    manager = ActorManager()
    s = spec(max_restarts=3)
    n = node()
    g = make_alive(manager, s, [n])
    assert manager.exiting(s.actor_id, "exit_actor() was called") == []
    assert manager.info(s.actor_id).state == ALIVE
    actions = manager.worker_died(g.worker_id, "exit code 0", [n])
    assert published_states(actions) == [DEAD]
    assert not of_type(actions, LeaseWorker)
    info = manager.info(s.actor_id)
    assert info.state == DEAD and info.death_cause == "exit_actor() was called" and info.num_restarts == 0


def test_owner_death_kills_its_non_detached_actors_only() -> None:
    manager = ActorManager()
    n = node()
    owner = address()
    other = address()
    mine = spec(owner=owner, max_restarts=5)
    detached = spec(owner=owner, detached=True, name="d")
    theirs = spec(owner=other)
    workers = {s.actor_id: make_alive(manager, s, [n]) for s in (mine, detached, theirs)}
    actions = manager.owner_died(owner.worker_id, [n])
    stops = of_type(actions, StopWorker)
    assert [s.worker_id for s in stops] == [workers[mine.actor_id].worker_id]
    assert not of_type(actions, LeaseWorker)
    assert manager.info(mine.actor_id).state == DEAD
    assert manager.info(mine.actor_id).num_restarts == 0
    assert manager.info(detached.actor_id).state == ALIVE
    assert manager.info(theirs.actor_id).state == ALIVE
    assert manager.lookup("d", "ns").actor_id == detached.actor_id


def test_a_node_that_dies_takes_the_non_detached_actors_owned_there() -> None:
    # Its daemon died with it: no node tells the gcs of each owner's death.
    manager = ActorManager()
    n = node()
    gone, alive = NodeID.from_random(), NodeID.from_random()
    mine = spec(owner=address(node_id=gone), max_restarts=5)
    detached = spec(owner=address(node_id=gone), detached=True, name="d")
    theirs = spec(owner=address(node_id=alive))
    workers = {s.actor_id: make_alive(manager, s, [n]) for s in (mine, detached, theirs)}
    actions = manager.owners_node_died(gone, [n])
    assert [s.worker_id for s in of_type(actions, StopWorker)] == [workers[mine.actor_id].worker_id]
    info = manager.info(mine.actor_id)
    assert info.state == DEAD and info.death_cause == "its owner has died"
    assert manager.info(detached.actor_id).state == ALIVE
    assert manager.info(theirs.actor_id).state == ALIVE


def test_actors_wait_to_be_placed_while_nodes_are_still_to_come_back() -> None:
    # After a gcs restart, until the nodes alive before have reconnected: an actor lost
    # meanwhile with a hard affinity to a node not back yet waits rather than dies.
    manager = ActorManager()
    head = node()
    pinned = codec.replace(
        spec(max_restarts=3), strategy={"type": "node_affinity", "node_id": head.node_id.hex(), "soft": False}
    )
    g = make_alive(manager, pinned, [head])
    manager.placing_paused = True
    actions = manager.worker_died(g.worker_id, "killed while the gcs was away", [])
    assert not of_type(actions, LeaseWorker) and manager.info(pinned.actor_id).state != DEAD
    manager.placing_paused = False
    assert only(manager.retry_pending([head]), LeaseWorker).node_id == head.node_id


def test_worker_death_also_kills_the_actors_it_owned() -> None:
    manager = ActorManager()
    n = node()
    parent = spec(max_restarts=2)
    g = make_alive(manager, parent, [n])
    child = spec(owner=g.address, max_restarts=2)
    make_alive(manager, child, [n])
    actions = manager.worker_died(g.worker_id, "crash", [n])
    assert manager.info(parent.actor_id).state == RESTARTING
    assert manager.info(child.actor_id).state == DEAD
    assert sorted(published_states(actions)) == [DEAD, RESTARTING]


def test_job_finished_kills_its_non_detached_actors() -> None:
    manager = ActorManager()
    n = node()
    other_job = JobID.from_random()
    plain = spec(max_restarts=3)
    detached = spec(detached=True)
    pending = spec(cpus=100)
    elsewhere = spec(job_id=other_job)
    make_alive(manager, plain, [n])
    make_alive(manager, detached, [n])
    manager.register(pending, False, [n])
    make_alive(manager, elsewhere, [n])
    actions = manager.job_finished(JOB, [n])
    assert len(of_type(actions, StopWorker)) == 1
    assert not of_type(actions, LeaseWorker)
    assert manager.info(plain.actor_id).state == DEAD
    assert "job" in manager.info(plain.actor_id).death_cause
    assert manager.info(pending.actor_id).state == DEAD
    assert manager.info(detached.actor_id).state == ALIVE
    assert manager.info(elsewhere.actor_id).state == ALIVE


def test_duplicate_names_are_refused_unless_the_holder_is_dead() -> None:
    manager = ActorManager()
    n = node()
    first = spec(name="dup")
    g = make_alive(manager, first, [n])
    with pytest.raises(NameTaken, match="dup") as info:
        manager.register(spec(name="dup"), False, [n])
    assert isinstance(info.value, ValueError)
    assert "already taken" in str(info.value)
    # The same name in another namespace is a different name.
    other_ns = spec(name="dup", namespace="other")
    assert manager.register(other_ns, False, [n])[0].actor_id == other_ns.actor_id
    # Once the holder is dead the name can be taken.
    manager.worker_died(g.worker_id, "crash", [n])
    assert manager.info(first.actor_id).state == DEAD
    second = spec(name="dup")
    info2, actions = manager.register(second, False, [n])
    assert info2.actor_id == second.actor_id
    only(actions, LeaseWorker)
    assert manager.lookup("dup", "ns").actor_id == second.actor_id


def test_get_if_exists_returns_the_existing_actor() -> None:
    manager = ActorManager()
    n = node()
    first = spec(name="shared")
    make_alive(manager, first, [n])
    info, actions = manager.register(spec(name="shared"), True, [n])
    assert actions == []
    assert info.actor_id == first.actor_id and info.state == ALIVE
    assert len(manager.actors) == 1
    # Without an existing actor it creates one.
    fresh = spec(name="fresh")
    info, actions = manager.register(fresh, True, [n])
    assert info.actor_id == fresh.actor_id
    only(actions, LeaseWorker)


def test_a_registration_sent_again_gets_the_first_answer_and_places_nothing_more() -> None:
    # Its owner sends it again when the gcs restarted before answering.
    manager = ActorManager()
    s = spec(name="again")
    first, actions = manager.register(s, False, [node()])
    only(actions, LeaseWorker)
    again, more = manager.register(s, False, [node()])
    assert again == first and more == []
    assert len(manager.actors) == 1


def test_another_actor_under_a_registered_actor_id_is_an_error() -> None:
    manager = ActorManager()
    s = spec()
    manager.register(s, False, [node()])
    with pytest.raises(ValueError, match="already registered"):
        manager.register(codec.replace(s, class_name="Other"), False, [node()])


def test_list_named_filters_by_namespace_and_skips_the_dead() -> None:
    manager = ActorManager()
    n = node()
    make_alive(manager, spec(name="b", namespace="one"), [n])
    make_alive(manager, spec(name="a", namespace="one"), [n])
    make_alive(manager, spec(name="c", namespace="two"), [n])
    doomed = spec(name="z", namespace="one")
    make_alive(manager, doomed, [n])
    manager.register(spec(namespace="one"), False, [n])  # unnamed: never listed
    manager.kill(doomed.actor_id, True, "killed", [n])
    assert manager.list_named("one", False) == [("one", "a"), ("one", "b")]
    assert manager.list_named("two", False) == [("two", "c")]
    assert manager.list_named("three", False) == []
    assert manager.list_named("three", True) == [("one", "a"), ("one", "b"), ("two", "c")]
    assert manager.lookup("c", "one") is None
    assert manager.lookup("c", "two").name == "c"


def test_info_of_an_unknown_actor_is_none() -> None:
    manager = ActorManager()
    assert manager.info(ActorID.of(JOB)) is None
    assert manager.lookup("nobody", "ns") is None
    assert manager.kill(ActorID.of(JOB), True, "x", []) == []
    assert manager.exiting(ActorID.of(JOB), "x") == []


def test_records_survive_storage_and_a_restored_manager_watches_the_live_ones() -> None:
    from manta._private.gcs.actor_manager import Watch, decode_record, encode_record

    before = ActorManager()
    nodes = [node()]
    alive = spec(name="keeper", detached=True)
    g = make_alive(before, alive, nodes)
    placing = spec(name="placing")
    _, actions = before.register(placing, False, nodes)
    lease = only(actions, LeaseWorker)
    before.lease_granted(placing.actor_id, lease.generation, lease.node_id, grant())  # not yet created
    gone = spec(name="gone")
    make_alive(before, gone, nodes)
    before.kill(gone.actor_id, True, "killed", nodes)

    stored = [encode_record(r) for r in before.actors.values()]
    after = ActorManager()
    actions = after.restore([decode_record(blob) for blob in stored])

    watch = only(actions, Watch)
    assert (watch.actor_id, watch.worker_id, watch.address) == (alive.actor_id, g.worker_id, g.address)
    assert after.lookup("keeper", "ns").state == ALIVE
    assert after.lookup("gone", "ns") is None and after.info(gone.actor_id).state == DEAD
    # The one caught mid-creation is placed again, with a new generation, once nodes are back.
    restored = after.actors[placing.actor_id]
    assert restored.state == PENDING and restored.worker_id is None and restored.generation > lease.generation
    again = only(after.retry_pending(nodes), LeaseWorker)
    assert again.actor_id == placing.actor_id
    # A late reply for the old attempt is ignored.
    stale = after.created(placing.actor_id, lease.generation, None)
    assert stale == []


def test_an_actor_waiting_for_its_arguments_is_placed_only_once_they_are_ready() -> None:
    from manta._private.gcs.actor_manager import decode_record, encode_record
    from manta._private.rpc.messages import ArgValue

    manager = ActorManager()
    nodes = [node()]
    waiting = spec(name="later")
    info, actions = manager.register(waiting, False, nodes, args_pending=True)
    assert info.state == PENDING and not of_type(actions, LeaseWorker)
    assert manager.retry_pending(nodes) == []  # nodes changing does not place it either
    assert manager.lookup("later", "ns").actor_id == waiting.actor_id  # its name is taken now
    # It survives a gcs restart still waiting.
    restored = ActorManager()
    restored.restore([decode_record(encode_record(manager.actors[waiting.actor_id]))])
    assert restored.retry_pending(nodes) == []
    arg = ArgValue(ObjectID.for_put(TaskID.for_driver(JOB), 1), b"x", None, 1)
    lease = only(manager.args_ready(waiting.actor_id, [arg], nodes), LeaseWorker)
    assert lease.spec.ref_args == [arg]
    assert manager.args_ready(waiting.actor_id, [arg], nodes) == []  # once only


def test_an_actor_waiting_for_its_arguments_dies_with_its_owner() -> None:
    manager = ActorManager()
    nodes = [node()]
    owner = address()
    waiting = spec(owner=owner)
    manager.register(waiting, False, nodes, args_pending=True)
    actions = manager.owner_died(owner.worker_id, nodes)
    assert published_states(actions) == [DEAD]
    assert manager.args_ready(waiting.actor_id, [], nodes) == []


def test_a_job_past_its_actor_quota_is_refused_and_others_are_not() -> None:
    from manta._private.gcs.actor_manager import QuotaExceeded

    manager = ActorManager(max_actors_per_job=2)
    nodes = [node(8.0)]
    first, other_job = spec(), JobID.from_random()
    manager.register(first, False, nodes)
    manager.register(spec(), False, nodes)
    with pytest.raises(QuotaExceeded, match="already has 2 live actors"):
        manager.register(spec(), False, nodes)
    manager.register(spec(job_id=other_job), False, nodes)  # another job has its own quota
    manager.kill(first.actor_id, True, "done", nodes)  # a dead actor frees its place
    manager.register(spec(), False, nodes)

"""Finding which file holds an id's output, against a fake gcs and fake nodes (no
sockets), and stripping task markers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from manta._private.api import logs as api
from manta._private.common.ids import ActorID, JobID, NodeID, WorkerID
from manta._private.common.session import TASK_MARKER
from manta._private.rpc import messages as m

MARK = TASK_MARKER.encode()
HEAD, OTHER = NodeID.from_random(), NodeID.from_random()
WORKER = WorkerID.from_random()
ACTOR = ActorID.of(JobID.from_int(1))


def node(node_id: NodeID, head: bool, host: str = "127.0.0.1") -> m.NodeState:
    info = m.NodeInfo(node_id, host, 1, "", "h", "", "", {}, {}, head, 1)
    return m.NodeState(info, True, {}, "", [], [])


NODES = [node(OTHER, False, "10.0.0.9"), node(HEAD, True)]


class FakeGcs:
    def __init__(self, actors: list[Any] = (), tasks: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        self.actors, self.tasks = list(actors), list(tasks)

    async def call(self, msg: Any) -> Any:
        if isinstance(msg, m.GetNodes):
            return NODES
        if isinstance(msg, m.ListActors):
            return self.actors
        if isinstance(msg, m.ListTasks):
            wanted = msg.filters[0][2]
            rows = [t for t in self.tasks if t["task_id"] == wanted]
            return m.TaskListing(rows, len(self.tasks), len(rows), 0)
        raise AssertionError(msg)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def lookup_error(coro: Any) -> api.LogLookupError:
    with pytest.raises(api.LogLookupError) as caught:
        run(coro)
    return caught.value


def test_nodes_are_picked_by_id_prefix_or_ip_and_unknown_ones_named() -> None:
    assert [s.info.node_id for s in api.pick_nodes(NODES, None, None)] == [OTHER, HEAD]
    assert api.pick_nodes(NODES, HEAD.hex()[:8], None)[0].info.node_id == HEAD
    assert api.pick_nodes(NODES, None, "10.0.0.9")[0].info.node_id == OTHER
    with pytest.raises(api.LogLookupError) as caught:
        api.pick_nodes(NODES, "deadbeef" * 7, None)
    assert caught.value.status == 404 and "deadbeef" in str(caught.value) and HEAD.hex() in str(caught.value)
    with pytest.raises(api.LogLookupError) as caught:
        api.pick_nodes(NODES, "../x", None)
    assert caught.value.status == 400


def test_the_head_comes_first() -> None:
    assert [s.info.node_id for s in run(api.live_nodes(FakeGcs()))] == [HEAD, OTHER]


def actor(state: str, address: m.Address | None) -> m.ActorInfo:
    owner = m.Address(HEAD, WorkerID.from_random(), "127.0.0.1", 1, "", 1)
    return m.ActorInfo(ACTOR, state, address, 0, "", None, "A", "", "", False, {}, 0, 0, False, owner)


def test_an_actor_is_its_workers_file() -> None:
    address = m.Address(OTHER, WORKER, "10.0.0.9", 5, "", 4242)
    target = run(api.actor_target(FakeGcs([actor("ALIVE", address)]), ACTOR.hex(), err=True))
    assert target.node.node_id == OTHER and target.filename == f"worker-{WORKER.hex()[:12]}.err"


def test_unknown_or_unplaced_actors_and_bad_ids_are_named() -> None:
    missing = lookup_error(api.actor_target(FakeGcs(), "ab" * ActorID.SIZE, False))
    assert missing.status == 404 and "ab" * ActorID.SIZE in str(missing)
    pending = lookup_error(api.actor_target(FakeGcs([actor("PENDING", None)]), ACTOR.hex(), False))
    assert pending.status == 404 and "has not started" in str(pending)
    bad = lookup_error(api.actor_target(FakeGcs(), "xyz", False))
    assert bad.status == 400 and "'xyz'" in str(bad)


def task(attempt: int, **fields: Any) -> dict[str, Any]:
    row = {"task_id": "cd" * 24, "attempt_number": attempt, "name": "f", "state": "FINISHED"}
    row.update(node_id=HEAD.hex(), worker_id=WORKER.hex(), actor_id=None)
    row.update(fields)
    return row


def test_a_task_is_the_lines_its_worker_wrote_under_its_name() -> None:
    gcs = FakeGcs(tasks=[task(0), task(1, node_id=OTHER.hex())])
    target = run(api.task_target(gcs, "cd" * 24, 1, err=False))
    assert (target.node.node_id, target.filename, target.task_name) == (
        OTHER,
        f"worker-{WORKER.hex()[:12]}.out",
        "f",
    )
    of_actor = run(api.task_target(FakeGcs(tasks=[task(0, actor_id="ef" * 16)]), "cd" * 24, 0, False))
    assert of_actor.task_name == "" and "actor" in of_actor.note


def test_tasks_without_that_attempt_or_a_worker_are_named() -> None:
    assert "no task with id" in str(lookup_error(api.task_target(FakeGcs(), "cd" * 24, 0, False)))
    no_attempt = lookup_error(api.task_target(FakeGcs(tasks=[task(0)]), "cd" * 24, 3, False))
    assert "no attempt 3" in str(no_attempt) and "[0]" in str(no_attempt)
    waiting = FakeGcs(tasks=[task(0, worker_id=None, node_id=None, state="PENDING_NODE_ASSIGNMENT")])
    assert "has not run on a worker" in str(lookup_error(api.task_target(waiting, "cd" * 24, 0, False)))
    assert lookup_error(api.task_target(FakeGcs(), "short", 0, False)).status == 400


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> dict[NodeID, list[str]]:
    """Each node's files, answered as the nodes would (with one worker each)."""
    held: dict[NodeID, list[str]] = {HEAD: ["node.err"], OTHER: ["node.err"]}
    pids = {HEAD: 100, OTHER: 200}

    async def ask_nodes(nodes: list[m.NodeState], msg: Any, *_a: Any, **_k: Any) -> list[Any]:
        import fnmatch

        return [
            (
                s.info,
                m.LogFileListing(
                    s.info.node_id,
                    [[n, 1, 0.0] for n in held[s.info.node_id] if fnmatch.fnmatch(n, msg.glob)],
                    [[WORKER.hex(), pids[s.info.node_id]]],
                ),
            )
            for s in nodes
        ]

    monkeypatch.setattr(api, "ask_nodes", ask_nodes)
    return held


def test_a_file_on_every_node_is_the_heads_unless_one_is_named(files: dict[NodeID, list[str]]) -> None:
    assert run(api.file_target(FakeGcs(), b"", None, "node.err", None, None)).node.node_id == HEAD  # type: ignore[arg-type]
    named = run(api.file_target(FakeGcs(), b"", None, "node.err", OTHER.hex()[:10], None))  # type: ignore[arg-type]
    assert named.node.node_id == OTHER
    files[OTHER].append("only-there.log")
    assert run(api.file_target(FakeGcs(), b"", None, "only-there.log", None, None)).node.node_id == OTHER  # type: ignore[arg-type]


def test_missing_files_and_paths_are_refused(files: dict[NodeID, list[str]]) -> None:
    assert lookup_error(api.file_target(FakeGcs(), b"", None, "nope.out", None, None)).status == 404  # type: ignore[arg-type]
    assert lookup_error(api.file_target(FakeGcs(), b"", None, "../token", None, None)).status == 400  # type: ignore[arg-type]
    assert lookup_error(api.list_logs(FakeGcs(), b"", None, None, None, "../*")).status == 400  # type: ignore[arg-type]
    job = lookup_error(api.job_target(FakeGcs(), b"", None, "raysubmit_nope"))  # type: ignore[arg-type]
    assert job.status == 404 and "raysubmit_nope" in str(job)
    assert lookup_error(api.job_target(FakeGcs(), b"", None, "../../x")).status == 400  # type: ignore[arg-type]


def test_a_pid_is_found_among_the_nodes_workers(files: dict[NodeID, list[str]]) -> None:
    found = run(api.pid_target(FakeGcs(), b"", None, 200, None, None, err=False))  # type: ignore[arg-type]
    assert found.node.node_id == OTHER and found.filename == f"worker-{WORKER.hex()[:12]}.out"
    missing = lookup_error(api.pid_target(FakeGcs(), b"", None, 999, None, None, False))  # type: ignore[arg-type]
    assert missing.status == 404 and "999" in str(missing)


def test_task_markers_are_stripped_and_label_the_lines() -> None:
    lines = api.TaskLines()
    assert lines.feed(b"a\n" + MARK + b"f\nb\npart") == [b"a\n", b"b\n"]
    assert lines.feed(b"ial\n") == [b"partial\n"]
    only_g = api.TaskLines("g")
    assert only_g.feed(b"x\n" + MARK + b"f\ny\n" + MARK + b"g\nz\n" + MARK + b"f\nw\n") == [b"z\n"]
    assert api.TaskLines().feed(b"no newline", final=True) == [b"no newline"]


def test_categories_group_names() -> None:
    assert api.categorize(["gcs.out", "worker-0123456789ab.out", "node.err.1"]) == {
        "gcs_server": ["gcs.out"],
        "worker_out": ["worker-0123456789ab.out"],
        "raylet": ["node.err.1"],
    }

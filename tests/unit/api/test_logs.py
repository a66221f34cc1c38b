"""Finding which file holds an id's output, against a fake gcs and fake nodes (no
sockets); stripping task markers; reading through a fake connection to a real node
handler on a temporary directory (tails, whole files, a task's lines, follows, limits);
and the HTTP routes over that, with the dashboard's error middleware."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from manta._private.api import logs as api
from manta._private.common.config import Config
from manta._private.common.ids import ActorID, JobID, NodeID, TaskID, WorkerID
from manta._private.common.ratelimit import RateLimitedLog
from manta._private.common.session import TASK_MARKER
from manta._private.node.log_access import LogAccess
from manta._private.rpc import messages as m
from manta._private.rpc.transport import ConnectionLost
from manta.dashboard import server
from manta.dashboard.routes import logs as routes
from manta.exceptions import RpcError

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


def test_a_dead_actor_is_found_where_its_creation_last_ran() -> None:
    creation = TaskID.for_actor_creation(ACTOR).hex()
    ran = [task(0, task_id=creation, node_id=HEAD.hex()), task(1, task_id=creation, node_id=OTHER.hex())]
    target = run(api.actor_target(FakeGcs([actor("DEAD", None)], tasks=ran), ACTOR.hex(), True))
    assert (target.node.node_id, target.filename) == (OTHER, f"worker-{WORKER.hex()[:12]}.err")
    unknown = lookup_error(api.actor_target(FakeGcs([actor("DEAD", None)]), ACTOR.hex(), False))
    assert unknown.status == 404 and "no record says where it ran" in str(unknown)


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


ASKED: list[NodeID] = []


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> dict[NodeID, list[str]]:
    """Each node's files, answered as the nodes would (with one worker each); ``ASKED``
    records which nodes were asked."""
    held: dict[NodeID, list[str]] = {HEAD: ["node.err"], OTHER: ["node.err"]}
    pids = {HEAD: 100, OTHER: 200}
    ASKED.clear()

    async def ask_nodes(nodes: list[m.NodeState], msg: Any, *_a: Any, **_k: Any) -> list[Any]:
        import fnmatch

        ASKED.extend(s.info.node_id for s in nodes)
        return [
            (
                s.info,
                m.LogFileListing(
                    s.info.node_id,
                    [[n, 1, 0.0] for n in held[s.info.node_id] if fnmatch.fnmatchcase(n, msg.glob)],
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


def test_a_line_that_never_ends_goes_out_in_pieces_not_held_whole() -> None:
    from manta._private.common.log_files import MAX_PARTIAL_LINE

    lines = api.TaskLines()
    piece = b"\r50%" * 1000
    out: list[bytes] = []
    for _ in range(2 * MAX_PARTIAL_LINE // len(piece) + 2):
        out += lines.feed(piece)
    assert out and sum(map(len, out)) > MAX_PARTIAL_LINE  # sent on, not piled up
    assert lines._held <= MAX_PARTIAL_LINE


def test_categories_group_names() -> None:
    assert api.categorize(["gcs.out", "worker-0123456789ab.out", "node.err.1"]) == {
        "gcs_server": ["gcs.out"],
        "worker_out": ["worker-0123456789ab.out"],
        "raylet": ["node.err.1"],
    }


def test_a_file_is_looked_up_by_its_exact_name_not_as_a_pattern(files: dict[NodeID, list[str]]) -> None:
    files[HEAD] += ["a1.log", "xy.log"]
    for name in ("a[1].log", "x*.log", "?y.log"):
        assert lookup_error(api.file_target(FakeGcs(), b"", None, name, None, None)).status == 404  # type: ignore[arg-type]
    files[OTHER].append("a[1].log")
    assert run(api.file_target(FakeGcs(), b"", None, "a[1].log", None, None)).node.node_id == OTHER  # type: ignore[arg-type]


def test_a_file_the_head_has_is_found_asking_only_the_head(files: dict[NodeID, list[str]]) -> None:
    assert run(api.file_target(FakeGcs(), b"", None, "node.err", None, None)).node.node_id == HEAD  # type: ignore[arg-type]
    assert ASKED == [HEAD]


def test_the_listing_of_no_node_in_particular_asks_only_the_head(files: dict[NodeID, list[str]]) -> None:
    listings = run(api.list_logs(FakeGcs(), b"", None, None, None, "*", first_only=True))  # type: ignore[arg-type]
    assert [info.node_id for info, _ in listings] == [HEAD] and ASKED == [HEAD]
    ASKED.clear()
    run(api.list_logs(FakeGcs(), b"", None, None, None, "*"))  # type: ignore[arg-type]
    assert ASKED == [HEAD, OTHER]


def test_a_partial_line_arriving_in_many_pieces_is_kept_whole() -> None:
    lines = api.TaskLines()
    assert [lines.feed(b"x" * 10) for _ in range(3)] == [[], [], []]
    assert lines.feed(b"y\nz") == [b"x" * 30 + b"y\n"]
    assert lines.feed(b"", final=True) == [b"z"]


# -- reading through a node handler ---------------------------------------------------------------
WORKER_FILE = f"worker-{WORKER.hex()[:12]}.out"


class NodeOver:
    """A connection to a node daemon that is a real ``LogAccess`` on ``directory``;
    ``before(msg, calls)`` runs before each request is answered."""

    def __init__(self, directory: Path, before: Callable[[Any, int], None] | None = None) -> None:
        self.access = LogAccess(HEAD, str(directory), lambda: [])
        self.before = before
        self.calls: list[Any] = []
        self.closed = False

    async def call(self, msg: Any) -> Any:
        self.calls.append(msg)
        if self.before is not None:
            self.before(msg, len(self.calls))
        if isinstance(msg, m.ListLogFiles):
            return await self.access.list_files(None, msg)
        return await self.access.read_file(None, msg)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    (directory / "node.err").write_text("".join(f"line {i:03d}\n" for i in range(200)))  # 9 bytes a line
    return directory


def target(filename: str = "node.err", task_name: str = "") -> api.LogTarget:
    return api.LogTarget(NODES[1].info, filename, task_name)


def read_all(reader: api.LogReader) -> tuple[bytes, list[str]]:
    async def go() -> tuple[bytes, list[str]]:
        data, notices = b"", []
        async with contextlib.aclosing(reader.chunks()) as chunks:
            async for item in chunks:
                if isinstance(item, api.Notice):
                    notices.append(item.text)
                else:
                    data += item
        return data, notices

    return asyncio.run(go())


def expected(first: int, last: int = 200) -> bytes:
    return "".join(f"line {i:03d}\n" for i in range(first, last)).encode()


def test_a_tail_longer_than_one_read_reads_on_backward(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "READ_BYTES", 100)  # 11 lines a read
    reader = api.LogReader(NodeOver(logs), target(), 150, follow=False)
    assert read_all(reader) == (expected(50), [])
    assert (reader.lines_kept, reader.truncated) == (150, True)
    everything = api.LogReader(NodeOver(logs), target(), 500, follow=False)
    assert read_all(everything) == (expected(0), []) and everything.lines_kept == 200
    assert not everything.truncated


def test_a_tail_that_does_not_fit_says_how_many_lines_came(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "READ_BYTES", 100)
    reader = api.LogReader(NodeOver(logs), target(), 150, follow=False, max_bytes=300)
    data, notices = read_all(reader)
    assert data == expected(167) and reader.lines_kept == 33 and reader.truncated
    assert notices == ["only the last 33 lines fit in one answer (300 bytes); the file has more"]


def test_a_whole_read_of_a_growing_file_ends_where_the_file_did(logs: Path) -> None:
    def grow(msg: Any, calls: int) -> None:
        if 1 < calls < 50:  # after the first look
            with open(logs / "node.err", "a") as f:
                f.write("later\n")

    node = NodeOver(logs, grow)
    assert read_all(api.LogReader(node, target(), -1, follow=False)) == (expected(0), [])
    assert len(node.calls) <= 3


def test_a_whole_read_is_cut_at_the_answer_limit_and_says_so(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "READ_BYTES", 64)
    data, notices = read_all(api.LogReader(NodeOver(logs), target(), -1, follow=False, max_bytes=900))
    assert data == expected(0, 100)
    assert len(notices) == 1 and notices[0].startswith("cut after 900 bytes")


def rotated_worker_files(logs: Path) -> None:
    mark = TASK_MARKER
    (logs / f"{WORKER_FILE}.2").write_text(f"{mark}f\none\n")
    (logs / f"{WORKER_FILE}.1").write_text(f"two\n{mark}g\nother\n{mark}f\n")
    (logs / WORKER_FILE).write_text("three\n")  # after a rotation, before the next task


def test_a_tasks_lines_are_read_from_its_workers_oldest_rotated_copy_on(logs: Path) -> None:
    rotated_worker_files(logs)
    reader = api.LogReader(NodeOver(logs), target(WORKER_FILE, "f"), -1, follow=False)
    assert read_all(reader) == (b"one\ntwo\nthree\n", []) and reader.lines_kept == 3
    last = api.LogReader(NodeOver(logs), target(WORKER_FILE, "f"), 2, follow=False)
    assert read_all(last) == (b"two\nthree\n", []) and last.truncated


def test_the_task_search_has_a_byte_budget(logs: Path) -> None:
    rotated_worker_files(logs)
    node = NodeOver(logs)
    budget = (logs / f"{WORKER_FILE}.1").stat().st_size + 6  # the current file and the newest copy only
    data, notices = read_all(
        api.LogReader(node, target(WORKER_FILE, "f"), -1, follow=False, scan_bytes=budget)
    )
    assert data == b"three\n" and len(notices) == 1 and "were searched" in notices[0]
    assert not any(getattr(c, "filename", "").endswith(".2") for c in node.calls)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_follow_ends_after_its_longest_duration(logs: Path) -> None:
    clock = FakeClock()
    reader = api.LogReader(
        NodeOver(logs), target(), 1, follow=True, max_follow_s=10, clock=clock, sleep=clock.sleep
    )
    data, notices = read_all(reader)
    assert data == expected(199) and clock.now == 10
    assert len(notices) == 1 and "after 10 s" in notices[0]


def test_reads_of_one_node_share_one_connection() -> None:
    opened: list[Any] = []

    async def connect(info: m.NodeInfo, token: bytes, config: Config, kind: str) -> Any:
        await asyncio.sleep(0)
        opened.append(NodeOver(Path("/nonexistent")))
        return opened[-1]

    async def go() -> None:
        pool = api.NodeConnections(lambda: (b"t", Config()), connect=connect)
        node = NODES[1].info
        async with pool.connection(node) as one, pool.connection(node) as two:
            assert one is two and len(opened) == 1 and not one.closed  # type: ignore[attr-defined]
        assert opened[0].closed
        async with pool.connection(node) as three:
            assert three is opened[1]

    asyncio.run(go())


def test_a_node_that_cannot_be_reached_is_a_503() -> None:
    async def connect(*_: Any) -> Any:
        raise ConnectionLost("refused")

    async def go() -> None:
        async with api.NodeConnections(lambda: (b"t", Config()), connect=connect).connection(NODES[1].info):
            pass

    error = lookup_error(go())
    assert error.status == 503 and "refused" in str(error)


# -- the HTTP routes --------------------------------------------------------------------------------
class FakeLink(FakeGcs):
    def node_credential(self) -> tuple[bytes, Config]:
        return b"t", Config()


def serve(
    monkeypatch: pytest.MonkeyPatch, node: NodeOver, follows: routes.FollowSlots | None = None
) -> Callable[[str], Any]:
    """GET a path of the log routes (behind the dashboard's error middleware), node
    ``node`` holding every file: (status, headers, body)."""

    async def connect(*_: Any) -> Any:
        return node

    async def ask_nodes(nodes: list[m.NodeState], msg: Any, *_a: Any, **_k: Any) -> list[Any]:
        return [(s.info, await node.call(msg)) for s in nodes]

    monkeypatch.setattr(api, "connect_node", connect)
    monkeypatch.setattr(api, "ask_nodes", ask_nodes)

    @web.middleware
    async def caller(request: web.Request, handler: Any) -> web.StreamResponse:
        with warnings.catch_warnings():  # as the dashboard's authentication sets it
            warnings.simplefilter("ignore", web.NotAppKeyWarning)
            request["token_name"] = "someone"
        return await handler(request)

    async def get(path: str) -> tuple[int, Any, bytes]:
        app = web.Application(middlewares=[server._json_errors(RateLimitedLog(lambda: 0.0)), caller])
        for route in routes.routes(FakeLink(), follows):  # type: ignore[arg-type]
            app.router.add_route(route.method, route.path, route.handler)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(path)
            return response.status, response.headers, await response.read()

    return lambda path: asyncio.run(get(path))


def test_http_says_how_many_lines_came_and_whether_some_were_left_out(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "READ_BYTES", 100)
    monkeypatch.setattr(api, "MAX_ANSWER_BYTES", 300)
    status, headers, body = serve(monkeypatch, NodeOver(logs))(
        "/api/v0/logs/file?filename=node.err&lines=150"
    )
    assert status == 200 and body.startswith(expected(167))
    assert (headers["X-Manta-Log-Lines"], headers["X-Manta-Log-Truncated"]) == ("33", "true")
    assert body.endswith(
        b"--- manta: only the last 33 lines fit in one answer (300 bytes); the file has more ---\n"
    )


def test_http_a_node_failing_mid_answer_ends_it_and_before_it_is_a_503(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "READ_BYTES", 200)

    def fail_at(call: int, error: BaseException) -> Callable[[Any, int], None]:
        def before(msg: Any, calls: int) -> None:
            if calls >= call:
                raise error

        return before

    for error in (ConnectionLost("gone"), asyncio.TimeoutError(), RpcError("RemoteError: boom")):
        # The file's end, its first read, then the node goes: the answer has started.
        status, _, body = serve(monkeypatch, NodeOver(logs, fail_at(4, error)))(
            "/api/v0/logs/file?filename=node.err&lines=-1"
        )
        assert status == 200 and body.startswith(expected(0, 22)[:400])
        assert body.splitlines()[-1].startswith(b"--- manta: the answer ended early")
        status, _, body = serve(monkeypatch, NodeOver(logs, fail_at(2, error)))(
            "/api/v0/logs/file?filename=node.err&lines=-1"
        )
        assert status == 503 and b"did not answer" in body


def test_http_follows_are_limited_per_token(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slots = routes.FollowSlots(per_token=1, total=10)
    assert slots.acquire("someone") is None  # a follow of this token is open
    status, _, body = serve(monkeypatch, NodeOver(logs), slots)("/api/v0/logs/stream?filename=node.err")
    assert status == 429 and b"this token has 1 log follows open" in body
    assert slots.acquire("another") is None and slots.acquire("another") is not None
    slots.release("someone")
    assert slots.acquire("someone") is None
    everyone = routes.FollowSlots(per_token=5, total=2)
    assert everyone.acquire("a") is None and everyone.acquire("b") is None
    assert "on this cluster" in str(everyone.acquire("c"))


def test_the_cli_says_the_cluster_did_not_answer_in_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from manta._private.common import session
    from manta._private.rpc import endpoints
    from manta.cli import logs as cli

    class Gcs:
        def close(self) -> None:
            pass

    async def connect(*_a: Any, **_k: Any) -> Gcs:
        return Gcs()

    async def body(*_: Any) -> None:
        raise asyncio.TimeoutError()

    monkeypatch.setattr(cli, "running_session", lambda address: (str(tmp_path), {"gcs_address": "x:1"}))
    monkeypatch.setattr(session, "read_token", lambda _dir: b"t")
    monkeypatch.setattr(endpoints, "connect", connect)
    with pytest.raises(click.ClickException) as caught:
        cli._run(None, body)
    assert "did not answer in time" in caught.value.message and "--timeout" in caught.value.message


def test_the_cli_banner_counts_the_lines_that_came(
    logs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from manta.cli import logs as cli

    node = NodeOver(logs)

    async def connect(*_: Any) -> Any:
        return node

    monkeypatch.setattr(api, "connect_node", connect)
    monkeypatch.setattr(api, "READ_BYTES", 100)
    monkeypatch.setattr(api, "MAX_ANSWER_BYTES", 300)
    asyncio.run(cli._print(target(), b"t", Config(), follow=False, tail=150, timeout=5))
    out, err = capsys.readouterr()
    assert out == expected(167).decode()
    assert "--- the last 33 lines of node.err" in err and "only the last 33 lines fit" in err

"""Logs on a real cluster: ``manta logs`` and ``/api/v0/logs`` find files by name, actor,
task, pid and job and refuse anything outside the logs directory; tasks' ``logging``
reaches the driver as ``print`` does; lines alike from many workers are collapsed; JSON
logging; rotation loses no line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import aiohttp
import pytest

import manta as ray
from manta._private.common.ids import ActorID, TaskID
from manta.util.state import get_actor, get_task
from tests.integration.conftest import run_driver
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def api(head):
    token = Path(head["session_dir"], "token").read_text().strip()
    return {
        "url": "http://" + head.dashboard_url,
        "token": token,
        "session_dir": head["session_dir"],
        "address": head["address"],
        "node_id": head["node_id"],
    }


@ray.remote
def say(*lines):
    for line in lines:
        print(line)
    return os.getpid()


@ray.remote
def complain(text):
    import sys

    print(text, file=sys.stderr)
    return os.getpid()


@ray.remote
class Speaker:
    def say(self, text):
        print(text)
        return os.getpid()


def manta_logs(api, *args: str) -> tuple[int, str]:
    """The exit code, and stdout (or, on an error, what was said on stderr). A process of
    its own: in this one, the driver's printing of worker output would mix in."""
    result = subprocess.run(
        [sys.executable, "-m", "manta.cli.main", "logs", *args, "--address", api["address"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout if result.returncode == 0 else result.stderr


def ran(ref):
    """The task's record once the store knows its name and which worker ran it (the
    worker's and the owner's reports come in separately)."""
    return wait_until(
        lambda: (lambda r: r if r is not None and r.worker_id and r.name else None)(get_task(ref))
    )


async def _get(api, path: str, token: str | None = "default") -> tuple[int, str, str]:
    headers = (
        {} if token is None else {"Authorization": f"Bearer {api['token'] if token == 'default' else token}"}
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(api["url"] + path, headers=headers) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def get(api, path: str, token: str | None = "default") -> tuple[int, str, str]:
    """(status, content type, body) of a GET with a real aiohttp client."""
    return asyncio.run(_get(api, path, token))


# -- the CLI --------------------------------------------------------------------------------------
def test_the_listing_shows_each_nodes_files_by_category(api):
    ray.get(say.remote("warm"))
    code, out = manta_logs(api)
    assert code == 0, out
    assert f"Node ID: {api['node_id']} (IP: 127.0.0.1, head)" in out
    for group, name in (("raylet", "node.err"), ("gcs_server", "gcs.out"), ("dashboard", "dashboard.err")):
        assert re.search(rf"^{group}:\n(- .*\n)*- {re.escape(name)}$", out, re.M), out
    assert "worker_out:\n- worker-" in out
    assert "audit.jsonl" not in out


def test_an_actors_output_by_its_id(api):
    token = uuid.uuid4().hex
    speaker = Speaker.remote()
    ray.get(speaker.say.remote(f"actor line {token}"))
    code, out = manta_logs(api, "actor", "--id", speaker._actor_id.hex())
    assert code == 0 and f"actor line {token}" in out, out
    code, out = manta_logs(api, "actor", "--id", speaker._actor_id.hex(), "--err")
    assert code == 0 and token not in out
    ray.kill(speaker)


def test_a_dead_actors_output_is_found_where_it_last_ran(api):
    token = uuid.uuid4().hex
    speaker = Speaker.remote()
    ray.get(speaker.say.remote(f"last words {token}"))
    actor_id = speaker._actor_id.hex()
    # Its worker's own events (where it ran) are in before it is killed: a killed worker's
    # last report interval dies with it.
    creation = TaskID.for_actor_creation(ActorID(bytes.fromhex(actor_id)))
    wait_until(lambda: (lambda r: r is not None and r.worker_id)(get_task(creation)), timeout=30)
    ray.kill(speaker)
    wait_until(lambda: get_actor(actor_id).state == "DEAD", timeout=30)
    code, out = manta_logs(api, "actor", "--id", actor_id)
    assert code == 0 and f"last words {token}" in out, out


def test_a_tasks_own_lines_by_its_id(api):
    mine, other = uuid.uuid4().hex, uuid.uuid4().hex
    ref = say.remote(f"mine {mine}")
    ray.get(ref)
    ray.get(complain.remote(f"other {other}"))
    ray.get(say.options(name="someone_else").remote(f"other {other}"))
    ran(ref)
    code, out = manta_logs(api, "task", "--id", ref.task_id().hex())
    assert code == 0 and f"mine {mine}" in out and other not in out, out
    assert "\x1e" not in out  # the task markers are not shown


def test_a_workers_output_by_pid_with_a_tail(api):
    token = uuid.uuid4().hex
    pid = ray.get(say.remote(*(f"{token} {i}" for i in range(5))))
    code, out = manta_logs(api, "worker", "--pid", str(pid), "--tail", "2")
    assert code == 0, out
    assert out.splitlines() == [f"{token} 3", f"{token} 4"]
    code, out = manta_logs(api, "worker", "--pid", str(ray.get(complain.remote(token))), "--err")
    assert code == 0 and token in out


def test_follow_prints_what_is_written_until_interrupted(api):
    speaker = Speaker.remote()
    ray.get(speaker.say.remote("said before"))
    args = [
        "logs",
        "actor",
        "--id",
        speaker._actor_id.hex(),
        "-f",
        "--tail",
        "0",
        "--address",
        api["address"],
    ]
    follower = subprocess.Popen(
        [sys.executable, "-m", "manta.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True)
    reader.start()
    try:
        # Said again until the follower shows it: it starts following at some point.
        for n in range(120):
            ray.get(speaker.say.remote(f"followed {n}"))
            with contextlib.suppress(queue.Empty):
                first = lines.get(timeout=0.5)
                break
        else:
            pytest.fail("the follower printed nothing in a minute")
        assert re.fullmatch(r"followed \d+\n", first), first
        ray.get(speaker.say.remote("and then this"))
        while (line := lines.get(timeout=30)) != "and then this\n":
            assert line.startswith("followed "), line  # only what was said after it began
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
        reader.join(30)
        err = follower.stderr.read()
        follower.stdout.close()
        follower.stderr.close()
    assert follower.returncode == 0, err
    ray.kill(speaker)


def test_a_file_by_name_with_a_tail_and_the_alias(api):
    code, out = manta_logs(api, "node.err", "--tail", "1")
    assert code == 0 and len(out.splitlines()) == 1, out
    code, same = manta_logs(api, "cluster", "node.err", "--tail", "1", "--node-id", api["node_id"][:10])
    assert code == 0 and same.splitlines() == out.splitlines()


def test_a_submitted_jobs_output(api, client):
    submission = client.submit_job(entrypoint="python -c \"print('job says hi')\"")
    wait_until(lambda: client.get_job_status(submission).is_terminal(), timeout=60)
    code, out = manta_logs(api, "job", "--id", submission)
    assert code == 0 and "job says hi" in out, out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("actor", "--id", "ab" * 16), "no actor with id " + "ab" * 16),
        (("task", "--id", "cd" * 24), "no task with id " + "cd" * 24),
        (("worker", "--pid", "1"), "no worker with pid 1"),
        (("node.err", "--node-id", "feedfacefeedface"), "no live node with id feedfacefeedface"),
        (("job", "--id", "raysubmit_nope"), "'raysubmit_nope'"),
        (("../token",), "not a path"),
        (("/etc/passwd",), "not a path"),
        (("%2e%2e%2ftoken",), "percent-encoded"),
        (("audit.jsonl",), "manta audit"),
        (("nosuch.out",), "no log file"),
        (("actor", "--id", "zz"), "is not an actor id"),
    ],
)
def test_bad_requests_fail_naming_what_was_asked(api, args, words):
    code, out = manta_logs(api, *args)
    assert code == 1 and words in out, out


# -- HTTP --------------------------------------------------------------------------------------------
def test_http_lists_the_heads_files_and_reads_them(api):
    pid = ray.get(say.remote("over http"))
    status, _, body = get(api, "/api/v0/logs")
    assert status == 200
    result = json.loads(body)["data"]["result"]
    assert "node.err" in result["raylet"] and any(n.startswith("worker-") for n in result["worker_out"])
    status, _, body = get(api, f"/api/v0/logs?node_id={api['node_id']}&glob=node.*")
    assert status == 200 and json.loads(body)["data"]["result"] == {"raylet": ["node.err", "node.out"]}
    status, kind, text = get(api, "/api/v0/logs/file?filename=node.err&lines=1")
    assert status == 200 and kind.startswith("text/plain") and len(text.splitlines()) == 1
    status, _, text = get(api, f"/api/v0/logs/file?pid={pid}")
    assert status == 200 and "over http" in text


def test_http_reads_by_actor_and_task(api):
    token = uuid.uuid4().hex
    speaker = Speaker.remote()
    ray.get(speaker.say.remote(token))
    status, _, text = get(api, f"/api/v0/logs/file?actor_id={speaker._actor_id.hex()}")
    assert status == 200 and token in text
    ref = complain.remote(f"err {token}")
    ray.get(ref)
    ran(ref)
    status, _, text = get(api, f"/api/v0/logs/file?task_id={ref.task_id().hex()}&suffix=err")
    assert status == 200 and f"err {token}" in text
    ray.kill(speaker)


@pytest.mark.parametrize(
    "filename",
    [
        "../token",
        "/etc/passwd",
        "%252e%252e%252ftoken",
        "..%2ftoken",
        "..%252ftoken",
        "..",
        "logs/../../token",
    ],
)
def test_http_refuses_anything_outside_the_logs_directory(api, filename):
    status, kind, body = get(api, f"/api/v0/logs/file?filename={filename}")
    assert status == 400 and kind.startswith("application/json"), body
    assert api["token"] not in body


def test_http_refuses_a_link_planted_in_the_logs_directory(api):
    link = Path(api["session_dir"], "logs", f"planted-{uuid.uuid4().hex[:6]}.log")
    link.symlink_to(Path(api["session_dir"], "token"))
    try:
        # Links are not log files: not listed, so not found (and the node would refuse
        # the name as leading outside, were it asked).
        status, _, body = get(api, f"/api/v0/logs/file?filename={link.name}")
        assert status == 404 and link.name in json.loads(body)["error"]
        assert api["token"] not in body
        status, _, body = get(api, f"/api/v0/logs/file?filename={link.name}&node_id={api['node_id']}")
        assert status == 404 and api["token"] not in body
        status, _, body = get(api, "/api/v0/logs")
        assert link.name not in body
    finally:
        link.unlink()


def test_http_does_not_serve_the_audit_log(api):
    status, _, body = get(api, "/api/v0/logs/file?filename=audit.jsonl")
    assert status == 403 and "manta audit" in json.loads(body)["error"]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("actor_id=" + "ab" * 16, 404, "ab" * 16),
        ("task_id=" + "cd" * 24, 404, "cd" * 24),
        ("pid=1", 404, "pid 1"),
        ("submission_id=raysubmit_none", 404, "raysubmit_none"),
        ("filename=node.err&node_id=feedfacefeedface", 404, "feedfacefeedface"),
        ("filename=nosuch.out", 404, "nosuch.out"),
        ("", 400, "exactly one of"),
        ("filename=node.err&pid=3", 400, "exactly one of"),
        ("pid=abc", 400, "'pid'"),
        ("filename=node.err&lines=many", 400, "'lines'"),
        ("actor_id=" + "ab" * 16 + "&suffix=log", 400, "'suffix'"),
    ],
)
def test_http_unknown_ids_are_404_and_bad_queries_400_naming_them(api, query, status, words):
    got, kind, body = get(api, "/api/v0/logs/file?" + query)
    assert got == status and kind.startswith("application/json") and words in json.loads(body)["error"], body


def test_http_unknown_node_in_the_listing_is_404(api):
    status, _, body = get(api, "/api/v0/logs?node_id=feedfacefeedface")
    assert status == 404 and "feedfacefeedface" in json.loads(body)["error"]


def test_http_needs_a_token_and_the_read_role_suffices(api):
    from tests.http_api import request

    status, body = request(api, "POST", "/api/tokens", {"role": "read", "name": "log-viewer"})
    assert status == 200, body
    for path in ("/api/v0/logs", "/api/v0/logs/file?filename=node.err", "/api/v0/logs/stream?filename=nope"):
        assert get(api, path, token=None)[0] == 401
        assert get(api, path, token="not-a-token")[0] == 401
    assert get(api, "/api/v0/logs", token=body["token"])[0] == 200
    assert get(api, "/api/v0/logs/file?filename=node.err", token=body["token"])[0] == 200


def test_http_stream_follows_what_is_written(api):
    speaker = Speaker.remote()
    ray.get(speaker.say.remote("before"))
    token = uuid.uuid4().hex
    url = f"{api['url']}/api/v0/logs/stream?actor_id={speaker._actor_id.hex()}&lines=0"

    async def follow() -> str:
        seen = ""
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Authorization": f"Bearer {api['token']}"}) as resp:
                assert resp.status == 200
                said = asyncio.get_running_loop().run_in_executor(None, ray.get, speaker.say.remote(token))
                while token not in seen:
                    seen += (await asyncio.wait_for(resp.content.readany(), 30)).decode()
                await said
        return seen

    seen = asyncio.run(follow())
    assert "before" not in seen and token in seen
    ray.kill(speaker)


# -- drivers of their own ---------------------------------------------------------------------------
def test_task_logging_reaches_the_driver_as_print_does():
    result = run_driver(
        """
        import logging
        import manta as ray

        @ray.remote
        def f():
            log = logging.getLogger("my.module")
            log.warning("warned from a task %d", 7)
            log.info("info stays quiet by default")
            print("printed from a task")
            logging.getLogger("manta.internal.test").warning("an internal line")

        @ray.remote
        class A:
            def m(self):
                logging.getLogger("actor.mod").error("actor error line")

        context = ray.init(num_cpus=1)
        ray.get(f.remote())
        a = A.remote()
        ray.get(a.m.remote())
        import glob, os
        files = glob.glob(os.path.join(context["session_dir"], "logs", "worker-*.log"))
        print("OWN-LINES", sum("an internal line" in open(p).read() for p in files))
        ray.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\(f pid=\d+, node=[0-9a-f]{8}\) warned from a task 7$", result.stderr, re.M), (
        result.stderr
    )
    assert re.search(r"^\(A pid=\d+, node=[0-9a-f]{8}\) actor error line$", result.stderr, re.M), (
        result.stderr
    )
    assert "(f pid=" in result.stdout and "printed from a task" in result.stdout
    assert "info stays quiet" not in result.stdout + result.stderr
    # Manta's own lines stay in the workers' .log files, never in the driver's output.
    assert int(re.search(r"OWN-LINES (\d+)", result.stdout).group(1)) == 1
    assert "an internal line" not in result.stderr


DEDUP_DRIVER = """
    import manta as ray

    @ray.remote
    class Shard:
        def load(self, i):
            print(f"loaded shard {i} in {i * 7} ms")

    ray.init(num_cpus=3)
    shards = [Shard.remote() for _ in range(3)]
    ray.get([s.load.remote(i) for i, s in enumerate(shards)])
    ray.shutdown()
"""


def test_lines_alike_from_several_workers_are_collapsed_with_a_count():
    result = run_driver(DEDUP_DRIVER)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "loaded shard" in line]
    assert len(lines) == 2, result.stdout
    assert re.search(r"loaded shard \d in \d+ ms \[repeated 2x across cluster\]", lines[1]), lines
    assert "RAY_DEDUP_LOGS=0" in lines[1]


@pytest.mark.parametrize("setting", ["MANTA_DEDUP_LOGS", "RAY_DEDUP_LOGS"])
def test_collapsing_can_be_turned_off(setting):
    result = run_driver(DEDUP_DRIVER, env={setting: "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("loaded shard") == 3 and "repeated" not in result.stdout


def test_json_logging_config_in_driver_and_workers():
    result = run_driver(
        """
        import logging
        import manta as ray

        @ray.remote
        def f():
            logging.getLogger("job.mod").info("from the task", extra={"order": 12})

        ray.init(num_cpus=1, logging_config=ray.LoggingConfig(encoding="JSON", log_level="INFO"))
        logging.getLogger("drv").info("from the driver")
        ray.get(f.remote())
        ray.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    records = {}
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            records[record["message"]] = record
    task, driver = records["from the task"], records["from the driver"]
    assert task["task_name"] == "f" and task["order"] == 12 and task["levelname"] == "INFO"
    assert task["job_id"] == driver["job_id"] and task["worker_id"] != driver["worker_id"]
    assert "task_id" not in driver and "(f pid=" not in result.stderr  # no prefix on JSON lines


def test_output_rotates_at_its_cap_and_the_driver_gets_every_line():
    result = run_driver(
        """
        import glob, os
        import manta as ray

        @ray.remote
        def chatty():
            import time
            out = os.readlink("/proc/self/fd/1")
            i = 0
            # Until the worker has rotated its stdout twice (it looks every second).
            while not os.path.exists(out + ".2") and i < 200_000:
                print(f"line {i:06d}")
                i += 1
                time.sleep(0.001)
            print(f"line {i:06d}")
            return i + 1, out

        ray.init(num_cpus=1)
        count, out = ray.get(chatty.remote())
        ray.shutdown()
        print("COUNT", count, "FILES", len(glob.glob(out + ".*")))
        """,
        env={
            "MANTA_ROTATION_MAX_BYTES": "4096",
            "MANTA_ROTATION_BACKUP_COUNT": "100",
            "MANTA_DEDUP_LOGS": "0",
        },
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    count, files = map(int, re.search(r"COUNT (\d+) FILES (\d+)", result.stdout).groups())
    assert files >= 2
    got = re.findall(r"\) line (\d{6})$", result.stdout, re.M)
    assert got == [f"{i:06d}" for i in range(count)]


def test_a_tasks_lines_are_all_found_across_its_workers_rotations():
    # The task's marker is in the oldest copy only: its lines are read from there on.
    result = run_driver(
        """
        import os, subprocess, sys, time
        import manta as ray
        from manta.util.state import get_task

        @ray.remote
        def chatty():
            out = os.readlink("/proc/self/fd/1")
            i = 0
            while not os.path.exists(out + ".2") and i < 200_000:
                print(f"line {i:06d}", flush=True)
                i += 1
                time.sleep(0.001)
            return i

        context = ray.init(num_cpus=1)
        ref = chatty.remote()
        count = ray.get(ref)
        for _ in range(300):  # until the task-event store names its worker and its name
            record = get_task(ref)
            if record is not None and record.worker_id and record.name:
                break
            time.sleep(0.1)
        shown = subprocess.run(
            [sys.executable, "-m", "manta.cli.main", "logs", "task", "--id", ref.task_id().hex(),
             "--tail", "-1", "--address", context["address"]],
            capture_output=True, text=True, timeout=60,
        )
        print("COUNT", count, "CODE", shown.returncode, "GOT", shown.stdout.count("line "))
        print("STDERR", shown.stderr[-500:])
        ray.shutdown()
        """,
        env={
            "MANTA_ROTATION_MAX_BYTES": "4096",
            "MANTA_ROTATION_BACKUP_COUNT": "100",
            "MANTA_DEDUP_LOGS": "0",
        },
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    count, code, got = map(int, re.search(r"COUNT (\d+) CODE (\d+) GOT (\d+)", result.stdout).groups())
    assert code == 0 and got == count, result.stdout[-2000:]

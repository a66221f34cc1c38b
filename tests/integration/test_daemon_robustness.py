"""A daemon never dies of bad input: it answers with an error, logs, and keeps serving."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import manta
from manta._private.api.context import current_worker
from manta._private.common.ids import JobID, LeaseID, ObjectID, WorkerID
from manta._private.rpc import codec
from manta._private.rpc import messages as m
from manta._private.rpc.endpoints import MAX_PENDING_HANDSHAKES, connect
from manta._private.rpc.transport import Dispatcher, RemoteError
from tests.integration.conftest import run_driver


async def _connect(address: str) -> object:
    worker = current_worker()
    assert worker is not None
    return await connect(address, worker.session.token, Dispatcher(), kind="cli", max_frame_bytes=1 << 20)


def _still_serving() -> None:
    @manta.remote
    def ping(x):
        return x

    assert manta.get(ping.remote(41), timeout=30) == 41
    assert manta.get(manta.put(b"x" * 200_000)) == b"x" * 200_000


@pytest.mark.parametrize("target", ["node", "gcs"])
def test_bad_messages_get_error_replies(cluster, target):
    worker = current_worker()
    address = worker.session.node_address if target == "node" else worker.session.gcs_address

    async def scenario() -> list[str]:
        conn = await _connect(address)
        errors = []
        bad = [
            m.RequestLease(1, JobID.from_int(1), {"CPU": -1.0}, "", "DEFAULT"),
            m.RequestLease(2, JobID.from_int(1), {"CPU": "lots"}, "", "DEFAULT"),  # type: ignore[dict-item]
            m.RequestLease(
                4, JobID.from_int(1), {"CPU": 1.0}, "", {"type": "node_label", "hard": {"z": "a"}}
            ),
            m.KvPut("ns", "not-bytes", b"v", True),  # type: ignore[arg-type]
            m.PushTask(None, LeaseID.from_random(), {}),  # type: ignore[arg-type]
            m.GetWorkerExit(WorkerID.from_random()),
            m.KillWorker(WorkerID.from_random(), "no such worker"),
        ]
        for msg in bad:
            try:
                reply = await asyncio.wait_for(conn.call(msg), 10)
                errors.append(f"ok:{type(msg).__name__}:{reply!r}")
            except RemoteError as e:
                errors.append(f"error:{type(msg).__name__}:{e.type_name}")
        # One-way messages with nonsense in them must be harmless too.
        conn.notify(m.ReturnLease(LeaseID.from_random(), True))
        conn.notify(m.FreeObjects([ObjectID.from_random()]))
        conn.notify(m.WorkerBlocked())
        await asyncio.sleep(0.1)
        conn.close()
        return errors

    results = asyncio.run(scenario())
    if target == "node":
        assert results.count("error:RequestLease:ValueError") == 3  # bad amounts, bad strategy
        assert any(r.startswith("error:PushTask:UnknownMessage") for r in results)
        assert "ok:KillWorker:False" in results
        assert "ok:GetWorkerExit:None" in results
    else:
        assert "error:KvPut:ValueError" in results
        assert "error:RequestLease:UnknownMessage" in results
    _still_serving()


@pytest.mark.parametrize("target", ["node", "gcs"])
def test_garbage_bytes_close_only_that_connection(cluster, target):
    worker = current_worker()
    address = worker.session.node_address if target == "node" else worker.session.gcs_address
    path = address.removeprefix("unix:")
    for payload in (b"\x00\x00\x00\x05hello", b"\xff\xff\xff\xff" + b"x" * 100, b"GET / HTTP/1.1\r\n\r\n"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(payload)
            try:
                # The daemon answers with an error frame or just closes; either way it ends.
                while sock.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass

    async def after_handshake() -> None:
        conn = await _connect(address)
        transport = conn._transport  # type: ignore[attr-defined]
        transport.write(b"\x00\x00\x00\x03\xc1\xc1\xc1")  # 0xc1 is never valid msgpack
        await asyncio.sleep(0.2)
        assert conn.closed  # type: ignore[attr-defined]

    asyncio.run(after_handshake())
    _still_serving()


def test_messages_with_fields_of_the_wrong_type_are_refused_before_any_handler(cluster):
    worker = current_worker()

    async def scenario() -> list[str]:
        node = await _connect(worker.session.node_address)
        gcs = await _connect(worker.session.gcs_address)
        errors = []
        bad = [
            (node, m.CreateObject(ObjectID.from_random(), float("nan"), WorkerID.from_random())),  # type: ignore[arg-type]
            (node, m.CreateObject(ObjectID.from_random(), 1.5, WorkerID.from_random())),  # type: ignore[arg-type]
            (node, m.RequestLease(3, JobID.from_int(1), {"CPU": float("inf")}, "", "DEFAULT")),
            (gcs, m.KvPut("ns", b"k", "not-bytes", True)),  # type: ignore[arg-type]
        ]
        for conn, msg in bad:
            try:
                await asyncio.wait_for(conn.call(msg), 10)
                errors.append(f"ok:{type(msg).__name__}")
            except RemoteError as e:
                errors.append(f"{e.type_name}:{e.text}")
        node.close()
        gcs.close()
        return errors

    results = asyncio.run(scenario())
    assert len(results) == 4 and all(r.startswith("ValueError:malformed ") for r in results), results
    assert "CreateObject.size" in results[0] and "CreateObject.size" in results[1]
    assert "RequestLease.resources value" in results[2] and "KvPut.value" in results[3]
    _still_serving()


def test_a_lease_nonce_still_pending_is_refused_and_a_disconnect_drops_the_requests(cluster):
    worker = current_worker()

    async def scenario() -> str:
        conn = await _connect(worker.session.node_address)
        first = conn.call(m.RequestLease(77, JobID.from_int(1), {"unobtainium": 1.0}, "", "DEFAULT"))
        try:
            await asyncio.wait_for(
                conn.call(m.RequestLease(77, JobID.from_int(1), {"CPU": 1.0}, "", "DEFAULT")), 10
            )
            outcome = "accepted"
        except RemoteError as e:
            outcome = f"{e.type_name}:{e.text}"
        assert not first.done()  # the infeasible one still waits
        conn.close()  # the node drops its requests; nothing waits on them any more
        return outcome

    assert asyncio.run(scenario()) == "ValueError:lease request 77 is already pending: nonces must be unique"
    _still_serving()


def _open(sock: socket.socket) -> bool:
    """Whether the server still holds this connection (it has not closed its end)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_a_flood_on_the_tcp_port_leaves_local_clients_served(cluster):
    """More silent TCP connections than the gcs lets wait for a handshake: new TCP peers are
    refused meanwhile, but clients on the Unix socket (this host's drivers and nodes) have a
    budget of their own and are served."""
    import json
    import os

    worker = current_worker()
    with open(os.path.join(worker.session.session_dir, "address.json")) as f:
        host, port = json.load(f)["gcs_address"].rsplit(":", 1)
    flood = []
    try:
        for _ in range(300):
            flood.append(socket.create_connection((host, int(port)), timeout=5))

        async def local_client() -> int:
            conn = await _connect(worker.session.gcs_address)  # unix:...
            nodes = await asyncio.wait_for(conn.call(m.GetNodes()), 10)
            conn.close()
            return len(nodes)

        assert worker.session.gcs_address.startswith("unix:")
        time.sleep(1.0)  # let the gcs take them all in (each now waits for its handshake)
        assert asyncio.run(local_client()) >= 1
        # ... and that was during the flood: the gcs holds as many of the flood's connections
        # as it lets wait (it closes a silent one after 10 s) and refused the rest.
        assert sum(_open(s) for s in flood) == MAX_PENDING_HANDSHAKES
        _still_serving()
    finally:
        for sock in flood:
            sock.close()


def test_only_a_node_speaks_for_itself(cluster):
    """A heartbeat for a real node from another (authenticated) connection is ignored: it
    cannot make the cluster believe in resources that are not there."""
    worker = current_worker()

    async def spoof() -> None:
        conn = await _connect(worker.session.gcs_address)
        conn.notify(m.Heartbeat(worker.node_id, {"CPU": 1000.0}, [], [], None))
        conn.notify(m.Heartbeat(worker.node_id, {"CPU": -5.0}, [], [], None))
        await asyncio.sleep(0.5)
        conn.close()

    asyncio.run(spoof())
    assert manta.available_resources().get("CPU", 0.0) <= 2.0  # not the 1000 claimed
    log = Path(worker.session.session_dir, "logs", "gcs.err").read_text()
    assert f"ignored a heartbeat for node {worker.node_id.hex()[:8]}" in log
    assert manta.cluster_resources()["CPU"] == 2.0
    _still_serving()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
def test_another_local_user_is_refused_on_the_unix_socket(cluster, tmp_path):
    """The sockets are 0600, so only root could let another user in: opened up here on
    purpose, the daemon still refuses a peer of another uid before its first byte."""
    import subprocess
    import sys

    worker = current_worker()
    path = worker.session.gcs_address.split(":", 1)[1]
    # Let the other user reach the socket: its directories are 0700 too.
    opened = [path, *(d for d in Path(path).parents if not os.stat(d).st_mode & 0o001)]
    modes = {p: os.stat(p).st_mode & 0o777 for p in map(str, opened)}
    for p in modes:
        os.chmod(p, modes[p] | (0o666 if p == path else 0o711))
    try:
        code = (
            "import os, socket, sys\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
            "print('closed' if s.recv(1) == b'' else 'open')\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, path], capture_output=True, text=True, timeout=30
        )
    finally:
        for p, mode in modes.items():
            os.chmod(p, mode)
    # Closed at once: a peer let in would have been given 10 s to shake hands (the client
    # waits 5), and nothing else refuses a lone new connection. (The log line may be
    # rate-limited away after the floods above.)
    assert result.stdout.strip() == "closed", result.stderr
    _still_serving()


def test_workers_that_cannot_start_are_not_replaced_for_ever_and_the_driver_hears_why():
    # A worker that dies before it registers (here: the session's token is gone, so it
    # cannot connect) used to be replaced at once, for ever, the task waiting in silence.
    result = run_driver(
        """
        import os, time, psutil, manta
        from manta._private.api.context import current_worker
        from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

        manta.init(num_cpus=1)

        @manta.remote
        def f():
            return "ran"

        session = current_worker().session.session_dir
        token = os.path.join(session, "token")
        template = next(p for p in psutil.Process().children(recursive=True)
                        if "worker_template" in " ".join(p.cmdline()))
        subscriber = init_error_pubsub()
        os.rename(token, token + ".away")
        try:
            for worker in template.children():  # the workers started ahead go
                worker.kill()
            ref = f.remote()
            [error] = get_error_message(subscriber, 1, "worker_died", timeout=30)
            print("HEARD", error["error_message"])
            time.sleep(3)
            logs = os.listdir(os.path.join(session, "logs"))
            print("STARTED", sum(1 for n in logs if n.startswith("worker-") and n.endswith(".err")))
        finally:
            os.rename(token + ".away", token)
            subscriber.close()
        print("RESULT", manta.get(ref, timeout=60))
        manta.shutdown()
        """,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(
        line.split(" ", 1) for line in result.stdout.splitlines() if line[:4] in ("HEAR", "STAR", "RESU")
    )
    assert "workers in a row exited before they started" in out["HEARD"], out
    assert "starting workers there again in 1 s" in out["HEARD"], out
    assert int(out["STARTED"]) < 20, out  # a few, not hundreds
    assert out["RESULT"] == "ran"


def test_a_fork_that_fails_costs_that_worker_not_the_template(tmp_path):
    # EAGAIN at a process limit, ENOMEM: simulated by a template whose fork raises.
    node_end, template_end = socket.socketpair()
    code = (
        "import errno, os, sys\n"
        "def refuse():\n"
        "    raise BlockingIOError(errno.EAGAIN, 'Resource temporarily unavailable')\n"
        "os.fork = refuse\n"
        "from manta._private import worker_template\n"
        "worker_template.serve(int(sys.argv[1]))\n"
    )
    template = subprocess.Popen(
        [sys.executable, "-c", code, str(template_end.fileno())], pass_fds=[template_end.fileno()]
    )
    template_end.close()
    try:

        def send(msg: object) -> None:
            payload = codec.encode(msg)
            node_end.sendall(len(payload).to_bytes(4, "big") + payload)

        def receive() -> object:
            size = int.from_bytes(_read_exactly(node_end, 4), "big")
            return codec.decode(_read_exactly(node_end, size))

        send(m.TemplateParams({}))
        for _ in range(2):
            worker_id = WorkerID.from_random()
            send(m.ForkWorker(worker_id, {}, str(tmp_path / "w.out"), str(tmp_path / "w.err")))
            answer = receive()
            assert isinstance(answer, m.ForkFailed) and answer.worker_id == worker_id, answer
            assert "Resource temporarily unavailable" in answer.error
        assert template.poll() is None  # still serving
        node_end.close()  # the node goes: so does the template
        assert template.wait(10) == 0
    finally:
        node_end.close()
        if template.poll() is None:
            template.kill()
            template.wait()


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "the template closed the connection"
        data += chunk
    return data

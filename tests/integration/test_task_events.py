"""Task events on a real cluster: every process reports its tasks' state changes to the
gcs's store, and ``list_tasks``, ``get_task`` and ``summarize_tasks`` read them."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
from click.testing import CliRunner

import manta as ray
from manta.cli.main import cli
from manta.util.state import explain, get_task, list_tasks, summarize_tasks
from tests.polling import touch, wait_for_files, wait_until


def record_of(ref, state=None, timeout=20.0):
    """The task's record once the store has it from its owner (the worker's events may
    come first) and, if given, in ``state``."""
    deadline = time.monotonic() + timeout
    while True:
        record = get_task(ref)
        if record is not None and record.name and (state is None or record.state == state):
            return record
        assert time.monotonic() < deadline, f"no record in state {state}; last: {record}; {_store_counts()}"
        time.sleep(0.05)


@ray.remote
def add(x, y):
    return x + y


@ray.remote
def fail():
    raise ValueError("deliberately")


@ray.remote
class Broken:
    def __init__(self):
        raise RuntimeError("no config")

    def m(self):
        return 1


@ray.remote
def wait_for(path):
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return os.getpid()


def test_a_finished_task_has_rays_fields_and_its_history(cluster):
    ref = add.remote(1, 2)
    assert ray.get(ref) == 3
    record = record_of(ref, "FINISHED")
    assert record.task_id == ref.task_id().hex() and record.attempt_number == 0
    assert (record.name, record.func_or_class_name, record.type) == ("add", "add", "NORMAL_TASK")
    assert record.job_id == ray.get_runtime_context().get_job_id()
    assert record.worker_pid and record.node_id == ray.get_runtime_context().get_node_id()
    assert record.required_resources == {"CPU": 1.0} and record.language == "PYTHON"
    record = wait_until(
        lambda: (lambda r: r if len(r.events) == 4 else None)(get_task(ref))
    )  # every report in
    states = [e["state"] for e in record.events]
    assert states == ["PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED"]
    assert record.creation_time_ms <= record.start_time_ms <= record.end_time_ms
    assert record["state"] == "FINISHED"  # read as a dict too
    brief = list_tasks(filters=[("task_id", "=", record.task_id)])[0]
    assert brief.state == "FINISHED" and brief.events is None  # detail fields only with detail=True


def test_a_failed_task_says_why(cluster):
    ref = fail.remote()
    with pytest.raises(ValueError):
        ray.get(ref)
    record = record_of(ref, "FAILED")
    assert record.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "ValueError: deliberately" in record.error_message
    assert 'raise ValueError("deliberately")' in record.error_message  # with its traceback
    failed = list_tasks(filters=[("state", "=", "failed"), ("func_or_class_name", "=", "fail")])
    assert record.task_id in {r.task_id for r in failed}


def test_running_and_waiting_tasks_show_where_they_are(cluster, tmp_path):
    go = str(tmp_path / "go")
    running = wait_for.remote(go)
    waiting = add.remote(running, 1)  # its argument is not ready
    try:
        record = record_of(running, "RUNNING")
        assert record.worker_pid and record.worker_id
        assert record_of(waiting).state == "PENDING_ARGS_AVAIL"
    finally:
        touch(go)
    pid = ray.get(running)
    assert record_of(running, "FINISHED").worker_pid == pid
    ray.get(waiting)
    # The owner's events and the worker's reach the store in separate reports.
    history = wait_until(
        lambda: (lambda r: [e["state"] for e in r.events] if r and len(r.events) == 5 else None)(
            get_task(waiting)
        )
    )
    assert history == [
        "PENDING_ARGS_AVAIL",
        "PENDING_NODE_ASSIGNMENT",
        "SUBMITTED_TO_WORKER",
        "RUNNING",
        "FINISHED",
    ]


def test_an_infeasible_task_waits_for_a_node_and_a_cancelled_one_fails(cluster):
    ref = add.options(num_gpus=1).remote(1, 1)
    record_of(ref, "PENDING_NODE_ASSIGNMENT")
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref)
    assert record_of(ref, "FAILED").error_type == "TASK_CANCELLED"


def test_actor_calls_are_actor_tasks(cluster):
    @ray.remote
    class Counter:
        def incr(self):
            return 1

    counter = Counter.remote()
    ref = counter.incr.remote()
    ray.get(ref)
    record = record_of(ref, "FINISHED")
    assert (record.type, record.func_or_class_name, record.name) == (
        "ACTOR_TASK",
        "Counter.incr",
        "Counter.incr",
    )
    assert record.actor_id == counter._actor_id.hex()
    summary = summarize_tasks()["cluster"]
    assert summary["summary"]["Counter.incr"]["state_counts"]["FINISHED"] >= 1
    assert summary["summary"]["Counter.incr"]["type"] == "ACTOR_TASK"
    assert summary["total_actor_tasks"] >= 1 and summary["summary_by"] == "func_name"
    creation = wait_until(
        lambda: (lambda r: r if r and r[0].state == "FINISHED" and r[0].name else None)(
            list_tasks(
                filters=[("actor_id", "=", counter._actor_id.hex()), ("type", "=", "ACTOR_CREATION_TASK")]
            )
        )
    )[0]
    assert creation.func_or_class_name == "Counter.__init__" and creation.worker_pid == record.worker_pid
    assert summarize_tasks()["cluster"]["total_actor_scheduled"] >= 1


def test_a_failing_constructor_fails_its_creation_task(cluster):
    broken = Broken.remote()
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(broken.m.remote())
    only = [("actor_id", "=", broken._actor_id.hex()), ("type", "=", "ACTOR_CREATION_TASK")]
    [creation] = wait_until(
        lambda: (lambda r: r if r and r[0].state == "FAILED" else None)(list_tasks(filters=only))
    )
    assert creation.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "RuntimeError: no config" in get_task(creation.task_id).error_message


def test_enable_task_events_false_records_nothing(cluster):
    @ray.remote(enable_task_events=False)
    def quiet():
        return 1

    @ray.remote(enable_task_events=False)
    class Quiet:
        def m(self):
            return 1

        @ray.method(enable_task_events=True)
        def loud(self):
            return 2

    loud_ref = add.remote(0, 0)
    quiet_ref = quiet.remote()
    actor = Quiet.remote()
    calls = [actor.m.remote(), add.options(enable_task_events=False).remote(1, 1)]
    method_loud = actor.loud.remote()
    ray.get([loud_ref, quiet_ref, method_loud, *calls])
    # The loud ones are recorded by their owner (this driver), so the quiet ones' absence
    # below is the option's doing. Only the owner's records are awaited here: in this mix of
    # a new actor and new workers, a new worker's own events went missing about one run in
    # eight (not yet explained; see the note), which other tests would show.
    record_of(loud_ref)
    assert record_of(method_loud).type == "ACTOR_TASK"  # a method may say otherwise
    for ref in (quiet_ref, *calls):
        assert get_task(ref) is None


def test_a_retried_task_has_one_record_per_attempt(cluster, tmp_path):
    marker = str(tmp_path / "died-once")

    @ray.remote(max_retries=1)
    def die_once(path):
        if not os.path.exists(path):
            with open(path, "w"):
                pass
            os._exit(1)
        return "second time"

    ref = die_once.remote(marker)
    assert ray.get(ref) == "second time"
    wait_for_files(marker)

    def both_attempts():
        found = get_task(ref)
        if not isinstance(found, list) or len(found) != 2:
            return None
        first, second = sorted(found, key=lambda r: r.attempt_number)
        # The worker's FINISHED can reach the gcs before the owner's report defining the
        # attempt (each process reports on its own clock): the record is whole once both have.
        return (first, second) if second.state == "FINISHED" and second.name else None

    first, second = wait_until(both_attempts, what="both attempts, the second finished and named")
    assert first.state == "FAILED" and first.error_type == "WORKER_DIED"
    assert second.name == first.name == "die_once"


def test_bad_listings_say_what_to_do(cluster, caplog):
    with pytest.raises(
        ValueError, match="Cannot filter tasks by 'colour': the filterable columns are task_id"
    ):
        list_tasks(filters=[("colour", "=", "red")])
    with pytest.raises(ValueError, match="Unsupported filter predicate '>'"):
        list_tasks(filters=[("state", ">", "RUNNING")])
    manta_logger = logging.getLogger("manta")  # it does not propagate to the root's
    manta_logger.addHandler(caplog.handler)
    try:
        list_tasks(limit=1_000_000)
    finally:
        manta_logger.removeHandler(caplog.handler)
    assert "limit=1000000 is more than a listing returns; at most 10000 are" in caplog.text
    assert get_task("ff" * 24) is None
    with pytest.raises(ValueError, match="is neither a task id"):
        get_task("nope")


def manta_cli(cluster, *args):
    result = CliRunner().invoke(cli, [*args, "--address", cluster.address_info["address"]])
    return result.exit_code, result.output


def test_the_cli_lists_gets_and_summarizes_tasks(cluster):
    ref = fail.options(name="cli_failure").remote()
    with pytest.raises(ValueError):
        ray.get(ref)
    task_id = record_of(ref, "FAILED").task_id
    code, out = manta_cli(cluster, "list", "tasks", "--filter", "name=cli_failure", "--format", "json")
    assert code == 0, out
    [row] = json.loads(out)
    assert (row["task_id"], row["state"], row["error_type"]) == (
        task_id,
        "FAILED",
        "TASK_EXECUTION_EXCEPTION",
    )
    code, out = manta_cli(cluster, "list", "tasks", "--filter", "state!=FINISHED")
    assert code == 0 and task_id in out and "cli_failure" in out  # a table
    code, out = manta_cli(cluster, "get", "tasks", task_id)
    assert (
        code == 0 and "ValueError: deliberately" in out and "SUBMITTED_TO_WORKER" in out
    )  # YAML, every field
    code, out = manta_cli(cluster, "summary", "tasks", "--format", "json")
    assert code == 0 and json.loads(out)["cluster"]["summary"]["fail"]["state_counts"]["FAILED"] >= 1


def test_the_cli_refuses_bad_filters_and_unknown_ids(cluster):
    code, out = manta_cli(cluster, "list", "tasks", "--filter", "colour=red")
    assert code == 2 and "the filterable columns are task_id" in out
    code, out = manta_cli(cluster, "list", "tasks", "--filter", "state>RUNNING")
    assert code == 2 and "write COLUMN=VALUE or COLUMN!=VALUE" in out
    code, out = manta_cli(cluster, "get", "tasks", "00" * 24)
    assert code == 1 and "no task with id '0000" in out
    code, out = manta_cli(cluster, "get", "actors", "feedface")
    assert code == 1 and "no actor with id 'feedface'" in out
    code, out = manta_cli(cluster, "list", "workers", "--filter", "colour=red")
    assert code == 2 and "the filterable columns are worker_id" in out


def test_the_timeline_has_a_slice_per_task_run(cluster, tmp_path):
    @ray.remote
    def nap():
        import time

        time.sleep(0.05)
        return os.getpid()

    refs = [nap.remote() for _ in range(3)]
    pids = set(ray.get(refs))
    ids = {record_of(ref, "FINISHED").task_id for ref in refs}
    slices = [e for e in ray.timeline() if e["args"]["task_id"] in ids]
    assert len(slices) == 3 and all(e["ph"] == "X" and e["dur"] >= 40_000 for e in slices)
    assert {e["tid"] for e in slices} == {f"worker pid={pid}" for pid in pids}
    path = tmp_path / "trace.json"
    assert ray.timeline(str(path)) is None
    assert ids <= {e["args"]["task_id"] for e in json.loads(path.read_text())}
    cli_path = tmp_path / "cli.json"
    code, out = manta_cli(cluster, "timeline", "--output", str(cli_path))
    assert code == 0 and "open it in https://ui.perfetto.dev" in out
    assert ids <= {e["args"]["task_id"] for e in json.loads(cli_path.read_text())}


def _store_counts():
    from manta._private.api.context import current_worker
    from manta._private.rpc import messages as m

    summary = current_worker().call_gcs(m.SummarizeTasks(), 10)
    return {k: summary[k] for k in ("dropped", "evicted", "malformed")}


def explained(ref, words, timeout=20.0):
    """``explain(ref)`` once it says ``words`` (events reach the store every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while words not in (text := explain(ref)):
        assert time.monotonic() < deadline, f"never said {words!r}; last: {text}"
        time.sleep(0.05)
    return text


def test_why_a_task_waits(cluster, tmp_path):
    go = str(tmp_path / "go")
    first, second = wait_for.remote(go), wait_for.remote(go)  # both CPUs
    consumer = add.remote(first, 1)
    queued = add.remote(1, 2)
    never = add.options(num_gpus=1).remote(1, 1)
    try:
        chain = explained(consumer, f"task wait_for ({first.task_id().hex()}, attempt 0) is running")
        assert f"argument {first.hex()} is a result of:" in chain
        busy = explained(queued, "in use")
        assert "held by running tasks" in busy and first.task_id().hex() in busy
        assert "it is infeasible" in explained(never, "no node can ever run it: it needs {CPU: 1, GPU: 1}")
    finally:
        touch(go)
        ray.cancel(never)
    ray.get([consumer, queued, second])
    explained(consumer, f"task add ({consumer.task_id().hex()}, attempt 0) finished")


def test_why_an_actor_call_waits(cluster):
    call = Broken.remote().m.remote()
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(call)
    assert "ACTOR_DIED" in explained(call, "failed")


@ray.remote(max_restarts=1)
class SlowToRestart:
    def __init__(self, restarted, go):
        if os.path.exists(restarted):  # its second life: wait to be let go
            touch(restarted + ".again")
            while not os.path.exists(go):
                time.sleep(0.02)
        touch(restarted)

    def pid(self):
        return os.getpid()


def test_why_an_actor_call_waits_for_its_restart(cluster, tmp_path):
    import signal

    restarted, go = str(tmp_path / "restarted"), str(tmp_path / "go")
    actor = SlowToRestart.remote(restarted, go)
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
    wait_for_files(restarted + ".again")  # its constructor runs again, and waits
    call = actor.pid.remote()
    try:
        text = explained(call, "which is RESTARTING")
        assert actor._actor_id.hex() in text, text
    finally:
        touch(go)
    assert ray.get(call) > 0
    explained(call, "finished")


@ray.remote
class Owner:
    def submit(self):
        return [add.options(num_gpus=1).remote(1, 1)]  # nested: this actor owns it


def test_why_a_task_whose_owner_died_never_runs(cluster):
    """An actor owns a task no node can run, and is killed; a driver that submitted one
    exits. Each task is then explained by its dead owner, not by its resources."""
    from tests.integration.conftest import run_driver

    owner = Owner.remote()
    [orphan] = ray.get(owner.submit.remote())
    explained(orphan, "it is infeasible")
    ray.kill(owner)
    text = explained(orphan, "will never finish: its owner, worker ")
    assert "died on node" in text and "OwnerDiedError" in text, text
    address = cluster.address_info["address"]
    done = run_driver(
        f"""
        import manta as ray

        ray.init(address={address!r})
        print(ray.remote(num_gpus=1)(lambda: 1).remote().task_id().hex())
        """
    )
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.split()[-1]
    text = explained(task_id, "has exited; the task and its result went with it")
    assert "the driver of job" in text, text


def test_manta_why_on_the_command_line(cluster):
    ref = add.remote(2, 2)
    ray.get(ref)
    explained(ref, f"task add ({ref.task_id().hex()}, attempt 0) finished")
    for id in (ref.task_id().hex(), ref.hex()):  # a task's id, or an object's
        code, out = manta_cli(cluster, "why", id)
        assert code == 0 and f"task add ({ref.task_id().hex()}, attempt 0) finished" in out
    code, out = manta_cli(cluster, "why", "not-an-id")
    assert code == 2 and "is neither a task id" in out


def test_a_long_blocked_get_logs_why_once():
    """A driver of its own, with a short threshold: its get of a task no node can run
    logs the explanation once, and a get with a shorter timeout logs nothing."""
    from tests.integration.conftest import run_driver

    done = run_driver(
        """
        import manta as ray
        from manta.exceptions import GetTimeoutError

        ray.init(num_cpus=1, _system_config={"get_warning_threshold_s": 0.5})

        @ray.remote(num_gpus=1)
        def needs_a_gpu():
            return 1

        ref = needs_a_gpu.remote()
        for timeout in (0.3, 3):
            try:
                ray.get(ref, timeout=timeout)
            except GetTimeoutError:
                print("timed out", timeout, flush=True)
        ray.shutdown()
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["timed", "out", "0.3", "timed", "out", "3"]
    assert done.stderr.count("get() has been blocked for 0.5 s on 1 object(s)") == 1, done.stderr
    assert "needs_a_gpu" in done.stderr and "GPU" in done.stderr

"""Actor failures: restarts after the process dies, retries of interrupted calls, death
when restarts run out, constructor errors, kill with restart, and detached actors that
outlive the driver that made them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import manta as ray
from manta.exceptions import ActorDiedError, ActorUnavailableError
from tests.integration.conftest import run_driver
from tests.polling import process_gone, touch, wait_for_files, wait_until


def _runs(path):
    """How many times the constructor ran (one line each)."""
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return len(f.read().splitlines())


@ray.remote
class Phoenix:
    def __init__(self, runs_file):
        with open(runs_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        self.calls = 0

    def pid(self):
        return os.getpid()

    def incr(self):
        self.calls += 1
        return self.calls

    def die(self):
        os._exit(1)

    def die_once(self, marker):
        """Dies the first time it runs; a retry after the restart returns."""
        if not os.path.exists(marker):
            touch(marker)
            os._exit(1)
        return "survived"

    def hang_once(self, started, marker):
        """Blocks the first time (until killed from outside); a retry returns."""
        if os.path.exists(marker):
            return "retried"
        touch(marker)
        touch(started)
        time.sleep(60)
        return "not killed"


def test_actor_restarts_until_max_restarts_then_dies(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    actor = Phoenix.options(max_restarts=2, max_task_retries=0).remote(runs)
    pids = [ray.get(actor.pid.remote(), timeout=30)]
    assert _runs(runs) == 1
    for restart in (1, 2):
        # The call running when the process died: not retried, the actor is restarting.
        with pytest.raises(ActorUnavailableError) as info:
            ray.get(actor.die.remote(), timeout=30)
        assert info.value.actor_id == actor._actor_id.hex()
        wait_until(lambda: process_gone(pids[-1]), what="the dead actor's process exiting")
        # A call after the crash reaches the restarted actor: a new process, fresh state.
        pid = ray.get(actor.pid.remote(), timeout=30)
        assert pid not in pids
        pids.append(pid)
        assert _runs(runs) == 1 + restart
        assert ray.get(actor.incr.remote(), timeout=30) == 1
    # No restarts left: the next death is final, and the error names the cause.
    with pytest.raises(ActorDiedError) as info:
        ray.get(actor.die.remote(), timeout=30)
    assert "exited with code 1" in str(info.value), str(info.value)
    with pytest.raises(ActorDiedError) as info:
        ray.get(actor.incr.remote(), timeout=30)
    assert "exited with code 1" in str(info.value), str(info.value)
    assert "Phoenix" in str(info.value)
    assert _runs(runs) == 3


def test_calls_in_flight_are_retried_with_max_task_retries(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    actor = Phoenix.options(max_restarts=1, max_task_retries=1).remote(runs)
    first_pid = ray.get(actor.pid.remote(), timeout=30)
    assert ray.get(actor.die_once.remote(str(tmp_path / "marker")), timeout=60) == "survived"
    assert _runs(runs) == 2
    assert ray.get(actor.pid.remote(), timeout=30) != first_pid


def test_an_externally_killed_call_is_retried(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    started = str(tmp_path / "started")
    actor = Phoenix.options(max_restarts=-1, max_task_retries=-1).remote(runs)
    pid = ray.get(actor.pid.remote(), timeout=30)
    ref = actor.hang_once.remote(started, str(tmp_path / "marker"))
    wait_for_files(started)
    os.kill(pid, signal.SIGKILL)
    assert ray.get(ref, timeout=60) == "retried"
    assert _runs(runs) == 2
    new_pid = ray.get(actor.pid.remote(), timeout=30)
    assert new_pid != pid
    ray.kill(actor)
    wait_until(lambda: process_gone(new_pid), what="the killed actor's process exiting")


def test_an_externally_killed_call_without_retries_is_unavailable(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    started = str(tmp_path / "started")
    actor = Phoenix.options(max_restarts=1).remote(runs)
    pid = ray.get(actor.pid.remote(), timeout=30)
    ref = actor.hang_once.remote(started, str(tmp_path / "marker"))
    wait_for_files(started)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorUnavailableError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.incr.remote(), timeout=30) == 1  # the restarted actor serves calls
    assert _runs(runs) == 2
    ray.kill(actor)


def test_death_without_restarts_names_the_signal(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    started = str(tmp_path / "started")
    actor = Phoenix.remote(runs)
    pid = ray.get(actor.pid.remote(), timeout=30)
    ref = actor.hang_once.remote(started, str(tmp_path / "marker"))
    wait_for_files(started)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDiedError) as info:
        ray.get(ref, timeout=60)
    assert "SIGKILL" in str(info.value), str(info.value)
    with pytest.raises(ActorDiedError):
        ray.get(actor.incr.remote(), timeout=30)
    assert _runs(runs) == 1


def test_kill_with_restart_restarts_the_actor(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    actor = Phoenix.options(max_restarts=1).remote(runs)
    first_pid = ray.get(actor.pid.remote(), timeout=30)
    ray.get(actor.incr.remote(), timeout=30)
    ray.kill(actor, no_restart=False)
    wait_until(lambda: process_gone(first_pid), what="the killed actor's process exiting")

    def restarted():
        try:
            return ray.get(actor.pid.remote(), timeout=30)
        except ActorUnavailableError:
            return None

    second_pid = wait_until(restarted, what="the actor answering after its restart")
    assert second_pid != first_pid
    assert _runs(runs) == 2
    assert ray.get(actor.incr.remote(), timeout=30) == 1
    ray.kill(actor)  # no_restart=True: final, although a restart would be allowed
    with pytest.raises(ActorDiedError, match=r"manta\.kill"):
        ray.get(actor.incr.remote(), timeout=30)
    assert _runs(runs) == 2


def test_kill_fails_the_call_running_on_the_actor(cluster, tmp_path):
    actor = Phoenix.remote(str(tmp_path / "runs"))
    started = tmp_path / "started"
    running = actor.hang_once.remote(str(started), str(tmp_path / "marker"))
    wait_for_files(started)
    ray.kill(actor)
    # Before, the running call's ref was never resolved (get timed out here).
    with pytest.raises(ActorDiedError, match=r"killed by `ray\.kill` \(manta\.kill\)"):
        ray.get(running, timeout=30)


def test_calls_made_right_after_a_restarting_kill_resolve(cluster, tmp_path):
    actor = Phoenix.options(max_restarts=-1).remote(str(tmp_path / "runs"))
    ray.get(actor.pid.remote(), timeout=30)
    for _ in range(5):
        ray.kill(actor, no_restart=False)
        call = actor.incr.remote()  # it may reach the old instance, or wait for the new one
        try:
            assert ray.get(call, timeout=30) >= 1
        except ActorUnavailableError:
            pass  # it was cut off by the restart: also an answer, not a hang


@ray.remote
class AtExit:
    def __init__(self, path):
        import atexit

        atexit.register(touch, path)

    def pid(self):
        return os.getpid()

    def leave(self):
        ray.actor.exit_actor()


def test_a_chosen_exit_runs_atexit_handlers_and_a_kill_does_not(cluster, tmp_path):
    left = tmp_path / "left"
    actor = AtExit.remote(str(left))
    with pytest.raises(ActorDiedError):
        ray.get(actor.leave.remote(), timeout=30)
    wait_for_files(left)

    dropped = tmp_path / "dropped"
    actor = AtExit.remote(str(dropped))
    ray.get(actor.pid.remote(), timeout=30)
    del actor  # its last handle: the actor is terminated (``__ray_terminate__``)
    wait_for_files(dropped)

    killed = tmp_path / "killed"
    actor = AtExit.remote(str(killed))
    pid = ray.get(actor.pid.remote(), timeout=30)
    ray.kill(actor)
    wait_until(lambda: process_gone(pid), what="the killed actor's process exiting")
    assert not killed.exists()


@ray.remote
class Dependent:
    def __init__(self, dependency):
        self.dependency = dependency

    def f(self):
        return self.dependency


@ray.remote
class Keeper:
    def __init__(self):
        self.kept = None

    def keep(self, box):
        self.kept = box

    def kept_handle(self):
        return self.kept


@ray.remote(num_cpus=0)
class Sleeper:
    def sleep(self):
        time.sleep(600)


@ray.remote(max_retries=0)
def create_then_die(keeper):
    never = Sleeper.remote().sleep.remote()
    handle = Dependent.remote(never)  # waits for an argument that will never be ready
    ray.get(keeper.keep.remote([handle]))
    os._exit(0)


def test_an_actor_waiting_for_arguments_dies_with_its_owner(cluster):
    keeper = Keeper.remote()
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(create_then_die.remote(keeper), timeout=60)
    [handle] = ray.get(keeper.kept_handle.remote(), timeout=30)
    with pytest.raises(ActorDiedError, match="owner"):
        ray.get(handle.f.remote(), timeout=30)


def test_a_named_actor_does_not_wait_for_its_arguments_at_creation(cluster):
    sleeper = Sleeper.remote()
    actor = Dependent.options(name="waits-for-args").remote(sleeper.sleep.remote())  # returns at once
    assert ray.get_actor("waits-for-args")._actor_id == actor._actor_id
    with pytest.raises(ValueError, match="already taken"):
        Dependent.options(name="waits-for-args").remote(1)
    ray.kill(actor)
    ray.kill(sleeper)


@ray.remote
class Broken:
    def __init__(self, runs_file):
        with open(runs_file, "a") as f:
            f.write("ran\n")
        raise ValueError("constructor-broke-42")

    def f(self):
        return "unreachable"


def test_constructor_exception_fails_every_call(cluster, tmp_path):
    runs = str(tmp_path / "runs")
    actor = Broken.options(max_restarts=3).remote(runs)
    refs = [actor.f.remote() for _ in range(3)]
    for ref in refs:
        with pytest.raises(ActorDiedError) as info:
            ray.get(ref, timeout=30)
        text = str(info.value)
        assert "constructor-broke-42" in text, text
        assert re.search(r'File ".*test_actor_failures\.py", line \d+, in __init__', text), text
        assert "ValueError: constructor-broke-42" in text, text
    with pytest.raises(ActorDiedError, match="constructor-broke-42"):
        ray.get(actor.f.remote(), timeout=30)
    assert _runs(runs) == 1  # a raising constructor is not restarted


def test_named_actor_with_broken_constructor_frees_its_name(cluster, tmp_path):
    actor = Broken.options(name="broken-one").remote(str(tmp_path / "runs"))
    with pytest.raises(ActorDiedError):
        ray.get(actor.f.remote(), timeout=30)
    wait_until(lambda: "broken-one" not in ray.util.list_named_actors(), what="the name released")
    with pytest.raises(ValueError, match="Failed to look up"):
        ray.get_actor("broken-one")


# -- detached actors outlive their driver --------------------------------------------------------------


def _manta(args, env):
    return subprocess.run(
        [sys.executable, "-m", "manta.cli.main", *args], env=env, capture_output=True, text=True, timeout=60
    )


@contextlib.contextmanager
def _head(tmp_path, num_cpus):
    """A head started with `manta start` (stopped after); the env its drivers need."""
    tmpdir_env = {"MANTA_TMPDIR": str(tmp_path / "sessions")}
    env = {**os.environ, **tmpdir_env}
    started = _manta(["start", "--head", "--port", "0", "--num-cpus", str(num_cpus)], env)
    try:
        assert started.returncode == 0, started.stderr
        yield tmpdir_env
    finally:
        stopped = _manta(["stop"], env)
    assert stopped.returncode == 0, stopped.stderr


def test_detached_actor_survives_its_driver(tmp_path):
    with _head(tmp_path, 2) as tmpdir_env:
        first = run_driver(
            """
            import json, os
            import manta

            manta.init(address="auto")

            @manta.remote
            class Keeper:
                def __init__(self):
                    self.items = []
                def add(self, item):
                    self.items.append(item)
                    return list(self.items)
                def pid(self):
                    return os.getpid()

            keeper = Keeper.options(name="keeper", namespace="survivors", lifetime="detached").remote()
            ephemeral = Keeper.options(name="ephemeral", namespace="survivors").remote()
            keeper.add.remote("from-first-driver")
            pids = manta.get([keeper.pid.remote(), ephemeral.pid.remote()])
            print(json.dumps({"keeper": pids[0], "ephemeral": pids[1]}))
            """,
            env=tmpdir_env,
        )
        assert first.returncode == 0, first.stderr
        pids = json.loads(first.stdout.strip().splitlines()[-1])
        # The non-detached actor ends with the driver that created it.
        wait_until(lambda: process_gone(pids["ephemeral"]), timeout=30, what="the non-detached actor exiting")
        assert not process_gone(pids["keeper"])

        second = run_driver(
            """
            import json
            import manta

            manta.init(address="auto")
            keeper = manta.get_actor("keeper", namespace="survivors")
            result = {"items": manta.get(keeper.add.remote("from-second-driver"), timeout=30),
                      "pid": manta.get(keeper.pid.remote(), timeout=30)}
            try:
                manta.get_actor("keeper")
                result["visible_without_namespace"] = True
            except ValueError:
                result["visible_without_namespace"] = False
            try:
                manta.get_actor("ephemeral", namespace="survivors")
                result["ephemeral_found"] = True
            except ValueError:
                result["ephemeral_found"] = False
            result["listed"] = manta.util.list_named_actors(all_namespaces=True)
            manta.kill(keeper)
            print(json.dumps(result))
            manta.shutdown()
            """,
            env=tmpdir_env,
        )
        assert second.returncode == 0, second.stderr
        result = json.loads(second.stdout.strip().splitlines()[-1])
        assert result["items"] == ["from-first-driver", "from-second-driver"]
        assert result["pid"] == pids["keeper"]
        assert result["visible_without_namespace"] is False
        assert result["ephemeral_found"] is False
        assert {"name": "keeper", "namespace": "survivors"} in result["listed"]
        assert {"name": "ephemeral", "namespace": "survivors"} not in result["listed"]
        wait_until(lambda: process_gone(pids["keeper"]), timeout=30, what="the killed detached actor exiting")


def test_a_detached_actor_still_waiting_for_room_outlives_the_job_that_made_it(tmp_path):
    with _head(tmp_path, 1) as tmpdir_env:
        first = run_driver(
            """
            import time
            import manta

            manta.init(address="auto", namespace="waits")

            @manta.remote(num_cpus=1)
            class Holder:
                def ping(self):
                    return "pong"

            blocker = Holder.options(name="blocker", lifetime="detached").remote()
            print(manta.get(blocker.ping.remote()))
            Holder.options(name="waiter", lifetime="detached").remote()  # needs the blocker's CPU
            time.sleep(1.0)  # its lease waits at the node when this job ends
            """,
            env=tmpdir_env,
        )
        assert first.returncode == 0, first.stderr
        second = run_driver(
            """
            import manta

            manta.init(address="auto", namespace="waits")
            manta.kill(manta.get_actor("blocker"))
            print(manta.get(manta.get_actor("waiter").ping.remote(), timeout=60))
            manta.kill(manta.get_actor("waiter"))
            """,
            env=tmpdir_env,
        )
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().splitlines()[-1] == "pong"


@ray.remote
class LeavesAtOnce:
    def __init__(self, path):
        import atexit

        atexit.register(touch, path)
        ray.actor.exit_actor()

    def f(self):
        return "unreachable"


def test_exit_actor_in_the_constructor_ends_the_actor_on_purpose(cluster, tmp_path):
    left = tmp_path / "left"
    actor = LeavesAtOnce.remote(str(left))
    wait_for_files(left)  # its atexit handlers ran: a chosen exit
    with pytest.raises(ActorDiedError, match="exit_actor"):
        ray.get(actor.f.remote(), timeout=30)


def test_dropping_a_pending_actor_cancels_it_and_frees_its_arguments(cluster):
    from manta._private.api.context import ensure_initialized
    from manta._private.rpc.messages import GetActorInfo

    @ray.remote(resources={"no-such-resource": 1})
    class NeverPlaced:
        def __init__(self, box):
            self.box = box

    worker = ensure_initialized()
    ref = ray.put(bytes(200_000))
    object_id = ref.id
    handle = NeverPlaced.remote({"ref": ref})
    actor_id = handle._actor_id
    del ref, handle  # nothing can reach the actor: its creation is cancelled

    def released():
        worker.objects.collect_references()
        return not worker.references.knows(object_id)

    wait_until(released, what="the constructor's argument released")
    info = worker.call_gcs(GetActorInfo(actor_id))
    assert info.state == "DEAD" and "out of scope" in info.death_cause


def test_sys_exit_in_an_actor_method_tells_the_driver(cluster):
    from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

    @ray.remote
    class Quits:
        def quit(self):
            sys.exit(4)

    subscriber = init_error_pubsub()
    try:
        with pytest.raises(ActorDiedError, match=r"sys.exit\(4\)"):
            ray.get(Quits.remote().quit.remote(), timeout=30)
        [error] = get_error_message(subscriber, 1, "worker_died", timeout=30)
        assert "died or was killed while executing Quits.quit" in error["error_message"]
    finally:
        subscriber.close()


@pytest.mark.parametrize("how", ["exit_actor", "sys.exit"])
def test_calls_answered_before_a_chosen_exit_keep_their_results(cluster, how):
    # A worker holds the answers of brief calls while another brief call follows, to write
    # them together; a call that then ends the actor on purpose sends them first.
    @ray.remote
    class Ends:
        def quick(self, i):
            return i

        def end(self, now):
            if now and how == "exit_actor":
                ray.actor.exit_actor()
            elif now:
                sys.exit(0)
            return "not yet"

    actor = Ends.remote()
    assert ray.get([actor.quick.remote(i) for i in range(100)]) == list(range(100))
    assert ray.get(actor.end.remote(False)) == "not yet"  # known as brief from here on
    quick = [actor.quick.remote(i) for i in range(200)]
    last = actor.end.remote(True)
    assert ray.get(quick, timeout=30) == list(range(200))
    with pytest.raises(ActorDiedError):
        ray.get(last, timeout=30)

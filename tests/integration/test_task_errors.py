"""Task failures: remote exceptions, retries, worker crashes and bad inputs at the API edge."""

from __future__ import annotations

import os
import re
import sys
import threading

import numpy as np
import pytest

import manta as ray
from manta.exceptions import RayTaskError, TaskCancelledError, UnserializableException, WorkerCrashedError
from tests.integration.conftest import run_driver


class MyError(Exception):
    pass


class CodedError(Exception):
    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class NeedsTwoArgs(Exception):
    # Pickles on the worker, but unpickling calls NeedsTwoArgs("needs 1 2") and fails.
    def __init__(self, a, b):
        super().__init__(f"needs {a} {b}")


def _count_attempt(path):
    with open(path, "a") as f:
        f.write("x\n")
    with open(path) as f:
        return len(f.read().splitlines())


def _attempts(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return len(f.read().splitlines())


# -- remote exceptions -----------------------------------------------------------------


def test_value_error_is_ray_task_error_and_value_error(cluster):
    @ray.remote
    def raise_value():
        raise ValueError("bad value 42")

    with pytest.raises(ValueError) as info:
        ray.get(raise_value.remote(), timeout=30)
    e = info.value
    assert isinstance(e, RayTaskError)
    assert isinstance(e, ray.exceptions.RayError)
    assert not isinstance(e, TypeError)
    assert type(e).__name__ == "RayTaskError(ValueError)"
    text = str(e)
    first_line = text.splitlines()[0]
    assert "manta::raise_value()" in first_line
    assert "pid=" in first_line
    assert "ip=" in first_line
    node = ray.get_runtime_context().get_node_id()
    assert f"node={node[:8]}" in first_line
    assert 'raise ValueError("bad value 42")' in text
    assert "in raise_value" in text
    assert text.rstrip().endswith("ValueError: bad value 42")
    assert type(e.cause) is ValueError
    assert str(e.cause) == "bad value 42"


def test_custom_exception_keeps_its_type(cluster):
    @ray.remote
    def raise_mine():
        raise MyError("mine")

    with pytest.raises(MyError) as info:
        ray.get(raise_mine.remote(), timeout=30)
    assert isinstance(info.value, RayTaskError)
    assert type(info.value).__name__ == "RayTaskError(MyError)"
    assert type(info.value.cause) is MyError
    assert "MyError: mine" in str(info.value)


def test_exception_attribute_reads_through(cluster):
    @ray.remote
    def raise_coded():
        raise CodedError("coded", code=7)

    with pytest.raises(CodedError) as info:
        ray.get(raise_coded.remote(), timeout=30)
    assert info.value.code == 7
    assert info.value.cause.code == 7


def test_nested_task_error_has_innermost_cause(cluster):
    @ray.remote
    def innermost():
        raise MyError("deep failure")

    @ray.remote
    def middle():
        return ray.get(innermost.remote())

    @ray.remote
    def outer():
        return ray.get(middle.remote())

    with pytest.raises(MyError) as info:
        ray.get(outer.remote(), timeout=30)
    e = info.value
    assert isinstance(e, RayTaskError)
    assert type(e.cause) is MyError
    assert str(e.cause) == "deep failure"
    text = str(e)
    assert "manta::outer()" in text.splitlines()[0]
    assert "innermost" in text
    assert "deep failure" in text


def test_nested_error_can_be_caught_inside_task(cluster):
    @ray.remote
    def fails():
        raise ValueError("inner")

    @ray.remote
    def catches():
        try:
            ray.get(fails.remote())
        except ValueError as e:
            return type(e).__name__, isinstance(e, RayTaskError)
        return None

    assert ray.get(catches.remote(), timeout=30) == ("RayTaskError(ValueError)", True)


def test_exception_that_cannot_be_unpickled(cluster):
    @ray.remote
    def raise_needs():
        raise NeedsTwoArgs(1, 2)

    with pytest.raises(UnserializableException) as info:
        ray.get(raise_needs.remote(), timeout=30)
    assert not isinstance(info.value, RayTaskError)
    assert "needs 1 2" in str(info.value)
    assert "NeedsTwoArgs" in str(info.value)


# -- retries -----------------------------------------------------------------------------


def test_retry_exceptions_true_retries(cluster, tmp_path):
    counter = str(tmp_path / "attempts")

    @ray.remote(retry_exceptions=True, max_retries=2)
    def flaky(path):
        n = _count_attempt(path)
        raise ValueError(f"attempt {n}")

    with pytest.raises(ValueError, match="attempt 3"):
        ray.get(flaky.remote(counter), timeout=60)
    assert _attempts(counter) == 3


def test_retry_exceptions_list_does_not_retry_other_types(cluster, tmp_path):
    type_counter = str(tmp_path / "type_attempts")
    value_counter = str(tmp_path / "value_attempts")

    @ray.remote(retry_exceptions=[ValueError], max_retries=2)
    def raises(path, exc_type):
        n = _count_attempt(path)
        raise exc_type(f"attempt {n}")

    with pytest.raises(TypeError, match="attempt 1"):
        ray.get(raises.remote(type_counter, TypeError), timeout=60)
    assert _attempts(type_counter) == 1
    with pytest.raises(ValueError, match="attempt 3"):
        ray.get(raises.remote(value_counter, ValueError), timeout=60)
    assert _attempts(value_counter) == 3


def test_application_errors_not_retried_by_default(cluster, tmp_path):
    counter = str(tmp_path / "attempts")

    @ray.remote
    def fails(path):
        _count_attempt(path)
        raise ValueError("once")

    with pytest.raises(ValueError):
        ray.get(fails.remote(counter), timeout=30)
    assert _attempts(counter) == 1


def test_worker_crash_without_retries(cluster, tmp_path):
    counter = str(tmp_path / "attempts")

    @ray.remote(max_retries=0)
    def die(path):
        _count_attempt(path)
        os._exit(1)

    with pytest.raises(WorkerCrashedError) as info:
        ray.get(die.remote(counter), timeout=60)
    assert not isinstance(info.value, RayTaskError)
    assert re.search(r"exit\w*( with)?( an)? (exit )?(code|status) 1\b", str(info.value)), str(info.value)
    assert _attempts(counter) == 1


def test_worker_crash_default_retries(cluster, tmp_path):
    counter = str(tmp_path / "attempts")

    @ray.remote
    def die(path):
        _count_attempt(path)
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        ray.get(die.remote(counter), timeout=60)
    assert _attempts(counter) == 4


def test_worker_crash_then_success_on_retry(cluster, tmp_path):
    flag = tmp_path / "died_once"

    @ray.remote(max_retries=2)
    def die_first(path):
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("died")
            os._exit(1)
        return "survived"

    assert ray.get(die_first.remote(str(flag)), timeout=60) == "survived"
    assert flag.exists()


def test_cluster_still_works_after_crashes(cluster):
    @ray.remote
    def ok(x):
        return x

    assert ray.get([ok.remote(i) for i in range(10)], timeout=30) == list(range(10))


# -- bad inputs at the API edge -----------------------------------------------------------


@ray.remote
def module_level_f(x):
    return x


def test_calling_remote_function_directly(cluster):
    with pytest.raises(TypeError, match="Remote functions cannot be called directly"):
        module_level_f(1)
    with pytest.raises(TypeError, match="Remote functions cannot be called directly"):
        module_level_f()


def test_options_negative_num_cpus():
    with pytest.raises(ValueError, match="The quantity of resource num_cpus cannot be negative"):
        module_level_f.options(num_cpus=-1)


def test_options_unknown_keyword():
    with pytest.raises(ValueError) as info:
        module_level_f.options(foo=1)
    assert str(info.value).startswith("Invalid option keyword foo for remote functions. Valid ones are")


def test_options_cpu_in_resources():
    with pytest.raises(ValueError, match="num_cpus"):
        module_level_f.options(resources={"CPU": 1})
    with pytest.raises(ValueError, match="num_gpus"):
        module_level_f.options(resources={"GPU": 1})


def test_options_bad_max_retries():
    with pytest.raises(ValueError, match="max_retries"):
        module_level_f.options(max_retries=-2)


def test_options_bad_retry_exceptions_type():
    with pytest.raises(TypeError, match="retry_exceptions"):
        module_level_f.options(retry_exceptions="x")


def test_bad_scheduling_strategy(cluster):
    with pytest.raises(ValueError, match="Invalid scheduling_strategy value BAD"):
        module_level_f.options(scheduling_strategy="BAD").remote(1)


def test_unpicklable_argument(cluster):
    lock = threading.Lock()
    with pytest.raises(TypeError) as info:
        module_level_f.remote(lock)
    message = str(info.value)
    assert "Could not serialize the argument" in message
    assert "lock" in message


def test_wrong_number_of_arguments(cluster):
    with pytest.raises(TypeError):
        module_level_f.remote(1, 2, 3)
    with pytest.raises(TypeError):
        module_level_f.remote()
    with pytest.raises(TypeError):
        module_level_f.remote(y=2)


def test_remote_decorator_with_negative_num_cpus():
    with pytest.raises(ValueError, match="The quantity of resource num_cpus cannot be negative"):

        @ray.remote(num_cpus=-1)
        def f():
            return 1


# -- a task ending its own process or interrupting itself ------------------------------------


def test_sys_exit_in_a_task_is_a_worker_crash_not_a_driver_exit(cluster, tmp_path):
    counter = tmp_path / "exits"

    @ray.remote(max_retries=1)
    def leave():
        with open(counter, "a") as f:
            f.write("x")
        sys.exit(3)

    with pytest.raises(WorkerCrashedError) as info:
        ray.get(leave.remote(), timeout=60)
    assert "exited with code 3" in str(info.value)
    assert counter.read_text() == "xx"  # one retry, as for any worker death


def test_keyboard_interrupt_raised_by_a_task_reports_it_cancelled(cluster):
    @ray.remote
    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(TaskCancelledError) as info:
        ray.get(interrupt.remote(), timeout=30)
    assert isinstance(info.value, RayTaskError)


def test_a_dropped_failed_ref_is_reported_once_unless_it_was_read():
    result = run_driver(
        """
        import time
        import manta as ray

        ray.init(num_cpus=1)

        @ray.remote(max_retries=0)
        def fails(tag):
            raise ValueError("failed-" + tag)

        dropped = fails.remote("dropped")
        ray.wait([dropped])
        del dropped
        read = fails.remote("read")
        try:
            ray.get(read)
        except ValueError:
            pass
        del read
        time.sleep(1.5)  # two collection rounds
        ray.shutdown()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Unhandled error") == 1, result.stderr
    assert ", in fails\n" in result.stderr  # with the remote traceback
    assert "failed-dropped" in result.stderr and "failed-read" not in result.stderr
    quiet = run_driver(
        """
        import time
        import manta as ray
        ray.init(num_cpus=1)

        @ray.remote(max_retries=0)
        def fails():
            raise ValueError("x")

        ray.wait([fails.remote()])
        time.sleep(1.5)  # as above: it would have been reported by now
        ray.shutdown()
        """,
        env={"MANTA_IGNORE_UNHANDLED_ERRORS": "1"},
    )
    assert quiet.returncode == 0 and "Unhandled error" not in quiet.stderr


class HoldsALock(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def test_an_exception_that_does_not_pickle_arrives_as_a_plain_task_error(cluster):
    @ray.remote(max_retries=0)
    def raise_lock():
        raise HoldsALock()

    with pytest.raises(RayTaskError) as info:
        ray.get(raise_lock.remote(), timeout=30)
    # As in Ray: the text travels, the object cannot; a RayError says so in its place.
    assert isinstance(info.value.cause, ray.exceptions.RayError)
    assert "isn't serializable" in str(info.value.cause)
    assert "HoldsALock" in str(info.value)


def test_a_worker_dying_under_a_task_is_pushed_to_the_driver(cluster):
    from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

    subscriber = init_error_pubsub()
    try:

        @ray.remote(max_retries=0)
        def dies():
            os._exit(3)

        with pytest.raises(WorkerCrashedError):
            ray.get(dies.remote(), timeout=30)
        [error] = get_error_message(subscriber, 1, "worker_died", timeout=30)
        assert "died or was killed while executing" in error["error_message"]
        assert "exited with code 3" in error["error_message"]
    finally:
        subscriber.close()


def test_a_huge_remote_function_warns_the_driver(cluster):

    from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

    subscriber = init_error_pubsub()
    try:
        captured = np.zeros(2 * 10**7, dtype=np.uint8)

        @ray.remote
        def huge():
            return len(captured)

        assert ray.get(huge.remote(), timeout=60) == 2 * 10**7
        [error] = get_error_message(subscriber, 1, "pickling_large_object", timeout=30)
        assert "is very large" in error["error_message"] and "huge" in error["error_message"]
    finally:
        subscriber.close()


def test_a_worker_killed_from_outside_under_a_task_is_pushed_too(cluster):
    from manta.compat.ray_private.test_utils import get_error_message, init_error_pubsub

    subscriber = init_error_pubsub()
    try:

        @ray.remote(max_retries=0)
        def killed():
            import signal

            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer or `kill -9` would

        with pytest.raises(WorkerCrashedError):
            ray.get(killed.remote(), timeout=30)
        [error] = get_error_message(subscriber, 1, "worker_died", timeout=30)
        assert "signal 9" in error["error_message"]
    finally:
        subscriber.close()


def test_returns_before_one_that_does_not_serialize_stay_readable(cluster):
    # As in Ray: the first return is kept; the one that cannot be pickled, and the ones
    # after it, hold the error.
    @ray.remote(num_returns=3)
    def returns_a_lock():
        return "kept", threading.Lock(), "after"

    kept, lock, after = returns_a_lock.remote()
    assert ray.get(kept, timeout=30) == "kept"
    for ref in (lock, after):
        with pytest.raises(RayTaskError, match="could not serialize the return value") as info:
            ray.get(ref, timeout=30)
        assert isinstance(info.value, TypeError)

"""manta.util's libraries on a real cluster: custom serializers, multiprocessing.Pool, joblib."""

from __future__ import annotations

import os
import threading
import time

import pytest

import manta
from manta.exceptions import ActorDiedError
from manta.util import deregister_serializer, register_serializer
from manta.util.multiprocessing import Pool, TimeoutError
from tests.integration.conftest import run_driver

# -- custom serializers ------------------------------------------------------------------


class Guarded:
    """Holds a lock, so it does not pickle unless a serializer is registered."""

    def __init__(self, value):
        self.value = value
        self.lock = threading.Lock()


def guarded_state(guarded):
    return guarded.value


def guarded_from_state(value):
    return Guarded(value)


def register_guarded():
    register_serializer(Guarded, serializer=guarded_state, deserializer=guarded_from_state)


@manta.remote
def value_of(guarded):
    return guarded.value, type(guarded.lock).__name__


@manta.remote
def echo(guarded, register):
    if register:
        register_guarded()  # registrations are per process, as in Ray
    return guarded


@pytest.fixture
def registered(cluster):
    register_guarded()
    yield
    deregister_serializer(Guarded)


def test_registered_serializer_round_trips_through_put_and_get(registered):
    ref = manta.put(Guarded(3))
    assert manta.get(ref).value == 3


def test_workers_load_values_without_registering(registered):
    # The deserializer travels with the value: the worker registered nothing.
    assert manta.get(value_of.remote(Guarded(4))) == (4, "lock")
    assert manta.get(value_of.remote(manta.put(Guarded(5)))) == (5, "lock")


def test_a_worker_returning_the_class_must_register_it_too(registered):
    # First: once a worker registered, it keeps the serializer for its lifetime.
    with pytest.raises(Exception, match="lock"):
        manta.get(echo.remote(Guarded(7), False))
    assert manta.get(echo.remote(Guarded(6), True)).value == 6


def test_deregister_restores_the_failure(cluster):
    register_guarded()
    assert manta.get(manta.put(Guarded(1))).value == 1
    deregister_serializer(Guarded)
    with pytest.raises(TypeError, match="lock"):
        manta.put(Guarded(1))
    with pytest.raises(TypeError, match="lock"):
        value_of.remote(Guarded(1))


# -- multiprocessing.Pool ----------------------------------------------------------------


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x


def add(a, b, scale=1):
    return (a + b) * scale


_initial = None


def set_initial(value):
    global _initial
    _initial = value


def initial_and_pid(_):
    return _initial, os.getpid()


@pytest.fixture(scope="module")
def pool(cluster):
    p = Pool(2)
    yield p
    p.terminate()


def test_map_starmap_and_apply(pool):
    assert pool.map(square, range(20)) == [x * x for x in range(20)]
    assert pool.map(square, iter(range(7)), chunksize=3) == [x * x for x in range(7)]
    assert pool.map(square, []) == []
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.apply(add, (1, 2), {"scale": 10}) == 30
    assert pool.apply(add, (1, 2), kwargs={"scale": 2}) == 6  # Ray's keyword name


def test_imap_in_order_and_unordered(pool):
    assert list(pool.imap(square, range(10))) == [x * x for x in range(10)]
    assert list(pool.imap(square, (x for x in range(9)), chunksize=4)) == [x * x for x in range(9)]
    assert sorted(pool.imap_unordered(square, range(10), chunksize=3)) == [x * x for x in range(10)]
    assert list(pool.imap(square, [])) == []


def test_async_results_and_callbacks(pool):
    result = pool.apply_async(square, (9,))
    assert result.get(timeout=30) == 81
    assert result.ready() and result.successful()

    results = []
    mapped = pool.map_async(square, range(5), callback=results.append)
    mapped.wait(30)
    # As in multiprocessing, the callback has run once the result is ready.
    assert mapped.get(0) == [0, 1, 4, 9, 16] and results == [[0, 1, 4, 9, 16]]

    starred = pool.starmap_async(add, [(1, 1), (2, 2)], callback=results.append)
    assert starred.get(30) == [2, 4] and results[-1] == [2, 4]


def test_errors_reraise_with_their_own_type_and_reach_error_callback(pool):
    with pytest.raises(ValueError, match="three is not allowed") as info:
        pool.map(fail_on_three, range(6))
    assert type(info.value) is ValueError
    assert "fail_on_three" in str(info.value.__cause__)  # the remote traceback, as multiprocessing

    errors = []
    result = pool.apply_async(fail_on_three, (3,), error_callback=errors.append)
    result.wait(30)
    assert not result.successful()
    assert [type(e) for e in errors] == [ValueError]
    with pytest.raises(ValueError):
        result.get()

    outcomes = []
    iterator = pool.imap(fail_on_three, range(5))
    while True:
        try:
            outcomes.append(next(iterator))
        except StopIteration:
            break
        except ValueError:
            outcomes.append("error")
    assert outcomes == [0, 1, 2, "error", 4]  # iteration goes on past the failure


def test_timeouts_raise_multiprocessing_timeout_error(cluster):
    with Pool(1) as pool:
        result = pool.apply_async(time.sleep, (60,))
        with pytest.raises(TimeoutError):
            result.get(timeout=0.05)
        assert not result.ready()
        with pytest.raises(ValueError, match="not ready"):
            result.successful()
        with pytest.raises(TimeoutError):
            pool.imap(time.sleep, [60]).next(timeout=0.05)
    # Leaving the block terminated the pool: the sleeping call was killed.
    with pytest.raises(ActorDiedError):
        result.get(timeout=60)


def test_initializer_runs_in_every_process_and_maxtasksperchild_replaces_them(cluster):
    with Pool(2, initializer=set_initial, initargs=("ready",), maxtasksperchild=1) as pool:
        outcomes = pool.map(initial_and_pid, range(6), chunksize=1)
    assert {initial for initial, _ in outcomes} == {"ready"}
    assert len({pid for _, pid in outcomes}) > 2  # one chunk per process, then a new one


def test_close_lets_work_finish_and_join_waits(cluster):
    pool = Pool(2)
    with pytest.raises(ValueError, match="Pool is still running"):
        pool.join()
    mapped = pool.map_async(square, range(30), chunksize=2)
    lazy = pool.imap(square, range(12), chunksize=1)
    pool.close()
    with pytest.raises(ValueError, match="Pool not running"):
        pool.apply_async(square, (1,))
    with pytest.raises(ValueError, match="Pool not running"):
        pool.__enter__()
    pool.join()
    assert mapped.ready() and mapped.get() == [x * x for x in range(30)]
    assert list(lazy) == [x * x for x in range(12)]  # the rest was submitted at close


def test_pool_arguments_are_checked(cluster):
    with pytest.raises(ValueError, match="only 2 CPUs"):
        Pool(3)
    with pytest.raises(ValueError, match="must be >0"):
        Pool(0)
    with pytest.raises(ValueError, match="maxtasksperchild"):
        Pool(1, maxtasksperchild=0)
    with pytest.raises(TypeError, match="initializer"):
        Pool(1, initializer=5)


def test_a_failing_initializer_fails_the_pool(cluster):
    with pytest.raises(ZeroDivisionError):
        Pool(1, initializer=divmod, initargs=(1, 0))


def assigned_cpus(_):
    return manta.get_runtime_context().get_assigned_resources().get("CPU", 0)


def test_ray_remote_args_configure_the_actors(cluster):
    with Pool(2, ray_remote_args={"num_cpus": 1}) as pool:
        assert pool.map(assigned_cpus, range(4)) == [1, 1, 1, 1]
    with Pool(2) as pool:
        assert pool.map(assigned_cpus, range(2)) == [0, 0]  # Ray's default: no CPU held


def test_a_script_initializer_sets_globals_its_functions_read(cluster):
    # Functions of __main__ are shipped by value; the pool's processes still give them one
    # namespace, as a forked process would.
    result = run_driver(
        """
        import manta
        from manta.util.multiprocessing import Pool

        connection = None

        def connect(name):
            global connection
            connection = name

        def query(x):
            return f"{connection}:{x}"

        manta.init(num_cpus=1)
        with Pool(1, initializer=connect, initargs=("db",)) as pool:
            print(pool.map(query, range(3)))
        manta.shutdown()
        """,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "['db:0', 'db:1', 'db:2']" in result.stdout


# -- joblib ------------------------------------------------------------------------------

joblib = pytest.importorskip("joblib")


def test_joblib_parallel_runs_on_the_cluster(cluster):
    from manta.util.joblib import register_manta

    register_manta()
    with joblib.parallel_backend("manta"):
        results = joblib.Parallel(n_jobs=2)(joblib.delayed(initial_and_pid)(i) for i in range(20))
        everything = joblib.Parallel(n_jobs=-1)(joblib.delayed(square)(i) for i in range(500))
    assert os.getpid() not in {pid for _, pid in results}  # ran in workers, not here
    assert everything == [i * i for i in range(500)]


def test_joblib_errors_reraise_and_ray_name_is_the_same_backend(cluster):
    from manta.util.joblib import register_ray

    register_ray()
    with joblib.parallel_backend("ray", ray_remote_args={"num_cpus": 0}):
        with pytest.raises(ValueError, match="three is not allowed"):
            joblib.Parallel(n_jobs=2)(joblib.delayed(fail_on_three)(i) for i in range(6))
        generated = joblib.Parallel(n_jobs=2, return_as="generator")(
            joblib.delayed(square)(i) for i in range(6)
        )
        assert list(generated) == [i * i for i in range(6)]

"""Generator tasks and actor methods: items stream to the caller while the task runs."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

import manta as ray
from manta._private.api.context import ensure_initialized
from manta.exceptions import RayTaskError, TaskCancelledError
from tests.polling import wait_until


@ray.remote
class Gate:
    """Lets a test hold a generator between two items."""

    def __init__(self) -> None:
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def is_open(self) -> bool:
        return self.opened


def wait_open(gate) -> None:
    while not ray.get(gate.is_open.remote()):
        time.sleep(0.01)


@ray.remote
def count(n):
    yield from range(n)


def test_items_stream_in_order(cluster):
    gen = count.remote(5)
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert ray.get(gen) is gen  # as in Ray: a generator is read by iterating it
    assert [ray.get(ref) for ref in gen] == [0, 1, 2, 3, 4]
    with pytest.raises(StopIteration):
        next(gen)
    assert ray.get(gen.completed()) is None
    assert gen.is_finished()
    assert not gen.next_ready()


def test_an_item_is_readable_before_the_task_ends(cluster):
    @ray.remote
    def held(gate):
        yield "first"
        wait_open(gate)
        yield "second"

    gate = Gate.remote()
    gen = held.remote(gate)
    assert ray.get(next(gen), timeout=30) == "first"
    ready, _ = ray.wait([gen.completed()], timeout=0.2)
    assert ready == []  # the task is still running, held by the gate
    assert not gen.next_ready()
    assert gen._next_sync(timeout_s=0.1).is_nil()
    ray.get(gate.open.remote())
    assert ray.get(next(gen), timeout=30) == "second"
    assert list(gen) == []


def test_an_error_mid_stream_is_raised_at_its_item(cluster):
    @ray.remote(max_retries=0)
    def fails_after(n):
        yield from range(n)
        raise ValueError("broke after the items")

    gen = fails_after.remote(2)
    assert ray.get(next(gen)) == 0
    assert ray.get(next(gen)) == 1
    failing = next(gen)
    assert failing == gen.completed()
    with pytest.raises(ValueError, match="broke after the items") as info:
        ray.get(failing)
    assert isinstance(info.value, RayTaskError)
    assert 'raise ValueError("broke after the items")' in str(info.value)
    with pytest.raises(StopIteration):
        next(gen)
    assert gen.is_finished()


def test_wait_on_generators(cluster):
    @ray.remote
    def gated(gate):
        wait_open(gate)
        yield 1

    gate = Gate.remote()
    slow = gated.remote(gate)
    fast = count.remote(1)
    plain = ray.put(7)
    ready, not_ready = ray.wait([slow, fast, plain], num_returns=2, timeout=30)
    assert ready == [fast, plain]
    assert not_ready == [slow]
    ray.get(gate.open.remote())
    ready, _ = ray.wait([slow], timeout=30)
    assert ready == [slow]
    assert ray.get(next(slow)) == 1
    # A generator whose items are all taken is ready too: next() returns at once.
    assert ray.get(next(fast)) == 0
    ready, _ = ray.wait([fast], timeout=30)
    assert ready == [fast]
    with pytest.raises(StopIteration):
        next(fast)
    with pytest.raises(TypeError, match="ObjectRefGenerator"):
        ray.wait(fast)


def test_async_iteration(cluster):
    async def read_all():
        gen = count.remote(4)
        values = [await ref async for ref in gen]
        other = count.remote(2)
        first = await other.__anext__()
        return values, await first

    values, first = asyncio.run(read_all())
    assert values == [0, 1, 2, 3]
    assert first == 0


def test_item_refs_go_to_other_tasks_while_the_stream_runs(cluster):
    @ray.remote
    def arrays(gate):
        yield np.full(300_000, 3.0)  # large: through the object store
        wait_open(gate)
        yield np.full(10, 4.0)

    @ray.remote
    def total(a):
        return float(a.sum())

    gate = Gate.remote()
    gen = arrays.remote(gate)
    first = next(gen)
    assert ray.get(total.remote(first), timeout=30) == 900_000.0
    ray.get(gate.open.remote())
    assert ray.get(total.remote(next(gen)), timeout=30) == 40.0


def test_dropping_a_generator_frees_its_unread_items(cluster):
    worker = ensure_initialized()
    gen = count.remote(3)
    ray.get(gen.completed())
    ids = [ray.ObjectRef(bytes(gen._next_id()), _add_ref=False)]  # item 0, not taken
    wait_until(lambda: worker.references.knows(ids[0].id), timeout=30)
    del gen

    def freed() -> bool:
        worker.objects.collect_references()
        return not worker.references.knows(ids[0].id)

    wait_until(freed, timeout=30)


def test_backpressure_holds_the_generator(cluster, tmp_path: Path):
    log = tmp_path / "produced"

    @ray.remote(_generator_backpressure_num_objects=1)
    def paced(path, n):
        for i in range(n):
            with open(path, "a") as f:
                f.write(f"{i}\n")
            yield i

    gen = paced.remote(str(log), 10)
    taken = [ray.get(next(gen)) for _ in range(2)]
    assert taken == [0, 1]
    time.sleep(0.5)  # give a generator that ignored backpressure time to run ahead
    produced = len(log.read_text().splitlines())
    assert produced <= 3, f"produced {produced} items with 2 taken and a limit of 1"
    assert [ray.get(r) for r in gen] == list(range(2, 10))


def test_backpressure_option_is_checked():
    with pytest.raises(ValueError, match="_generator_backpressure_num_objects=0 is not allowed"):
        count.options(_generator_backpressure_num_objects=0)


def test_cancel_a_running_generator(cluster):
    @ray.remote(max_retries=0)
    def forever():
        yield "started"
        while True:
            time.sleep(0.05)

    gen = forever.remote()
    assert ray.get(next(gen), timeout=30) == "started"
    ray.cancel(gen)
    with pytest.raises(TaskCancelledError):
        ray.get(next(gen), timeout=30)
    with pytest.raises(StopIteration):
        next(gen)


def test_a_retried_generator_does_not_deliver_items_twice(cluster, tmp_path: Path):
    marker = tmp_path / "crashed"

    @ray.remote(max_retries=1)
    def crashes_once(path):
        for i in range(5):
            if i == 3 and not os.path.exists(path):
                open(path, "w").close()
                os._exit(1)  # the worker dies after items 0..2 were delivered
            yield i

    gen = crashes_once.remote(str(marker))
    assert [ray.get(ref, timeout=60) for ref in gen] == [0, 1, 2, 3, 4]
    assert marker.exists()


def test_actor_generators(cluster):
    @ray.remote
    class Source:
        def __init__(self):
            self.calls = 0

        def numbers(self, n):
            self.calls += 1
            yield from range(n)

        async def letters(self, text):
            for ch in text:
                await asyncio.sleep(0)
                yield ch

        def calls_made(self):
            return self.calls

    source = Source.remote()
    assert [ray.get(r) for r in source.numbers.remote(3)] == [0, 1, 2]
    assert [ray.get(r) for r in source.letters.remote("abc")] == ["a", "b", "c"]
    assert ray.get(source.calls_made.remote()) == 1

    @ray.remote(max_concurrency=2)
    class Threaded:
        def numbers(self, n):
            yield from range(n)

    threaded = Threaded.remote()
    gens = [threaded.numbers.remote(4) for _ in range(3)]
    assert [[ray.get(r) for r in g] for g in gens] == [[0, 1, 2, 3]] * 3


def test_dynamic_generators(cluster):
    with pytest.warns(DeprecationWarning, match="dynamic"):

        @ray.remote(num_returns="dynamic")
        def dynamic(n):
            yield from range(n)

    ref = dynamic.remote(3)
    assert isinstance(ref, ray.ObjectRef)
    refs = ray.get(ref)
    assert isinstance(refs, ray.DynamicObjectRefGenerator)
    assert len(refs) == 3
    assert ray.get(list(refs)) == [0, 1, 2]

    with pytest.warns(DeprecationWarning):

        @ray.remote(num_returns="dynamic", max_retries=0)
        def dynamic_fails(n):
            yield from range(n)
            raise KeyError("late")

    refs = list(ray.get(dynamic_fails.remote(2)))
    assert ray.get(refs[:2]) == [0, 1]
    with pytest.raises(KeyError):
        ray.get(refs[2])


def test_generator_functions_with_a_fixed_number_of_returns(cluster):
    @ray.remote(num_returns=3)
    def three():
        yield from ("a", "b", "c")

    assert ray.get(three.remote()) == ["a", "b", "c"]


def test_streaming_needs_a_generator_function():
    def plain():
        return 1

    with pytest.raises(ValueError, match="can only be used with generator functions"):
        ray.remote(num_returns="streaming")(plain)
    with pytest.raises(ValueError, match="The keyword 'num_returns' only accepts None"):
        ray.remote(num_returns=-1)(plain)


def test_a_generator_cannot_be_pickled(cluster):
    gen = count.remote(1)
    with pytest.raises(TypeError, match="Serializing a ObjectRefGenerator is not allowed"):
        pickle.dumps(gen)
    assert [ray.get(r) for r in gen] == [0]


def test_the_readme_generator_example_runs(cluster, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    code = readme.split("### Generators", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {"ray": ray})
    assert capsys.readouterr().out.split() == ["STREAMS", "OF", "REFS"]


def test_next_bulk_sync_takes_what_is_ready(cluster):
    gen = count.remote(4)
    ray.get(gen.completed())
    assert gen._next_bulk_sync(0) == []
    first = gen._next_bulk_sync(3, timeout_s=30)
    rest = gen._next_bulk_sync(3, timeout_s=30)
    assert [ray.get(r) for r in first + rest] == [0, 1, 2, 3] and len(first) == 3
    with pytest.raises(StopIteration):
        gen._next_bulk_sync(2, timeout_s=0)

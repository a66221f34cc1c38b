"""Manta Data on a real local cluster: transforms, all-to-all operators, consumption,
files, failures and bad input. One 2-CPU cluster for the module."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import manta
import manta.data as md
from manta.data.aggregate import Count, Max, Mean, Sum
from manta.exceptions import RayTaskError, UserCodeException
from tests.integration.conftest import run_driver


@pytest.fixture(scope="module", autouse=True)
def cluster():
    md.DataContext.get_current().enable_progress_bars = False
    context = manta.init(num_cpus=2, num_gpus=0, include_dashboard=False)
    yield context
    manta.shutdown()


def test_range_map_filter_and_counts():
    ds = md.range(1000)
    assert ds.count() == 1000
    assert ds.take(3) == [{"id": 0}, {"id": 1}, {"id": 2}]
    doubled = ds.map(lambda row: {"x": row["id"] * 2})
    assert doubled.sum("x") == 999_000
    assert ds.filter(lambda row: row["id"] % 3 == 0).count() == 334
    assert ds.flat_map(lambda row: [row, row]).count() == 2000


def test_filter_by_an_expression_string():
    ds = md.range(100, override_num_blocks=4)
    assert ds.filter(expr="id <= 4").take_all() == [{"id": i} for i in range(5)]
    assert ds.filter(expr="id > 10").schema() == ds.schema()  # known without running
    items = md.from_items([{"a": i, "b": str(i % 3), "c": None if i % 4 else i} for i in range(20)])
    assert items.filter(expr="a > 10 and b in ['1', '2']").count() == 6
    assert [r["a"] for r in items.filter(expr="is_valid(c)").take_all()] == [0, 4, 8, 12, 16]
    with pytest.raises(
        RayTaskError, match=r"filter expression 'nope > 3' cannot be applied to the columns \['id'\]"
    ):
        ds.filter(expr="nope > 3").take_all()
    with pytest.raises(ValueError, match="Exactly one of 'fn' or 'expr' must be provided"):
        ds.filter()
    with pytest.raises(ValueError, match="Exactly one of 'fn' or 'expr' must be provided"):
        ds.filter(lambda row: True, expr="id > 1")
    with pytest.raises(ValueError, match="not valid Python syntax"):
        ds.filter(expr="id >")  # refused where the dataset is built


@pytest.mark.parametrize("fmt", ["numpy", "pandas", "pyarrow"])
def test_map_batches_formats_and_batch_sizes(fmt):
    seen = []

    def add(batch):
        if fmt == "pyarrow":
            return pa.table({"y": pa.compute.add(batch.column("id"), 1)})
        return {"y": np.asarray(batch["id"]) + 1} if fmt == "numpy" else pd.DataFrame({"y": batch["id"] + 1})

    out = md.range(100, override_num_blocks=7).map_batches(add, batch_size=16, batch_format=fmt)
    assert sorted(r["y"] for r in out.take_all()) == list(range(1, 101))
    seen.append(fmt)


def test_a_batch_size_larger_than_the_dataset_gives_one_batch():
    sizes = md.range(10).map_batches(lambda b: {"n": np.array([len(b["id"])])}, batch_size=1000).take_all()
    assert sizes == [{"n": 10}]


def test_map_batches_callable_class_on_an_actor_pool():
    class Scale:
        def __init__(self, k):
            self.k = k
            self.pid = os.getpid()

        def __call__(self, batch):
            return {"v": batch["id"] * self.k, "pid": np.full(len(batch["id"]), self.pid)}

    out = md.range(400, override_num_blocks=8).map_batches(
        Scale, fn_constructor_args=(3,), concurrency=(1, 2), batch_size=50
    )
    rows = out.take_all()
    assert sorted(r["v"] for r in rows) == [3 * i for i in range(400)]
    assert os.getpid() not in {r["pid"] for r in rows}


def test_an_actor_that_dies_is_replaced_and_its_block_redone(tmp_path):
    marker = tmp_path / "died"

    class DiesOnce:
        def __call__(self, batch):
            if int(batch["id"][0]) == 40 and not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
            return batch

    ds = md.range(100, override_num_blocks=5).map_batches(DiesOnce, concurrency=1, batch_size=None)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(100))
    assert marker.exists()


def test_a_task_whose_worker_dies_is_retried(tmp_path):
    marker = tmp_path / "died"

    def dies_once(batch):
        if int(batch["id"][0]) == 50 and not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
        return batch

    ds = md.range(100, override_num_blocks=4).map_batches(dies_once)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(100))


def test_a_user_error_stops_the_dataset_with_the_row_in_the_message():
    def fails(row):
        if row["id"] == 7:
            raise ValueError("bad row")
        return row

    with pytest.raises(UserCodeException) as info:
        md.range(20).map(fails).take_all()
    assert isinstance(info.value, RayTaskError)
    assert "'id': 7" in str(info.value) and "bad row" in str(info.value)


def test_a_batch_function_returning_the_wrong_type_is_named():
    def gives_int(batch):
        return 5

    with pytest.raises(UserCodeException, match=r"gives_int returned int for a batch in format 'default'"):
        md.range(10).map_batches(gives_int).take_all()


def test_sort_shuffle_and_repartition():
    ds = md.from_items([{"k": int(v), "s": str(v)} for v in np.random.default_rng(0).permutation(500)])
    assert [r["k"] for r in ds.sort("k").take_all()] == list(range(500))
    assert [r["k"] for r in ds.sort("k", descending=True).take(3)] == [499, 498, 497]
    shuffled = [r["id"] for r in md.range(300).random_shuffle(seed=5).take_all()]
    assert sorted(shuffled) == list(range(300)) and shuffled != list(range(300))
    assert shuffled == [r["id"] for r in md.range(300).random_shuffle(seed=5).take_all()]
    parts = md.range(100).repartition(3).materialize()
    assert parts.num_blocks() == 3 and parts.count() == 100
    assert sorted(r["id"] for r in md.range(50).randomize_block_order(seed=1).take_all()) == list(range(50))


def test_groupby_aggregations_come_sorted_by_key():
    ds = md.from_items([{"k": i % 4, "v": float(i)} for i in range(40)])
    frame = pd.DataFrame({"k": [i % 4 for i in range(40)], "v": [float(i) for i in range(40)]})
    got = ds.groupby("k").aggregate(Sum("v"), Mean("v"), Count(), Max("v")).take_all()
    expect = frame.groupby("k")["v"].agg(["sum", "mean", "count", "max"])
    assert [r["k"] for r in got] == [0, 1, 2, 3]
    for row in got:
        assert row["sum(v)"] == expect.loc[row["k"], "sum"] and row["count()"] == 10
        assert row["mean(v)"] == pytest.approx(expect.loc[row["k"], "mean"])
    assert ds.groupby("k").std("v").take(1)[0]["std(v)"] == pytest.approx(frame[frame.k == 0].v.std())
    sizes = ds.groupby("k").map_groups(lambda g: {"k": g["k"][:1], "n": np.array([len(g["v"])])}).take_all()
    assert sizes == [{"k": k, "n": 10} for k in range(4)]
    assert ds.sum("v") == 780.0 and ds.max("v") == 39.0 and ds.mean("v") == pytest.approx(19.5)
    assert ds.aggregate(Count(), Sum("v")) == {"count()": 40, "sum(v)": 780.0}
    assert sorted(ds.unique("k")) == [0, 1, 2, 3]


def test_union_zip_limit_and_columns():
    assert [r["id"] for r in md.range(3).union(md.range(2)).take_all()] == [0, 1, 2, 0, 1]
    zipped = md.range(5).zip(md.range(5).map(lambda r: {"id": r["id"] * 10}))
    assert zipped.take(2) == [{"id": 0, "id_1": 0}, {"id": 1, "id_1": 10}]
    with pytest.raises(ValueError, match="different number of rows"):
        md.range(3).zip(md.range(4)).take_all()
    assert md.range(10_000).map(lambda r: r).limit(7).count() == 7
    ds = md.from_items([{"a": 1, "b": 2, "c": 3}])
    assert ds.select_columns(["c", "a"]).columns() == ["c", "a"]
    assert ds.drop_columns(["a"]).columns() == ["b", "c"]
    assert ds.rename_columns({"a": "x"}).columns() == ["x", "b", "c"]
    assert ds.add_column("d", lambda df: df["a"] + df["c"]).take_all() == [{"a": 1, "b": 2, "c": 3, "d": 4}]


def test_splits():
    assert [s.count() for s in md.range(10).split(3, equal=True)] == [3, 3, 3]
    assert sum(s.count() for s in md.range(10).split(3)) == 10
    _, second, third = md.range(10).split_at_indices([2, 5])
    assert [r["id"] for r in second.take_all()] == [2, 3, 4] and third.count() == 5
    train, test = md.range(10).train_test_split(0.3)
    assert (train.count(), test.count()) == (7, 3)


def test_a_stratified_split_keeps_each_class_share_as_ray_does():
    ds = md.from_items([{"x": i, "y": "a" if i % 4 else "b"} for i in range(40)], override_num_blocks=4)
    train, test = ds.train_test_split(0.25, stratify="y")
    assert isinstance(train, md.MaterializedDataset) and train.columns() == ["x", "y"]
    # The last int(n * 0.25) rows of each class go to test (Ray 2.60 gives these same rows).
    assert sorted((r["y"], r["x"]) for r in test.take_all()) == [
        ("a", 31), ("a", 33), ("a", 34), ("a", 35), ("a", 37), ("a", 38), ("a", 39), ("b", 32), ("b", 36)
    ]  # fmt: skip
    assert train.count() == 31
    assert ds.train_test_split(10, stratify="y")[1].count() == 9  # an int is a share of all rows
    with pytest.raises(ValueError, match="Cannot specify both 'shuffle=True' and 'stratify'"):
        ds.train_test_split(0.25, stratify="y", shuffle=True)
    with pytest.raises(ValueError, match="below the dataset's 40 rows"):
        ds.train_test_split(40, stratify="y")


def test_streaming_split_feeds_consumers_in_other_processes():
    @manta.remote
    def consume(iterator):
        return sum(int(b["id"].sum()) for b in iterator.iter_batches(batch_size=16))

    shards = md.range(1000, override_num_blocks=10).streaming_split(2)
    totals = manta.get([consume.remote(shard) for shard in shards])
    assert sum(totals) == sum(range(1000))


def test_consuming_apis():
    ds = md.range(100, override_num_blocks=4)
    assert repr(ds) == "Dataset(name=ReadRange, num_rows=100, schema={id: int64})"
    assert repr(ds.filter(lambda r: True)) == "Dataset(name=Filter(<lambda>), num_rows=?, schema=?)"
    assert sum(len(b["id"]) for b in ds.iter_batches(batch_size=30)) == 100
    assert [len(b["id"]) for b in ds.iter_batches(batch_size=30, drop_last=True)] == [30, 30, 30]
    shuffled = [int(i) for b in ds.iter_batches(batch_size=10, local_shuffle_buffer_size=50, local_shuffle_seed=1)
                for i in b["id"]]  # fmt: skip
    assert sorted(shuffled) == list(range(100)) and shuffled != list(range(100))
    assert ds.take_batch(5)["id"].tolist() == [0, 1, 2, 3, 4]
    assert ds.to_pandas().shape == (100, 1)
    tables = manta.get(ds.to_arrow_refs())
    assert sum(t.num_rows for t in tables) == 100 and len(tables) == 4
    assert ds.schema().names == ["id"] and str(ds.schema().types[0]) == "int64"
    tensors = md.range_tensor(4, shape=(2, 3)).take_all()
    assert tensors[3]["data"].shape == (2, 3) and int(tensors[3]["data"][0, 0]) == 3
    materialized = ds.map(lambda r: r).materialize()
    assert "Operator 1 ReadRange->Map(<lambda>)" in materialized.stats()
    assert "Output num rows per block" in materialized.stats()


def test_write_and_read_back_parquet_csv_json(tmp_path):
    ds = md.range(200, override_num_blocks=4).map(lambda r: {"id": r["id"], "s": f"v{r['id']}"})
    ds.write_parquet(str(tmp_path / "pq"))
    ds.write_csv(str(tmp_path / "csv"))
    ds.write_json(str(tmp_path / "json"))
    for read in (md.read_parquet, md.read_csv, md.read_json):
        back = read(str(tmp_path / read.__name__.split("_")[1].replace("parquet", "pq")))
        assert sorted(r["id"] for r in back.take_all()) == list(range(200))
    projected = md.read_parquet(str(tmp_path / "pq"), columns=["s"])
    assert projected.columns() == ["s"]
    import pyarrow.dataset as pads

    filtered = md.read_parquet(str(tmp_path / "pq"), filter=pads.field("id") < 10)
    assert filtered.count() == 10


def test_bad_paths_and_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        md.read_parquet(str(tmp_path / "nowhere")).take_all()
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet at all")
    with pytest.raises(Exception, match=r"bad\.parquet"):
        md.read_parquet(str(bad)).take_all()


def test_schemas_that_differ_across_files_are_unified(tmp_path):
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": [3], "b": ["x"]}), tmp_path / "two.parquet")
    rows = sorted(md.read_parquet(str(tmp_path)).take_all(), key=lambda r: r["a"])
    assert rows[0] == {"a": 1, "b": None} and rows[2] == {"a": 3, "b": "x"}


def test_the_ray_import_path_reaches_manta_data():
    done = run_driver(
        """
        import manta.compat
        manta.compat.install()
        import ray, ray.data
        import manta.data
        assert ray.data.range is manta.data.range
        ray.init(num_cpus=1, include_dashboard=False)
        print("rows", ray.data.range(5).map(lambda r: {"id": r["id"] + 1}).sum("id"))
        ray.shutdown()
        """,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "rows 15" in done.stdout


def test_a_groupby_over_parquet_reads_only_the_columns_it_needs(tmp_path):
    table = pa.table({"k": [i % 3 for i in range(300)], "v": list(range(300)), "junk": ["x" * 50] * 300})
    pq.write_table(table, tmp_path / "data.parquet")
    grouped = md.read_parquet(str(tmp_path)).groupby("k").sum("v")
    assert grouped.take_all() == [{"k": k, "sum(v)": sum(range(k, 300, 3))} for k in range(3)]
    stats = grouped.stats()
    # The selection of k and v went into the read: no Project step ran.
    assert "ReadParquet->Aggregate(partial)" in stats and "Project" not in stats


def test_an_expression_filter_over_parquet_is_done_by_the_scan(tmp_path):
    for part in range(3):
        rows = range(part * 100, part * 100 + 100)
        pq.write_table(
            pa.table({"v": list(rows), "name": [f"n{v % 7}" for v in rows]}), tmp_path / f"{part}.parquet"
        )
    ds = md.read_parquet(str(tmp_path)).filter(expr="v >= 150 and v < 160 and name != 'n3'")
    assert sorted(r["v"] for r in ds.take_all()) == [v for v in range(150, 160) if v % 7 != 3]
    stats = ds.stats()
    assert "ReadParquet" in stats and "Filter(" not in stats  # no filter step ran after the read
    # A column the selection dropped is missing for the filter, pushed or not.
    with pytest.raises(RayTaskError, match=r"cannot be applied to the columns \['v'\]"):
        md.read_parquet(str(tmp_path)).select_columns(["v"]).filter(expr="name == 'n1'").take_all()


class _PushdownSource(md.Datasource):
    """Three columns in two blocks, reading only what was pushed into it; every pushdown
    it is given is noted (the optimizer runs in the driver)."""

    given: list[tuple[str, object]] = []

    def __init__(self, columns=None, predicate=None):
        self.columns, self.predicate = columns, predicate

    def estimate_inmemory_data_size(self):
        return 480

    def supports_projection_pushdown(self):
        return True

    def apply_projection(self, projection_map):
        _PushdownSource.given.append(("columns", list(projection_map)))
        return _PushdownSource(list(projection_map), self.predicate)

    def supports_predicate_pushdown(self):
        return True

    def apply_predicate(self, predicate):
        _PushdownSource.given.append(("predicate", str(predicate)))
        return _PushdownSource(self.columns, predicate)

    def get_read_tasks(self, parallelism):
        columns, predicate = self.columns, self.predicate

        def read(start):
            table = pa.table({"v": range(start, start + 10), "w": [1.0] * 10, "s": ["x"] * 10})
            if predicate is not None:
                table = table.filter(predicate)
            yield table if columns is None else table.select(columns)

        schema = pa.schema([("v", pa.int64()), ("w", pa.float64()), ("s", pa.string())])
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        return [
            md.ReadTask(lambda start=start: read(start), md.BlockMetadata(None, 240), schema)
            for start in (0, 10)
        ]


def test_counting_an_expression_filter_reads_only_its_columns():
    _PushdownSource.given.clear()
    assert md.read_datasource(_PushdownSource()).filter(expr="v >= 15 and s == 'x'").count() == 5
    # The predicate went into the read, then the projection to one of its columns.
    kinds = [kind for kind, _ in _PushdownSource.given]
    assert kinds == ["predicate", "columns"] and _PushdownSource.given[1] == ("columns", ["s"])
    _PushdownSource.given.clear()
    assert len(md.read_datasource(_PushdownSource()).filter(expr="v >= 15").take_all()[0]) == 3
    assert [kind for kind, _ in _PushdownSource.given] == ["predicate"]  # rows wanted: every column


def _slow_reader(i):
    def read():
        time.sleep(0.02)
        yield pa.table({"id": list(range(i * 10, i * 10 + 10))})

    return read


class _SlowSource(md.Datasource):
    """Reads that take a while, so that a pool grows while some are still to run."""

    def estimate_inmemory_data_size(self):
        return 960

    def get_read_tasks(self, parallelism):
        return [md.ReadTask(_slow_reader(i), md.BlockMetadata(10, 80)) for i in range(12)]


def test_a_default_actor_pool_leaves_its_read_a_cpu():
    class Slow:
        def __call__(self, batch):
            time.sleep(0.1)
            return batch

    # A pool without a maximum grew to both CPUs while reads were still to run, and the
    # reads then waited for a CPU forever.
    ds = md.read_datasource(_SlowSource()).map_batches(Slow, batch_size=None)
    assert sorted(r["id"] for r in ds.take_all()) == list(range(120))


def test_a_constructor_error_ends_the_dataset_with_it():
    class Broken:
        def __init__(self):
            raise RuntimeError("no model file")

        def __call__(self, batch):
            return batch

    with pytest.raises(manta.exceptions.RayActorError, match="no model file"):
        md.range(10).map_batches(Broken, concurrency=1).take_all()


def test_max_errored_blocks_skips_that_many_failed_blocks():
    def fails_on_block_two(batch):
        if int(batch["id"][0]) == 20:
            raise ValueError("bad block")
        return batch

    ds = md.range(50, override_num_blocks=5).map_batches(fails_on_block_two)
    ds.context().max_errored_blocks = 1
    assert sorted(r["id"] for r in ds.take_all()) == [i for i in range(50) if not 20 <= i < 30]
    ds.context().max_errored_blocks = 0
    with pytest.raises(UserCodeException, match="bad block"):
        ds.take_all()


def test_streaming_split_shards_run_several_epochs_side_by_side():
    @manta.remote
    def train(shard, epochs):
        return [sum(int(b["id"].sum()) for b in shard.iter_batches(batch_size=32)) for _ in range(epochs)]

    shards = md.range(600, override_num_blocks=12).streaming_split(2)
    first, second = manta.get([train.remote(shard, 3) for shard in shards])
    assert [a + b for a, b in zip(first, second, strict=True)] == [sum(range(600))] * 3


def test_repartition_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="exactly one"):
        md.range(10).repartition(2, target_num_rows_per_block=5)
    with pytest.raises(NotImplementedError, match="keys"):
        md.range(10).repartition(2, keys=["id"])
    assert md.range(10).repartition(target_num_rows_per_block=4).materialize().num_blocks() == 3


def test_numpy_files_and_images_round_trip(tmp_path):
    arrays = md.from_numpy(np.arange(24, dtype=np.int32).reshape(6, 2, 2))
    arrays.write_numpy(str(tmp_path / "npy"), column="data")
    back = md.read_numpy(str(tmp_path / "npy")).take_all()
    assert sorted(int(r["data"][0, 0]) for r in back) == [0, 4, 8, 12, 16, 20]
    image = pytest.importorskip("PIL.Image", reason="read_images needs Pillow")
    image.fromarray(np.full((4, 6, 3), 200, dtype=np.uint8)).save(tmp_path / "a.png")
    (row,) = md.read_images(str(tmp_path / "a.png")).take_all()
    assert row["image"].shape == (4, 6, 3) and int(row["image"][0, 0, 0]) == 200


def test_iter_torch_batches():
    torch = pytest.importorskip(
        "torch", reason="iter_torch_batches needs PyTorch, which the test extra leaves out"
    )
    batch = next(md.range(10).iter_torch_batches(batch_size=4, dtypes=torch.float32))
    assert batch["id"].dtype == torch.float32 and batch["id"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_finished_pool_does_not_start_actors_again(tmp_path):
    class Counted:
        def __init__(self):
            with open(tmp_path / "made", "a") as made:
                made.write("x")

        def __call__(self, batch):
            return batch

    ds = md.range(400, override_num_blocks=40).map_batches(Counted, concurrency=1, batch_size=None)
    for _row in ds.map(lambda row: row).iter_rows():
        time.sleep(0.005)  # a slow consumer: the pool is done long before the dataset
    assert (tmp_path / "made").read_text() == "x"


def test_streaming_split_shards_may_stop_early_and_travel_to_new_tasks_each_epoch():
    @manta.remote
    def consume(shard, stop_after):
        total = 0
        for i, batch in enumerate(shard.iter_batches(batch_size=10)):
            if stop_after is not None and i == stop_after:
                break
            total += int(batch["id"].sum())
        return total

    shards = md.range(200, override_num_blocks=10).streaming_split(2)
    manta.get([consume.remote(shards[0], 1), consume.remote(shards[1], None)])  # one stops early
    for _epoch in range(2):  # fresh tasks, fresh copies of the shards, every epoch
        totals = manta.get([consume.remote(shard, None) for shard in shards])
        assert sum(totals) == sum(range(200))


def test_the_batch_inference_example_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "batch_inference.py")
    done = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "scored 200,000 rows" in done.stdout
    assert "Operator 2 MapBatches(Scorer)" in done.stdout


def test_progress_in_a_terminal_is_a_live_display():
    # stderr on a pseudo-terminal: rich's live display, one line per operator.
    import pty

    controller, terminal = pty.openpty()
    code = (
        "import time, manta, manta.data as md\n"
        "manta.init(num_cpus=2, include_dashboard=False)\n"
        "slow = lambda b: (time.sleep(0.05), b)[1]\n"
        "print(md.range(400, override_num_blocks=20).map_batches(slow).sum('id'))\n"
        "manta.shutdown()\n"
    )
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("RAY_DATA_DISABLE_PROGRESS_BARS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=terminal, env=env, text=True
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the driver has exited
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(controller)
    assert proc.returncode == 0 and out.strip() == str(sum(range(400)))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
    assert "Running dataset_" in text and "ReadRange->MapBatches(<lambda>): " in text and "running" in text

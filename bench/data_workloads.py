"""Ray Data workloads, written once against Ray Data's public API so that the same code runs
on Ray Data 2.60 (``ray``, ``ray.data``) and on Manta Data (``manta``, ``manta.data``).

Run one workload per fresh process:
    python bench/data_workloads.py --framework manta --workload sort --scale small
It starts a local cluster (``init(num_cpus=2, object_store_memory=..., include_dashboard=False)``),
runs the workload while a thread samples memory and spill files, shuts down, and prints one
JSON line of metrics on stdout. ``bench/data.py`` drives it and generates the Parquet input.

This file must import under Ray's interpreter too, so it never imports ``manta`` directly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workloads import _leftovers  # noqa: E402

Metrics = dict[str, Any]
# The ``manta``/``ray`` module and its ``data`` submodule; workloads call Ray's API on them.
Framework = Any
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between ``--scale full`` (the issue's sizes) and ``small``."""

    taxi_target_bytes: int  # Parquet on disk; files are added until the total reaches it
    taxi_rows_per_file: int
    taxi_row_group_rows: int
    store_bytes: int  # object store for the workloads that do not size their own
    map_rows: int
    actor_rows: int
    shuffle_bytes: int  # the table that random_shuffle and sort reorder
    shuffle_blocks: int
    shuffle_store_bytes: int
    stream_store_bytes: int  # the dataset streamed through iter_batches is 3x this


SIZES = {
    "full": Sizes(
        taxi_target_bytes=5_000_000_000,
        taxi_rows_per_file=6_000_000,  # ~155 MB a file, ~32 files
        taxi_row_group_rows=1_000_000,
        store_bytes=2 * GiB,
        map_rows=10_000_000,
        actor_rows=2_000_000,
        shuffle_bytes=1_000_000_000,
        shuffle_blocks=64,
        shuffle_store_bytes=3 * GiB,
        stream_store_bytes=512 * MiB,
    ),
    "small": Sizes(
        taxi_target_bytes=200_000_000,
        taxi_rows_per_file=1_000_000,  # ~26 MB a file, 8 files
        taxi_row_group_rows=250_000,
        store_bytes=1 * GiB,
        map_rows=2_000_000,
        actor_rows=200_000,
        shuffle_bytes=100_000_000,
        shuffle_blocks=16,
        shuffle_store_bytes=512 * MiB,
        stream_store_bytes=128 * MiB,
    ),
}

TAXI_TOTAL_COLUMN = "total_amount"
SHUFFLE_ROW_BYTES = 8 + 8 + 100  # id, key, payload
STREAM_ROW_BYTES = 10 * 1024
STREAM_BLOCK_BYTES = 8 * MiB
STREAM_BATCH_ROWS = 1024
SESSION_LINE = "session_dir: "


@dataclass(frozen=True)
class Run:
    """What a workload needs besides the framework: its sizes and where its inputs are."""

    framework: str  # "manta" or "ray"
    sizes: Sizes
    taxi_dir: Path
    taxi_manifest: Path


def taxi_paths(data_dir: Path, scale: str) -> tuple[Path, Path]:
    """The Parquet directory of a scale and its manifest (rows and column sums), written
    beside it so that ``read_parquet(dir)`` sees only Parquet files."""
    return data_dir / f"taxi-{scale}", data_dir / f"taxi-{scale}.json"


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def parquet_aggregate(ray: Framework, rd: Framework, r: Run) -> Metrics:
    """groupby + three aggregations over every row, then a one-column projection's sum."""
    agg = importlib.import_module(f"{r.framework}.data.aggregate")
    expected = json.loads(r.taxi_manifest.read_text())
    t = time.perf_counter()
    groups = (
        rd.read_parquet(str(r.taxi_dir))
        .groupby("passenger_count")
        .aggregate(agg.Mean("fare_amount"), agg.Sum("tip_amount"), agg.Count())
        .take_all()
    )
    groupby_s = time.perf_counter() - t
    counted = sum(g["count()"] for g in groups)
    assert counted == expected["rows"], f"groups count {counted} rows, expected {expected['rows']}"
    tips = sum(g["sum(tip_amount)"] for g in groups)
    assert _close(tips, expected["tip_amount"]), f"sum(tip_amount) {tips}, expected {expected['tip_amount']}"
    t = time.perf_counter()
    total = rd.read_parquet(str(r.taxi_dir), columns=[TAXI_TOTAL_COLUMN]).sum(TAXI_TOTAL_COLUMN)
    projection_s = time.perf_counter() - t
    assert _close(total, expected[TAXI_TOTAL_COLUMN]), f"sum {total}, expected {expected[TAXI_TOTAL_COLUMN]}"
    return {
        "rows": expected["rows"],
        "parquet_gb": round(expected["bytes"] / 1e9, 2),
        "groups": len(groups),
        "groupby_s": round(groupby_s, 2),
        "groupby_rows_per_s": _rate(expected["rows"], groupby_s),
        "projected_sum_s": round(projection_s, 2),
        "projected_sum_rows_per_s": _rate(expected["rows"], projection_s),
    }


TAXI_FILTER = "trip_distance > 15 and payment_type == 'Cash' and passenger_count in [1, 2]"


def parquet_filter(ray: Framework, rd: Framework, r: Run) -> Metrics:
    """``read_parquet(dir).filter(expr=...)`` (a selective string predicate over every row),
    counted; the answer is checked against pyarrow's own scan (not timed)."""
    import pyarrow.dataset as pads

    field = pads.field
    expected = (
        pads.dataset(str(r.taxi_dir))
        .filter(
            (field("trip_distance") > 15)
            & (field("payment_type") == "Cash")
            & field("passenger_count").isin([1, 2])
        )
        .count_rows()
    )
    rows = json.loads(r.taxi_manifest.read_text())["rows"]
    t = time.perf_counter()
    kept = rd.read_parquet(str(r.taxi_dir)).filter(expr=TAXI_FILTER).count()
    seconds = time.perf_counter() - t
    assert kept == expected, f"the filter kept {kept} rows, pyarrow {expected}"
    return {"rows": rows, "kept": kept, "filter_s": round(seconds, 2), "rows_per_s": _rate(rows, seconds)}


def _affine(batch: dict[str, Any]) -> dict[str, Any]:
    ids = batch["id"]
    return {"id": ids, "y": ids * 3 + 1, "z": ids % 7}


def map_batches_numpy(ray: Framework, rd: Framework, r: Run) -> Metrics:
    """``range(n).map_batches(fn, batch_format="numpy")``, consumed by summing a column the
    map computes, so that neither framework can skip the map (as ``count()`` could)."""
    n = r.sizes.map_rows
    t = time.perf_counter()
    total = rows = 0
    ds = rd.range(n).map_batches(_affine, batch_format="numpy")
    for batch in ds.iter_batches(batch_size=100_000, batch_format="numpy"):
        total += int(batch["y"].sum())
        rows += len(batch["y"])
    seconds = time.perf_counter() - t
    assert rows == n and total == 3 * n * (n - 1) // 2 + n, f"{rows} rows summing to {total}"
    return {"rows": n, "seconds": round(seconds, 2), "rows_per_s": _rate(n, seconds)}


ACTOR_FEATURES = 32
ACTOR_OUTPUTS = 256


class _Model:
    """A stand-in for a model: the constructor "loads" weights, each call is a matmul."""

    def __init__(self) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        self.w1 = rng.standard_normal((ACTOR_FEATURES, ACTOR_OUTPUTS), dtype=np.float32)
        self.w2 = rng.standard_normal((ACTOR_OUTPUTS, 1), dtype=np.float32)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        x = batch["data"].astype(np.float32) * 1e-6
        hidden = np.maximum(x @ self.w1, 0.0)
        return {"id": batch["data"][:, 0], "score": (hidden @ self.w2)[:, 0]}


def actor_pool_map(ray: Framework, rd: Framework, r: Run) -> Metrics:
    """``map_batches(Model, concurrency=2)`` (an actor pool) over ``range_tensor`` rows. Each
    actor asks for half a CPU: with Ray's default of one, the two actors take both CPUs and
    the read tasks feeding them never run (Ray 2.60 waits forever)."""
    n = r.sizes.actor_rows
    t = time.perf_counter()
    rows = id_sum = 0
    ds = rd.range_tensor(n, shape=(ACTOR_FEATURES,)).map_batches(
        _Model, concurrency=2, num_cpus=0.5, batch_size=4096, batch_format="numpy"
    )
    for batch in ds.iter_batches(batch_size=100_000, batch_format="numpy"):
        rows += len(batch["score"])
        id_sum += int(batch["id"].sum())
    seconds = time.perf_counter() - t
    assert rows == n and id_sum == n * (n - 1) // 2, f"{rows} rows, ids summing to {id_sum}"
    return {"rows": n, "seconds": round(seconds, 2), "rows_per_s": _rate(n, seconds)}


def _shuffle_rows(table: Any) -> Any:
    """``id`` -> ``id``, a random float ``key`` and a 100-byte ``payload``."""
    import numpy as np
    import pyarrow as pa

    ids = table["id"].to_numpy()
    n = len(ids)
    key = np.random.default_rng(int(ids[0]) if n else 0).random(n)
    payload = np.empty((n, 100), dtype=np.uint8)
    payload[:] = (ids % 251).astype(np.uint8)[:, None]
    column = pa.Array.from_buffers(pa.binary(100), n, [None, pa.py_buffer(payload)])
    return pa.table({"id": ids, "key": key, "payload": column})


def _shuffle_input(rd: Framework, r: Run) -> tuple[Any, int]:
    """The materialized table (not timed) and its row count."""
    n = r.sizes.shuffle_bytes // SHUFFLE_ROW_BYTES
    ds = rd.range(n, override_num_blocks=r.sizes.shuffle_blocks)
    return ds.map_batches(_shuffle_rows, batch_format="pyarrow").materialize(), n


def _reorder_metrics(n: int, seconds: float) -> Metrics:
    return {
        "rows": n,
        "gb": round(n * SHUFFLE_ROW_BYTES / 1e9, 2),
        "seconds": round(seconds, 2),
        "rows_per_s": _rate(n, seconds),
    }


def random_shuffle(ray: Framework, rd: Framework, r: Run) -> Metrics:
    ds, n = _shuffle_input(rd, r)
    t = time.perf_counter()
    out = ds.random_shuffle().materialize()
    seconds = time.perf_counter() - t
    assert out.count() == n, f"{out.count()} rows after the shuffle, expected {n}"
    return _reorder_metrics(n, seconds)


def sort(ray: Framework, rd: Framework, r: Run) -> Metrics:
    ds, n = _shuffle_input(rd, r)
    t = time.perf_counter()
    out = ds.sort("key").materialize()
    seconds = time.perf_counter() - t
    assert out.count() == n, f"{out.count()} rows after the sort, expected {n}"
    head = [row["key"] for row in out.take(5)]
    assert head == sorted(head), f"the first keys are not sorted: {head}"
    return _reorder_metrics(n, seconds)


def _make_payload(batch: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    ids = batch["id"]
    payload = np.empty((len(ids), STREAM_ROW_BYTES), dtype=np.uint8)
    payload[:] = (ids % 251).astype(np.uint8)[:, None]
    return {"id": ids, "payload": payload}


def streaming(ray: Framework, rd: Framework, r: Run) -> Metrics:
    """Three times the object store, produced by ``map_batches`` and read by ``iter_batches``:
    a streaming executor should keep it flowing without holding (or spilling) all of it."""
    total_bytes = 3 * r.sizes.stream_store_bytes
    n = total_bytes // STREAM_ROW_BYTES
    blocks = total_bytes // STREAM_BLOCK_BYTES
    t = time.perf_counter()
    rows = nbytes = 0
    ds = rd.range(n, override_num_blocks=blocks).map_batches(_make_payload, batch_format="numpy")
    for batch in ds.iter_batches(batch_size=STREAM_BATCH_ROWS, batch_format="numpy"):
        payload = batch["payload"]
        assert payload[0, 0] == batch["id"][0] % 251, "a payload does not match its id"
        rows += len(payload)
        nbytes += payload.nbytes
    seconds = time.perf_counter() - t
    assert rows == n, f"streamed {rows} rows, expected {n}"
    return {
        "rows": n,
        "gb": round(nbytes / 1e9, 2),
        "store_mb": r.sizes.stream_store_bytes // MiB,
        "seconds": round(seconds, 2),
        "gb_per_s": round(nbytes / 1e9 / seconds, 2),
    }


WORKLOADS: dict[str, Callable[[Framework, Framework, Run], Metrics]] = {
    f.__name__: f
    for f in (
        parquet_aggregate,
        parquet_filter,
        map_batches_numpy,
        actor_pool_map,
        random_shuffle,
        sort,
        streaming,
    )
}


def store_bytes(workload: str, sizes: Sizes) -> int:
    """The ``object_store_memory`` a workload runs with (the same for both frameworks)."""
    if workload in ("random_shuffle", "sort"):
        return sizes.shuffle_store_bytes
    if workload == "streaming":
        return sizes.stream_store_bytes
    return sizes.store_bytes


class MemorySampler:
    """Samples, every ``interval_s`` on a thread: the RSS of the driver, and of the driver and
    every process of its cluster together (its descendants, plus daemons that name the
    session directory and their descendants); and the files in the session's spill
    directories (Ray: ``ray_spilled_objects_*``; Manta: ``spill``), each at the largest size
    seen, which sums to what was spilled (a file written and deleted between two samples is
    missed, so it is a lower bound)."""

    def __init__(self, session_dir: str, interval_s: float = 0.1) -> None:
        import psutil

        self._session_dir = session_dir
        self._interval_s = interval_s
        self._me = psutil.Process()
        self._daemons = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.pid != self._me.pid and session_dir and session_dir in " ".join(p.info["cmdline"] or [])
        ]
        self._spill_files: dict[str, int] = {}
        self.driver_peak = self.cluster_peak = self.spill_dir_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Metrics:
        """Stops sampling (if it started) and returns the peaks; callable more than once."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._sample()
        return {
            "driver_peak_rss_mb": round(self.driver_peak / MiB, 1),
            "cluster_peak_rss_mb": round(self.cluster_peak / MiB, 1),
            "spilled_mb": round(sum(self._spill_files.values()) / MiB, 1),
            "spill_dir_peak_mb": round(self.spill_dir_peak / MiB, 1),
        }

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        import psutil

        procs = {self._me.pid: self._me}
        for root in [self._me, *self._daemons]:
            try:
                procs.update({p.pid: p for p in [root, *root.children(recursive=True)]})
            except psutil.NoSuchProcess:
                continue
        total = 0
        for p in procs.values():
            try:
                rss = p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            total += rss
            if p.pid == self._me.pid:
                self.driver_peak = max(self.driver_peak, rss)
        self.cluster_peak = max(self.cluster_peak, total)
        self.spill_dir_peak = max(self.spill_dir_peak, self._sample_spill_files())

    def _sample_spill_files(self) -> int:
        """Bytes in the spill directories now; records each file's largest size."""
        root = Path(self._session_dir)
        now = 0
        for directory in [root / "spill", *root.glob("ray_spilled_objects*")]:
            for dirpath, _, files in os.walk(directory):
                for name in files:
                    path = os.path.join(dirpath, name)
                    try:
                        size = os.stat(path).st_size
                    except FileNotFoundError:
                        continue
                    now += size
                    self._spill_files[path] = max(self._spill_files.get(path, 0), size)
        return now


def reported_spill_mb(framework: str, address: str | None) -> int | None:
    """MiB spilled since the cluster started by the framework's own account: the "Spilled N
    MiB" line of ``ray._private.internal_api.memory_summary(stats_only=True)`` (Manta's home
    for that module is ``manta.compat.ray_private``). Ray prints the line only once it has
    spilled, so its absence means 0 there; Manta's report has no such line (None)."""
    module = "ray._private.internal_api" if framework == "ray" else "manta.compat.ray_private.internal_api"
    # The address, because other clusters may be running on this machine.
    text = importlib.import_module(module).memory_summary(address=address, stats_only=True)
    found = re.search(r"Spilled (\d+) MiB", text)
    if found:
        return int(found.group(1))
    return 0 if framework == "ray" else None


def run_workload(framework: str, workload: str, scale: str, data_dir: Path) -> Metrics:
    """Start the cluster, run ``workload`` while sampling memory, shut down; its metrics."""
    ray = importlib.import_module(framework)
    rd = importlib.import_module(f"{framework}.data")
    sizes = SIZES[scale]
    ctx = ray.init(num_cpus=2, object_store_memory=store_bytes(workload, sizes), include_dashboard=False)
    session_dir = ctx.address_info["session_dir"]
    # For the runner: daemons that left the driver's session are found by this path.
    print(f"{SESSION_LINE}{session_dir}", flush=True)
    sampler = MemorySampler(session_dir)
    try:
        # Not timed: starts the workers, and whatever a framework starts on its first dataset
        # (Ray Data: a stats actor, an autoscaling coordinator), so that the timings are of
        # the work rather than of a one-off start.
        rd.range(4, override_num_blocks=2).map_batches(_affine, batch_format="numpy").take_all()
        sampler.start()
        metrics = WORKLOADS[workload](ray, rd, Run(framework, sizes, *taxi_paths(data_dir, scale)))
        metrics.update(sampler.stop())
        spilled = reported_spill_mb(framework, ctx.address_info.get("gcs_address"))
        if spilled is not None:
            metrics["spilled_mb_reported"] = spilled
    finally:
        sampler.stop()
        ray.shutdown()
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=["manta", "ray"], required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--scale", choices=sorted(SIZES), default="small")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/manta-data-bench"))
    args = parser.parse_args()
    metrics = run_workload(args.framework, args.workload, args.scale, args.data_dir)
    metrics["leftover_processes"] = _leftovers()
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()

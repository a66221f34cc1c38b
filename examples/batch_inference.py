"""Batch inference with Manta Data: a "model" loaded once per actor scores every row of a
Parquet dataset, streaming, and the scores are written back to Parquet.

    pip install -e '.[data]' && python examples/batch_inference.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import manta
import manta.data


class Scorer:
    """Stands in for a model: loading it is the slow part, so each actor does it once."""

    def __init__(self, dims: int) -> None:
        self.weights = np.random.default_rng(0).normal(size=(dims,))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = np.stack([batch[f"f{i}"] for i in range(len(self.weights))], axis=1)
        return {"id": batch["id"], "score": features @ self.weights}


def make_inputs(directory: Path, files: int = 4, rows: int = 50_000, dims: int = 8) -> None:
    rng = np.random.default_rng(1)
    for n in range(files):
        columns = {"id": np.arange(n * rows, (n + 1) * rows)}
        columns |= {f"f{i}": rng.normal(size=rows) for i in range(dims)}
        pq.write_table(pa.table(columns), directory / f"part-{n}.parquet")


def main() -> None:
    manta.init()
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp, "inputs"), Path(tmp, "scores")
        inputs.mkdir()
        make_inputs(inputs)
        ds = manta.data.read_parquet(str(inputs))
        scored = ds.map_batches(Scorer, fn_constructor_args=(8,), concurrency=(1, 2), batch_size=4096)
        scored.write_parquet(str(outputs))
        back = manta.data.read_parquet(str(outputs))
        print(f"scored {back.count():,} rows; mean score {back.mean('score'):.4f}")
        print(back.sort("score", descending=True).take(3))
        print(scored.stats())
    manta.shutdown()


if __name__ == "__main__":
    main()

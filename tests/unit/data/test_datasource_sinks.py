import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from manta import cloudpickle
from manta.data._internal.tensors import column_to_numpy, ndarray_to_arrow, objects_to_arrow
from manta.data.datasource import (
    CSVDatasink,
    FilenameProvider,
    JSONDatasink,
    NumpyDatasink,
    ParquetDatasink,
    TaskContext,
    WriteResult,
)
from manta.data.datasource.parquet_sink import row_group_limits

BLOCKS = [pa.table({"a": [1, 2], "b": ["x", "y"]}), pa.table({"a": [3], "b": ["z"]})]


def _write(sink, tasks):
    sink.on_write_start()
    shipped = cloudpickle.loads(cloudpickle.dumps(sink))
    returns = [shipped.write(blocks, TaskContext(task_idx=i)) for i, blocks in enumerate(tasks)]
    rows = sum(t.num_rows for blocks in tasks for t in blocks)
    sink.on_write_complete(WriteResult(rows, 0, returns))
    return sorted(os.listdir(sink.path)) if os.path.exists(sink.path) else []


def test_parquet_one_file_per_task_named_as_ray(tmp_path):
    sink = ParquetDatasink(str(tmp_path / "out"), dataset_uuid="ds")
    names = _write(sink, [BLOCKS, [pa.table({"a": [4], "b": ["w"]})]])
    assert names == [f"ds_{sink.write_uuid}_000000-0.parquet", f"ds_{sink.write_uuid}_000001-0.parquet"]
    assert pq.read_table(tmp_path / "out" / names[0]).to_pylist() == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 3, "b": "z"},
    ]
    assert sink.get_name() == "Parquet"


def test_parquet_partition_cols_and_max_rows_per_file(tmp_path):
    sink = ParquetDatasink(str(tmp_path), partition_cols=["b"], max_rows_per_file=1)
    _write(sink, [[pa.table({"a": [1, 2, 3], "b": ["x", "x", "y"]})]])
    assert sorted(os.listdir(tmp_path)) == ["b=x", "b=y"]
    assert len(os.listdir(tmp_path / "b=x")) == 2
    assert pq.read_table(tmp_path / "b=y").column("a").to_pylist() == [3]


def test_parquet_tensor_columns_and_writer_options(tmp_path):
    images = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    sink = ParquetDatasink(str(tmp_path), compression="gzip", row_group_size=1)
    _write(sink, [[pa.table({"t": ndarray_to_arrow(images)})]])
    path = tmp_path / os.listdir(tmp_path)[0]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    np.testing.assert_array_equal(column_to_numpy(pq.read_table(path).column("t")), images)


def test_parquet_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="min_rows_per_file must be less"):
        ParquetDatasink(str(tmp_path), min_rows_per_file=5, max_rows_per_file=2)
    with pytest.raises(ValueError, match="min_bytes_per_file"):
        ParquetDatasink(str(tmp_path), min_bytes_per_file=0)
    with pytest.raises(ValueError, match="partition_cols must be provided"):
        ParquetDatasink(str(tmp_path), partitioning_flavor="hive")
    with pytest.raises(NotImplementedError, match="catalog"):
        ParquetDatasink(str(tmp_path), catalog=object())
    assert ParquetDatasink(str(tmp_path), num_rows_per_file=7).min_rows_per_write == 7


def test_row_group_limits_follow_ray():
    assert row_group_limits(None, None, None) == (None, None, None)
    assert row_group_limits(None, 10, 20) == (10, 20, 20)
    assert row_group_limits(None, 2_000_000, None) == (2_000_000, 2_000_000, 2_000_000)
    assert row_group_limits(5, None, 20) == (5, 5, 20)
    assert row_group_limits(50, 10, 20) == (20, 20, 20)


def test_custom_filename_provider_must_keep_write_uuid_when_appending(tmp_path):
    class Fixed(FilenameProvider):
        def get_filename_for_task(self, write_uuid, task_index):
            return f"part{task_index}.parquet"

    sink = ParquetDatasink(str(tmp_path), filename_provider=Fixed())
    sink.on_write_start()
    with pytest.raises(ValueError, match="write UUID"):
        sink.write(BLOCKS, TaskContext(task_idx=0))
    assert _write(ParquetDatasink(str(tmp_path), filename_provider=Fixed(), mode="overwrite"), [BLOCKS]) == [
        "part0-0.parquet"
    ]


def test_csv_json_and_numpy_sinks_read_back(tmp_path):
    # WriteOptions do not pickle, hence a function called in the write task (as in Ray).
    csv_sink = CSVDatasink(
        str(tmp_path / "csv"), arrow_csv_args_fn=lambda: {"write_options": pacsv.WriteOptions(delimiter="|")}
    )
    (name,) = _write(csv_sink, [BLOCKS])
    assert name == f"{csv_sink.write_uuid}_000000.csv"
    read = pacsv.read_csv(tmp_path / "csv" / name, parse_options=pacsv.ParseOptions(delimiter="|"))
    assert read.to_pylist() == pa.concat_tables(BLOCKS).to_pylist()

    table = pa.table({"a": [1, 2], "t": ndarray_to_arrow(np.ones((2, 2)))})
    (name,) = _write(JSONDatasink(str(tmp_path / "json")), [[table]])
    lines = (tmp_path / "json" / name).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"a": 1, "t": [1.0, 1.0]}, {"a": 2, "t": [1.0, 1.0]}]

    (name,) = _write(NumpyDatasink(str(tmp_path / "npy"), column="t"), [[table]])
    assert name.endswith("_000000.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "npy" / name), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no column 'nope'"):
        NumpyDatasink(str(tmp_path / "npy"), column="nope").write([table], TaskContext(task_idx=0))


def test_object_columns_are_refused_naming_the_column(tmp_path):
    table = pa.table({"ok": [1], "obj": objects_to_arrow([object()])})
    sink = CSVDatasink(str(tmp_path))
    sink.on_write_start()
    with pytest.raises(ValueError, match=r"'obj'.*cannot be written to files"):
        sink.write([table], TaskContext(task_idx=0))
    numpy_sink = NumpyDatasink(str(tmp_path), column="ok")
    numpy_sink.on_write_start()
    numpy_sink.write([table], TaskContext(task_idx=0))


def test_save_modes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.csv").write_text("a\n1\n")
    with pytest.raises(ValueError, match="already exists"):
        CSVDatasink(str(out), mode="error").on_write_start()
    assert _write(CSVDatasink(str(out), mode="ignore"), [BLOCKS]) == ["old.csv"]
    assert len(_write(CSVDatasink(str(out), mode="append"), [BLOCKS])) == 2
    assert len(_write(CSVDatasink(str(out), mode="overwrite"), [BLOCKS])) == 1
    with pytest.raises(ValueError, match="upsert"):
        CSVDatasink(str(out), mode="upsert")


def test_empty_write_removes_the_directory_it_created(tmp_path):
    sink = CSVDatasink(str(tmp_path / "new"))
    assert _write(sink, [[pa.table({"a": pa.array([], pa.int64())})]]) == []
    assert not (tmp_path / "new").exists()


def test_sinks_write_through_an_fsspec_filesystem(tmp_path):
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
    sink = CSVDatasink(str(tmp_path), filesystem=fsspec.filesystem("file"))
    assert len(_write(sink, [BLOCKS])) == 1

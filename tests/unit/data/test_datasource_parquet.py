import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from manta import cloudpickle
from manta.data._internal.tensors import column_to_numpy, ndarray_to_arrow
from manta.data.datasource import ParquetDatasource, Partitioning, PathPartitionFilter


def _read_all(datasource, parallelism=4):
    tasks = datasource.get_read_tasks(parallelism)
    tables = [t for task in cloudpickle.loads(cloudpickle.dumps(tasks)) for t in task()]
    return tasks, pa.concat_tables(tables) if tables else None


@pytest.fixture
def hive_dir(tmp_path):
    for year, cat, xs in [("2020", "a", [1, 2]), ("2021", "b", [3])]:
        (tmp_path / f"year={year}" / f"cat={cat}").mkdir(parents=True)
        pq.write_table(pa.table({"x": xs}), tmp_path / f"year={year}" / f"cat={cat}" / "f.parquet")
    return tmp_path


def test_hive_partitions_become_string_columns(hive_dir):
    tasks, table = _read_all(ParquetDatasource(str(hive_dir), partitioning=Partitioning("hive")))
    assert len(tasks) == 2
    assert table.schema == pa.schema([("x", pa.int64()), ("year", pa.string()), ("cat", pa.string())])
    assert table.to_pylist() == [
        {"x": 1, "year": "2020", "cat": "a"},
        {"x": 2, "year": "2020", "cat": "a"},
        {"x": 3, "year": "2021", "cat": "b"},
    ]
    assert tasks[0].schema == table.schema


def test_partitioning_none_reads_only_data_columns(hive_dir):
    _, table = _read_all(ParquetDatasource(str(hive_dir), partitioning=None))
    assert table.column_names == ["x"]


def test_metadata_from_footers(hive_dir):
    datasource = ParquetDatasource(str(hive_dir), partitioning=Partitioning("hive"))
    tasks = datasource.get_read_tasks(1)
    assert len(tasks) == 1
    meta = tasks[0].metadata
    assert meta.num_rows == 3
    assert len(meta.input_files) == 2 and meta.input_files[0].endswith("year=2020/cat=a/f.parquet")
    assert meta.size_bytes > 0 and datasource.estimate_inmemory_data_size() == meta.size_bytes
    assert datasource.get_name() == "Parquet"


def test_filter_and_columns_are_pushed_into_the_scan(hive_dir):
    datasource = ParquetDatasource(
        str(hive_dir),
        partitioning=Partitioning("hive"),
        columns=["x", "cat"],
        include_paths=True,
        arrow_parquet_args={"filter": (pads.field("year") == "2020") & (pads.field("x") > 1)},
    )
    tasks, table = _read_all(datasource)
    assert all(task.metadata.num_rows is None for task in tasks)
    assert table.column_names == ["x", "cat", "path"]
    assert table.to_pylist() == [{"x": 2, "cat": "a", "path": f"{hive_dir}/year=2020/cat=a/f.parquet"}]
    assert tasks[0].schema == table.schema


def test_a_pushed_predicate_joins_the_scan_filter_and_leaves_the_original_reader_alone(hive_dir):
    from manta.data._internal.predicates import parse

    datasource = ParquetDatasource(
        str(hive_dir),
        partitioning=Partitioning("hive"),
        arrow_parquet_args={"filter": pads.field("x") > 1},
    )
    assert datasource.supports_predicate_pushdown()
    filtered = datasource.apply_predicate(parse("year == '2020'"))
    tasks, table = _read_all(filtered)
    assert table.to_pylist() == [{"x": 2, "year": "2020", "cat": "a"}]
    assert all(task.metadata.num_rows is None for task in tasks)  # known only once read
    assert _read_all(datasource)[1].column("x").to_pylist() == [2, 3]
    assert not ParquetDatasource(str(hive_dir), include_paths=True).supports_predicate_pushdown()


def test_partition_filter_skips_files(hive_dir):
    keep = PathPartitionFilter.of(lambda p: p["year"] == "2021")
    datasource = ParquetDatasource(str(hive_dir), partitioning=Partitioning("hive"), partition_filter=keep)
    assert len(datasource.paths) == 1
    assert _read_all(datasource)[1].column("x").to_pylist() == [3]


def test_unknown_column_is_refused(hive_dir):
    with pytest.raises(ValueError, match="'nope'"):
        ParquetDatasource(str(hive_dir), columns=["nope"])


def test_files_with_missing_columns_read_as_nulls(tmp_path):
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": pa.array([2], pa.int32())}), tmp_path / "2.parquet")
    _, table = _read_all(ParquetDatasource(str(tmp_path)))
    assert table.to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]


def test_conflicting_schemas_name_both_files(tmp_path):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": ["s"]}), tmp_path / "2.parquet")
    with pytest.raises(TypeError, match=r"1\.parquet and .*2\.parquet.*'a'"):
        ParquetDatasource(str(tmp_path))


def test_not_parquet_fails_in_the_read_task_naming_reader_and_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    tasks = ParquetDatasource(str(tmp_path)).get_read_tasks(1)
    with pytest.raises(ValueError, match=r"read_parquet could not read .*bad\.parquet"):
        list(tasks[0]())


def test_large_files_are_read_in_several_batches(tmp_path):
    pq.write_table(pa.table({"x": list(range(1000))}), tmp_path / "f.parquet", row_group_size=100)
    datasource = ParquetDatasource(str(tmp_path), arrow_parquet_args={"batch_size": 100})
    _, table = _read_all(datasource)
    assert table.column("x").to_pylist() == list(range(1000))
    with pytest.raises(TypeError, match="unsupported arrow_parquet_args"):
        ParquetDatasource(str(tmp_path), arrow_parquet_args={"bogus": 1})


def test_tensor_columns_round_trip(tmp_path):
    images = np.arange(24, dtype=np.float32).reshape(3, 2, 2, 2)
    pq.write_table(pa.table({"t": ndarray_to_arrow(images)}), tmp_path / "f.parquet")
    _, table = _read_all(ParquetDatasource(str(tmp_path)))
    assert isinstance(table.schema.field("t").type, pa.FixedShapeTensorType)
    np.testing.assert_array_equal(column_to_numpy(table.column("t")), images)


def test_tensor_column_schema_decodes_raw_bytes(tmp_path):
    arrays = [np.full((2, 3), i, dtype=np.int16) for i in range(2)]
    pq.write_table(pa.table({"b": [a.tobytes() for a in arrays]}), tmp_path / "f.parquet")
    datasource = ParquetDatasource(str(tmp_path), tensor_column_schema={"b": (np.int16, (2, 3))})
    tasks, table = _read_all(datasource)
    np.testing.assert_array_equal(column_to_numpy(table.column("b")), np.stack(arrays))
    assert tasks[0].schema == table.schema


def test_user_schema_is_applied(tmp_path):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "f.parquet")
    schema = pa.schema([("a", pa.float64()), ("extra", pa.string())])
    _, table = _read_all(ParquetDatasource(str(tmp_path), arrow_parquet_args={"schema": schema}))
    assert table.schema == schema and table.to_pylist() == [{"a": 1.0, "extra": None}]

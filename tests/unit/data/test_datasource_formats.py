import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from manta import cloudpickle
from manta.data._internal.tensors import column_to_numpy
from manta.data.datasource import (
    BinaryDatasource,
    CSVDatasource,
    JSONDatasource,
    NumpyDatasource,
    Partitioning,
    TextDatasource,
)
from manta.data.datasource.images import ImageDatasource


def _read_all(datasource, parallelism=8):
    tasks = cloudpickle.loads(cloudpickle.dumps(datasource.get_read_tasks(parallelism)))
    return pa.concat_tables([t for task in tasks for t in task()], promote_options="default")


def test_csv_with_options_partitions_and_paths(tmp_path):
    (tmp_path / "k=1").mkdir()
    (tmp_path / "k=1" / "a.csv").write_text("x;y\n1;a\n2;b\n")
    datasource = CSVDatasource(
        str(tmp_path),
        arrow_csv_args={"parse_options": pacsv.ParseOptions(delimiter=";")},
        partitioning=Partitioning("hive"),
        include_paths=True,
    )
    assert datasource.get_name() == "CSV"
    assert _read_all(datasource).to_pylist() == [
        {"x": 1, "y": "a", "k": "1", "path": f"{tmp_path}/k=1/a.csv"},
        {"x": 2, "y": "b", "k": "1", "path": f"{tmp_path}/k=1/a.csv"},
    ]


def test_csv_gzip_and_header_only_files(tmp_path):
    with gzip.open(tmp_path / "a.csv.gz", "wt") as f:
        f.write("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n")
    table = _read_all(CSVDatasource(str(tmp_path)))
    assert table.column("x").to_pylist() == [1]


def test_csv_unknown_option_and_malformed_file(tmp_path):
    (tmp_path / "a.csv").write_text('x,y\n1,2\n3\n"')
    with pytest.raises(TypeError, match="unsupported arrow_csv_args"):
        CSVDatasource(str(tmp_path), arrow_csv_args={"delimiter": ";"})
    task = CSVDatasource(str(tmp_path)).get_read_tasks(1)[0]
    with pytest.raises(ValueError, match=r"read_csv could not read .*a\.csv"):
        list(task())


def test_json_lines_and_json_array_files(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (tmp_path / "b.json").write_text(json.dumps([{"a": 3}, {"a": 4}]))
    (tmp_path / "c.json").write_text("")
    assert _read_all(JSONDatasource(str(tmp_path))).column("a").to_pylist() == [1, 2, 3, 4]


def test_json_lines_true_refuses_arrays_and_garbage_names_file(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps([{"a": 3}]))
    task = JSONDatasource(str(tmp_path), lines=True).get_read_tasks(1)[0]
    with pytest.raises(ValueError, match=r"read_json could not read .*b\.json"):
        list(task())
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"read_json could not read .*b\.json"):
        list(JSONDatasource(str(tmp_path)).get_read_tasks(1)[0]())
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON array of objects"):
        list(JSONDatasource(str(tmp_path)).get_read_tasks(1)[0]())


def test_text_lines_drop_empty_and_encoding(tmp_path):
    (tmp_path / "a.txt").write_bytes("é\n\n  \nb\n".encode("latin-1"))
    assert _read_all(TextDatasource(str(tmp_path), encoding="latin-1")).to_pylist() == [
        {"text": "é"},
        {"text": "b"},
    ]
    kept = _read_all(TextDatasource(str(tmp_path), encoding="latin-1", drop_empty_lines=False))
    assert kept.column("text").to_pylist() == ["é", "", "  ", "b"]


def test_binary_one_row_per_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\x00\x01")
    (tmp_path / "b.bin").write_bytes(b"zz")
    datasource = BinaryDatasource(str(tmp_path), include_paths=True)
    tasks = datasource.get_read_tasks(8)
    assert len(tasks) == 2 and tasks[0].metadata.size_bytes == 2
    assert _read_all(datasource).to_pylist() == [
        {"bytes": b"\x00\x01", "path": f"{tmp_path}/a.bin"},
        {"bytes": b"zz", "path": f"{tmp_path}/b.bin"},
    ]


def test_numpy_rows_and_tensor_column(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6).reshape(3, 2))
    np.save(tmp_path / "b.npy", np.arange(2).reshape(1, 2))
    table = _read_all(NumpyDatasource(str(tmp_path), file_extensions=["npy"]))
    assert isinstance(table.schema.field("data").type, pa.FixedShapeTensorType)
    np.testing.assert_array_equal(column_to_numpy(table.column("data")), [[0, 1], [2, 3], [4, 5], [0, 1]])
    np.save(tmp_path / "c.npy", np.array(7))
    assert _read_all(NumpyDatasource(str(tmp_path / "c.npy"))).column("data").to_pylist() == [7]


def test_numpy_object_arrays_need_allow_pickle(tmp_path):
    np.save(tmp_path / "a.npy", np.array([{"k": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"read_numpy could not read .*a\.npy"):
        list(NumpyDatasource(str(tmp_path)).get_read_tasks(1)[0]())
    table = _read_all(NumpyDatasource(str(tmp_path), allow_pickle=True))
    assert list(column_to_numpy(table.column("data"))) == [{"k": 1}]
    with pytest.raises(ValueError, match="allow_pickle"):
        NumpyDatasource(str(tmp_path), numpy_load_args={"allow_pickle": True})


def test_no_files_and_extension_filters(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No files found under"):
        CSVDatasource(str(tmp_path / "empty"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="file extensions"):
        CSVDatasource(str(tmp_path / "a.txt"), file_extensions=["csv"])
    with pytest.raises(FileNotFoundError, match=r"missing.csv"):
        CSVDatasource(str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="ignore_missing_paths"):
        CSVDatasource(str(tmp_path / "missing.csv"), ignore_missing_paths=True)


def test_images_need_pillow(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install Pillow"):
            ImageDatasource(str(tmp_path))
    else:
        pytest.skip("Pillow is installed; test_images_are_read covers it")


def test_images_are_read(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    image_module.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    table = _read_all(ImageDatasource(str(tmp_path), size=(2, 3), mode="L"))
    assert column_to_numpy(table.column("image")).shape == (1, 2, 3)
    (tmp_path / "b.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"read_images could not read .*b\.png"):
        _read_all(ImageDatasource(str(tmp_path / "b.png")))

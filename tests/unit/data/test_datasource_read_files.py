import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manta.data import read_files
from manta.data.datasource import (
    BinaryDatasource,
    CSVDatasource,
    JSONDatasource,
    NumpyDatasource,
    ParquetDatasource,
    TextDatasource,
)


@pytest.fixture
def calls(monkeypatch):
    """A stand-in for manta.data.read_api (written separately) that records its calls."""
    recorded = []
    fake = types.ModuleType("manta.data.read_api")

    def read_datasource(datasource, **kwargs):
        recorded.append((datasource, kwargs))
        return "dataset"

    fake.read_datasource = read_datasource
    monkeypatch.setitem(sys.modules, "manta.data.read_api", fake)
    return recorded


def test_scheduling_arguments_pass_through_and_named_remote_args_merge(tmp_path, calls):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "f.parquet")
    result = read_files.read_parquet(
        str(tmp_path),
        parallelism=3,
        num_cpus=0.5,
        memory=10,
        concurrency=2,
        override_num_blocks=4,
        resources={"x": 1.0},
        ray_remote_args={"resources": {"y": 1.0}, "max_retries": 1},
    )
    assert result == "dataset"
    datasource, kwargs = calls[0]
    assert isinstance(datasource, ParquetDatasource)
    assert kwargs == {
        "parallelism": 3,
        "num_cpus": 0.5,
        "num_gpus": None,
        "memory": 10,
        "ray_remote_args": {"resources": {"x": 1.0}, "max_retries": 1},
        "concurrency": 2,
        "override_num_blocks": 4,
    }


def test_each_reader_builds_its_datasource(tmp_path, calls):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "a.json").write_text('{"x": 1}\n')
    (tmp_path / "a.txt").write_text("x\n")
    np.save(tmp_path / "a.npy", np.arange(3))
    read_files.read_csv(str(tmp_path / "a.csv"))
    read_files.read_json(str(tmp_path))
    read_files.read_text(str(tmp_path / "a.txt"))
    read_files.read_binary_files(str(tmp_path / "a.txt"))
    read_files.read_numpy(str(tmp_path), parallelism=2)
    kinds = [type(d) for d, _ in calls]
    assert kinds == [CSVDatasource, JSONDatasource, TextDatasource, BinaryDatasource, NumpyDatasource]
    assert calls[1][0].paths == [f"{tmp_path}/a.json"]
    assert calls[4][1]["parallelism"] == 2 and calls[4][1]["ray_remote_args"] is None


def test_parameters_manta_cannot_honour_are_refused(tmp_path, calls):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(NotImplementedError, match="shuffle"):
        read_files.read_csv(str(tmp_path), shuffle="files")
    with pytest.raises(NotImplementedError, match="include_row_hash"):
        read_files.read_parquet(str(tmp_path), include_row_hash=True)
    assert calls == []


def test_bad_input_errors(tmp_path, calls):
    with pytest.raises(ValueError, match=r"pathlib.Path"):
        read_files.read_parquet(5)
    with pytest.raises(FileNotFoundError, match=r"nope.parquet"):
        read_files.read_parquet(str(tmp_path / "nope.parquet"))
    with pytest.raises(ValueError, match="No files found"):
        read_files.read_parquet(str(tmp_path))


def test_read_images_without_pillow_says_how_to_install(tmp_path, calls):
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install Pillow"):
            read_files.read_images(str(tmp_path))
    else:
        (tmp_path / "a.png").write_bytes(b"")
        read_files.read_images(str(tmp_path))
        assert type(calls[0][0]).__name__ == "ImageDatasource"

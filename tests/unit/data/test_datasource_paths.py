import os
import pathlib

import pyarrow.fs as pafs
import pytest

from manta.data.datasource.file_based import split_evenly
from manta.data.datasource.paths import expand_paths, has_file_extension, resolve_paths_and_filesystem


def _touch(path: pathlib.Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_resolve_makes_local_paths_absolute_and_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    paths, fs = resolve_paths_and_filesystem(["~/a", "b", pathlib.Path("c")])
    assert paths == [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")]
    assert isinstance(fs, pafs.LocalFileSystem)


def test_resolve_file_uri(tmp_path):
    paths, fs = resolve_paths_and_filesystem(f"file://{tmp_path}/x.csv")
    assert paths == [f"{tmp_path}/x.csv"]
    assert isinstance(fs, pafs.LocalFileSystem)


def test_resolve_with_filesystem_strips_file_scheme(tmp_path):
    fs = pafs.LocalFileSystem()
    assert resolve_paths_and_filesystem(f"file://{tmp_path}/x", fs) == ([f"{tmp_path}/x"], fs)


@pytest.mark.parametrize("bad", [5, [], [1], None, {"a": 1}])
def test_resolve_rejects_wrong_path_types(bad):
    with pytest.raises(ValueError, match=r"paths|str or pathlib.Path"):
        resolve_paths_and_filesystem(bad)


def test_resolve_rejects_wrong_filesystem_type():
    with pytest.raises(TypeError, match="filesystem must be"):
        resolve_paths_and_filesystem("/x", filesystem="local")


def test_fsspec_filesystem_is_wrapped(tmp_path):
    fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed")
    _touch(tmp_path / "a.txt")
    paths, fs = resolve_paths_and_filesystem(str(tmp_path), fsspec.filesystem("file"))
    assert isinstance(fs, pafs.PyFileSystem)
    assert [p for p, _ in expand_paths(paths, fs, False)] == [f"{tmp_path}/a.txt"]


def test_expand_lists_directories_recursively_sorted_skipping_hidden(tmp_path):
    for name in ["b/2.csv", "a.csv", "b/1.csv", "_SUCCESS", ".hidden", "c/d/e.csv"]:
        _touch(tmp_path / name, b"abc")
    found = expand_paths([str(tmp_path)], pafs.LocalFileSystem(), False)
    assert found == [(f"{tmp_path}/{n}", 3) for n in ["a.csv", "b/1.csv", "b/2.csv", "c/d/e.csv"]]


def test_expand_missing_path_raises_naming_it(tmp_path):
    missing = f"{tmp_path}/nope.parquet"
    with pytest.raises(FileNotFoundError, match=r"nope.parquet"):
        expand_paths([missing], pafs.LocalFileSystem(), False)
    assert expand_paths([missing], pafs.LocalFileSystem(), True) == []


def test_expand_glob_patterns_component_by_component(tmp_path):
    for name in ["x/1.parquet", "x/2.parquet", "x/3.csv", "y/4.parquet", "x/sub/5.parquet"]:
        _touch(tmp_path / name)
    fs = pafs.LocalFileSystem()
    assert [
        os.path.relpath(p, tmp_path) for p, _ in expand_paths([f"{tmp_path}/x/*.parquet"], fs, False)
    ] == [
        "x/1.parquet",
        "x/2.parquet",
    ]
    assert [os.path.relpath(p, tmp_path) for p, _ in expand_paths([f"{tmp_path}/*/4.*"], fs, False)] == [
        "y/4.parquet"
    ]
    with pytest.raises(FileNotFoundError, match="No files match"):
        expand_paths([f"{tmp_path}/z*/*.parquet"], fs, False)


@pytest.mark.parametrize(
    ("path", "extensions", "expected"),
    [
        ("a.csv", ["csv"], True),
        ("a.CSV", [".csv"], True),
        ("a.json.gz", ["json.gz"], True),
        ("a.csv", ["json", "jsonl"], False),
        ("acsv", ["csv"], False),
        ("a.csv", None, True),
    ],
)
def test_has_file_extension(path, extensions, expected):
    assert has_file_extension(path, extensions) is expected


def test_split_evenly_matches_array_split():
    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_evenly([1, 2], 5) == [[1], [2]]
    assert split_evenly([], 3) == []

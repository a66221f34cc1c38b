"""Resolving a runtime env for the cluster: uploads once, rewrites paths, merges."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from manta._private.runtime_env.packaging import is_package_uri
from manta._private.runtime_env.resolve import merge, resolve


class FakeStore:
    """The gcs package table as two callables (resolve's seam)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.uploads = 0

    def exists(self, uri: str) -> bool:
        return uri in self.data

    def upload(self, uri: str, data: bytes) -> None:
        self.uploads += 1
        self.data[uri] = data


def test_local_dirs_become_uploaded_packages(tmp_path: Path) -> None:
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "a.py").write_text("A = 1\n")
    (tmp_path / "wd" / "big.log").write_text("x" * 100)
    (tmp_path / "mymod").mkdir()
    (tmp_path / "mymod" / "__init__.py").write_text("B = 2\n")
    store = FakeStore()
    env = {
        "working_dir": str(tmp_path / "wd"),
        "py_modules": [str(tmp_path / "mymod")],
        "excludes": ["*.log"],
    }
    out = resolve(env, store.exists, store.upload)
    assert out is not None and "excludes" not in out
    assert is_package_uri(out["working_dir"]) and all(is_package_uri(m) for m in out["py_modules"])
    with zipfile.ZipFile(io.BytesIO(store.data[out["working_dir"]])) as zf:
        assert zf.namelist() == ["a.py"]  # excluded file left out
    with zipfile.ZipFile(io.BytesIO(store.data[out["py_modules"][0]])) as zf:
        assert zf.namelist() == ["mymod/__init__.py"]  # importable by its name once unpacked
    assert resolve(env, store.exists, store.upload) == out
    assert store.uploads == 2  # the same content is not uploaded again
    assert env["working_dir"] == str(tmp_path / "wd")  # the caller's dict is left alone


def test_requirement_files_are_read_on_the_driver(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# pinned\nemoji==2.8.0\n\nrequests\n")
    out = resolve({"pip": str(req)}, FakeStore().exists, FakeStore().upload)
    assert out == {"pip": {"packages": ["emoji==2.8.0", "requests"], "pip_check": False}}
    out = resolve(
        {"uv": {"packages": ["x"], "uv_pip_install_options": ["--no-cache"]}},
        FakeStore().exists,
        FakeStore().upload,
    )
    assert out == {"uv": {"packages": ["x"], "uv_check": False, "uv_pip_install_options": ["--no-cache"]}}


def test_merge_own_fields_win_and_env_vars_merge() -> None:
    job = {"env_vars": {"A": "job", "B": "job"}, "working_dir": "gcs://_manta_pkg_x.zip", "pip": ["a"]}
    own = {"env_vars": {"B": "task", "C": "task"}, "pip": ["b"]}
    assert merge(job, own) == {
        "env_vars": {"A": "job", "B": "task", "C": "task"},
        "working_dir": "gcs://_manta_pkg_x.zip",
        "pip": ["b"],
    }
    assert merge(job, None) is job
    assert merge(None, own) is own
    assert merge(None, None) is None


def test_own_pip_or_uv_replaces_the_inherited_one() -> None:
    assert merge({"pip": ["a"], "env_vars": {"A": "1"}}, {"uv": ["b"]}) == {
        "uv": ["b"],
        "env_vars": {"A": "1"},
    }
    assert merge({"uv": ["a"]}, {"pip": ["b"]}) == {"pip": ["b"]}

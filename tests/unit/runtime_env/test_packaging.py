"""working_dir / py_modules packages: what goes in, repeatable bytes, one unpack per node."""

from __future__ import annotations

import io
import multiprocessing
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from manta._private.runtime_env.packaging import (
    GitIgnore,
    PackageTooLargeError,
    is_package_uri,
    pack_directory,
    package_dir,
    package_uri,
    unpack_package,
)


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _names(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return set(zf.namelist())


def _packed_names(root: Path, excludes: list[str] | None = None) -> set[str]:
    return _names(pack_directory(str(root), excludes)[1])


# -- determinism ---------------------------------------------------------------------------


def test_same_content_gives_same_uri_and_bytes(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n", "pkg/data.bin": b"\0\1\2"}
    _write(tmp_path / "one", files)
    _write(tmp_path / "two", files)
    # Different timestamps and creation order must not matter.
    os.utime(tmp_path / "two" / "a.py", (1_000_000, 1_000_000))
    uri1, data1 = pack_directory(str(tmp_path / "one"))
    uri2, data2 = pack_directory(str(tmp_path / "two"))
    assert uri1 == uri2 and data1 == data2
    assert uri1 == package_uri(data1)
    assert is_package_uri(uri1) and uri1.startswith("gcs://_manta_pkg_") and uri1.endswith(".zip")
    assert len(uri1) == len("gcs://_manta_pkg_.zip") + 32


def test_changed_content_or_exec_bit_changes_uri(tmp_path: Path) -> None:
    _write(tmp_path, {"a.py": "x = 1\n", "run.sh": "echo hi\n"})
    uri, _ = pack_directory(str(tmp_path))
    (tmp_path / "a.py").write_text("x = 2\n")
    uri_changed, _ = pack_directory(str(tmp_path))
    (tmp_path / "run.sh").chmod(0o755)
    uri_exec, data = pack_directory(str(tmp_path))
    assert len({uri, uri_changed, uri_exec}) == 3
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["a.py", "run.sh"]  # sorted
        assert (zf.getinfo("run.sh").external_attr >> 16) & 0o777 == 0o755
        assert (zf.getinfo("a.py").external_attr >> 16) & 0o777 == 0o644
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_entries_sorted_by_full_path(tmp_path: Path) -> None:
    _write(tmp_path, {"a/c": "", "a-b": "", "a.txt": ""})
    with zipfile.ZipFile(io.BytesIO(pack_directory(str(tmp_path))[1])) as zf:
        assert zf.namelist() == sorted(["a/c", "a-b", "a.txt"])


# -- what goes in --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.log", "a.log", False, True),
        ("*.log", "deep/dir/a.log", False, True),
        ("*.log", "a.log.txt", False, None),
        ("build/", "build", True, True),
        ("build/", "build", False, None),  # a file named build is not a directory
        ("build/", "src/build", True, True),
        ("/top.txt", "top.txt", False, True),
        ("/top.txt", "sub/top.txt", False, None),
        ("doc/frotz", "doc/frotz", False, True),
        ("doc/frotz", "a/doc/frotz", False, None),  # a middle slash anchors too
        ("?.txt", "a.txt", False, True),
        ("?.txt", "ab.txt", False, None),
        ("*", "a/b", False, True),
        ("a*/x", "abc/x", False, True),
        ("a*/x", "a/b/x", False, None),  # * does not cross a slash
        ("**/foo", "foo", False, True),
        ("**/foo", "x/y/foo", False, True),
        ("a/**/b", "a/b", False, True),
        ("a/**/b", "a/x/y/b", False, True),
        ("a/**/b", "ab", False, None),
        ("data/**", "data/x/y.csv", False, True),
        ("data/**", "other/data/x", False, None),
        ("[ab].py", "a.py", False, True),
        ("[ab].py", "c.py", False, None),
        ("[!ab].py", "c.py", False, True),
        ("\\#literal", "#literal", False, True),
        ("\\!bang", "!bang", False, True),
        ("trailing   ", "trailing", False, True),
    ],
)
def test_gitignore_pattern(pattern: str, path: str, is_dir: bool, expected: bool | None) -> None:
    assert GitIgnore([pattern]).match(path, is_dir) is expected


def test_gitignore_comments_blanks_and_last_match_wins() -> None:
    rules = GitIgnore(["# a comment", "", "   ", "*.log", "!keep.log", "keep.log.bak"])
    assert rules.match("x.log", False) is True
    assert rules.match("keep.log", False) is False
    assert rules.match("# a comment", False) is None
    assert not GitIgnore(["# only comments", ""])


def test_gitignore_files_negation_and_nesting(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".gitignore": "# build output\n\n*.log\n!keep.log\nbuild/\n/only_top.txt\n*.tmp\n",
            "main.py": "",
            "a.log": "",
            "keep.log": "",
            "only_top.txt": "",
            "build/out.o": "",
            "sub/only_top.txt": "",
            "sub/b.log": "",
            "sub/.gitignore": "!b.log\n*.py\n!keep.py\n",
            "sub/x.py": "",
            "sub/keep.py": "",
            "sub/build/y.o": "",
            "sub/c.tmp": "",
            "other/x.py": "",
            "other/build": "a file, not a directory",
        },
    )
    assert _packed_names(tmp_path) == {
        ".gitignore",
        "main.py",
        "keep.log",
        "sub/only_top.txt",  # "/only_top.txt" is anchored to the root
        "sub/b.log",  # re-included by the deeper .gitignore
        "sub/.gitignore",
        "sub/keep.py",  # sub's "*.py" applies only below sub
        "other/x.py",
        "other/build",
    }


def test_excluded_directory_cannot_be_reincluded(tmp_path: Path) -> None:
    _write(tmp_path, {".gitignore": "logs/\n!logs/keep.txt\n", "logs/keep.txt": "", "ok.txt": ""})
    assert _packed_names(tmp_path) == {".gitignore", "ok.txt"}


def test_excludes_apply_from_the_root_and_win_over_gitignore(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "main.py": "",
            "secret/key.pem": "",
            "model.bin": "",
            "sub/model.bin": "",
            "sub/.gitignore": "!model.bin\n",
            "data/raw.csv": "",
            "nested/data/raw.csv": "",
        },
    )
    names = _packed_names(tmp_path, ["secret/", "*.bin", "/data"])
    assert names == {"main.py", "sub/.gitignore", "nested/data/raw.csv"}


def test_git_and_pycache_always_skipped(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {".git/HEAD": "ref", "__pycache__/a.pyc": "", "pkg/__pycache__/b.pyc": "", "pkg/m.py": ""},
    )
    assert _packed_names(tmp_path) == {"pkg/m.py"}


def test_symlinks_inside_followed_outside_skipped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root, {"real.txt": "inside", "dir/f.txt": "x"})
    _write(tmp_path, {"outside.txt": "secret"})
    os.symlink(root / "real.txt", root / "link.txt")
    os.symlink(tmp_path / "outside.txt", root / "escape.txt")
    os.symlink(root / "dir", root / "dirlink")
    os.symlink(root, root / "dir" / "loop")
    os.symlink(root / "missing", root / "dangling")
    _, data = pack_directory(str(root))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert set(zf.namelist()) == {"real.txt", "dir/f.txt", "link.txt"}
        assert zf.read("link.txt") == b"inside"


# -- limits and bad input ------------------------------------------------------------------


def test_size_limit_message_names_limit_size_and_largest_files(tmp_path: Path) -> None:
    sizes = {"f1.bin": 600, "f2.bin": 500, "f3.bin": 400, "f4.bin": 300, "f5.bin": 200, "f6.bin": 100}
    _write(tmp_path, {name: b"x" * n for name, n in sizes.items()})
    _write(tmp_path, {"ignored.bin": b"x" * 10_000, ".gitignore": "ignored.bin\n"})
    total = sum(sizes.values()) + len("ignored.bin\n")
    with pytest.raises(PackageTooLargeError) as info:
        pack_directory(str(tmp_path), max_bytes=1000)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "1000 bytes" in message and f"{total} bytes" in message
    for name in ("f1.bin", "f2.bin", "f3.bin", "f4.bin", "f5.bin"):
        assert name in message
    assert message.index("f1.bin") < message.index("f5.bin")
    assert "f6.bin" not in message and "ignored.bin" not in message
    assert "excludes" in message and ".gitignore" in message
    assert info.value.largest[0] == ("f1.bin", 600)
    # Under the limit, and with the big files excluded, it packs.
    pack_directory(str(tmp_path), max_bytes=total)
    pack_directory(str(tmp_path), excludes=["f1.bin", "f2.bin"], max_bytes=total - 1100)


def test_zip_file_is_taken_as_is(tmp_path: Path) -> None:
    _write(tmp_path / "src", {"a.py": "1"})
    _, data = pack_directory(str(tmp_path / "src"))
    archive = tmp_path / "code.zip"
    archive.write_bytes(data)
    assert pack_directory(str(archive)) == (package_uri(data), data)
    with pytest.raises(PackageTooLargeError):
        pack_directory(str(archive), max_bytes=0)


@pytest.mark.parametrize("kind", ["missing", "plain file", "fake zip"])
def test_bad_paths_are_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / {"missing": "nope", "plain file": "a.txt", "fake zip": "a.zip"}[kind]
    if kind != "missing":
        path.write_text("not a zip")
    with pytest.raises(ValueError, match=path.name):
        pack_directory(str(path))


def test_excludes_must_be_a_list_of_str(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="excludes"):
        pack_directory(str(tmp_path), "*.log")  # type: ignore[arg-type]


# -- unpacking -----------------------------------------------------------------------------


def _zip_with(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_unpack_restores_files_and_modes_once(tmp_path: Path) -> None:
    _write(tmp_path / "src", {"pkg/m.py": "v = 1\n", "run.sh": "#!/bin/sh\n"})
    (tmp_path / "src" / "run.sh").chmod(0o755)
    uri, data = pack_directory(str(tmp_path / "src"))
    cache = tmp_path / "cache"
    assert package_dir(uri, str(cache)) is None
    target = unpack_package(uri, data, str(cache))
    assert target == str(cache / uri[len("gcs://") : -len(".zip")])
    assert package_dir(uri, str(cache)) == target
    assert Path(target, "pkg", "m.py").read_text() == "v = 1\n"
    assert os.stat(Path(target, "run.sh")).st_mode & 0o777 == 0o755
    # Already there: nothing is extracted again.
    Path(target, "pkg", "m.py").write_text("changed")
    assert unpack_package(uri, data, str(cache)) == target
    assert Path(target, "pkg", "m.py").read_text() == "changed"
    assert os.listdir(cache) == [os.path.basename(target)]


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt"])
def test_unpack_refuses_zip_slip(tmp_path: Path, name: str) -> None:
    data = _zip_with({"fine.txt": b"", name: b"evil"})
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(ValueError, match="outside"):
        unpack_package(package_uri(data), data, str(cache))
    assert os.listdir(cache) == []  # the temp dir went too
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    archive = tmp_path / "slip.zip"
    archive.write_bytes(data)
    with pytest.raises(ValueError, match="outside"):
        pack_directory(str(archive))


def test_unpack_refuses_symlink_entries(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    data = buf.getvalue()
    with pytest.raises(ValueError, match="symbolic link"):
        unpack_package(package_uri(data), data, str(tmp_path))


def test_unpack_refuses_data_not_matching_its_uri(tmp_path: Path) -> None:
    data = _zip_with({"a": b"1"})
    other = package_uri(_zip_with({"a": b"2"}))
    with pytest.raises(ValueError, match="hash"):
        unpack_package(other, data, str(tmp_path))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gcs://_manta_pkg_0123456789abcdef0123456789abcdef.zip", True),
        ("gcs://my_code.zip", True),
        ("gcs://../x.zip", False),
        ("gcs://a/b.zip", False),
        ("gcs://.hidden.zip", False),
        ("/tmp/dir", False),
        ("s3://bucket/x.zip", False),
        ("gcs://x.tar", False),
    ],
)
def test_is_package_uri(value: str, expected: bool) -> None:
    assert is_package_uri(value) is expected


def _unpack_in_child(barrier: Any, uri: str, data: bytes, cache: str, out: str) -> None:
    barrier.wait()
    Path(out).write_text(unpack_package(uri, data, cache))


def test_concurrent_unpack_from_processes_yields_one_dir(tmp_path: Path) -> None:
    _write(tmp_path / "src", {f"m{i}.py": f"v = {i}\n" * 200 for i in range(30)})
    uri, data = pack_directory(str(tmp_path / "src"))
    cache = str(tmp_path / "cache")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_unpack_in_child, args=(barrier, uri, data, cache, str(tmp_path / f"out{i}")))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    results = {(tmp_path / f"out{i}").read_text() for i in range(4)}
    assert len(results) == 1
    target = results.pop()
    assert os.listdir(cache) == [os.path.basename(target)]  # no temp dirs left behind
    assert sorted(os.listdir(target)) == sorted(f"m{i}.py" for i in range(30))
    assert Path(target, "m7.py").read_text() == "v = 7\n" * 200

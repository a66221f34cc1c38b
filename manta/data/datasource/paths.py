"""Turning what users pass as ``paths`` and ``filesystem`` into files to read.

Paths are plain paths (``~`` expanded), URIs (``file:///…``, ``s3://…``: the filesystem
comes from ``pyarrow.fs.FileSystem.from_uri``), directories (listed recursively) and,
unlike Ray, glob patterns (``/data/*.parquet``). Filesystems are ``pyarrow.fs`` ones or
``fsspec`` ones, which are wrapped so that everything below sees a ``pyarrow.fs``
filesystem (and read tasks can pickle it).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from typing import Any

import pyarrow.fs as pafs

_GLOB_CHARS = frozenset("*?[")
# As Ray: directory listings skip names starting with these (e.g. ``_SUCCESS``, ``.crc``).
_HIDDEN_PREFIXES = (".", "_")


def normalize_path_list(paths: Any) -> list[str]:
    """The user's ``paths`` argument as a non-empty list of strings.

    Raises:
        ValueError: ``paths`` is not a str/``os.PathLike`` or a non-empty list of them
            (Ray raises ``ValueError`` here too).
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"paths must be a str, a pathlib.Path or a non-empty list of them, got {paths!r}")
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise ValueError(f"All paths must be str or pathlib.Path, got {item!r} ({type(item).__name__})")
    return [os.fspath(item) for item in items]


def as_arrow_filesystem(filesystem: Any) -> pafs.FileSystem | None:
    """``filesystem`` as a ``pyarrow.fs.FileSystem``: returned as is, or an ``fsspec``
    filesystem wrapped in ``PyFileSystem(FSSpecHandler(...))``.

    Raises:
        TypeError: it is neither.
    """
    if filesystem is None or isinstance(filesystem, pafs.FileSystem):
        return filesystem
    # Importing fsspec only when the user passed one of its filesystems: it is optional.
    if any(cls.__module__.split(".")[0] == "fsspec" for cls in type(filesystem).__mro__):
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise TypeError(
        f"filesystem must be a pyarrow.fs.FileSystem or an fsspec filesystem, got {type(filesystem).__name__}"
    )


def resolve_paths_and_filesystem(paths: Any, filesystem: Any = None) -> tuple[list[str], pafs.FileSystem]:
    """Resolve paths and the filesystem they live on.

    Without a filesystem, URIs choose theirs (all must agree) and plain paths are local,
    made absolute. With one, a URI's scheme is stripped.
    """
    path_list = normalize_path_list(paths)
    fs = as_arrow_filesystem(filesystem)
    resolved: list[str] = []
    for raw in path_list:
        path = os.path.expanduser(raw)
        if fs is not None:
            resolved.append(_strip_scheme(path))
            continue
        if "://" in path:
            fs, inner = pafs.FileSystem.from_uri(path)
            resolved.append(inner)
        else:
            resolved.append(os.path.abspath(path))
    if fs is None:
        fs = pafs.LocalFileSystem()
    return resolved, fs


def _strip_scheme(path: str) -> str:
    scheme, sep, rest = path.partition("://")
    if not sep:
        return path
    return "/" + rest.lstrip("/") if scheme == "file" else rest


def expand_paths(paths: list[str], fs: pafs.FileSystem, ignore_missing_paths: bool) -> list[tuple[str, int]]:
    """The files under ``paths`` as ``(path, size)``: files as given, directories listed
    recursively and sorted, glob patterns matched.

    Raises:
        FileNotFoundError: a path does not exist (unless ``ignore_missing_paths``).
    """
    out: list[tuple[str, int]] = []
    for path in paths:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound and _GLOB_CHARS.intersection(path):
            matches = _glob(fs, path)
            if not matches and not ignore_missing_paths:
                raise FileNotFoundError(f"No files match the pattern {path}")
            for match in matches:
                out.extend(expand_paths([match], fs, ignore_missing_paths))
        elif info.type == pafs.FileType.NotFound:
            if not ignore_missing_paths:
                raise FileNotFoundError(path)
        elif info.type == pafs.FileType.Directory:
            out.extend(_list_directory(fs, path))
        else:
            out.append((path, info.size or 0))
    return out


def _list_directory(fs: pafs.FileSystem, path: str) -> list[tuple[str, int]]:
    base = path.rstrip("/")
    found = []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        relative = info.path[len(base) :].lstrip("/")
        if info.is_file and not relative.startswith(_HIDDEN_PREFIXES):
            found.append((info.path, info.size or 0))
    return sorted(found)


def _glob(fs: pafs.FileSystem, pattern: str) -> list[str]:
    """Paths matching ``pattern``, one component at a time (``*`` never crosses ``/``)."""
    parts = pattern.split("/")
    fixed = 0
    while fixed < len(parts) and not _GLOB_CHARS.intersection(parts[fixed]):
        fixed += 1
    candidates = ["/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else ".")]
    for part in parts[fixed:]:
        step: list[str] = []
        for parent in candidates:
            if not _GLOB_CHARS.intersection(part):
                step.append(posixpath.join(parent, part))
                continue
            listing = fs.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
            names = sorted(posixpath.basename(info.path) for info in listing)
            step.extend(posixpath.join(parent, name) for name in names if fnmatch.fnmatchcase(name, part))
        candidates = step
    return [c for c in candidates if fs.get_file_info(c).type != pafs.FileType.NotFound]


def has_file_extension(path: str, extensions: list[str] | None) -> bool:
    """Whether ``path`` ends with one of ``extensions`` (case-insensitive, with or without
    the dot, as Ray matches them); ``None`` accepts every path."""
    if extensions is None:
        return True
    lowered = path.lower()
    return any(lowered.endswith("." + ext.lower().lstrip(".")) for ext in extensions)

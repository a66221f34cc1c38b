"""working_dir / py_modules packages: a local directory as a content-addressed zip.

The driver packs a directory into a zip whose bytes depend only on the included files'
paths, contents and executable bits (sorted entries, fixed timestamps, normalized modes),
so the same code uploaded twice is stored once and every node caches it under one name.
Nodes unpack a package once into ``<cache_dir>/<name>/``; concurrent unpackers race on an
atomic ``rename`` and the loser throws its copy away, so no lock is needed.

What goes in follows git: ``.gitignore`` files anywhere in the tree (each applying to its
own subtree, deeper files overriding shallower ones), plus the caller's ``excludes`` in
the same syntax relative to the root. ``.git`` and ``__pycache__`` never go in.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from manta.exceptions import RayError

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
URI_SCHEME = "gcs://"
_PACKAGE_PREFIX = "_manta_pkg_"
# Any name we are willing to turn into a directory under the cache: no separators, no
# leading dot (hidden temp dirs of unpacks in progress start with one).
_URI_RE = re.compile(r"gcs://([A-Za-z0-9_][A-Za-z0-9_.\-]*)\.zip")
_OWN_NAME_RE = re.compile(_PACKAGE_PREFIX + r"([0-9a-f]{32})")
# 1980-01-01 is the earliest time a zip can hold; any fixed value makes the bytes repeatable.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ALWAYS_SKIPPED = frozenset({".git", "__pycache__"})


class PackageTooLargeError(RayError, ValueError):
    """The files to upload add up to more than the package size limit. Raised to users by
    ``init`` and job submission: in the error tree, and a ValueError as before."""

    def __init__(self, path: str, size: int, limit: int, largest: list[tuple[str, int]]) -> None:
        self.path = path
        self.size = size
        self.limit = limit
        self.largest = largest
        files = ", ".join(f"{name} ({_format_bytes(n)})" for name, n in largest)
        super().__init__(
            f"The package for {path!r} is {_format_bytes(size)} ({size} bytes) uncompressed, "
            f"over the limit of {_format_bytes(limit)} ({limit} bytes). Largest files: {files}. "
            "Add `excludes` to the runtime_env or a .gitignore to leave out files the job "
            "does not need."
        )


# -- gitignore matching (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


class GitIgnore:
    """The rules of one .gitignore file, matched against paths relative to its directory."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._rules = [rule for line in lines if (rule := _parse_line(line)) is not None]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, rel_path: str, is_dir: bool) -> bool | None:
        """True if ignored, False if re-included by a ``!`` rule, None if no rule applies.

        The last matching rule decides, as in git.
        """
        verdict: bool | None = None
        for rule in self._rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(rel_path):
                verdict = not rule.negate
        return verdict


def _parse_line(line: str) -> _Rule | None:
    line = line.rstrip("\n\r")
    # Trailing spaces are insignificant unless escaped with a backslash.
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    # A slash at the start or in the middle anchors the pattern to the .gitignore's
    # directory; otherwise it matches a name at any depth.
    anchored = "/" in line
    line = line.lstrip("/")
    segments = line.split("/")
    if not anchored:
        segments = ["**", *segments]
    return _Rule(re.compile(_segments_regex(segments)), negate, dir_only)


def _segments_regex(segments: list[str]) -> str:
    parts = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            # Trailing "/**" is everything inside; elsewhere "**/" is zero or more directories.
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return "".join(parts)


def _segment_regex(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[" and (end := _class_end(segment, i)) > 0:
            body = segment[i + 1 : end]
            negated = body[:1] in ("!", "^")
            if negated:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^' if negated else ''}{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, or -1 (then ``[`` is literal)."""
    i = start + 1
    if i < len(segment) and segment[i] in "!^":
        i += 1
    # A "]" first in the class is a member, not the end.
    if i < len(segment) and segment[i] == "]":
        i += 1
    end = segment.find("]", i)
    return end


def is_ignored(rel_path: str, is_dir: bool, chain: list[tuple[str, GitIgnore]], excludes: GitIgnore) -> bool:
    """Whether ``rel_path`` (relative to the package root) stays out of the package.

    ``chain`` holds the .gitignore files on the way from the root to the path's directory,
    shallowest first, each with its directory relative to the root; a deeper file's match
    overrides a shallower one's. ``excludes`` are the caller's patterns, relative to the
    root; they are applied on their own so that no .gitignore ``!`` rule can re-include
    what the caller excluded.
    """
    verdict = False
    for base, rules in chain:
        if base and not rel_path.startswith(base + "/"):
            continue
        result = rules.match(rel_path[len(base) + 1 :] if base else rel_path, is_dir)
        if result is not None:
            verdict = result
    return verdict or bool(excludes.match(rel_path, is_dir))


# -- packing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    rel: str
    source: str
    size: int
    executable: bool


def pack_directory(
    path: str, excludes: list[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES, prefix: str = ""
) -> tuple[str, bytes]:
    """Zip the directory ``path`` (or take the existing zip file ``path`` as is), its
    files under the folder ``prefix`` if given (a py_modules package keeps the module's
    directory name at its top, so unpacked it is importable by that name).

    Returns ``(uri, zip_bytes)``; the uri names the sha256 of the bytes, so identical
    content gives the identical uri. Raises ``PackageTooLargeError`` when the included
    files add up to more than ``max_bytes`` uncompressed, and ``ValueError`` for a path
    that is neither a directory nor a zip file, or a zip with unsafe entries.

    Symbolic links to files inside the directory are followed; links to directories and
    links leading outside the directory are skipped, so a package never picks up files
    from elsewhere on the machine and a link cycle cannot make it loop.
    """
    if excludes is not None and (
        not isinstance(excludes, list) or not all(isinstance(p, str) for p in excludes)
    ):
        raise TypeError(f"excludes must be a list of str patterns, got {excludes!r}")
    if os.path.isdir(path):
        files = _collect_files(path, GitIgnore(excludes or []))
        _check_size(path, [(f.rel, f.size) for f in files], max_bytes)
        data = _zip_files(files, prefix)
    elif os.path.isfile(path) and path.endswith(".zip"):
        data = _read_zip(path, max_bytes)
    else:
        raise ValueError(f"{path!r} is not an existing directory or .zip file")
    return package_uri(data), data


def package_uri(data: bytes) -> str:
    """The content-addressed uri of the package ``data``."""
    return f"{URI_SCHEME}{_PACKAGE_PREFIX}{hashlib.sha256(data).hexdigest()[:32]}.zip"


def _collect_files(root: str, excludes: GitIgnore) -> list[_File]:
    files: list[_File] = []
    real_root = os.path.realpath(root)

    def walk(directory: str, rel_dir: str, chain: list[tuple[str, GitIgnore]]) -> None:
        gitignore = os.path.join(directory, ".gitignore")
        if os.path.isfile(gitignore):
            with open(gitignore, encoding="utf-8", errors="surrogateescape") as f:
                rules = GitIgnore(f)
            if rules:
                chain = [*chain, (rel_dir, rules)]
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name in _ALWAYS_SKIPPED:
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not (_is_within(target, real_root) and os.path.isfile(target)):
                    continue
                if not is_ignored(rel, False, chain, excludes):
                    files.append(_file(rel, target))
            elif entry.is_dir():
                if not is_ignored(rel, True, chain, excludes):
                    walk(entry.path, rel, chain)
            elif entry.is_file() and not is_ignored(rel, False, chain, excludes):
                files.append(_file(rel, entry.path))

    walk(root, "", [])
    # Directory-by-directory sorting is not a global sort ("a-b" < "a/c" but "a" < "a-b").
    files.sort(key=lambda f: f.rel)
    return files


def _file(rel: str, source: str) -> _File:
    st = os.stat(source)
    return _File(rel, source, st.st_size, bool(st.st_mode & 0o111))


def _is_within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_size(path: str, sizes: list[tuple[str, int]], max_bytes: int) -> None:
    total = sum(n for _, n in sizes)
    if total > max_bytes:
        largest = sorted(sizes, key=lambda item: (-item[1], item[0]))[:5]
        raise PackageTooLargeError(path, total, max_bytes, largest)


def _zip_files(files: list[_File], prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            info = zipfile.ZipInfo(f"{prefix}/{f.rel}" if prefix else f.rel, date_time=_ZIP_EPOCH)
            info.create_system = 3  # unix, so the mode bits below are honoured
            # Only the executable bit is kept, as git does: the rest depends on the umask
            # of whoever created the file and would make equal trees pack differently.
            mode = 0o755 if f.executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(f.source, "rb") as src:
                zf.writestr(info, src.read())
    return buf.getvalue()


def _read_zip(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = _checked_members(zf)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path!r} is not a valid zip file: {e}") from None
    _check_size(path, [(m.filename, m.file_size) for m in members if not m.is_dir()], max_bytes)
    return data


def _checked_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries, refusing any that would land outside the extraction dir."""
    members = zf.infolist()
    for member in members:
        name = member.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or re.match(r"[A-Za-z]:[/\\]", name) or ".." in parts:
            raise ValueError(f"refusing zip entry {name!r}: it would extract outside the package")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise ValueError(f"refusing zip entry {name!r}: symbolic links are not supported")
    return members


# -- unpacking (one copy per node) ---------------------------------------------------------


def is_package_uri(value: str) -> bool:
    """Whether ``value`` names an uploaded package rather than a local path."""
    return isinstance(value, str) and _URI_RE.fullmatch(value) is not None


def _package_name(uri: str) -> str:
    m = _URI_RE.fullmatch(uri)
    if m is None:
        raise ValueError(f"{uri!r} is not a package uri (expected gcs://<name>.zip)")
    return m.group(1)


def package_dir(uri: str, cache_dir: str) -> str | None:
    """The directory ``uri`` is unpacked in, or None if it is not unpacked on this node."""
    target = os.path.join(cache_dir, _package_name(uri))
    return target if os.path.isdir(target) else None


def unpack_package(uri: str, data: bytes, cache_dir: str) -> str:
    """Extract ``data`` into ``<cache_dir>/<name>/`` unless already there; return the dir.

    Safe against concurrent callers in other processes: each extracts into its own hidden
    temp dir and renames it into place; the first rename wins and the others discard
    their copy. Raises ``ValueError`` for an entry with an absolute path or ``..``, and when
    the data does not hash to a content-addressed uri.
    """
    name = _package_name(uri)
    own = _OWN_NAME_RE.fullmatch(name)
    if own and hashlib.sha256(data).hexdigest()[:32] != own.group(1):
        raise ValueError(f"the data for {uri} does not match its hash; the upload is corrupt")
    target = os.path.join(cache_dir, name)
    if os.path.isdir(target):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir)
    try:
        _extract(data, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # ENOTEMPTY / EEXIST: another process got there first with the same content.
            if not os.path.isdir(target):
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _extract(data: bytes, dest: str) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in _checked_members(zf):
            path = os.path.join(dest, *PurePosixPath(member.filename).parts)
            if member.is_dir():
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with zf.open(member) as src, open(path, "wb") as out:
                shutil.copyfileobj(src, out)
            # zipfile does not restore modes; zips made elsewhere may carry none (0).
            mode = (member.external_attr >> 16) & 0o777
            os.chmod(path, mode or 0o644)


def _format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"

"""What a worker's process looks like inside a runtime env: the decisions, given a way to
fetch packages; the core worker applies the result to its own process.

A worker serves one runtime env for its whole life (the node keys its pool by it), so
this runs once, before the worker's first task: packages are fetched from the gcs and
unpacked once per host, a pip/uv venv is built once per host and spec, and both are
cached under ``<tmpdir>/runtime_resources-<uid>`` (private to the user) for every later
worker and session.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manta._private.runtime_env.packaging import is_package_uri, package_dir, unpack_package
from manta._private.runtime_env.pip_env import (
    PipEnvError,
    ensure_venv,
    env_key,
    normalize_pip_spec,
    venv_site_packages,
)
from manta._private.runtime_env.validation import setup_timeout_s
from manta.exceptions import RuntimeEnvSetupError


@dataclass
class WorkerEnv:
    env_vars: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    # Put first on sys.path (and PATH), in this order.
    sys_path: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)


def cache_dirs(tmpdir: str) -> tuple[str, str]:
    """Where this host keeps unpacked packages and venvs for this user (venvs per Python
    version: a venv belongs to the interpreter that made it)."""
    root = _private_dir(os.path.join(tmpdir, f"runtime_resources-{os.getuid()}"))
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return os.path.join(root, "packages"), os.path.join(root, "pip", python)


def _private_dir(path: str) -> str:
    """``path`` as a directory only this user can use: code is imported from it, so one
    another local user made (or can write to) is refused, not trusted."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeEnvSetupError(
            f"{path} is not a private directory of this user (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}); remove it, or set MANTA_TMPDIR to a directory of your own"
        )
    return path


def prepare(
    env: dict[str, Any], fetch: Callable[[str], bytes | None], tmpdir: str, log_dir: str
) -> WorkerEnv:
    """Make the runtime env ``env`` ready on this host and say how to enter it; raises
    ``RuntimeEnvSetupError`` saying what failed."""
    packages, venvs = cache_dirs(tmpdir)
    out = WorkerEnv(env_vars=dict(env.get("env_vars") or {}))
    working_dir = env.get("working_dir")
    if working_dir:
        out.cwd = _local_dir(working_dir, fetch, packages)
        out.sys_path.append(out.cwd)
    for module in env.get("py_modules") or []:
        out.sys_path.append(_module_parent(_local_dir(module, fetch, packages), module))
    for installer in ("pip", "uv"):
        if env.get(installer) is None:
            continue
        spec = normalize_pip_spec(installer, env[installer])
        log_path = os.path.join(log_dir, f"runtime_env_setup-{env_key(spec)}.log")
        try:
            python = ensure_venv(spec, venvs, log_path, setup_timeout_s(env))
        except PipEnvError as e:
            raise RuntimeEnvSetupError(
                f"Failed to set up the runtime env's {installer} packages:\n{e}"
            ) from None
        out.sys_path.append(venv_site_packages(python))
        out.path.append(os.path.dirname(python))
        out.env_vars["VIRTUAL_ENV"] = os.path.dirname(os.path.dirname(python))
    return out


def enter(ready: WorkerEnv) -> None:
    """Make this process run in ``ready``: its variables, its PATH and sys.path first, its
    working directory."""
    os.environ.update(ready.env_vars)
    if ready.path:
        os.environ["PATH"] = os.pathsep.join([*ready.path, os.environ.get("PATH", "")])
    for path in reversed(ready.sys_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    if ready.sys_path:  # processes it starts (a job's entrypoint) import from there too
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [*ready.sys_path, os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
    if ready.cwd:
        os.chdir(ready.cwd)


def _local_dir(source: str, fetch: Callable[[str], bytes | None], cache: str) -> str:
    if not is_package_uri(source):
        return os.path.abspath(source)  # a path on this host (a driver's own node)
    found = package_dir(source, cache)
    if found is not None:
        return found
    data = fetch(source)
    if data is None:
        raise RuntimeEnvSetupError(
            f"the runtime env package {source} is not in the cluster (it was never uploaded, or "
            "was deleted); submit the job again"
        )
    return unpack_package(source, data, cache)


def _module_parent(unpacked: str, source: str) -> str:
    """The directory to put on sys.path for a py_modules entry: a local module directory's
    parent; an uploaded package holds the module's own directory at its top."""
    if not is_package_uri(source) and os.path.isdir(source):
        return os.path.dirname(os.path.abspath(source))
    return unpacked

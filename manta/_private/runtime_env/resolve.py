"""A runtime env as the cluster sees it: local directories uploaded as packages, files
read on the driver, and a task's own env merged over the one it inherits."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from manta._private.runtime_env.packaging import is_package_uri, pack_directory
from manta._private.runtime_env.pip_env import normalize_pip_spec


def resolve(
    env: dict[str, Any] | None, exists: Callable[[str], bool], upload: Callable[[str, bytes], None]
) -> dict[str, Any] | None:
    """``env`` with every local ``working_dir`` / ``py_modules`` path packed and uploaded
    (``upload(uri, data)`` unless ``exists(uri)``) and replaced by its package uri, and a
    pip/uv requirements file replaced by its lines, so any node can set it up."""
    if not env:
        return env
    out = dict(env)
    excludes = env.get("excludes")
    if env.get("working_dir") and not is_package_uri(env["working_dir"]):
        out["working_dir"] = _upload(env["working_dir"], excludes, "", exists, upload)
    if env.get("py_modules"):
        out["py_modules"] = [
            m
            if is_package_uri(m)
            else _upload(
                m, excludes, os.path.basename(os.path.abspath(m)) if os.path.isdir(m) else "", exists, upload
            )
            for m in env["py_modules"]
        ]
    out.pop("excludes", None)  # applied while packing; nodes have nothing to exclude
    for field in ("pip", "uv"):
        if env.get(field) is not None:
            spec = normalize_pip_spec(field, env[field])
            out[field] = _pip_field(field, spec)
    return out


def _upload(
    path: str,
    excludes: list[str] | None,
    prefix: str,
    exists: Callable[[str], bool],
    upload: Callable[[str, bytes], None],
) -> str:
    uri, data = pack_directory(path, excludes, prefix=prefix)
    if not exists(uri):
        upload(uri, data)
    return uri


def _pip_field(field: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The canonical spec in Ray's own shape for the field (what users read back)."""
    out: dict[str, Any] = {"packages": spec["packages"], f"{field}_check": spec["check"]}
    if spec["options"]:
        out[f"{field}_install_options" if field == "pip" else "uv_pip_install_options"] = spec["options"]
    if spec["installer_version"]:
        out[f"{field}_version"] = spec["installer_version"]
    return out


def merge(inherited: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any] | None:
    """A task's or actor's env over the one it inherits (its job's, or its parent's): its
    own fields replace inherited ones, except ``env_vars``, which are merged (its own win)."""
    if not own:
        return inherited
    if not inherited:
        return own
    merged = {**inherited, **own}
    if "env_vars" in inherited and "env_vars" in own:
        merged["env_vars"] = {**inherited["env_vars"], **own["env_vars"]}
    # pip and uv are two ways to give one set of packages: its own replaces the other.
    for field, other in (("pip", "uv"), ("uv", "pip")):
        if field in own and other not in own:
            merged.pop(other, None)
    return merged

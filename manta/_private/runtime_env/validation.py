"""Whether a ``runtime_env`` dict is one Manta can honour, checked where it is given (the
driver, the jobs API) so a mistake is reported at once rather than on a node later."""

from __future__ import annotations

import os
from typing import Any

from manta._private.runtime_env.packaging import is_package_uri
from manta._private.runtime_env.pip_env import normalize_pip_spec

SUPPORTED_KEYS = ("env_vars", "working_dir", "py_modules", "excludes", "pip", "uv", "config")
# Keys Ray knows that Manta does not provide: refused with a clear message.
UNSUPPORTED_KEYS = ("conda", "container", "image_uri", "py_executable", "nsight", "java_jars")
CONFIG_KEYS = ("setup_timeout_seconds", "eager_install")
# Ray's default for how long a runtime env may take to set up.
DEFAULT_SETUP_TIMEOUT_S = 600


def validate_runtime_env(env: Any) -> dict[str, Any] | None:
    """Check a runtime_env dict; raise a clear error for anything Manta cannot honour."""
    if env is None:
        return None
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(env).__name__}")
    for key in env:
        if key in UNSUPPORTED_KEYS:
            raise ValueError(
                f"runtime_env[{key!r}] is not supported by Manta; use 'pip' or 'uv' for packages, or "
                f"install what the job needs on every node. Supported keys: {list(SUPPORTED_KEYS)}"
            )
        if key not in SUPPORTED_KEYS:
            raise ValueError(f"unknown runtime_env key {key!r}. Supported keys: {list(SUPPORTED_KEYS)}")
    _check_env_vars(env.get("env_vars"))
    working_dir = env.get("working_dir")
    if working_dir is not None and not _is_package_source(working_dir):
        raise ValueError(
            "runtime_env['working_dir'] must be an existing local directory, a .zip file or an "
            f"uploaded package uri (gcs://...), got {working_dir!r}"
        )
    py_modules = env.get("py_modules")
    if py_modules is not None:
        if not isinstance(py_modules, list) or not all(isinstance(p, str) for p in py_modules):
            raise TypeError("runtime_env['py_modules'] must be a list of local paths or package uris")
        for module in py_modules:
            if not _is_package_source(module):
                raise ValueError(
                    f"runtime_env['py_modules'] entry {module!r} is not an existing local directory, "
                    ".zip file or package uri"
                )
    excludes = env.get("excludes")
    if excludes is not None and (
        not isinstance(excludes, list) or not all(isinstance(p, str) for p in excludes)
    ):
        raise TypeError("runtime_env['excludes'] must be a list of gitignore-style patterns (str)")
    if "pip" in env and "uv" in env:
        raise ValueError("runtime_env may give 'pip' or 'uv', not both")
    for field in ("pip", "uv"):
        if field in env:
            normalize_pip_spec(field, env[field])
    _check_config(env.get("config"))
    return env


def _is_package_source(value: Any) -> bool:
    return isinstance(value, str) and (
        is_package_uri(value) or os.path.isdir(value) or (os.path.isfile(value) and value.endswith(".zip"))
    )


def _check_env_vars(env_vars: Any) -> None:
    if env_vars is None:
        return
    if not isinstance(env_vars, dict):
        raise TypeError(f"runtime_env['env_vars'] must be of type Dict[str, str], got {type(env_vars)}")
    for k, v in env_vars.items():
        if not isinstance(k, str) or not isinstance(v, str):
            bad = k if not isinstance(k, str) else v
            raise TypeError(
                f"runtime_env['env_vars'] must be of type Dict[str, str], but the value "
                f"{bad} is of type {type(bad)}"
            )


def _check_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise TypeError(f"runtime_env['config'] must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"runtime_env['config'] has unknown keys {unknown}; valid keys are {list(CONFIG_KEYS)}"
        )
    timeout = config.get("setup_timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or (timeout <= 0 and timeout != -1)
    ):
        raise ValueError(
            "runtime_env['config']['setup_timeout_seconds'] must be a positive int (or -1 for no "
            f"limit), got {timeout!r}"
        )
    eager = config.get("eager_install")
    if eager is not None and not isinstance(eager, bool):
        raise TypeError(f"runtime_env['config']['eager_install'] must be a bool, got {type(eager).__name__}")


def setup_timeout_s(env: dict[str, Any]) -> float:
    """How long the env may take to set up (``inf`` for -1)."""
    timeout = (env.get("config") or {}).get("setup_timeout_seconds", DEFAULT_SETUP_TIMEOUT_S)
    return float("inf") if timeout == -1 else float(timeout)

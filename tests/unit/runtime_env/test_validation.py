"""Which runtime envs are accepted, and what a wrong one is told."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from manta._private.runtime_env.validation import setup_timeout_s, validate_runtime_env

SUPPORTED = "Supported keys: ['env_vars', 'working_dir', 'py_modules', 'excludes', 'pip', 'uv', 'config']"


@pytest.mark.parametrize("key", ["conda", "container", "image_uri", "py_executable"])
def test_unsupported_keys_are_refused_by_name(key: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_runtime_env({key: ["requests"]})
    assert str(info.value).startswith(f"runtime_env[{key!r}] is not supported by Manta")
    assert SUPPORTED in str(info.value)


def test_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"^unknown runtime_env key 'envvars'\. Supported keys: ") as info:
        validate_runtime_env({"envvars": {}})
    assert SUPPORTED in str(info.value)


def test_value_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^runtime_env must be a dict, got list$"):
        validate_runtime_env([])
    with pytest.raises(
        TypeError, match=re.escape("runtime_env['env_vars'] must be of type Dict[str, str], got")
    ):
        validate_runtime_env({"env_vars": [("A", "1")]})
    with pytest.raises(TypeError, match="but the value 1 is of type <class 'int'>"):
        validate_runtime_env({"env_vars": {"A": 1}})
    with pytest.raises(TypeError, match="but the value 2 is of type <class 'int'>"):
        validate_runtime_env({"env_vars": {2: "x"}})
    with pytest.raises(ValueError, match=r"must be an existing local directory, a \.zip file or an uploaded"):
        validate_runtime_env({"working_dir": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="must be an existing local directory"):
        validate_runtime_env({"working_dir": 5})
    with pytest.raises(ValueError, match="must be an existing local directory"):
        validate_runtime_env({"working_dir": "gcs://../../etc.zip"})
    with pytest.raises(TypeError, match="must be a list of local paths"):
        validate_runtime_env({"py_modules": "mod"})
    with pytest.raises(ValueError, match=r"entry .* is not an existing local directory"):
        validate_runtime_env({"py_modules": [str(tmp_path / "nope")]})
    with pytest.raises(TypeError, match="excludes"):
        validate_runtime_env({"excludes": "*.log"})


def test_pip_and_uv_specs() -> None:
    assert validate_runtime_env({"pip": ["requests==2.31"]})
    assert validate_runtime_env({"uv": {"packages": ["emoji"], "uv_check": False}})
    with pytest.raises(ValueError, match="'pip' or 'uv', not both"):
        validate_runtime_env({"pip": ["a"], "uv": ["b"]})
    with pytest.raises(ValueError, match=r"unknown keys \['pakages'\]"):
        validate_runtime_env({"pip": {"pakages": ["a"]}})
    with pytest.raises(TypeError, match="runtime_env\\['pip'\\]"):
        validate_runtime_env({"pip": 3})


def test_config() -> None:
    assert setup_timeout_s({}) == 600
    assert setup_timeout_s({"config": {"setup_timeout_seconds": 5}}) == 5
    assert setup_timeout_s({"config": {"setup_timeout_seconds": -1}}) == float("inf")
    with pytest.raises(ValueError, match=r"unknown keys \['timeout'\]; valid keys are"):
        validate_runtime_env({"config": {"timeout": 3}})
    with pytest.raises(ValueError, match="positive int"):
        validate_runtime_env({"config": {"setup_timeout_seconds": 0}})
    with pytest.raises(TypeError, match="eager_install"):
        validate_runtime_env({"config": {"eager_install": "yes"}})


def test_valid_envs(tmp_path: Path) -> None:
    env = {
        "env_vars": {"A": "1"},
        "working_dir": str(tmp_path),
        "py_modules": [str(tmp_path), "gcs://_manta_pkg_0123456789abcdef0123456789abcdef.zip"],
        "config": {"setup_timeout_seconds": 30, "eager_install": False},
    }
    assert validate_runtime_env(env) is env
    assert validate_runtime_env(None) is None
    assert validate_runtime_env({}) == {}


def test_the_host_cache_is_private_to_the_user(tmp_path: Path) -> None:
    import os

    from manta._private.runtime_env.worker_env import cache_dirs
    from manta.exceptions import RuntimeEnvSetupError

    packages, venvs = cache_dirs(str(tmp_path))
    root = os.path.dirname(packages)
    assert root.endswith(f"runtime_resources-{os.getuid()}") and venvs.startswith(root)
    assert oct(os.stat(root).st_mode & 0o777) == "0o700"
    os.chmod(root, 0o777)  # opened up (or made by someone else): not trusted
    with pytest.raises(RuntimeEnvSetupError, match="not a private directory"):
        cache_dirs(str(tmp_path))

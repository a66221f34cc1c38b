"""Runtime envs in real workers: working_dir and py_modules shipped through the gcs,
env_vars merged job -> task, pip venvs built once per host, and setup failures."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

import manta
from manta.exceptions import RuntimeEnvSetupError
from tests.wheels import make_wheel


@pytest.fixture(scope="module")
def code_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("code")
    wd = root / "wd"
    wd.mkdir()
    (wd / "helper_in_wd.py").write_text("def answer():\n    return 'from working_dir'\n")
    (wd / "data.txt").write_text("relative file\n")
    (wd / "secret.log").write_text("left out\n")
    (wd / ".gitignore").write_text("*.log\n")
    mod = root / "shipped_module"
    mod.mkdir()
    (mod / "__init__.py").write_text("NAME = 'shipped'\n")
    return {"wd": wd, "mod": mod, "root": root}


@pytest.fixture(scope="module")
def cluster(code_dirs: dict[str, Path]):
    context = manta.init(num_cpus=2, runtime_env={"env_vars": {"FROM_JOB": "job", "BOTH": "job"}})
    yield context
    manta.shutdown()


@manta.remote
def _inside() -> dict[str, object]:
    import sys

    out: dict[str, object] = {
        "cwd": os.getcwd(),
        "env": {k: os.environ.get(k) for k in ("FROM_JOB", "BOTH", "OWN")},
    }
    try:
        import helper_in_wd

        out["helper"] = helper_in_wd.answer()
        with open("data.txt") as f:
            out["data"] = f.read().strip()
        out["has_log"] = os.path.exists("secret.log")
    except ImportError:
        out["helper"] = None
    try:
        import shipped_module

        out["module"] = shipped_module.NAME
    except ImportError:
        out["module"] = None
    out["sys_path_0"] = sys.path[0]
    return out


def test_job_env_vars_reach_tasks(cluster) -> None:
    out = manta.get(_inside.remote())
    assert out["env"] == {"FROM_JOB": "job", "BOTH": "job", "OWN": None}


def test_task_env_vars_merge_over_the_jobs(cluster) -> None:
    out = manta.get(_inside.options(runtime_env={"env_vars": {"BOTH": "task", "OWN": "own"}}).remote())
    assert out["env"] == {"FROM_JOB": "job", "BOTH": "task", "OWN": "own"}


def test_working_dir_is_shipped_and_becomes_the_cwd(cluster, code_dirs) -> None:
    out = manta.get(_inside.options(runtime_env={"working_dir": str(code_dirs["wd"])}).remote())
    assert out["helper"] == "from working_dir" and out["data"] == "relative file"
    assert out["has_log"] is False  # .gitignore'd files are not shipped
    # A copy unpacked from the gcs, not the driver's directory.
    assert out["cwd"] != str(code_dirs["wd"]) and "runtime_resources" in str(out["cwd"])


def test_py_modules_are_importable_by_name(cluster, code_dirs) -> None:
    out = manta.get(_inside.options(runtime_env={"py_modules": [str(code_dirs["mod"])]}).remote())
    assert out["module"] == "shipped"


def test_actors_get_their_runtime_env(cluster, code_dirs) -> None:
    @manta.remote
    class Where:
        def probe(self) -> tuple[str, str | None]:
            import helper_in_wd

            return helper_in_wd.answer(), os.environ.get("OWN")

    actor = Where.options(
        runtime_env={"working_dir": str(code_dirs["wd"]), "env_vars": {"OWN": "a"}}
    ).remote()
    assert manta.get(actor.probe.remote()) == ("from working_dir", "a")


def test_pip_env_installs_once_and_is_importable(cluster, tmp_path) -> None:
    name = f"tinypkg_{secrets.token_hex(4)}"  # a spec no earlier run has cached
    wheel = make_wheel(tmp_path, name, "VALUE = 41\n")
    env = {"pip": {"packages": [str(wheel)], "pip_install_options": ["--no-index"]}}

    @manta.remote
    def use() -> tuple[int, str]:
        import importlib
        import sys

        return importlib.import_module(name).VALUE + 1, sys.prefix

    first = manta.get(use.options(runtime_env=env).remote(), timeout=120)
    assert first[0] == 42
    # Tasks of the same env in other workers reuse the venv (no second build).
    again = manta.get([use.options(runtime_env=env).remote() for _ in range(3)], timeout=60)
    assert {v for v, _ in again} == {42}
    logs = Path(cluster["session_dir"]) / "logs"
    setup_logs = [p for p in logs.glob("runtime_env_setup-*.log") if name in p.read_text()]
    assert len(setup_logs) == 1 and setup_logs[0].read_text().count("Successfully installed") == 1


def test_pip_failure_is_a_setup_error_with_pips_words(cluster) -> None:
    @manta.remote
    def never() -> None:
        raise AssertionError("must not run")

    env = {"pip": {"packages": ["no-such-package-manta-test==9.9"], "pip_install_options": ["--no-index"]}}
    with pytest.raises(RuntimeEnvSetupError) as info:
        manta.get(never.options(runtime_env=env).remote(), timeout=120)
    assert "No matching distribution found for no-such-package-manta-test==9.9" in str(info.value)


def test_bad_runtime_env_is_refused_at_submit(cluster) -> None:
    @manta.remote
    def f() -> None:
        pass

    with pytest.raises(ValueError, match="unknown runtime_env key 'bogus'"):
        f.options(runtime_env={"bogus": 1}).remote()


@pytest.mark.parametrize("eager", [True, False])
def test_a_jobs_env_is_set_up_at_init_unless_eager_install_is_off(tmp_path, eager: bool) -> None:
    from tests.integration.conftest import run_driver

    name = f"tinypkg_{secrets.token_hex(4)}"
    wheel = make_wheel(tmp_path, name, "VALUE = 1\\n")
    env = {
        "pip": {"packages": [str(wheel)], "pip_install_options": ["--no-index"]},
        "config": {"eager_install": eager},
    }
    result = run_driver(
        f"""
        import glob, os, time, manta
        ctx = manta.init(num_cpus=1, runtime_env={env!r})
        logs = os.path.join(ctx["session_dir"], "logs", "runtime_env_setup-*.log")
        deadline = time.monotonic() + {30 if eager else 4}  # off: a few seconds show nothing starts
        while time.monotonic() < deadline and not any({name!r} in open(p).read() for p in glob.glob(logs)):
            time.sleep(0.1)
        print("set up before any task:", any({name!r} in open(p).read() for p in glob.glob(logs)))
        """,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert f"set up before any task: {eager}" in result.stdout

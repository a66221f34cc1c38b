"""pip / uv environments: spec validation, the build plan, and real venvs built offline.

The venvs install a wheel written by the test itself with ``--no-index``, so no network
and no build backend are needed.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from manta._private.runtime_env import pip_env
from manta._private.runtime_env.pip_env import (
    PipEnvError,
    build_plan,
    ensure_venv,
    env_key,
    normalize_pip_spec,
    venv_paths,
    venv_site_packages,
)
from tests.wheels import make_wheel

# -- the spec ------------------------------------------------------------------------------


def test_list_form() -> None:
    assert normalize_pip_spec("pip", ["requests==2.0", "numpy"]) == {
        "installer": "pip",
        "packages": ["requests==2.0", "numpy"],
        "check": False,
        "options": [],
        "installer_version": None,
    }
    assert normalize_pip_spec("uv", ["numpy"])["installer"] == "uv"


def test_requirements_file_form(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# pinned\n\nrequests==2.0  # why\n  numpy>=1 \\\n  ,<3\n"
        "pkg @ https://example.com/p.zip#sha256=ab\n--extra-index-url https://x\n"
    )
    spec = normalize_pip_spec("pip", str(req))
    assert spec["packages"] == [
        "requests==2.0",
        "numpy>=1   ,<3",
        "pkg @ https://example.com/p.zip#sha256=ab",
        "--extra-index-url https://x",
    ]
    assert normalize_pip_spec("uv", {"packages": str(req)})["packages"] == spec["packages"]


def test_dict_forms() -> None:
    pip = normalize_pip_spec(
        "pip",
        {"packages": ["a"], "pip_check": True, "pip_version": "==23.0", "pip_install_options": ["--no-deps"]},
    )
    assert pip == {
        "installer": "pip",
        "packages": ["a"],
        "check": True,
        "options": ["--no-deps"],
        "installer_version": "==23.0",
    }
    uv = normalize_pip_spec(
        "uv",
        {
            "packages": ["a"],
            "uv_version": "0.4.0",
            "uv_check": True,
            "uv_pip_install_options": ["--no-cache"],
        },
    )
    assert uv == {**pip, "installer": "uv", "options": ["--no-cache"], "installer_version": "0.4.0"}


@pytest.mark.parametrize(
    ("field", "value", "error", "words"),
    [
        (
            "pip",
            {"packages": ["a"], "uv_check": True},
            ValueError,
            ["'pip'", "uv_check", "pip_install_options"],
        ),
        ("uv", {"packages": ["a"], "pip_check": True}, ValueError, ["'uv'", "pip_check", "uv_version"]),
        ("pip", {"pip_check": True}, ValueError, ["packages"]),
        ("pip", 3, TypeError, ["'pip'", "int", "list"]),
        ("pip", ["a", 1], TypeError, ["packages"]),
        ("pip", {"packages": "/no/such/requirements.txt"}, ValueError, ["/no/such/requirements.txt"]),
        ("pip", "/no/such/requirements.txt", ValueError, ["/no/such/requirements.txt"]),
        ("pip", {"packages": [], "pip_check": "yes"}, TypeError, ["pip_check", "bool"]),
        ("uv", {"packages": [], "uv_version": 4}, TypeError, ["uv_version", "str"]),
        ("pip", {"packages": [], "pip_install_options": "--no-deps"}, TypeError, ["pip_install_options"]),
        ("conda", ["a"], ValueError, ["conda", "pip", "uv"]),
    ],
)
def test_bad_specs_name_the_problem(field: str, value: Any, error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as info:
        normalize_pip_spec(field, value)
    for word in words:
        assert word in str(info.value)


def test_env_key_is_stable_and_distinguishes_specs() -> None:
    a = normalize_pip_spec("pip", ["a", "b"])
    reordered = dict(reversed(list(a.items())))
    assert env_key(a) == env_key(reordered) == env_key(normalize_pip_spec("pip", {"packages": ["a", "b"]}))
    assert env_key(a) != env_key(normalize_pip_spec("pip", ["b", "a"]))
    assert env_key(a) != env_key(normalize_pip_spec("uv", ["a", "b"]))
    assert len(env_key(a)) == 16 and int(env_key(a), 16) >= 0


# -- the plan (pure) -----------------------------------------------------------------------


def _plan(field: str, value: Any, uv: list[str] | None) -> pip_env.BuildPlan:
    spec = normalize_pip_spec(field, value)
    return build_plan(spec, venv_paths(spec, "/envs"), "/usr/bin/python3", uv)


def test_plan_uses_uv_when_available() -> None:
    plan = _plan(
        "pip", {"packages": ["a"], "pip_check": True, "pip_install_options": ["--no-deps"]}, ["/bin/uv"]
    )
    venv_py = plan.steps[0][4]
    assert plan.tool == "uv" and not plan.needs_pip
    assert plan.create[:4] == ["/usr/bin/python3", "-m", "venv", "--system-site-packages"]
    assert plan.steps == [
        [
            "/bin/uv",
            "pip",
            "install",
            "--python",
            venv_py,
            "--no-deps",
            "-r",
            venv_py[: -len("bin/python")] + "manta-requirements.txt",
        ],
        ["/bin/uv", "pip", "check", "--python", venv_py],
    ]


def test_plan_falls_back_to_pip() -> None:
    plan = _plan("uv", {"packages": ["a"]}, None)
    assert plan.tool == "pip" and plan.needs_pip
    assert len(plan.steps) == 1 and plan.steps[0][1:4] == ["-m", "pip", "install"]
    assert plan.steps[0][-2] == "-r"


def test_plan_pins_installer_versions() -> None:
    uv = _plan("uv", {"packages": ["a"], "uv_version": "0.4.0"}, ["/bin/uv"])
    assert uv.needs_pip and uv.steps[0][-1] == "uv==0.4.0"
    assert uv.steps[1][1:5] == ["-m", "uv", "pip", "install"]  # the venv's own uv
    pip = _plan("pip", {"packages": ["a"], "pip_version": "<24;python_version>='3'"}, ["/bin/uv"])
    assert pip.tool == "pip" and pip.steps[0][-1] == "pip<24;python_version>='3'"


def test_plan_without_packages_installs_nothing() -> None:
    assert _plan("pip", [], None).steps == []


# -- real venvs ----------------------------------------------------------------------------


def _offline_spec(*packages: str) -> dict[str, Any]:
    return normalize_pip_spec("pip", {"packages": list(packages), "pip_install_options": ["--no-index"]})


def _run_python(python: str, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH and a neutral cwd: Manta must be found through the venv itself.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
def _pip_not_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests exercise the pip path whether or not uv is installed here.
    monkeypatch.setattr(pip_env, "find_uv", lambda: None)


def test_venv_has_the_package_manta_and_the_base_environment(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tinypkg_a", "VALUE = 42\n")
    spec = _offline_spec(str(wheel))
    log = tmp_path / "logs" / "setup.log"
    python = ensure_venv(spec, str(tmp_path / "envs"), str(log), timeout_s=60)
    assert python == str(tmp_path / "envs" / env_key(spec) / "bin" / "python")
    result = _run_python(
        python, "import tinypkg_a, manta, psutil; print(tinypkg_a.VALUE, manta.__name__)", tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "manta"]
    # Installed into the venv, not into the interpreter running the tests.
    assert venv_site_packages(python).startswith(str(tmp_path / "envs"))
    assert (Path(venv_site_packages(python)) / "tinypkg_a" / "__init__.py").exists()
    assert _run_python(sys.executable, "import tinypkg_a", tmp_path).returncode != 0
    assert "Successfully installed tinypkg-a" in log.read_text()

    # Cached: the installer does not run again.
    log.write_text("")
    assert ensure_venv(spec, str(tmp_path / "envs"), str(log), timeout_s=60) == python
    assert log.read_text() == ""


def test_failed_install_quotes_pip_and_leaves_nothing(tmp_path: Path) -> None:
    spec = _offline_spec("manta-test-no-such-package-xyz")
    log = tmp_path / "setup.log"
    with pytest.raises(PipEnvError) as info:
        ensure_venv(spec, str(tmp_path / "envs"), str(log), timeout_s=60)
    message = str(info.value)
    assert "No matching distribution found for manta-test-no-such-package-xyz" in message
    assert "exit status 1" in message and str(log) in message
    assert info.value.returncode == 1
    assert "No matching distribution" in log.read_text()
    assert not (tmp_path / "envs" / env_key(spec)).exists()


def test_failed_install_for_a_missing_local_path(tmp_path: Path) -> None:
    spec = _offline_spec(str(tmp_path / "missing-0.1-py3-none-any.whl"))
    with pytest.raises(PipEnvError) as info:
        ensure_venv(spec, str(tmp_path / "envs"), str(tmp_path / "log"), timeout_s=60)
    assert "missing-0.1-py3-none-any.whl" in str(info.value) and "does not exist" in str(info.value)
    assert not (tmp_path / "envs" / env_key(spec)).exists()


def test_timeout_fails_and_removes_the_venv(tmp_path: Path) -> None:
    spec = _offline_spec("anything")
    with pytest.raises(PipEnvError, match="timeout") as info:
        ensure_venv(spec, str(tmp_path / "envs"), str(tmp_path / "log"), timeout_s=0.01)
    assert info.value.returncode is None
    assert not (tmp_path / "envs" / env_key(spec)).exists()


def test_bad_interpreter_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(PipEnvError, match="exit status 127"):
        ensure_venv(_offline_spec(), str(tmp_path / "envs"), str(tmp_path / "log"), 60, python="/no/python")


def test_waits_for_the_lock_holder(tmp_path: Path) -> None:
    spec = _offline_spec()
    paths = venv_paths(spec, str(tmp_path / "envs"))
    os.makedirs(tmp_path / "envs")
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(PipEnvError, match="waiting for another process"):
            ensure_venv(spec, str(tmp_path / "envs"), str(tmp_path / "log"), timeout_s=0.2)
    finally:
        os.close(fd)
    assert not os.path.exists(tmp_path / "log")


def _build_in_child(barrier: Any, spec: dict[str, Any], envs: str, log: str, out: str) -> None:
    barrier.wait()
    Path(out).write_text(ensure_venv(spec, envs, log, timeout_s=60))


def test_concurrent_builders_in_processes_build_once(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tinypkg_c", "")
    spec = _offline_spec(str(wheel))
    log = tmp_path / "setup.log"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(
            target=_build_in_child,
            args=(barrier, spec, str(tmp_path / "envs"), str(log), str(tmp_path / f"out{i}")),
        )
        for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len({(tmp_path / f"out{i}").read_text() for i in range(3)}) == 1
    text = log.read_text()
    assert text.count("-m venv") == 1 and text.count("pip install") == 1


# -- killing the installer -----------------------------------------------------------------

_SPAWNS_GRANDCHILD = ["sh", "-c", "sleep 30 & echo $!; wait"]


def _grandchild_pid(log: Path) -> int:
    return int(log.read_text().splitlines()[-1])


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with open(log, "ab") as f:
        result = pip_env._run_sync(_SPAWNS_GRANDCHILD, f, str(log), timeout_s=0.5)
    assert result.returncode is None
    assert _gone(_grandchild_pid(log))


def test_output_tail_is_the_last_lines_of_the_failed_step(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("earlier step output\n")
    argv = [sys.executable, "-c", "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"]
    with open(log, "ab") as f:
        result = pip_env._run_sync(argv, f, str(log), timeout_s=30)
    assert result.returncode == 3
    lines = result.output_tail.splitlines()
    assert len(lines) == 40 and lines[0] == "line 60" and lines[-1] == "line 99"

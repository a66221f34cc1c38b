"""pip / uv runtime environments: one cached virtualenv per package spec.

``normalize_pip_spec`` turns the ``pip`` or ``uv`` field of a runtime_env into a canonical
dict; ``env_key`` names it. ``ensure_venv`` builds ``<envs_dir>/<key>/`` once per node and returns its python.

The venv is made with ``--system-site-packages`` so everything installed beside Manta
stays importable, and a ``.pth`` file puts the running Manta on its path even when Manta
is not installed in site-packages (a source checkout). Builds happen in place, because a
venv cannot be moved (its scripts name their interpreter by absolute path); concurrent
builders are serialized by an ``flock`` on ``<key>.lock`` beside the venv and a venv
counts as built only once its ``.manta-ready`` marker exists.

The steps of a build are decided by a generator (``_build``) that yields the command lines
to run and receives their outcomes; ``ensure_venv`` only runs the commands, so every
decision lives in one place (and an asyncio runner could drive the same generator).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import IO, Any

from manta._private.common.pdeathsig import die_with_parent

# Ray's keys for the dict forms of the two fields, by field.
_VALID_KEYS = {
    "pip": ("packages", "pip_check", "pip_version", "pip_install_options"),
    "uv": ("packages", "uv_check", "uv_version", "uv_pip_install_options"),
}
_OUTPUT_TAIL_LINES = 40
# Read at most this much of a failed step's output when quoting its last lines.
_TAIL_READ_BYTES = 64 * 1024
_LOCK_POLL_S = 0.05
# Where the running Manta is imported from: manta/_private/runtime_env/pip_env.py -> up 4.
_MANTA_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class PipEnvError(RuntimeError):
    """Building a pip / uv environment failed; the message quotes the installer's output."""

    def __init__(self, message: str, returncode: int | None = None, log_path: str | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_path = log_path


# -- the spec (pure) -----------------------------------------------------------------------


def normalize_pip_spec(field: str, value: Any) -> dict[str, Any]:
    """Validate the runtime_env ``pip`` or ``uv`` field and return its canonical form.

    Accepted, as in Ray: a list of requirement strings; a path to a requirements file
    (read here, on the driver, since nodes do not have it); or a dict — for ``pip``
    ``{"packages", "pip_check", "pip_version", "pip_install_options"}``, for ``uv``
    ``{"packages", "uv_check", "uv_version", "uv_pip_install_options"}``, where
    ``packages`` is again a list or a requirements file path.

    Returns ``{"installer": field, "packages": [...], "check": bool, "options": [...],
    "installer_version": str | None}``. Raises ``TypeError`` for a value of the wrong type
    and ``ValueError`` for an unknown field or key or a missing file.
    """
    if field not in _VALID_KEYS:
        raise ValueError(f"unknown package field {field!r}; expected one of {sorted(_VALID_KEYS)}")
    valid = _VALID_KEYS[field]
    where = f"runtime_env[{field!r}]"
    if isinstance(value, (list, tuple, str)):
        value = {"packages": value}
    elif not isinstance(value, dict):
        raise TypeError(
            f"{where} must be a list of requirement strings, a path to a requirements file or a "
            f"dict with keys {list(valid)}; got {type(value).__name__}"
        )
    unknown = sorted(str(k) for k in value if k not in valid)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; valid keys are {list(valid)}")
    if "packages" not in value:
        raise ValueError(f"{where} needs a 'packages' key; valid keys are {list(valid)}")
    check_key, version_key, options_key = valid[1], valid[2], valid[3]
    check = value.get(check_key, False)
    if not isinstance(check, bool):
        raise TypeError(f"{where}[{check_key!r}] must be a bool, got {type(check).__name__}")
    version = value.get(version_key)
    if version is not None and not isinstance(version, str):
        raise TypeError(f"{where}[{version_key!r}] must be a str, got {type(version).__name__}")
    options = value.get(options_key, [])
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        raise TypeError(f"{where}[{options_key!r}] must be a list of str, got {options!r}")
    return {
        "installer": field,
        "packages": _packages(f"{where}['packages']", value["packages"]),
        "check": check,
        "options": list(options),
        "installer_version": version,
    }


def _packages(where: str, value: Any) -> list[str]:
    if isinstance(value, str):
        if not os.path.isfile(value):
            raise ValueError(
                f"{where} is a str, so it must name a requirements file; {value!r} is not a file"
            )
        with open(value, encoding="utf-8") as f:
            return parse_requirements(f.read())
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        raise TypeError(f"{where} must be a list of requirement strings or a file path, got {value!r}")
    return list(value)


def parse_requirements(text: str) -> list[str]:
    """The lines of a requirements file without comments, blank lines or continuations."""
    out = []
    for line in text.replace("\\\n", "").splitlines():
        # pip only treats "#" as a comment at the start or after whitespace (URLs have "#").
        line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def env_key(spec: dict[str, Any]) -> str:
    """A short name for the canonical ``spec``, stable across processes and machines.

    It does not depend on the interpreter: callers serving several Python versions give
    each its own ``envs_dir``.
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- paths and command lines (pure) --------------------------------------------------------


@dataclass(frozen=True)
class VenvPaths:
    root: str
    python: str
    requirements: str
    ready: str
    lock: str


def venv_paths(spec: dict[str, Any], envs_dir: str) -> VenvPaths:
    key = env_key(spec)
    root = os.path.join(envs_dir, key)
    return VenvPaths(
        root=root,
        python=os.path.join(root, "bin", "python"),
        requirements=os.path.join(root, "manta-requirements.txt"),
        ready=os.path.join(root, ".manta-ready"),
        # Beside the venv, not in it: a failed build deletes the venv while holding the lock.
        lock=os.path.join(envs_dir, f"{key}.lock"),
    )


@dataclass(frozen=True)
class BuildPlan:
    """The commands that build one venv, in order."""

    create: list[str]
    # Whether pip must be importable in the venv (probed after creation; the base
    # environment's pip usually is, through the system site-packages, which saves the
    # seconds ``ensurepip`` takes).
    needs_pip: bool
    ensurepip: list[str]
    # Run after the requirements file and .pth are written.
    steps: list[list[str]]
    tool: str


def build_plan(spec: dict[str, Any], paths: VenvPaths, python: str, uv: list[str] | None) -> BuildPlan:
    """What to run for ``spec``; ``uv`` is how to invoke uv on this node, if at all.

    uv installs when available (or when the ``uv`` field pins ``uv_version``, which is
    then installed into the venv first); a ``pip_version`` pin means pip; otherwise pip.
    """
    venv_py = paths.python
    pip = [venv_py, "-m", "pip"]
    quiet_pip = ["--disable-pip-version-check", "--no-input"]
    version = spec["installer_version"]
    bootstrap: list[list[str]] = []
    if spec["installer"] == "uv" and version:
        bootstrap.append([*pip, "install", *quiet_pip, "uv" + _as_specifier(version)])
        uv = [venv_py, "-m", "uv"]
    elif spec["installer"] == "pip" and version:
        bootstrap.append([*pip, "install", *quiet_pip, "pip" + _as_specifier(version)])
        uv = None
    steps = list(bootstrap)
    if uv is not None:
        tool = "uv"
        install = [*uv, "pip", "install", "--python", venv_py, *spec["options"], "-r", paths.requirements]
        check = [*uv, "pip", "check", "--python", venv_py]
    else:
        tool = "pip"
        install = [*pip, "install", *quiet_pip, *spec["options"], "-r", paths.requirements]
        check = [*pip, "check", "--disable-pip-version-check"]
    if spec["packages"]:
        steps.append(install)
    if spec["check"]:
        steps.append(check)
    return BuildPlan(
        create=[python, "-m", "venv", "--system-site-packages", "--without-pip", paths.root],
        needs_pip=tool == "pip" or bool(bootstrap),
        ensurepip=[venv_py, "-m", "ensurepip", "--default-pip"],
        steps=steps,
        tool=tool,
    )


def _as_specifier(version: str) -> str:
    # Ray takes "==0.4.0;python_version>='3.8'"; a bare "0.4.0" means exactly that version.
    return "==" + version if version[:1].isdigit() else version


def find_uv() -> list[str] | None:
    """How to run uv on this node: the ``uv`` binary on PATH, else ``python -m uv``."""
    binary = shutil.which("uv")
    if binary:
        return [binary]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    return None


def venv_site_packages(venv_python: str) -> str:
    """The site-packages directory of the venv whose interpreter is ``venv_python``."""
    root = os.path.dirname(os.path.dirname(venv_python))
    found = sorted(glob.glob(os.path.join(root, "lib", "python*", "site-packages")))
    if not found:
        raise ValueError(f"{venv_python!r} is not the python of a virtualenv (no lib/python*/site-packages)")
    return found[0]


# -- the build (decisions + file writes; commands are run by the caller) -------------------


@dataclass(frozen=True)
class StepResult:
    argv: list[str]
    # None when the step ran out of time and was killed.
    returncode: int | None
    output_tail: str


def _build(
    spec: dict[str, Any], paths: VenvPaths, python: str, uv: list[str] | None, log_path: str, timeout_s: float
) -> Generator[list[str], StepResult, None]:
    """Yield the command lines building the venv; receive each one's result.

    Raises ``PipEnvError`` at the first failed step. Whenever it does not finish (a
    failure, or the driver closing it on cancellation), the half-built venv is deleted.
    """
    plan = build_plan(spec, paths, python, uv)

    def expect(result: StepResult) -> None:
        _expect(result, spec, log_path, timeout_s)

    try:
        expect((yield plan.create))
        if plan.needs_pip and (yield [paths.python, "-m", "pip", "--version"]).returncode != 0:
            expect((yield plan.ensurepip))
        with open(paths.requirements, "w", encoding="utf-8") as f:
            f.write("".join(p + "\n" for p in spec["packages"]))
        with open(os.path.join(venv_site_packages(paths.python), "_manta_base.pth"), "w") as f:
            f.write(_MANTA_PARENT + "\n")
        for argv in plan.steps:
            expect((yield argv))
        tmp = paths.ready + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"spec": spec, "python": python, "tool": plan.tool}, f)
        os.replace(tmp, paths.ready)
    except BaseException:
        shutil.rmtree(paths.root, ignore_errors=True)
        raise


def _expect(result: StepResult, spec: dict[str, Any], log_path: str, timeout_s: float) -> None:
    if result.returncode == 0:
        return
    if result.returncode is None:
        status = f"ran past the {timeout_s:g}s setup timeout and was killed"
    else:
        status = f"failed with exit status {result.returncode}"
    raise PipEnvError(
        f"Setting up the runtime_env {spec['installer']!r} environment failed: "
        f"`{shlex.join(result.argv)}` {status}. Its last output lines:\n"
        f"{result.output_tail}\nFull log: {log_path}",
        returncode=result.returncode,
        log_path=log_path,
    )


def _begin_step(log: IO[bytes], argv: list[str]) -> int:
    log.write(f"$ {shlex.join(argv)}\n".encode())
    log.flush()
    return log.tell()


def _end_step(argv: list[str], log: IO[bytes], log_path: str, offset: int, rc: int | None) -> StepResult:
    log.flush()
    with open(log_path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(max(offset, end - _TAIL_READ_BYTES))
        output = f.read().decode(errors="replace")
    tail = "\n".join(output.splitlines()[-_OUTPUT_TAIL_LINES:])
    return StepResult(argv, rc, tail)


def _spawn_failed(log: IO[bytes], e: OSError) -> int:
    log.write(f"cannot start the command: {e}\n".encode())
    return 127


def _kill_group(pid: int) -> None:
    # The installer runs in its own session: pip's build backends and uv's workers go too.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _run_sync(argv: list[str], log: IO[bytes], log_path: str, timeout_s: float) -> StepResult:
    offset = _begin_step(log, argv)
    rc: int | None = None
    try:
        # Its own group (a timeout kills all of it), and it dies with us: an installer
        # left running by a killed worker would keep writing into a venv the next
        # builder starts again.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    except OSError as e:
        rc = _spawn_failed(log, e)
    else:
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if rc is None:  # timed out, or interrupted
                _kill_group(proc.pid)
                proc.wait()
    return _end_step(argv, log, log_path, offset, rc)


# -- the entry points ----------------------------------------------------------------------


def _open_lock(paths: VenvPaths) -> int:
    os.makedirs(os.path.dirname(paths.lock), exist_ok=True)
    return os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_timeout(paths: VenvPaths, timeout_s: float) -> PipEnvError:
    return PipEnvError(
        f"timed out after {timeout_s:g}s waiting for another process to finish building {paths.root} "
        f"(lock file {paths.lock})"
    )


def _start_build(
    spec: dict[str, Any], paths: VenvPaths, python: str, log_path: str, timeout_s: float
) -> Generator[list[str], StepResult, None] | None:
    """Under the lock: the build to drive, or None when another process finished it."""
    if os.path.exists(paths.ready):
        return None
    # Left over from a builder that died (a failed build removes its own).
    shutil.rmtree(paths.root, ignore_errors=True)
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    return _build(spec, paths, python, find_uv(), log_path, timeout_s)


def ensure_venv(
    spec: dict[str, Any], envs_dir: str, log_path: str, timeout_s: float, python: str = sys.executable
) -> str:
    """Build the venv for the canonical ``spec`` unless it exists; return its python.

    The installers' output is appended to ``log_path``. ``timeout_s`` bounds the wait for
    another process building the same venv and, separately, the build itself (a step that
    overruns is killed with its whole process group). Raises ``PipEnvError`` quoting the
    failed step's exit status and last output lines; a failed build leaves no venv behind.
    """
    paths = venv_paths(spec, envs_dir)
    if os.path.exists(paths.ready):
        return paths.python
    fd = _open_lock(paths)
    try:
        lock_deadline = time.monotonic() + timeout_s
        while not _try_lock(fd):
            if time.monotonic() > lock_deadline:
                raise _lock_timeout(paths, timeout_s)
            time.sleep(_LOCK_POLL_S)
        build = _start_build(spec, paths, python, log_path, timeout_s)
        if build is not None:
            deadline = time.monotonic() + timeout_s
            with open(log_path, "ab") as log:
                try:
                    argv = next(build)
                    while True:
                        argv = build.send(_run_sync(argv, log, log_path, deadline - time.monotonic()))
                except StopIteration:
                    pass
                finally:
                    build.close()
    finally:
        os.close(fd)  # releases the flock
    return paths.python

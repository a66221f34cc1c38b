"""Ray programs on Manta through the ``ray`` import path: ``run_as_ray`` scripts, and the
import hook in this process and in its job's workers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import manta
import manta.compat
from tests.integration.conftest import run_driver

RUN_AS_RAY = [sys.executable, "-m", "manta.compat.run_as_ray"]

SCRIPT = """\
import sys

import ray
from ray._private.test_utils import SignalActor, wait_for_condition

ray.init(num_cpus=2)


@ray.remote
def square(x):
    return x * x


@ray.remote
def names_in_worker():
    import ray.util
    from ray.util.queue import Queue

    return ray.util.__name__, Queue.__module__, ray._private.worker.global_worker.mode


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


@ray.remote
def blocked(signal):
    ray.get(signal.wait.remote())
    return "released"


print("main", __name__, sys.argv[1:])
print("square", ray.get(square.remote(7)))
print("worker", ray.get(names_in_worker.remote()))
counter = Counter.remote()
print("counter", ray.get([counter.incr.remote() for _ in range(3)]))
signal = SignalActor.remote()
ref = blocked.remote(signal)
wait_for_condition(lambda: ray.get(signal.cur_num_waiters.remote()) == 1)
ray.get(signal.send.remote())
print("signal", ray.get(ref))
print("driver mode", ray._private.worker.global_worker.mode)
sys.exit(int(sys.argv[2]))
"""


def run_as_ray(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUN_AS_RAY, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_run_as_ray_runs_an_unmodified_ray_script(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(SCRIPT)
    proc = run_as_ray(["job.py", "--flag", "3"], tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "main __main__ ['--flag', '3']",
        "square 49",
        "worker ('manta.util', 'manta.util.queue', 1)",
        "counter [1, 2, 3]",
        "signal released",
        "driver mode 0",
    ], proc.stderr


def test_run_as_ray_reports_errors_as_python_does(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("import ray\n\n\ndef f():\n    raise ValueError('boom')\n\n\nf()\n")
    proc = run_as_ray([script.name], tmp_path)
    assert proc.returncode == 1
    # What `python fails.py` prints: no frame of run_as_ray's own.
    assert proc.stderr.splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{script}", line 8, in <module>',
        "    f()",
        f'  File "{script}", line 5, in f',
        "    raise ValueError('boom')",
        "ValueError: boom",
    ]


def test_run_as_ray_module_and_command_forms(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text(
        "import sys\nimport ray.util.queue\nprint(__name__, sys.argv[1:], ray.util.queue.Queue.__module__)\n"
    )
    proc = run_as_ray(["-m", "tool", "a"], tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "__main__ ['a'] manta.util.queue\n"), proc.stderr
    proc = run_as_ray(["-c", "import ray.serve"], tmp_path)
    assert proc.returncode == 1
    assert "ModuleNotFoundError: No module named 'ray.serve': Manta does not provide it" in proc.stderr


def test_run_string_as_driver_runs_through_the_hook() -> None:
    from manta.compat.ray_private.test_utils import run_string_as_driver

    out = run_string_as_driver(
        "import ray\nimport ray._private.worker as w\nprint(ray.put, w.global_worker.mode)"
    )
    assert out.startswith("<function put") and out.strip().endswith("None")
    with pytest.raises(subprocess.CalledProcessError):
        run_string_as_driver("import sys\nsys.exit(4)")


@pytest.fixture(scope="module")
def hooked_cluster() -> Iterator[Any]:
    """A cluster whose driver (this process) installed the hook before init."""
    manta.compat.install()
    try:
        context = manta.init(num_cpus=2, num_gpus=0)
        yield context
        manta.shutdown()
    finally:
        manta.compat.uninstall()


def test_workers_of_a_hooked_driver_import_ray(hooked_cluster: Any) -> None:
    import ray
    from ray._common.test_utils import SignalActor

    @ray.remote
    def in_worker(signal: Any) -> tuple[str, bool]:
        import ray.util
        from ray._private.worker import WORKER_MODE, global_worker

        ray.get(signal.wait.remote())
        return ray.util.__name__, global_worker.mode == WORKER_MODE

    signal = SignalActor.remote()
    ref = in_worker.remote(signal)
    ray.get(signal.send.remote())
    assert ray.get(ref) == ("manta.util", True)
    node = ray._private.worker._global_node
    assert node.session_dir == hooked_cluster["session_dir"]
    assert ray._private.worker.global_worker.mode == ray.SCRIPT_MODE


def test_workers_of_another_job_do_not_get_the_hook(hooked_cluster: Any) -> None:
    # A second driver on the same cluster that did not install the hook: its workers
    # must not have it.
    proc = run_driver(
        f"""
        import sys
        import manta

        manta.init(address={hooked_cluster["address"]!r})

        @manta.remote
        def finders():
            return [type(f).__name__ for f in sys.meta_path]

        print("RayFinder" in manta.get(finders.remote()))
        manta.shutdown()
        """
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "False"), proc.stderr


def test_install_after_init_warns_that_workers_miss_the_hook(hooked_cluster: Any) -> None:
    manta.compat.uninstall()
    with pytest.warns(RuntimeWarning, match="after ray.init"):
        manta.compat.install()


def test_processes_a_run_as_ray_program_starts_get_mantas_ray_too(tmp_path):
    child = tmp_path / "child.py"
    child.write_text("import ray\nimport manta\nprint('CHILD', ray.get is manta.get)\n")
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import subprocess, sys\n"
        f"out = subprocess.run([sys.executable, {str(child)!r}], capture_output=True, text=True)\n"
        "print(out.stdout.strip(), out.stderr.strip())\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "manta.compat.run_as_ray", str(parent)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "CHILD True" in result.stdout


def test_unhandled_errors_go_to_rays_hook_and_follow_the_env_var_at_runtime(tmp_path: Path) -> None:
    script = tmp_path / "hook.py"
    script.write_text(
        """
import os, time
import ray

ray.init(num_cpus=1)
seen = []
ray._private.worker._unhandled_error_handler = seen.append

@ray.remote(max_retries=0)
def fails():
    raise ValueError("boom")

ray.wait([fails.remote()])
time.sleep(1.5)  # collected and reported by now
print("hooked:", [isinstance(e, (ray.exceptions.RayTaskError, ValueError)) and "boom" in str(e) for e in seen])
os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
ray.wait([fails.remote()])
time.sleep(1.5)
print("after the env var:", len(seen))
ray.shutdown()
"""
    )
    result = run_as_ray([str(script)], tmp_path, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "hooked: [True]" in result.stdout
    assert "after the env var: 1" in result.stdout
    assert "Unhandled error" not in result.stderr  # the hook replaced the log line

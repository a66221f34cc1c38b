"""Running Python code with a small, private tmpfs mounted: a real disk that fills up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare(1)")


def run_on_tiny_tmpfs(
    mountpoint: Path, size: str, code: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (``sys.argv[1]`` is ``mountpoint``) in a user and mount namespace where a
    tmpfs of ``size`` is mounted at ``mountpoint``; skips the test where that is not allowed."""
    mountpoint.mkdir(exist_ok=True)
    proc = subprocess.run(
        [
            "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            f'mount -t tmpfs -o size={size} tmpfs "$1" || exit 77; exec "$2" -c "$3" "$1"',
            "sh", str(mountpoint), sys.executable, code,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode == 77 or "unshare:" in proc.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {proc.stderr.strip()[:200]}")
    return proc

"""The resources a new node offers: CPUs, GPUs, memory, the object store, custom ones."""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import psutil

from manta._private.common.config import Config

# The smallest object store a node may have (as in Ray): below it, ordinary workloads fail.
MIN_OBJECT_STORE_BYTES = 75 * 1024 * 1024


def node_resources(
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    object_store_memory: float | None,
    *,
    host: str = "127.0.0.1",
    head: bool = True,
) -> dict[str, float]:
    """Validate what init()/``manta start`` were given and fill in what they were not."""
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None and not _is_amount(value):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if num_gpus is not None and num_gpus != int(num_gpus):
        raise ValueError(
            f"num_gpus must be a whole number (GPUs are not split between nodes), got {num_gpus}"
        )
    if resources is not None:
        if not isinstance(resources, dict):
            raise TypeError(f"resources must be a dict, got {type(resources).__name__}")
        for key, amount in resources.items():
            if key in ("CPU", "GPU"):
                raise ValueError(
                    "Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in 'resources' keyword"
                )
            if not _is_amount(amount):
                raise ValueError(f"resource {key!r} must be a non-negative number, got {amount!r}")
    total_memory = psutil.virtual_memory().total
    config = Config.from_env()
    if isinstance(object_store_memory, float) and math.isfinite(object_store_memory):
        object_store_memory = int(object_store_memory)  # 1e9 is a fine size, as in Ray
    if object_store_memory is None:
        object_store_memory = int(
            min(total_memory * config.object_store_fraction, config.object_store_cap_bytes)
        )
    elif (
        isinstance(object_store_memory, bool)
        or not isinstance(object_store_memory, int)
        or object_store_memory <= 0
    ):
        raise ValueError(
            f"object_store_memory must be a positive number of bytes, got {object_store_memory!r}"
        )
    elif object_store_memory < MIN_OBJECT_STORE_BYTES:
        raise ValueError(
            f"Attempting to cap object store memory usage at {object_store_memory} bytes, but the "
            f"minimum allowed is {MIN_OBJECT_STORE_BYTES} bytes (75 MiB). Give object_store_memory "
            "at least that, or leave it out to use 30% of RAM."
        )
    result: dict[str, float] = {
        "CPU": float(os.cpu_count() or 1) if num_cpus is None else float(num_cpus),
        "memory": float(max(psutil.virtual_memory().available - object_store_memory, 0) // 1),
        "object_store_memory": float(object_store_memory),
        f"node:{host}": 1.0,
    }
    if head:
        result["node:__internal_head__"] = 1.0
    gpus = detect_gpus() if num_gpus is None else num_gpus
    if gpus:
        result["GPU"] = float(gpus)
    result.update({k: float(v) for k, v in (resources or {}).items()})
    return result


def _is_amount(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def detect_gpus() -> int:
    """GPUs of this host: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))

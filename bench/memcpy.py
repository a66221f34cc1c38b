"""How fast can a large ``put`` be on this machine? memcpy against shared-memory page faults.

    python bench/memcpy.py [--size-mib 1024] [--repeat 5] [--dir /dev/shm] [--json]

Prints GB/s (1e9 bytes/s, best of ``--repeat``) for:

    memcpy                numpy copy between two pre-touched buffers: the ceiling
    fresh shm pages       copy into a new, unallocated file mapping: a zero-fill fault per 4 KiB
    arena, cold           Arena.write into an fallocated arena this process has not mapped
                          yet: includes Arena's own bulk prefault of the range (first write)
    arena, prefaulted     Arena.write into a region already prefaulted: the steady state

and, in seconds per GiB, the one-off costs: ``fallocate`` (node daemon, at arena creation)
and ``prefault`` (per writing process, per range, once).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import time
from collections.abc import Callable

import numpy as np

from manta._private.object_store.arena import Arena


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """The shortest of ``repeat`` runs; ``run`` returns the seconds its timed part took."""
    return min(run() for _ in range(repeat))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memcpy_seconds(src: np.ndarray, repeat: int) -> float:
    dst = np.full(src.nbytes, 1, dtype=np.uint8)
    return best_of(repeat, lambda: timed(lambda: np.copyto(dst, src)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default="/dev/shm", help="where the shared-memory files go")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    gib = size / 2**30
    src = np.full(size, 7, dtype=np.uint8)  # np.full touches every page
    results: dict[str, float] = {"memcpy_gbps": size / memcpy_seconds(src, args.repeat) / 1e9}

    fresh_path = os.path.join(args.dir, f"manta-bench-fresh-{os.getpid()}")

    def fresh_pages() -> float:
        fd = os.open(fresh_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            # Unmapped when the array is collected, as this function returns.
            target = np.frombuffer(mmap.mmap(fd, size), dtype=np.uint8)
            return timed(lambda: np.copyto(target, src))
        finally:
            os.close(fd)
            os.unlink(fresh_path)

    results["fresh_shm_pages_gbps"] = size / best_of(min(args.repeat, 3), fresh_pages) / 1e9

    arena_path = os.path.join(args.dir, f"manta-bench-arena-{os.getpid()}")
    fallocate_s = [0.0]

    def create() -> Arena:
        start = time.perf_counter()
        arena = Arena.create(arena_path, size)
        fallocate_s[0] = time.perf_counter() - start
        return arena

    owner = create()
    try:
        results["fallocate_s_per_gib"] = fallocate_s[0] / gib

        def cold_write() -> float:
            with Arena.open(arena_path) as writer:  # a fresh mapping: nothing mapped yet
                return timed(lambda: writer.write(0, src))

        results["arena_cold_write_gbps"] = size / best_of(min(args.repeat, 3), cold_write) / 1e9

        def prefault() -> float:
            with Arena.open(arena_path) as writer:
                return timed(lambda: writer.prefault(0, size))

        results["prefault_s_per_gib"] = best_of(min(args.repeat, 3), prefault) / gib

        with Arena.open(arena_path) as writer:
            writer.prefault(0, size)
            results["arena_prefaulted_write_gbps"] = (
                size / best_of(args.repeat, lambda: timed(lambda: writer.write(0, src))) / 1e9
            )
    finally:
        owner.unlink()
        owner.close()

    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        return
    print(f"{args.size_mib} MiB, best of {args.repeat}, files in {args.dir}")
    print(f"  memcpy (numpy, pre-touched)        {results['memcpy_gbps']:6.2f} GB/s")
    print(f"  into fresh shm pages               {results['fresh_shm_pages_gbps']:6.2f} GB/s")
    print(f"  Arena.write, cold (incl. prefault) {results['arena_cold_write_gbps']:6.2f} GB/s")
    print(f"  Arena.write, prefaulted region     {results['arena_prefaulted_write_gbps']:6.2f} GB/s")
    print(f"  fallocate (arena creation)         {results['fallocate_s_per_gib']:6.3f} s/GiB")
    print(f"  prefault (per process and range)   {results['prefault_s_per_gib']:6.3f} s/GiB")


if __name__ == "__main__":
    main()

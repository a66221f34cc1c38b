"""How often Python's cycle collector runs in a process that submits and runs tasks.

Submitting a task makes about ten objects the collector tracks (ids, the ref, the spec,
the pending record), most of which live until the task is done. At Python's first
threshold (700 new objects) a driver submitting in a loop collects every ~70 tasks, and
every tenth and hundredth of those collections walks older objects too: about 6 µs a
task, a sixth of the driver's time (docs/benchmarks.md, "2026-12-07 (third)"). A
connected core worker raises the first threshold (Config.gc_threshold) unless the program
set a higher one, and puts back what it found when it disconnects, if the program did not
change it meanwhile. Only cyclic garbage waits longer: reference counting frees the rest
at once, as before.
"""

from __future__ import annotations

import gc

Thresholds = tuple[int, int, int]


def relaxed(found: Thresholds, first: int) -> Thresholds | None:
    """The thresholds to run with, or None to leave ``found`` as it is: when ``first`` is
    0 (turned off), the program's is higher already, or 0 (its automatic collection off)."""
    if first <= 0 or found[0] == 0 or found[0] >= first:
        return None
    return (first, found[1], found[2])


def relax(first: int) -> tuple[Thresholds, Thresholds] | None:
    """Raise the collector's first threshold to ``first``; what ``restore`` needs, or None."""
    found = gc.get_threshold()
    wanted = relaxed(found, first)
    if wanted is None:
        return None
    gc.set_threshold(*wanted)
    return found, wanted


def restore(relaxed_from: tuple[Thresholds, Thresholds] | None) -> None:
    """Put back the thresholds ``relax`` found, unless the program changed them since."""
    if relaxed_from is not None and gc.get_threshold() == relaxed_from[1]:
        gc.set_threshold(*relaxed_from[0])

"""Raising a process's limit on open files, as Ray's processes do at start.

A driver or worker holds a connection per peer (and, for the task path's writes from
threads, a duplicate of its descriptor), a daemon one per worker and client: the usual
soft limit of 1,024 is reached long before the hard limit most systems set.
"""

from __future__ import annotations

import resource

# Linux refuses a soft limit of "unlimited" for open files; its usual ceiling is this.
_CEILING = 1 << 20


def raise_open_file_limit() -> None:
    """Set the soft limit on open files to the hard limit (where allowed; else leave it)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = _CEILING if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass  # a container may forbid it: the process runs with the limit it has

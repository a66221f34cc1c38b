"""Run a program written for Ray on Manta, unchanged:

    python -m manta.compat.run_as_ray script.py [args...]
    python -m manta.compat.run_as_ray -m package.module [args...]
    python -m manta.compat.run_as_ray -c "import ray; ..." [args...]
    python -m manta.compat.run_as_ray - [args...]          # the script on stdin

It installs the ``ray`` import hook (``manta.compat.install()``), then runs the program
as ``python`` would: the program is ``__main__``, ``sys.argv`` is what it would be,
``sys.path[0]`` is the script's directory (the current directory for ``-m``, ``-c`` and
``-``), its exit status is this process's, and a traceback starts at the program's code.
Python processes the program starts say ``import ray`` and get Manta's too (see
``manta/compat/children``).
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import sys
import types

import manta.compat

USAGE = "usage: python -m manta.compat.run_as_ray (script.py | -m module | -c command | -) [args...]"


def main(argv: list[str]) -> int:
    """Run the program ``argv`` names; the exit status for this process."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 0 if argv else 2
    manta.compat.install()
    _children_import_manta()
    first = argv[0]
    if first == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        return _run_module(argv[1], argv[2:])
    if first == "-c":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        return _run_source(argv[1], "<string>", ["-c", *argv[2:]], os.getcwd())
    if first == "-":
        return _run_source(sys.stdin.read(), "<stdin>", ["-", *argv[1:]], os.getcwd())
    path = os.path.abspath(first)  # python's __file__ for a script, and its tracebacks'
    try:
        with io.open_code(path) as f:
            source = f.read()
    except OSError as e:
        print(f"{sys.executable}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}", file=sys.stderr)
        return 2
    return _run_source(source, path, argv, os.path.dirname(os.path.realpath(path)))


def _children_import_manta() -> None:
    """Put the stand-in ``ray`` package first on the path of the processes the program
    starts (their environment inherits PYTHONPATH)."""
    children = os.path.join(os.path.dirname(os.path.abspath(manta.compat.__file__)), "children")
    current = os.environ.get("PYTHONPATH", "")
    if children not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (children, current) if p)


def _run_module(module: str, args: list[str]) -> int:
    sys.argv = [module, *args]  # runpy puts the module's file in argv[0], as python -m does
    sys.path[0] = os.getcwd()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except ImportError as e:
        if _program_frames(e, None) is None:  # the module was not found: say so as python does
            print(f"{sys.executable}: {e}", file=sys.stderr)
            return 1
        return _report(e, None)
    except BaseException as e:
        return _report(e, None)
    return 0


def _run_source(source: str | bytes, filename: str, argv: list[str], directory: str) -> int:
    """Run ``source`` as a fresh ``__main__`` module that stays ``__main__`` to the end
    (atexit handlers and pickles by reference to ``__main__`` see the program's names)."""
    main = types.ModuleType("__main__")
    main.__dict__.update({"__builtins__": builtins, "__cached__": None, "__loader__": None, "__spec__": None})
    if filename not in ("<string>", "<stdin>"):
        main.__file__ = filename
    sys.modules["__main__"] = main
    sys.argv = argv
    sys.path[0] = directory
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        return _report(e, filename)
    return 0


def _report(error: BaseException, filename: str | None) -> int:
    """Print the traceback of an uncaught error as python would, from the program's
    first frame on (this module's frames and runpy's are dropped); the exit status."""
    if isinstance(error, KeyboardInterrupt):
        raise error  # let python report it and exit as it does on SIGINT
    # No frame of the program: it did not compile (a SyntaxError carries its own place).
    # The hook prints the exception's own traceback, so that is what is trimmed.
    tb = error.__traceback__ = _program_frames(error, filename)
    sys.excepthook(type(error), error, tb)
    return 1


def _program_frames(error: BaseException, filename: str | None) -> types.TracebackType | None:
    """The error's traceback from the program's first frame on (None if it has none)."""
    tb = error.__traceback__
    while tb is not None and not _is_program_frame(tb.tb_frame.f_code.co_filename, filename):
        tb = tb.tb_next
    return tb


def _is_program_frame(co_filename: str, filename: str | None) -> bool:
    if filename is not None:
        return co_filename == filename
    return co_filename not in (__file__, runpy.__file__) and "<frozen runpy>" not in co_filename


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

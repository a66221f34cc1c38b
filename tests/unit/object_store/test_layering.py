"""object_store sits at the bottom: stdlib, common and exceptions only; no I/O machinery."""

from __future__ import annotations

import ast
import pathlib
import sys

import manta._private.object_store as object_store

PACKAGE = pathlib.Path(object_store.__file__).parent
ALLOWED_MANTA = ("manta._private.common", "manta.exceptions", "manta._private.object_store")
# Threads, sockets, event loops and clocks belong to the daemon's I/O shell.
FORBIDDEN = {
    "socket",
    "threading",
    "asyncio",
    "selectors",
    "concurrent",
    "multiprocessing",
    "time",
    "datetime",
}


def imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_imports_only_the_standard_library_common_and_exceptions() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top == "manta":
                assert name.startswith(ALLOWED_MANTA), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top == "_typeshed", f"{path.name} imports {name}"
                assert top not in FORBIDDEN, f"{path.name} imports {name}"


def test_exported_names() -> None:
    assert set(object_store.__all__) == {
        "ALIGNMENT", "Aborted", "Action", "Allocator", "AllocatorStats", "AlreadyExists",
        "Arena", "ArenaSpaceError", "Created", "DeleteSpillFile", "Evicted", "Holder",
        "NeedsSpace", "ObjectInfo", "ObjectState", "ObjectStatus", "ObjectTable", "OwnerUsage",
        "Pinned", "Sealed", "Spill", "StoreRequestError", "StoreStats", "TooLarge",
        "Unavailable", "choose_path", "layout_size", "read_object", "read_spill_file",
        "remove_spill_file", "spill_path", "write_object", "write_spill_file",
    }  # fmt: skip
    for name in object_store.__all__:
        assert getattr(object_store, name) is not None

"""The core worker's parts get what they use, never the whole ``CoreWorker``: only
``core_worker.py`` (which wires them together) imports it, even for type checking."""

from __future__ import annotations

import ast
import pathlib

import manta._private.core_worker as core_worker_package

PACKAGE = pathlib.Path(core_worker_package.__file__).parent
CORE_WORKER = "manta._private.core_worker.core_worker"


def imports_core_worker(path: pathlib.Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = "manta._private.core_worker" if node.level == 1 else ""
            module = ".".join(filter(None, [package, node.module])) if node.level <= 1 else ""
            names = {module, *(f"{module}.{alias.name}" for alias in node.names)}
        else:
            continue
        if CORE_WORKER in names:
            return True
    return False


def test_no_part_imports_the_core_worker() -> None:
    parts = [p for p in sorted(PACKAGE.glob("*.py")) if p.name != "core_worker.py"]
    assert len(parts) >= 20
    assert [p.name for p in parts if imports_core_worker(p)] == []

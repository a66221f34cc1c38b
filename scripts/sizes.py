"""Size report: the largest modules and functions of the package, as a budget to watch."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "manta"
MODULE_BUDGET = 600
FUNCTION_BUDGET = 60


def main() -> None:
    modules = []
    functions = []
    total = 0
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        total += lines
        rel = path.relative_to(ROOT.parent)
        modules.append((lines, str(rel)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{rel}:{node.lineno} {node.name}"))
    print(f"manta: {total} lines in {len(modules)} modules")
    print("largest modules:")
    for lines, name in sorted(modules, reverse=True)[:8]:
        flag = "  <- over budget" if lines > MODULE_BUDGET else ""
        print(f"  {lines:5d}  {name}{flag}")
    print("longest functions:")
    for length, name in sorted(functions, reverse=True)[:8]:
        flag = "  <- over budget" if length > FUNCTION_BUDGET else ""
        print(f"  {length:5d}  {name}{flag}")


if __name__ == "__main__":
    main()

"""Size budgets: every module at most 800 lines and every function at most 60, except the
ones listed in ``size_exceptions.txt`` (each with its reason, and at most its recorded
size, so an exception can shrink but never grow). Prints the largest of each and exits 1
when a budget is broken."""

from __future__ import annotations

import ast
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent / "manta"
MODULE_BUDGET = 800
FUNCTION_BUDGET = 60


def _exceptions() -> dict[str, int]:
    allowed = {}
    for line in (HERE / "size_exceptions.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, limit, *_why = line.split(maxsplit=2)
            if not _why:
                raise SystemExit(f"size_exceptions.txt: {name} gives no reason")
            allowed[name] = int(limit)
    return allowed


def _functions(tree: ast.AST, rel: str, prefix: str = "") -> list[tuple[int, str]]:
    """(length, path:qualified.name) of every function, nested ones too."""
    out = []
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (child.end_lineno or child.lineno) - child.lineno + 1
            out.append((length, f"{rel}:{prefix}{child.name}"))
            out += _functions(child, rel, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            out += _functions(child, rel, f"{prefix}{child.name}.")
        else:
            out += _functions(child, rel, prefix)
    return out


def main() -> int:
    allowed = _exceptions()
    modules, functions, total = [], [], 0
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        total += lines
        rel = str(path.relative_to(ROOT.parent))
        modules.append((lines, rel))
        functions += _functions(ast.parse(text), rel)
    broken = [
        f"{name}: {size} lines, over {'the budget of ' + str(budget) if name not in allowed else 'its recorded ' + str(allowed[name])}"
        for size, name, budget in [
            *((s, n, MODULE_BUDGET) for s, n in modules),
            *((s, n, FUNCTION_BUDGET) for s, n in functions),
        ]
        if size > allowed.get(name, budget)
    ]
    print(
        f"manta: {total} lines in {len(modules)} modules; budgets {MODULE_BUDGET} a module, {FUNCTION_BUDGET} a function"
    )
    for title, items in (("largest modules", modules), ("longest functions", functions)):
        print(f"{title}:")
        for size, name in sorted(items, reverse=True)[:8]:
            flag = "  (listed exception)" if name in allowed else ""
            print(f"  {size:5d}  {name}{flag}")
    stale = [n for n in allowed if n not in {name for _s, name in (*modules, *functions)}]
    for name in stale:
        broken.append(f"{name}: listed in size_exceptions.txt but no longer exists (remove the entry)")
    for line in broken:
        print(f"BUDGET BROKEN: {line}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

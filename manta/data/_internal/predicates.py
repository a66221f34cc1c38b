"""``filter(expr="...")``: a row predicate written as a Python expression, turned into an
Arrow compute expression that filters whole blocks without a Python call per row.

What is understood (Ray Data's string expressions): column names (``a``; a struct's field
as ``a.b``), constants, lists of constants, the comparisons ``== != < <= > >=`` (chained
too: ``0 < a <= 5``), ``in`` / ``not in`` a list, ``and`` / ``or`` / ``not``, and the calls
``is_null(a)`` (``is_null(a, True)``: NaN counts as null), ``is_valid(a)``, ``is_nan(a)``,
``is_in(a, [..])``. Anything else is refused with what was found and where. Pure: parsing
runs nothing of the text.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pyarrow.compute as pc

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_CALLS = ("is_null", "is_valid", "is_nan", "is_in")


class PredicateError(ValueError):
    """The text is not a predicate this module understands."""


def parse(text: str) -> pc.Expression:
    """The Arrow expression for ``text``; PredicateError saying what is wrong."""
    return parse_with_columns(text)[0]


def parse_with_columns(text: str) -> tuple[pc.Expression, frozenset[str]]:
    """The Arrow expression for ``text`` and the top-level columns it reads."""
    if not isinstance(text, str):
        raise TypeError(f'filter(expr=...) takes a string such as "id > 5", got {type(text).__name__}')
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise PredicateError(f"filter expression {text!r} is not valid Python syntax: {e.msg}") from None
    converter = _Converter(text)
    result = converter.value(tree.body)
    if not isinstance(result, pc.Expression):
        raise PredicateError(f"filter expression {text!r} does not refer to any column")
    return result, frozenset(converter.columns)


class _Converter:
    def __init__(self, text: str) -> None:
        self._text = text
        self.columns: set[str] = set()

    def _refuse(self, node: ast.AST, what: str) -> PredicateError:
        snippet = ast.get_source_segment(self._text.strip(), node) or ast.dump(node)
        return PredicateError(
            f"filter expression {self._text!r}: {what} ({snippet!r}); use column names, constants, "
            f"comparisons, in / not in, and / or / not, and {', '.join(_CALLS)}"
        )

    def value(self, node: ast.AST) -> Any:
        """An Arrow expression, or a Python constant (or list of them)."""
        if isinstance(node, ast.Constant):
            if node.value is not None and not isinstance(node.value, (bool, int, float, str, bytes)):
                raise self._refuse(node, "an unsupported constant")
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._constant(element) for element in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = self.value(node.operand)
            if isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand
            raise self._refuse(node, "minus applies to numbers only")
        if isinstance(node, (ast.Name, ast.Attribute)):
            path = self._path(node)
            self.columns.add(path[0])
            return pc.field(*path)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self._predicate(v) for v in node.values]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if isinstance(node.op, ast.And) else combined | part
            return combined
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self._predicate(node.operand)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self._refuse(node, f"{type(node).__name__} is not supported")

    def _constant(self, node: ast.AST) -> Any:
        value = self.value(node)
        if isinstance(value, (pc.Expression, list)):
            raise self._refuse(node, "a list holds constants only")
        return value

    def _predicate(self, node: ast.AST) -> pc.Expression:
        value = self.value(node)
        if not isinstance(value, pc.Expression):
            raise self._refuse(node, "a condition is needed here, not a constant")
        return value

    def _path(self, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Attribute):
            return [*self._path(node.value), node.attr]
        raise self._refuse(node, "a field is named by a column and its fields (a.b)")

    def _compare(self, node: ast.Compare) -> pc.Expression:
        conditions = []
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(left, pc.Expression) or not isinstance(right, list):
                    raise self._refuse(node, "in / not in test a column against a list")
                test = left.isin(right)
                conditions.append(~test if isinstance(op, ast.NotIn) else test)
            elif type(op) in _COMPARE:
                if isinstance(left, list) or isinstance(right, list):
                    raise self._refuse(node, "a list can only follow in / not in")
                if not isinstance(left, pc.Expression) and not isinstance(right, pc.Expression):
                    raise self._refuse(node, "a comparison needs a column on one side")
                conditions.append(_COMPARE[type(op)](left, right))
            else:
                raise self._refuse(node, f"the operator {type(op).__name__} is not supported")
            left = right
        combined = conditions[0]
        for condition in conditions[1:]:
            combined = combined & condition
        return combined  # type: ignore[no-any-return]

    def _call(self, node: ast.Call) -> pc.Expression:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _CALLS or node.keywords:
            raise self._refuse(node, "only is_null, is_valid, is_nan and is_in can be called")
        args = [self.value(arg) for arg in node.args]
        wanted = {"is_null": (1, 2), "is_valid": (1, 1), "is_nan": (1, 1), "is_in": (2, 2)}[name]
        if not wanted[0] <= len(args) <= wanted[1] or not isinstance(args[0], pc.Expression):
            raise self._refuse(node, f"{name} takes a column{' and a list' if name == 'is_in' else ''}")
        column = args[0]
        if name == "is_null":
            return column.is_null(nan_is_null=bool(args[1]) if len(args) > 1 else False)
        if name == "is_valid":
            return column.is_valid()
        if name == "is_nan":
            return column.is_nan()
        if not isinstance(args[1], list):
            raise self._refuse(node, "is_in's second argument is a list")
        return column.isin(args[1])

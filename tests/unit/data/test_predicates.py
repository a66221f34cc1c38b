"""filter(expr=...)'s strings turned into Arrow expressions, checked against the same
predicate evaluated row by row in Python."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manta.data._internal import predicates

ROWS = [
    {"id": 0, "name": "a", "score": 1.5, "tag": None},
    {"id": 3, "name": "b", "score": float("nan"), "tag": "x"},
    {"id": 5, "name": "c", "score": None, "tag": "y"},
    {"id": 8, "name": "a", "score": -2.0, "tag": "x"},
]
TABLE = pa.Table.from_pylist(ROWS)


def kept(text: str) -> list[int]:
    return TABLE.filter(predicates.parse(text)).column("id").to_pylist()


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("id <= 4", [0, 3]),
        ("id > 2 and name == 'a'", [8]),
        ("id == 0 or name in ['b', 'c']", [0, 3, 5]),
        ("not (name == 'a')", [3, 5]),
        ("name not in ['a']", [3, 5]),
        ("0 < id <= 5", [3, 5]),
        ("5 > id", [0, 3]),
        ("score < -1.5", [8]),
        ("id != -3", [0, 3, 5, 8]),
        ("is_null(tag)", [0]),
        ("is_valid(tag) and tag == 'x'", [3, 8]),
        ("is_null(score)", [5]),
        ("is_null(score, True)", [3, 5]),
        ("is_nan(score)", [3]),
        ("is_in(id, [3, 8, 99])", [3, 8]),
        ("(id > 4) == True", [5, 8]),
    ],
)
def test_expressions_keep_what_python_would(text: str, ids: list[int]) -> None:
    assert kept(text) == ids


def test_a_struct_field_is_named_with_a_dot() -> None:
    table = pa.table({"point": [{"x": 1, "y": 2}, {"x": 5, "y": 0}]})
    assert table.filter(predicates.parse("point.x > 2")).to_pylist() == [{"point": {"x": 5, "y": 0}}]


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=40), st.integers(-50, 50), st.integers(-50, 50))
def test_range_conditions_match_python(values: list[int], low: int, high: int) -> None:
    table = pa.table({"v": values})
    out = table.filter(predicates.parse(f"{low} <= v < {high} or v == {low * 2}")).column("v").to_pylist()
    assert out == [v for v in values if low <= v < high or v == low * 2]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("id >", "not valid Python syntax"),
        ("id + 1 > 2", "BinOp is not supported"),
        ("open('f')", "only is_null, is_valid, is_nan and is_in can be called"),
        ("__import__('os').system('x')", "can be called"),
        ("id.real()", "can be called"),
        ("id == [1, 2]", "a list can only follow in / not in"),
        ("id in 3", "in / not in test a column against a list"),
        ("1 < 2", "a comparison needs a column on one side"),
        ("id > 1 and 3", "a condition is needed here"),
        ("is_in(id)", "is_in takes a column and a list"),
        ("is_null(id, nan_is_null=True)", "can be called"),
        ("[id]", "a list holds constants only"),
        ("3", "does not refer to any column"),
        ("-name > 1", "minus applies to numbers only"),
        ("lambda: id", "Lambda is not supported"),
    ],
)
def test_what_is_not_understood_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=f"filter expression .*{re.escape(says)}"):
        predicates.parse(text)


def test_only_strings_are_taken() -> None:
    with pytest.raises(TypeError, match="takes a string"):
        predicates.parse(lambda row: True)  # type: ignore[arg-type]

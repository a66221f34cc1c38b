"""Checking ``.remote(...)`` arguments at the call: counted for plain signatures, bound otherwise."""

from __future__ import annotations

import pytest

from manta._private.api import call_check


def plain(a, b, c=3):  # type: ignore[no-untyped-def]
    pass


def keyword_only(a, *, flag):  # type: ignore[no-untyped-def]
    pass


def test_plain_positional_calls_are_counted() -> None:
    check = call_check.of_function(plain, "plain")
    check.check((1, 2), {})
    check.check((1, 2, 3), {})
    with pytest.raises(TypeError, match=r"plain\.remote\(\): missing a required argument: 'b'"):
        check.check((1,), {})
    with pytest.raises(TypeError, match=r"plain\.remote\(\): too many positional arguments"):
        check.check((1, 2, 3, 4), {})


def test_keywords_and_other_kinds_are_bound() -> None:
    check = call_check.of_function(plain, "plain")
    check.check((1,), {"b": 2})
    with pytest.raises(TypeError, match="unexpected keyword argument 'd'"):
        check.check((1, 2), {"d": 4})
    only = call_check.of_function(keyword_only, "keyword_only")
    only.check((1,), {"flag": True})
    with pytest.raises(TypeError, match="missing a required argument: 'flag'"):
        only.check((1,), {})


def test_wire_parameters_check_like_the_method() -> None:
    # [name, kind, has a default]: a method (self dropped) with one required, one optional.
    check = call_check.of_wire([["x", 1, False], ["y", 1, True]], "Actor.f")
    check.check((1,), {})
    check.check((1,), {"y": 2})
    with pytest.raises(TypeError, match=r"Actor\.f\.remote\(\): too many positional arguments"):
        check.check((1, 2, 3), {})


def test_unreadable_signatures_check_nothing() -> None:
    call_check.of_wire(None, "Actor.f").check((1, 2, 3), {"any": 1})
    call_check.of_wire([["a", 99, False]], "bad kind").check((), {})  # no such kind
    call_check.of_function(iter, "iter").check((1, 2, 3, 4), {"no_such": ""})  # a builtin without one

"""Unit-test policy on top of tests/conftest.py.

Property tests run 40 examples each and no per-example deadline by default, so the unit
suite stays at a few seconds and does not flake on a slow machine; set
``HYPOTHESIS_PROFILE=thorough`` for a long run.

When a hypothesis test fails, hypothesis's pytest plugin imports libcst to write a patch
with the falsifying example; libcst subclasses the deprecated ``mypy_extensions.TypedDict``
and, under ``filterwarnings = error``, that DeprecationWarning turns the report of a real
failure into an INTERNALERROR. Ignore exactly that warning while reports are made.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("unit", max_examples=40, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport() -> Generator[None, Any, Any]:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="mypy_extensions.TypedDict is deprecated", category=DeprecationWarning
        )
        return (yield)

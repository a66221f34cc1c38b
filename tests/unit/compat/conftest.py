"""The ``ray`` import hook, installed for one test and removed after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import manta.compat


@pytest.fixture
def hook() -> Iterator[None]:
    assert not manta.compat.is_installed(), "a test left the ray import hook installed"
    manta.compat.install()
    yield
    manta.compat.uninstall()

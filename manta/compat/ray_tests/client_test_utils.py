"""``ray.tests.client_test_utils``: Ray's helpers for tests that also run over Ray Client."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from manta.compat.ray_common.test_utils import SignalActor


def create_remote_signal_actor(ray: ModuleType) -> Any:
    """The ``SignalActor`` actor class (``ray`` is the module the test uses; Manta has one)."""
    return SignalActor

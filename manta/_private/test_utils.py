"""Helpers Ray's own tests import from ``ray._private.test_utils``; kept under the same
name so those tests run unchanged against Manta."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for_condition(
    condition_predictor: Callable[..., Any],
    timeout: float = 10,
    retry_interval_ms: float = 100,
    raise_exceptions: bool = False,
    **kwargs: Any,
) -> None:
    """Call ``condition_predictor(**kwargs)`` until it returns true; RuntimeError after
    ``timeout`` seconds, naming the last exception it raised, if any."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition_predictor(**kwargs):
                return
        except Exception as e:
            if raise_exceptions:
                raise
            last_error = e
        time.sleep(retry_interval_ms / 1000)
    message = f"The condition wasn't met before the timeout of {timeout} s."
    if last_error is not None:
        message += f" Last exception: {last_error!r}"
    raise RuntimeError(message)

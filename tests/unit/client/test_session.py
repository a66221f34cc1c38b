"""A remote driver's session keeps answers until the client acknowledges them, and takes
no new calls while too many bytes of them wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from manta._private.client import session as session_module
from manta._private.client.calls import Result
from manta._private.common.config import Config
from manta._private.rpc import messages as m


def call(seq: int, acked: int = 0) -> m.ClientCall:
    return m.ClientCall(seq, acked, b"", [], 0, [], [])


def test_answers_are_kept_until_acknowledged_and_new_calls_refused_past_the_cap(monkeypatch: Any) -> None:
    monkeypatch.setattr(session_module, "MAX_KEPT_BYTES", 100)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        session = session_module.Session("/nowhere", Config(), loop, lambda: None)
        session._calls = object()  # type: ignore[assignment]  # opened: no call here reaches it
        for seq in (1, 2):
            running: asyncio.Future[Result] = loop.create_future()
            session._done(seq, running, Result(True, b"x" * 60, [memoryview(b"y" * 10)]))
        assert session._kept_bytes == 140
        with pytest.raises(RuntimeError, match="has not acknowledged"):
            session._h_call(None, call(3))  # type: ignore[arg-type]
        session._forget(0, [2])  # answer 2 arrived (1 still waits: 1 is behind a long call)
        assert session._kept_bytes == 70 and list(session._replies) == [1]
        session._forget(1, ())
        assert session._kept_bytes == 0 and not session._replies
        # A call answered and acknowledged already is not run again.
        with pytest.raises(ValueError, match="acknowledged already"):
            session._h_call(None, call(1))  # type: ignore[arg-type]
        session._calls = None
        session.close()

    asyncio.run(main())

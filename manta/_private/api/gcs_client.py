"""A small blocking gcs client for tools (the CLI) that are not drivers."""

from __future__ import annotations

import asyncio
from typing import Any

from manta._private.common.aio import new_event_loop
from manta._private.common.config import Config
from manta._private.common.session import read_token
from manta._private.rpc.endpoints import connect
from manta._private.rpc.transport import Dispatcher


class GcsClient:
    """One authenticated connection to a gcs, used synchronously."""

    def __init__(self, address: str, token: bytes, config: Config | None = None) -> None:
        self._loop = new_event_loop()
        self._config = config or Config.from_env()
        self._conn = self._loop.run_until_complete(
            connect(
                address,
                token,
                Dispatcher(),
                kind="cli",
                max_frame_bytes=self._config.max_frame_bytes,
            )
        )

    @classmethod
    def for_session(cls, session_dir: str, gcs_address: str) -> GcsClient:
        return cls(gcs_address, read_token(session_dir))

    def call(self, msg: Any, timeout: float = 30.0) -> Any:
        return self._loop.run_until_complete(asyncio.wait_for(self._conn.call(msg), timeout))

    def close(self) -> None:
        self._conn.close()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def __enter__(self) -> GcsClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""A real HTTP client for the head's API in tests (stdlib urllib: nothing of Manta's)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(
    head: dict[str, str],
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "default",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(head["url"] + path, data=data, method=method, headers=dict(headers or {}))
    if token is not None:
        req.add_header("Authorization", f"Bearer {head['token'] if token == 'default' else token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        assert e.headers.get("Content-Type", "").startswith("application/json"), text[:200]
        return e.code, json.loads(text)

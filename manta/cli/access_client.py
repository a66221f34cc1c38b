"""The head's token and audit API, for the CLI (``manta token``, ``manta audit``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from manta.job_submission.sdk import SubmissionClient


class AccessClient(SubmissionClient):
    """Requests need an admin token (the cluster's, or one issued with the admin role)."""

    def issue_token(self, role: str, name: str | None = None) -> dict[str, Any]:
        return dict(self._request_json("POST", "/api/tokens", {"role": role, "name": name}))

    def list_tokens(self) -> list[dict[str, Any]]:
        return list(self._get("/api/tokens"))

    def revoke_token(self, ref: str) -> dict[str, Any]:
        return dict(self._request_json("DELETE", "/api/tokens/" + urllib.parse.quote(ref, safe="")))

    def rotate_token(self, ref: str, retire_after_s: float | None = None) -> dict[str, Any]:
        path = f"/api/tokens/{urllib.parse.quote(ref, safe='')}/rotate"
        return dict(self._request_json("POST", path, {"retire_after_s": retire_after_s}))

    def read_audit(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return list(self._get(f"/api/audit?after={int(after)}&limit={int(limit)}"))

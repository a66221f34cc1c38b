"""Identity of a runtime environment: workers are dedicated to one, keyed by this."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def runtime_env_key(env: dict[str, Any] | None) -> str:
    """A short stable key for ``env`` ("" for none)."""
    if not env:
        return ""
    return hashlib.sha1(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]


# Where runtime-env packages (zipped working_dir / py_modules) are kept in the gcs
# key-value store, by their content-addressed name; workers fetch them from there.
PACKAGE_KV_NAMESPACE = "runtime_env_packages"

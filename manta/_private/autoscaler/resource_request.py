"""``request_resources``'s standing request, as kept in the gcs's key-value store (pure):
checked where it is made, read by the autoscaler each round."""

from __future__ import annotations

import json
from typing import Any

from manta._private.common.resources import check_amounts

NAMESPACE = "autoscaler"
KEY = b"resource_request"


def bundles_of(num_cpus: Any, bundles: Any) -> list[dict[str, float]]:
    """The bundles ``request_resources(num_cpus, bundles)`` asks for, checked."""
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 0):
        raise ValueError(f"num_cpus must be a whole number, 0 or more; got {num_cpus!r}")
    if bundles is not None and not isinstance(bundles, (list, tuple)):
        raise TypeError(
            f"bundles must be a list of resource dicts, e.g. [{{'GPU': 1}}]; got {type(bundles).__name__}"
        )
    asked = [{"CPU": 1.0} for _ in range(num_cpus or 0)]
    for i, bundle in enumerate(bundles or ()):
        if not isinstance(bundle, dict):
            raise TypeError(f"bundle #{i} must be a dict of resource amounts; got {type(bundle).__name__}")
        check_amounts(bundle, f"bundle #{i}")
        asked.append({str(k): float(v) for k, v in bundle.items() if v})
    return asked


def encode(bundles: list[dict[str, float]]) -> bytes:
    return json.dumps({"bundles": bundles}).encode()


def decode(raw: bytes | None) -> tuple[dict[str, float], ...]:
    """The standing request (none when there is none); ValueError when what is stored under
    its key is not one (written there by hand)."""
    if not raw:
        return ()
    try:
        bundles = json.loads(raw)["bundles"]
        return tuple({str(k): float(v) for k, v in b.items()} for b in bundles)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"the stored resource request is not one ({type(e).__name__}: {e})") from None

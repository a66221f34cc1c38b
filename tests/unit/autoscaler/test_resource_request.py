"""request_resources's request: checked where it is made, read back by the autoscaler."""

from __future__ import annotations

from typing import Any

import pytest

from manta._private.autoscaler import resource_request as rr


def test_cpus_and_bundles_make_one_request_that_reads_back() -> None:
    bundles = rr.bundles_of(2, [{"GPU": 1, "CPU": 0}, {"memory": 2e9}])
    assert bundles == [{"CPU": 1.0}, {"CPU": 1.0}, {"GPU": 1.0}, {"memory": 2e9}]
    assert rr.decode(rr.encode(bundles)) == tuple(bundles)
    assert rr.decode(rr.encode(rr.bundles_of(0, None))) == () and rr.decode(None) == ()


@pytest.mark.parametrize(
    ("num_cpus", "bundles", "error", "message"),
    [
        (-1, None, ValueError, "num_cpus must be a whole number"),
        (1.5, None, ValueError, "num_cpus must be a whole number"),
        (True, None, ValueError, "num_cpus must be a whole number"),
        (None, {"CPU": 1}, TypeError, "bundles must be a list of resource dicts"),
        (None, [4], TypeError, "bundle #0 must be a dict"),
        (None, [{"CPU": 1}, {"GPU": -1}], ValueError, "bundle #1"),
        (None, [{"CPU": float("nan")}], ValueError, "bundle #0"),
    ],
)
def test_bad_requests_are_refused_where_they_are_made(
    num_cpus: Any, bundles: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        rr.bundles_of(num_cpus, bundles)


def test_a_stored_value_that_is_not_a_request_is_an_error_not_a_request() -> None:
    for raw in (b"not json", b'{"other": 1}', b'{"bundles": [3]}'):
        with pytest.raises(ValueError, match="the stored resource request is not one"):
            rr.decode(raw)


def test_request_resources_without_init_says_to_call_init() -> None:
    from manta.autoscaler.sdk import request_resources

    with pytest.raises(Exception, match=r"init\(\)"):
        request_resources(num_cpus=1)

"""``request_resources`` from a driver: the request lands in the gcs, where the autoscaler
reads it, and replaces the one before."""

from __future__ import annotations

import pytest

import manta
from manta._private.autoscaler import resource_request
from manta.autoscaler.sdk import request_resources
from manta.experimental.internal_kv import _internal_kv_get


@pytest.fixture(scope="module")
def cluster():
    manta.init(num_cpus=1)
    yield
    manta.shutdown()


def stored() -> tuple[dict[str, float], ...]:
    return resource_request.decode(
        _internal_kv_get(resource_request.KEY, namespace=resource_request.NAMESPACE)
    )


def test_a_request_is_stored_and_the_next_one_replaces_it(cluster) -> None:
    request_resources(num_cpus=3, bundles=[{"GPU": 1}])
    assert stored() == ({"CPU": 1.0},) * 3 + ({"GPU": 1.0},)
    request_resources(bundles=[{"CPU": 4}])
    assert stored() == ({"CPU": 4.0},)
    request_resources(num_cpus=0)
    assert stored() == ()


def test_a_bad_request_is_refused_and_the_standing_one_kept(cluster) -> None:
    request_resources(num_cpus=2)
    with pytest.raises(ValueError, match="bundle #0"):
        request_resources(bundles=[{"CPU": -1}])
    assert stored() == ({"CPU": 1.0},) * 2

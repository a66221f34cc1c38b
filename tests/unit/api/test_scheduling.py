"""Placing a request in a placement group: the group's resource names, and Ray's errors
for requests no bundle can hold."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from manta._private.api.scheduling import PlacementGroupSchedulingStrategy, in_placement_group
from manta._private.common.ids import PlacementGroupID


@dataclass
class FakeGroup:
    bundle_specs: list[dict[str, float]]
    id: PlacementGroupID = field(default_factory=lambda: PlacementGroupID(bytes(range(18))))


def place(resources, bundles, index=-1, what="f", placement=None):
    strategy = PlacementGroupSchedulingStrategy(FakeGroup(bundles), placement_group_bundle_index=index)
    return in_placement_group(resources, strategy, what, placement)


def test_a_request_takes_the_groups_resource_names() -> None:
    hex_id = bytes(range(18)).hex()
    assert place({"CPU": 1.0}, [{"CPU": 2.0}], index=0) == {
        f"CPU_group_0_{hex_id}": 1.0,
        f"bundle_group_0_{hex_id}": 0.001,
    }
    assert place({"CPU": 1.0}, [{"CPU": 1.0}]) == {
        f"CPU_group_{hex_id}": 1.0,
        f"bundle_group_{hex_id}": 0.001,
    }
    assert place({"CPU": 1.0}, [{"CPU": 1.0}], placement=None) == place({"CPU": 1.0}, [{"CPU": 1.0}])


def test_a_request_no_bundle_holds_is_refused_in_rays_words() -> None:
    with pytest.raises(
        ValueError,
        match=r"^Cannot schedule f with the placement group because the resource request \{'CPU': 3.0\} "
        r"cannot fit into any bundles for the placement group, \[\{'CPU': 1.0\}, \{'CPU': 2.0\}\]\.$",
    ):
        place({"CPU": 3.0}, [{"CPU": 1.0}, {"CPU": 2.0}])
    # One bundle named: that bundle must hold it (Ray would leave it pending for ever).
    with pytest.raises(
        ValueError, match=r"cannot fit into any bundles .* \(it asks for bundle 0: \{'CPU': 1.0\}\)"
    ):
        place({"CPU": 2.0}, [{"CPU": 1.0}, {"CPU": 2.0}], index=0)


def test_an_actor_needs_its_creation_cpu_in_the_bundle() -> None:
    # A default actor holds no CPU but needs one to be created; Ray refuses a group without.
    with pytest.raises(
        ValueError, match=r"the actor requires 1\.0 CPU for creation, but it cannot fit into any bundles"
    ):
        place({"a": 1.0}, [{"a": 1.0}], what="A", placement={"a": 1.0, "CPU": 1.0})
    assert place({"a": 1.0}, [{"a": 1.0, "CPU": 1.0}], what="A", placement={"a": 1.0, "CPU": 1.0})
    assert place({}, [{"a": 1.0}], what="A")  # num_cpus=0: nothing more needed

"""Placement groups: between drivers, the gcs and node daemons (tags 95-99 and 103-107,
the free ones when they were added).
"""

from __future__ import annotations

from typing import Any

from manta._private.common.ids import JobID, PlacementGroupID
from manta._private.rpc.codec import message


@message(95)
class PlacementGroupSpec:
    pg_id: PlacementGroupID
    name: str
    namespace: str
    job_id: JobID
    bundles: list[dict[str, float]]
    strategy: str
    detached: bool
    # Per bundle: labels the node must have (``bundle_label_selector``), or None.
    label_selectors: list[dict[str, Any]] | None = None


@message(96)
class PlacementGroupInfo:
    pg_id: PlacementGroupID
    name: str
    namespace: str
    state: str  # PENDING, CREATED, RESCHEDULING, REMOVED
    bundles: list[dict[str, float]]
    strategy: str
    # The node of each bundle (hex), "" while unplaced.
    nodes: list[str]
    detached: bool
    # Why it waits, while it waits.
    message: str
    # It waits because the cluster could never hold it (not only because it is busy).
    infeasible: bool = False


@message(97)
class CreatePlacementGroup:
    spec: PlacementGroupSpec


@message(98)
class RemovePlacementGroup:
    pg_id: PlacementGroupID


@message(99)
class GetPlacementGroup:
    pg_id: PlacementGroupID | None
    name: str
    namespace: str


@message(103)
class ListPlacementGroups:
    pass


@message(104)
class WaitPlacementGroup:
    pg_id: PlacementGroupID
    timeout_s: float


@message(105)
class PrepareBundles:
    """Phase one: reserve these bundles' resources on this node, all or none (True)."""

    pg_id: PlacementGroupID
    # [index, resources] per bundle.
    bundles: list[list[Any]]
    # Which reservation attempt of the group this is (a commit or rollback names it).
    attempt: int = 0


@message(106)
class CommitBundles:
    """Phase two: the reserved bundles become the group's resources on this node."""

    pg_id: PlacementGroupID
    indices: list[int]
    attempt: int = 0


@message(107)
class ReleaseBundles:
    """Give back bundles (prepared or committed; None: all of the group's); work using
    them is stopped."""

    pg_id: PlacementGroupID
    indices: list[int] | None
    # Only bundles that attempt reserved (a rollback); None: whatever is held.
    attempt: int | None = None

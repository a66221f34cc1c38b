"""``manta.cloudpickle``: the cloudpickle Manta serializes with (Ray exposes its own copy)."""

from cloudpickle import *  # noqa: F403
from cloudpickle import dumps, loads

__all__ = ["dumps", "loads"]

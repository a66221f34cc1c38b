"""Manta Data: distributed datasets with Ray Data's API (``import manta.data`` or, through
the compatibility path, ``import ray.data``).

Layering: this package uses Manta only through its public API (``manta.remote``,
``manta.get``, ``manta.wait``, ``manta.put``, actors, and ``ObjectRefGenerator._next_sync``
for a next item without blocking, as Ray Data uses it); ``_internal`` holds the planner,
the streaming executor and the block algorithms, ``datasource`` the readers and writers.
This module only re-exports.
"""

from manta.data._internal.logical import ActorPoolStrategy, TaskPoolStrategy
from manta.data.block import Block, BlockMetadata
from manta.data.context import DataContext, ExecutionOptions, ExecutionResources
from manta.data.dataset import Dataset, MaterializedDataset
from manta.data.datasource import Datasink, Datasource, ReadTask
from manta.data.grouped_data import GroupedData
from manta.data.iterator import DataIterator
from manta.data.read_api import (
    from_arrow,
    from_items,
    from_numpy,
    from_pandas,
    range,
    range_tensor,
    read_datasource,
)
from manta.data.read_files import (
    read_binary_files,
    read_csv,
    read_images,
    read_json,
    read_numpy,
    read_parquet,
    read_text,
)
from manta.data.schema import Schema

__all__ = [
    "ActorPoolStrategy",
    "Block",
    "BlockMetadata",
    "DataContext",
    "DataIterator",
    "Dataset",
    "Datasink",
    "Datasource",
    "ExecutionOptions",
    "ExecutionResources",
    "GroupedData",
    "MaterializedDataset",
    "ReadTask",
    "Schema",
    "TaskPoolStrategy",
    "from_arrow",
    "from_items",
    "from_numpy",
    "from_pandas",
    "range",
    "range_tensor",
    "read_binary_files",
    "read_csv",
    "read_datasource",
    "read_images",
    "read_json",
    "read_numpy",
    "read_parquet",
    "read_text",
]

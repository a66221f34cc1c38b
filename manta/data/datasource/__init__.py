"""Manta Data's readers and writers of external data, as ``ray.data.datasource``.

Layering: ``datasource``/``datasink`` (the interfaces) and ``paths``/``partitioning``
(pure helpers) at the bottom; ``file_based`` and ``file_sinks`` on them; one module per
format on top. This module only re-exports.
"""

from manta.data.datasource.csv import CSVDatasource
from manta.data.datasource.datasink import Datasink, TaskContext, WriteResult, WriteReturnType
from manta.data.datasource.datasource import Datasource, ReadTask
from manta.data.datasource.file_based import FileBasedDatasource
from manta.data.datasource.file_sinks import CSVDatasink, FileDatasink, JSONDatasink, NumpyDatasink
from manta.data.datasource.filename_provider import FilenameProvider
from manta.data.datasource.images import ImageDatasource
from manta.data.datasource.json import JSONDatasource
from manta.data.datasource.numpy_files import NumpyDatasource
from manta.data.datasource.parquet import ParquetDatasource
from manta.data.datasource.parquet_sink import ParquetDatasink
from manta.data.datasource.partitioning import (
    Partitioning,
    PartitionStyle,
    PathPartitionFilter,
    PathPartitionParser,
)
from manta.data.datasource.save_mode import SaveMode
from manta.data.datasource.text import BinaryDatasource, TextDatasource

__all__ = [
    "BinaryDatasource",
    "CSVDatasink",
    "CSVDatasource",
    "Datasink",
    "Datasource",
    "FileBasedDatasource",
    "FileDatasink",
    "FilenameProvider",
    "ImageDatasource",
    "JSONDatasink",
    "JSONDatasource",
    "NumpyDatasink",
    "NumpyDatasource",
    "ParquetDatasink",
    "ParquetDatasource",
    "PartitionStyle",
    "Partitioning",
    "PathPartitionFilter",
    "PathPartitionParser",
    "ReadTask",
    "SaveMode",
    "TaskContext",
    "TextDatasource",
    "WriteResult",
    "WriteReturnType",
]

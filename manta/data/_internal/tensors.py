"""Columns that Arrow has no plain type for: n-dimensional arrays and arbitrary objects.

An ndarray column (one array per row, all of one shape) is Arrow's canonical
``fixed_shape_tensor`` extension type, which other Arrow readers understand. Arrays of
differing shapes and values Arrow cannot type (instances of user classes, mixed types)
are kept as pickles in a ``PythonObjectType`` column, as Ray keeps them, so that
``from_items`` of anything works; such columns do not survive a write to files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from manta import cloudpickle


class PythonObjectType(pa.ExtensionType):
    """A column of pickled Python objects."""

    def __init__(self) -> None:
        super().__init__(pa.large_binary(), "manta.python_object")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> PythonObjectType:
        return cls()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return PythonObjectType, ()


pa.register_extension_type(PythonObjectType())


def objects_to_arrow(values: Sequence[Any]) -> pa.Array:
    storage = pa.array([cloudpickle.dumps(v) for v in values], type=pa.large_binary())
    return pa.ExtensionArray.from_storage(PythonObjectType(), storage)


def ndarray_to_arrow(values: np.ndarray) -> pa.Array:
    """One column from an array whose first axis is the rows."""
    if values.dtype == object:
        return _objects_or_tensors(list(values))
    if values.ndim <= 1:
        return pa.array(values)
    return pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(values))


def values_to_arrow(values: Sequence[Any]) -> pa.Array:
    """One column from a row's worth of Python values, typed as tightly as Arrow allows."""
    if values and all(isinstance(v, np.ndarray) for v in values):
        return _objects_or_tensors(list(values))
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return objects_to_arrow(values)


def _objects_or_tensors(arrays: list[Any]) -> pa.Array:
    if arrays and all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays):
        first = arrays[0]
        if all(a.shape == first.shape and a.dtype == first.dtype for a in arrays) and first.ndim >= 1:
            return pa.FixedShapeTensorArray.from_numpy_ndarray(np.stack(arrays))
        if all(a.ndim == 0 for a in arrays):
            return pa.array(np.array(arrays))
    return objects_to_arrow(arrays)


def column_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as one ndarray: tensors as an array of shape (rows, *shape), objects as an
    object array, everything else as Arrow converts it."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(array.type, pa.FixedShapeTensorType):
        if len(array) == 0:
            shape = tuple(array.type.shape)
            return np.empty((0, *shape), dtype=array.type.value_type.to_pandas_dtype())
        return array.to_numpy_ndarray()
    if isinstance(array.type, PythonObjectType):
        out = np.empty(len(array), dtype=object)
        for i, blob in enumerate(array.storage.to_pylist()):
            out[i] = None if blob is None else cloudpickle.loads(blob)
        return out
    return array.to_numpy(zero_copy_only=False)


def column_to_pylist(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column's values as Python values: tensors as ndarrays, objects unpickled."""
    kind = column.type
    if isinstance(kind, (pa.FixedShapeTensorType, PythonObjectType)):
        return list(column_to_numpy(column))
    return column.to_pylist()

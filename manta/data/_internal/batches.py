"""Blocks as the batches and rows user functions see, and their results back as blocks.

The formats are Ray's: ``"numpy"`` (and ``"default"``) is a dict of column name to ndarray,
``"pandas"`` a DataFrame, ``"pyarrow"`` (and ``None``) the Arrow table itself. A row is a
dict of Python values (ndarrays for tensor columns). Anything a function returns that is
not one of these is refused with the function's name, the format and the type it gave.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from manta.data._internal import tensors

BATCH_FORMATS = ("default", "numpy", "pandas", "pyarrow", None)


def check_batch_format(batch_format: str | None) -> str | None:
    if batch_format not in BATCH_FORMATS:
        raise ValueError(
            f"batch_format must be one of 'default', 'numpy', 'pandas', 'pyarrow' or None; got {batch_format!r}"
        )
    return batch_format


def to_batch(block: pa.Table, batch_format: str | None) -> Any:
    if batch_format in ("default", "numpy"):
        return {name: tensors.column_to_numpy(block.column(name)) for name in block.column_names}
    if batch_format == "pandas":
        return to_pandas(block)
    return block


def to_pandas(block: pa.Table) -> Any:
    """A DataFrame; tensor and object columns become object columns of ndarrays/values."""

    special = [
        name
        for name in block.column_names
        if isinstance(block.column(name).type, (pa.FixedShapeTensorType, tensors.PythonObjectType))
    ]
    plain = block.drop_columns(special) if special else block
    frame = plain.to_pandas()
    for name in special:
        values = tensors.column_to_numpy(block.column(name))
        column = np.empty(len(values), dtype=object)
        column[:] = list(values)
        frame[name] = column
    return frame[block.column_names] if special else frame


def rows(block: pa.Table) -> Iterator[dict[str, Any]]:
    names = block.column_names
    columns = [tensors.column_to_pylist(block.column(name)) for name in names]
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def from_rows(items: Sequence[Any], fn_name: str) -> pa.Table:
    """A block from the rows a function made; every row must be a dict."""
    names: dict[str, None] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError(
                f"{fn_name} must return a dict (one row: column name to value), but it returned "
                f"{type(item).__name__}: {_short(item)}"
            )
        names.update(dict.fromkeys(item))
    return pa.table({name: tensors.values_to_arrow([item.get(name) for item in items]) for name in names})


def from_items(items: Sequence[Any]) -> pa.Table:
    """``from_items``' rule: dicts are rows, anything else is the value of an ``item`` column."""
    if items and all(isinstance(item, Mapping) for item in items):
        return from_rows(items, "from_items")
    return pa.table({"item": tensors.values_to_arrow(list(items))})


def from_batch(batch: Any, fn_name: str, batch_format: str | None) -> pa.Table:
    """A block from what a ``map_batches`` function returned."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return _from_columns(batch, fn_name)
    if _is_dataframe(batch):
        return from_pandas(batch)
    raise TypeError(
        f"{fn_name} returned {type(batch).__name__} for a batch in format {batch_format!r}; a batch "
        "function must return a dict of column name to numpy array (or list), a pandas.DataFrame or a "
        "pyarrow.Table"
    )


def from_pandas(frame: Any) -> pa.Table:
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if series.dtype == object:
            columns[str(name)] = tensors.values_to_arrow(list(series))
        else:
            columns[str(name)] = pa.array(series)
    return pa.table(columns)


def _from_columns(batch: Mapping[Any, Any], fn_name: str) -> pa.Table:
    columns = {}
    for name, values in batch.items():
        if isinstance(values, np.ndarray):
            columns[str(name)] = tensors.ndarray_to_arrow(values)
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            columns[str(name)] = values
        elif isinstance(values, (list, tuple)) or _is_series(values):
            columns[str(name)] = tensors.values_to_arrow(list(values))
        else:
            raise TypeError(
                f"{fn_name} returned a dict whose column {name!r} is a {type(values).__name__}; each "
                "column must be a numpy array or a list with one value per row"
            )
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{fn_name} returned columns of different lengths: {lengths}")
    return pa.table(columns)


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _is_series(value: Any) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "dtype")


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe_row(row: Mapping[str, Any]) -> str:
    """A row for an error message, cut short."""
    return _short(dict(row), 500)

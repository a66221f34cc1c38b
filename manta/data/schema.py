"""``Schema``: a dataset's column names and types, as ``Dataset.schema()`` gives them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from manta.data._internal import tensors


class Schema:
    """Column names and types. ``names`` and ``types`` are lists; ``base_schema`` is the
    ``pyarrow.Schema``. Tensor columns show as ``numpy.ndarray(shape=..., dtype=...)`` and
    object columns as ``object``, as Ray shows them."""

    def __init__(self, base_schema: pa.Schema) -> None:
        self.base_schema = base_schema

    @property
    def names(self) -> list[str]:
        return list(self.base_schema.names)

    @property
    def types(self) -> list[Any]:
        return [field.type for field in self.base_schema]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.base_schema == other.base_schema

    def __hash__(self) -> int:
        return hash(tuple(self.names))

    def __len__(self) -> int:
        return len(self.base_schema)

    def __repr__(self) -> str:
        shown = [(name, type_name(kind)) for name, kind in zip(self.names, self.types, strict=True)]
        width = max([len("Column"), *(len(name) for name, _ in shown)])
        type_width = max([len("Type"), *(len(t) for _, t in shown)])
        lines = [f"{'Column':<{width}}  Type", f"{'-' * 6:<{width}}  {'-' * 4:<{type_width}}".rstrip()]
        lines += [f"{name:<{width}}  {kind}" for name, kind in shown]
        return "\n".join(lines)


def type_name(kind: pa.DataType) -> str:
    if isinstance(kind, pa.FixedShapeTensorType):
        dtype = kind.value_type.to_pandas_dtype().__name__
        return f"numpy.ndarray(shape={tuple(kind.shape)}, dtype={dtype})"
    if isinstance(kind, tensors.PythonObjectType):
        return "object"
    return str(kind)

"""The public names of ``manta``: a change to this list must be deliberate."""

from __future__ import annotations

import pytest

import manta

PUBLIC = [
    "ActorID",
    "DynamicObjectRefGenerator",
    "JobID",
    "NodeID",
    "ObjectID",
    "ObjectRef",
    "ObjectRefGenerator",
    "PlacementGroupID",
    "RemoteFunction",
    "TaskID",
    "WorkerID",
    "__version__",
    "actor",
    "available_resources",
    "cancel",
    "cloudpickle",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "runtime_context",
    "shutdown",
    "util",
    "wait",
]


def test_all_is_pinned() -> None:
    assert manta.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(manta, name) is not None
    assert name in dir(manta)


def test_public_names_are_the_private_objects() -> None:
    from manta._private.common.ids import ObjectID
    from manta._private.core_worker.object_ref import ObjectRef

    assert manta.ObjectID is ObjectID
    assert manta.ObjectRef is ObjectRef
    assert manta.exceptions.GetTimeoutError.__module__ == "manta.exceptions"
    assert isinstance(manta.__version__, str) and manta.__version__


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'manta' has no attribute 'no_such_name'"):
        _ = manta.no_such_name  # type: ignore[attr-defined]


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from manta import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC)

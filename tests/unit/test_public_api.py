"""The public names of ``manta``: a change to this list must be deliberate."""

from __future__ import annotations

import pytest

import manta

PUBLIC = [
    "ActorID",
    "DynamicObjectRefGenerator",
    "JobID",
    "LoggingConfig",
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
    "job_config",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "runtime_context",
    "shutdown",
    "timeline",
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


UTIL_PUBLIC = [
    "ActorPool",
    "PlacementGroup",
    "deregister_serializer",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "inspect_serializability",
    "list_named_actors",
    "memory_report",
    "memory_summary",
    "placement_group",
    "placement_group_table",
    "register_serializer",
    "remove_placement_group",
]


def test_util_names_are_pinned() -> None:
    import manta.util

    assert manta.util.__all__ == UTIL_PUBLIC
    for name in UTIL_PUBLIC:
        assert getattr(manta.util, name) is not None


def test_util_library_submodules_load_on_first_use() -> None:
    import manta.util

    # Reachable as attributes, as in Ray; outside __all__, so a star import cannot shadow
    # the standard library's multiprocessing or the joblib package.
    assert manta.util.multiprocessing.Pool.__module__ == "manta.util.multiprocessing.pool"
    assert callable(manta.util.joblib.register_manta)
    assert callable(manta.util.joblib.register_ray)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = manta.util.nope  # type: ignore[attr-defined]

"""The ``ray`` import hook: what each ``ray`` name resolves to, and what it refuses."""

from __future__ import annotations

import importlib
import pickle
import sys
import types
from pathlib import Path

import pytest

import manta
import manta.compat
from manta._private.common import worker_setup
from manta.compat._finder import target_of


@pytest.mark.parametrize(
    ("ray_name", "manta_name"),
    [
        ("ray", "manta.compat._ray"),
        ("ray.util", "manta.util"),
        ("ray.util.queue", "manta.util.queue"),
        ("ray.serve", "manta.serve"),
        ("ray._private", "manta.compat.ray_private"),
        ("ray._private.worker", "manta.compat.ray_private.worker"),
        ("ray._common.test_utils", "manta.compat.ray_common.test_utils"),
        ("ray._raylet", "manta.compat.raylet"),
        ("ray.util._private", None),
        ("ray._raylet.sub", None),
        ("ray.compat", None),
        ("ray.cli", None),
    ],
)
def test_mapping_rules(ray_name: str, manta_name: str | None) -> None:
    assert target_of(ray_name) == manta_name


def test_ray_names_are_manta_objects(hook: None) -> None:
    import ray
    import ray.exceptions
    import ray.util.scheduling_strategies
    from ray.util import ActorPool
    from ray.util.queue import Empty, Queue

    import manta.util.queue
    import manta.util.scheduling_strategies

    assert ray.get is manta.get and ray.remote is manta.remote and ray.ObjectRef is manta.ObjectRef
    assert ray.__version__ == manta.__version__
    assert Queue is manta.util.queue.Queue and Empty is manta.util.queue.Empty
    assert ActorPool is manta.util.ActorPool
    assert ray.util is manta.util and ray.exceptions is manta.exceptions
    assert ray.util.scheduling_strategies is manta.util.scheduling_strategies
    assert isinstance(ray.exceptions.GetTimeoutError("x"), manta.exceptions.GetTimeoutError)
    for name in ("ray.actor", "ray.runtime_context", "ray.cluster_utils", "ray.util.placement_group"):
        assert importlib.import_module(name) is importlib.import_module("manta" + name[3:])


def test_ray_is_its_own_module_forwarding_to_manta(hook: None) -> None:
    import ray
    import ray._private.worker

    # Importing ray._private binds it on `ray`, never on `manta`, whose _private is its own.
    assert ray._private is sys.modules["ray._private"]
    assert manta._private is sys.modules["manta._private"]
    assert {"get", "remote", "_private", "SCRIPT_MODE"} <= set(dir(ray))
    assert ray.SCRIPT_MODE == ray._private.worker.SCRIPT_MODE
    with pytest.raises(AttributeError, match="Manta"):
        ray.no_such_name  # noqa: B018


def test_importing_a_submodule_keeps_the_name_it_is_shadowed_by(hook: None) -> None:
    # manta.util.placement_group is the function; importing the module under its ray name
    # must not rebind it to the module.
    import ray.util.placement_group
    from ray.util.placement_group import placement_group_table

    assert callable(manta.util.placement_group) and not isinstance(
        manta.util.placement_group, types.ModuleType
    )
    assert ray.util.placement_group is manta.util.placement_group
    assert placement_group_table is manta.util.placement_group_table


def test_private_homes_load_on_attribute_access(hook: None) -> None:
    import ray

    # Ray programs reach these after a bare `import ray`.
    assert ray._private.worker.global_worker is sys.modules["manta.compat.ray_private.worker"].global_worker
    assert ray._common.test_utils.wait_for_condition is ray._private.test_utils.wait_for_condition
    from ray._raylet import NodeID, ObjectRef

    assert ObjectRef is manta.ObjectRef and NodeID is manta.NodeID


def test_generator_names_follow_manta(hook: None) -> None:
    import ray._private.object_ref_generator
    import ray._raylet

    for name in ("ObjectRefGenerator", "DynamicObjectRefGenerator"):
        value = getattr(manta, name, None)
        for module in (ray._raylet, ray._private.object_ref_generator):
            if value is None:
                with pytest.raises(AttributeError, match="Manta does not provide"):
                    getattr(module, name)
            else:
                assert getattr(module, name) is value
    if getattr(manta, "ObjectRefGenerator", None) is not None:
        assert ray._raylet.StreamingObjectRefGenerator is manta.ObjectRefGenerator


@pytest.mark.parametrize("name", ["ray.serve", "ray.workflow", "ray._private.services", "ray.compat"])
def test_missing_modules_say_manta_does_not_provide_them(hook: None, name: str) -> None:
    with pytest.raises(ModuleNotFoundError, match="Manta does not provide it") as info:
        importlib.import_module(name)
    assert info.value.name == name


def test_an_installed_ray_is_never_loaded(
    hook: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "ray"
    (fake / "serve").mkdir(parents=True)
    (fake / "__init__.py").write_text("raise AssertionError('the real ray was imported')\n")
    (fake / "serve" / "__init__.py").write_text("raise AssertionError('the real ray.serve was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    import ray

    assert ray.get is manta.get
    with pytest.raises(ModuleNotFoundError, match="Manta does not provide it"):
        import ray.serve


def test_ray_names_in_pickles_resolve_to_manta(hook: None) -> None:
    # What a pickle made under Ray holds: a class by its ray module name.
    assert pickle.loads(b"cray.util.queue\nEmpty\n.") is manta.util.queue.Empty


def test_install_refuses_when_ray_is_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))
    with pytest.raises(RuntimeError, match="already imported"):
        manta.compat.install()
    assert not manta.compat.is_installed()
    assert "manta.compat:install" not in worker_setup.registered()


def test_install_asks_new_jobs_workers_for_the_hook_and_uninstall_undoes_all() -> None:
    manta.compat.install()
    try:
        manta.compat.install()  # again: nothing changes
        assert worker_setup.registered().count("manta.compat:install") == 1
        assert type(sys.meta_path[0]).__name__ == "RayFinder"
        assert sum(type(f).__name__ == "RayFinder" for f in sys.meta_path) == 1
        import ray.util  # noqa: F401
    finally:
        manta.compat.uninstall()
    assert "manta.compat:install" not in worker_setup.registered()
    assert not any(type(f).__name__ == "RayFinder" for f in sys.meta_path)
    assert not [name for name in sys.modules if name == "ray" or name.startswith("ray.")]


def test_rays_logger_is_mantas_once_installed(hook: None) -> None:
    import logging

    assert logging.getLogger("ray") is logging.getLogger("manta")


def test_rays_autoscaler_sdk_is_mantas(hook: None) -> None:
    from ray.autoscaler.sdk import request_resources  # type: ignore[import-not-found]

    import manta.autoscaler.sdk

    assert request_resources is manta.autoscaler.sdk.request_resources

"""The ``sys.meta_path`` finder behind ``manta.compat.install()``.

Where ``ray.X`` goes:
- ``ray`` itself: ``manta.compat._ray``, a module that forwards to ``manta`` (a separate
  object, so that the import system's ``ray._private = ...`` bindings never land on
  ``manta`` itself, where ``manta._private`` is Manta's own package).
- ``ray._private...``, ``ray._common...``, ``ray._raylet``: the homes of Ray's private
  names under ``manta.compat`` (see ``_HOMES``); nothing else under a private name.
- any other ``ray.X.Y``: ``manta.X.Y``, the same module object.

A name with no home raises ``ModuleNotFoundError`` from the finder itself, so the search
never goes on to the other finders and cannot load an installed Ray by accident.

An alias is the target module object, entered in ``sys.modules`` under the ``ray`` name.
The loader gives the import system that object and puts back its own ``__spec__`` (which
the import system overwrites), and enters the target's already imported submodules under
their ``ray`` names too: importing one of those later then finds it in ``sys.modules``
and does not rebind the parent's attribute (``manta.util.placement_group`` is a function
that shadows the submodule of the same name; importing ``ray.util.placement_group`` as a
new module would replace it by the module).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

ROOT = "ray"

# Ray's private module names that have a home here: ray name -> Manta module.
_HOMES = {
    "ray": "manta.compat._ray",
    "ray._private": "manta.compat.ray_private",
    "ray._common": "manta.compat.ray_common",
    "ray._raylet": "manta.compat.raylet",
    "ray.tests": "manta.compat.ray_tests",
}
# Packages whose submodules are their homes' submodules.
_HOME_PACKAGES = ("ray._private", "ray._common", "ray.tests")
# Public Manta packages that are not Ray's.
_NOT_RAYS = {"compat", "cli"}


def target_of(name: str) -> str | None:
    """The Manta module that ``name`` (``ray`` or ``ray.X...``) maps to, if Manta has a
    counterpart by its rules; whether that module exists is not checked."""
    if name in _HOMES:
        return _HOMES[name]
    for package in _HOME_PACKAGES:
        if name.startswith(package + "."):
            return _HOMES[package] + name[len(package) :]
    parts = name.split(".")[1:]
    if parts[0] in _NOT_RAYS or any(part.startswith("_") for part in parts):
        return None
    return "manta." + ".".join(parts)


def is_ray_name(name: str) -> bool:
    return name == ROOT or name.startswith(ROOT + ".")


class RayFinder(importlib.abc.MetaPathFinder):
    """Resolves ``ray`` and ``ray.*`` to Manta's modules; see the module docstring."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not is_ray_name(fullname):
            return None
        manta_name = target_of(fullname)
        found = None if manta_name is None else _find_manta_spec(manta_name)
        if manta_name is None or found is None:
            raise ModuleNotFoundError(_not_provided(fullname, manta_name), name=fullname)
        return importlib.machinery.ModuleSpec(
            fullname,
            _AliasLoader(manta_name),
            origin=found.origin,
            is_package=found.submodule_search_locations is not None,
        )


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, manta_name: str) -> None:
        self.manta_name = manta_name
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.manta_name)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The module already ran under its Manta name; undo what the import system set.
        module.__spec__ = self._spec
        alias_loaded_submodules(module.__name__)


def alias_loaded_submodules(manta_name: str) -> None:
    """Enter the imported submodules of ``manta_name`` under their ``ray`` names."""
    prefix = manta_name + "."
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix):
            ray_name = _ray_name_of(name)
            if ray_name is not None and ray_name not in sys.modules:
                sys.modules[ray_name] = module


def _ray_name_of(manta_name: str) -> str | None:
    """The ``ray`` name that maps to ``manta_name``, if one does."""
    for ray_name, home in _HOMES.items():
        if manta_name == home:
            return ray_name
        if ray_name in _HOME_PACKAGES and manta_name.startswith(home + "."):
            return ray_name + manta_name[len(home) :]
    candidate = ROOT + manta_name[len("manta") :]
    return candidate if target_of(candidate) == manta_name else None


def _find_manta_spec(manta_name: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(manta_name)
    except ModuleNotFoundError as e:
        # A missing parent package means no counterpart; a missing third-party module that
        # a Manta package needs is a real error and keeps its own message.
        if e.name and (manta_name == e.name or manta_name.startswith(e.name + ".")):
            return None
        raise


def _not_provided(name: str, manta_name: str | None) -> str:
    if manta_name is not None and not manta_name.startswith("manta.compat."):
        why = f"the ray import hook of manta.compat maps {name} to {manta_name}, which does not exist"
    elif manta_name is not None:
        why = "manta.compat has homes only for the private Ray modules that programs and tests commonly use"
    else:
        why = "the ray import hook of manta.compat maps no Manta module to this name"
    return f"No module named {name!r}: Manta does not provide it ({why})"

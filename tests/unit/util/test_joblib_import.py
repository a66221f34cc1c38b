"""The joblib backend without joblib: importing it is free, registering says what to install."""

from __future__ import annotations

import sys

import pytest

import manta.util.joblib as manta_joblib


def test_registering_without_joblib_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "joblib", None)  # import joblib now raises ImportError
    monkeypatch.setitem(sys.modules, "joblib.parallel", None)
    with pytest.raises(ImportError, match="pip install joblib"):
        manta_joblib.register_manta()
    with pytest.raises(ImportError, match="pip install joblib"):
        manta_joblib.register_ray()


def test_registers_both_names() -> None:
    joblib = pytest.importorskip("joblib")
    from joblib.parallel import BACKENDS

    from manta.util.joblib.backend import MantaBackend

    manta_joblib.register_manta()
    manta_joblib.register_ray()
    assert BACKENDS["manta"] is MantaBackend
    assert BACKENDS["ray"] is MantaBackend
    assert joblib is not None

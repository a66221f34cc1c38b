"""Worker setup functions: named by a driver, called by its job's workers."""

from __future__ import annotations

import pytest

from manta._private.common import worker_setup

CALLS: list[str] = []


def record() -> None:
    CALLS.append("called")


def fail() -> None:
    raise RuntimeError("setup broke")


def test_register_is_idempotent_and_unregister_undoes_it() -> None:
    name = f"{__name__}:record"
    worker_setup.register(name)
    worker_setup.register(name)
    try:
        assert worker_setup.registered().count(name) == 1
    finally:
        worker_setup.unregister(name)
    assert name not in worker_setup.registered()


@pytest.mark.parametrize("name", ["no_function", ":f", "module:"])
def test_names_must_say_module_and_function(name: str) -> None:
    with pytest.raises(ValueError, match="module:function"):
        worker_setup.register(name)


def test_run_calls_each_and_reports_a_failure_without_stopping(capsys: pytest.CaptureFixture[str]) -> None:
    CALLS.clear()
    worker_setup.run([f"{__name__}:fail", f"{__name__}:record", "no.such.module:f"])
    assert CALLS == ["called"]
    err = capsys.readouterr().err
    assert f"{__name__}:fail failed: RuntimeError('setup broke')" in err
    assert "no.such.module:f failed" in err

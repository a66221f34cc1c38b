"""The one configuration: documented defaults and MANTA_* environment parsing."""

from __future__ import annotations

import dataclasses
import re

import pytest

from manta._private.common.config import Config


def test_defaults() -> None:
    config = Config.from_env(environ={})
    assert config == Config()
    assert config.max_inline_bytes == 100 * 1024
    assert config.task_max_retries == 3
    assert config.record_callsites is False
    assert config.heartbeat_interval_s == 1.0
    assert config.node_timeout_s == 10.0
    assert config.address == ""


def test_env_overrides_each_type() -> None:
    config = Config.from_env(
        environ={
            "MANTA_MAX_INLINE_BYTES": "2048",
            "MANTA_NODE_TIMEOUT_S": "2.5",
            "MANTA_RECORD_CALLSITES": "yes",
            "MANTA_LOG_LEVEL": "DEBUG",
        }
    )
    assert config.max_inline_bytes == 2048
    assert config.node_timeout_s == 2.5
    assert config.record_callsites is True
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), ("On", True), ("0", False), ("off", False), ("", False), ("No", False)],
)
def test_bool_spellings(raw: str, expected: bool) -> None:
    assert Config.from_env(environ={"MANTA_RECORD_CALLSITES": raw}).record_callsites is expected


def test_unrelated_and_lowercase_variables_are_ignored() -> None:
    config = Config.from_env(environ={"RAY_MAX_INLINE_BYTES": "1", "manta_max_inline_bytes": "1"})
    assert config.max_inline_bytes == Config().max_inline_bytes


def test_overrides_beat_environment() -> None:
    config = Config.from_env(environ={"MANTA_TASK_MAX_RETRIES": "7"}, task_max_retries=0)
    assert config.task_max_retries == 0


@pytest.mark.parametrize(
    ("name", "raw", "kind"),
    [
        ("MANTA_MAX_INLINE_BYTES", "lots", "int"),
        ("MANTA_MAX_INLINE_BYTES", "1.5", "int"),
        ("MANTA_NODE_TIMEOUT_S", "soon", "float"),
        ("MANTA_RECORD_CALLSITES", "maybe", "bool"),
    ],
)
def test_invalid_values_name_the_variable(name: str, raw: str, kind: str) -> None:
    with pytest.raises(ValueError) as info:
        Config.from_env(environ={name: raw})
    assert str(info.value) == f"environment variable {name}={raw!r} is not a valid {kind}"


def test_frozen_and_replace() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_inline_bytes = 1  # type: ignore[misc]
    changed = config.replace(max_inline_bytes=1)
    assert changed.max_inline_bytes == 1
    assert config.max_inline_bytes == 100 * 1024


def test_to_dict_round_trips() -> None:
    config = Config(address="10.0.0.1:6379", task_max_retries=1)
    data = config.to_dict()
    assert data["address"] == "10.0.0.1:6379"
    assert Config(**data) == config
    assert set(data) == {f.name for f in dataclasses.fields(Config)}


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("LOG_LEVEL", "verbose", "log_level (MANTA_LOG_LEVEL) must be one of DEBUG"),
        ("MAX_FRAME_BYTES", "0", "max_frame_bytes (MANTA_MAX_FRAME_BYTES) must be a number of at least"),
        ("NODE_TIMEOUT_S", "nan", "node_timeout_s (MANTA_NODE_TIMEOUT_S) must be a number"),
        ("HEARTBEAT_INTERVAL_S", "0", "heartbeat_interval_s"),
        ("IDLE_WORKER_TIMEOUT_S", "-1", "idle_worker_timeout_s"),
        (
            "OBJECT_STORE_FRACTION",
            "2",
            "object_store_fraction (MANTA_OBJECT_STORE_FRACTION) must be at most 1",
        ),
        (
            "MEMORY_USAGE_THRESHOLD",
            "1.5",
            "memory_usage_threshold (MANTA_MEMORY_USAGE_THRESHOLD) must be at most 1",
        ),
        ("MEMORY_USAGE_THRESHOLD", "0", "memory_usage_threshold"),
        ("MEMORY_MONITOR_REFRESH_MS", "-1", "memory_monitor_refresh_ms"),
    ],
)
def test_values_no_daemon_could_run_with_are_refused(name: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Config.from_env({f"MANTA_{name}": raw})


def test_minus_one_retries_means_forever() -> None:
    assert Config.from_env({"MANTA_TASK_MAX_RETRIES": "-1"}).task_max_retries == -1


def test_memory_monitor_defaults_and_switch() -> None:
    config = Config()
    assert (config.memory_usage_threshold, config.memory_monitor_refresh_ms) == (0.95, 250)
    off = Config.from_env({"MANTA_MEMORY_MONITOR_REFRESH_MS": "0", "MANTA_MEMORY_USAGE_THRESHOLD": "0.5"})
    assert (off.memory_usage_threshold, off.memory_monitor_refresh_ms) == (0.5, 0)


def test_system_config_takes_manta_names_and_rays_that_map() -> None:
    base = Config()
    changed = base.with_system_config(
        {
            "max_direct_call_object_size": 0,
            "health_check_period_ms": 500,
            "task_max_retries": 7,
            "object_timeout_milliseconds": 200,
        }
    )
    assert changed.max_inline_bytes == 1  # Ray's "never inline" is our smallest
    assert changed.heartbeat_interval_s == 0.5 and changed.task_max_retries == 7
    assert base.with_system_config({}) == base
    with pytest.raises(ValueError, match="must be a number of at least"):
        base.with_system_config({"task_max_retries": -5})


def test_rays_environment_variables_count_when_mantas_are_not_set() -> None:
    assert Config.from_env({"RAY_IGNORE_UNHANDLED_ERRORS": "1"}).ignore_unhandled_errors
    assert Config.from_env({"RAY_JOB_START_TIMEOUT_SECONDS": "30"}).job_start_timeout_s == 30
    both = {"RAY_JOB_START_TIMEOUT_SECONDS": "30", "MANTA_JOB_START_TIMEOUT_S": "5"}
    assert Config.from_env(both).job_start_timeout_s == 5

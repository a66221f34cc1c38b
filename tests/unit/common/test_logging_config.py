"""``LoggingConfig``: Ray's checks, the TEXT and JSON lines, and applying it to loggers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from manta._private.common import logging_config
from manta._private.common.logging_config import JsonFormatter, LoggingConfig, TextFormatter

CONTEXT = {
    "job_id": "01000000",
    "worker_id": "ab" * 28,
    "node_id": "cd" * 28,
    "task_id": "ef" * 24,
    "task_name": "f",
}


def test_defaults_and_round_trip() -> None:
    config = LoggingConfig()
    assert (config.encoding, config.log_level, config.additional_log_standard_attrs) == ("TEXT", "INFO", [])
    data = LoggingConfig("JSON", "DEBUG", ["name"]).to_dict()
    assert LoggingConfig.from_dict({**data, "from_a_newer_driver": 1}) == LoggingConfig(
        "JSON", "DEBUG", ["name"]
    )


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"encoding": "XML"}, "Invalid encoding type"),
        ({"log_level": "LOUD"}, "Invalid log_level"),
        ({"additional_log_standard_attrs": ["colour"]}, "Unknown python logging standard attribute"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        LoggingConfig(**kwargs)  # type: ignore[arg-type]


def record(
    msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    rec = logging.LogRecord("user.mod", logging.INFO, "/src/job.py", 12, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_rays_fields_context_and_extras() -> None:
    line = JsonFormatter(["name"]).format(record(**CONTEXT, order_id=7, timestamp_ns=5))
    data = json.loads(line)
    assert data["message"] == "hello world" and data["levelname"] == "INFO"
    assert (data["filename"], data["lineno"], data["name"]) == ("job.py", 12, "user.mod")
    assert data["task_name"] == "f" and data["job_id"] == "01000000" and data["order_id"] == 7
    assert data["timestamp_ns"] == 5 and "asctime" in data and "msg" not in data


def test_json_lines_carry_the_traceback() -> None:
    try:
        raise KeyError("gone")
    except KeyError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, "/a.py", 1, "failed", (), sys.exc_info())
    assert "KeyError: 'gone'" in json.loads(JsonFormatter([]).format(rec))["exc_text"]


def test_text_lines_look_like_rays() -> None:
    line = TextFormatter([]).format(record(**CONTEXT))
    head, rest = line.split(" -- ", 1)
    assert head.endswith("INFO job.py:12")
    assert rest.startswith("hello world job_id=01000000 ") and "task_name=f" in rest


@pytest.fixture
def clean_loggers() -> Iterator[None]:
    root, own = logging.getLogger(), logging.getLogger("manta_test_own")
    saved = (list(root.handlers), root.level, list(own.handlers), own.level, own.propagate)
    yield
    root.handlers[:], own.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    own.setLevel(saved[3])
    own.propagate = saved[4]


def test_apply_gives_root_one_handler_with_context(
    clean_loggers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    logging_config.apply(LoggingConfig("JSON", "DEBUG"), lambda: dict(CONTEXT))
    logging_config.apply({"encoding": "JSON", "log_level": "DEBUG"}, lambda: dict(CONTEXT))  # replaces
    marked = [h for h in logging.getLogger().handlers if getattr(h, "_manta_job_logging", False)]
    assert len(marked) == 1 and logging.getLogger().level == logging.DEBUG
    logging.getLogger("some.lib").debug("deep %d", 3)
    data = json.loads(stream.getvalue().strip())
    assert data["message"] == "deep 3" and data["task_id"] == CONTEXT["task_id"]


def test_apply_in_a_driver_takes_over_mantas_own_logger(clean_loggers: None) -> None:
    own = logging.getLogger("manta_test_own")
    default = logging.StreamHandler()
    default._manta = True  # type: ignore[attr-defined]
    own.addHandler(default)
    logging_config.apply(LoggingConfig(), dict, own_logger="manta_test_own")
    assert default not in own.handlers and not own.propagate
    assert any(getattr(h, "_manta_job_logging", False) for h in own.handlers)


def test_a_failing_context_does_not_lose_the_line(
    clean_loggers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)

    def broken() -> dict[str, str]:
        raise RuntimeError("half set up")

    logging_config.apply(LoggingConfig(), broken)
    logging.getLogger("x").warning("still here")
    assert "still here" in stream.getvalue()


def test_init_refuses_anything_but_a_logging_config_before_starting() -> None:
    import manta

    with pytest.raises(TypeError, match="LoggingConfig"):
        manta.init(logging_config={"encoding": "JSON"})
    assert not manta.is_initialized()

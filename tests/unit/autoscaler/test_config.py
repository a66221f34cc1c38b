"""Reading and checking an autoscaling config: Ray's names, and a clear error for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manta._private.autoscaler.config import AutoscalingConfigError, load, parse


def config(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "cluster_name": "demo",
        "idle_timeout_minutes": 2,
        "provider": {"type": "local"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {}},  # nothing runs there: fine for the head
            "cpu-4": {"resources": {"CPU": 4}, "labels": {"zone": "a"}, "min_workers": 1, "max_workers": 3},
            "gpu": {"resources": {"CPU": 8, "GPU": 1}, "max_workers": 2},
        },
    }
    raw.update(changes)
    return raw


def test_a_ray_style_config_is_read_with_its_defaults() -> None:
    parsed = parse(config())
    assert set(parsed.worker_types()) == {"cpu-4", "gpu"}
    cpu = parsed.node_types["cpu-4"]
    assert (cpu.resources, cpu.labels, cpu.min_workers, cpu.max_workers) == (
        {"CPU": 4.0},
        {"zone": "a"},
        1,
        3,
    )
    assert parsed.max_workers == 2  # unset: Ray's default
    assert parsed.idle_timeout_s == 120 and parsed.upscaling_speed == 1.0
    wide = parse({"max_workers": 7, "available_node_types": {"w": {"resources": {"CPU": 1}}}})
    assert wide.node_types["w"].max_workers == 7  # a type's defaults to the cluster's, as in Ray


def test_yaml_and_json_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "available_node_types:\n  w:\n    resources: {CPU: 2}\n    max_workers: 4\nupscaling_speed: 2\n"
    )
    assert load(str(tmp_path / "c.yaml")).upscaling_speed == 2.0
    (tmp_path / "c.json").write_text('{"available_node_types": {"w": {"resources": {"CPU": 1}}}}')
    assert load(str(tmp_path / "c.json")).node_types["w"].max_workers == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_wrokers": 3}, r"unknown key\(s\) max_wrokers; known: .*max_workers"),
        (
            {"setup_commands": ["pip install x"]},
            r"setup_commands is Ray's settings for machines it sets up over SSH",
        ),
        ({"provider": {"type": "aws"}}, r"provider.type must be one of local, kubernetes"),
        ({"head_node_type": "boss"}, r"head_node_type 'boss' is not one of available_node_types"),
        ({"upscaling_speed": 0}, r"upscaling_speed must be above 0"),
        ({"idle_timeout_minutes": "soon"}, r"idle_timeout_minutes must be a number"),
        ({"max_workers": -1}, r"max_workers must be a whole number of nodes, 0 or more"),
        ({"available_node_types": {}}, r"available_node_types must name at least one node type"),
        ({"available_node_types": {"head": {"resources": {"CPU": 1}}}}, r"has no worker node type"),
    ],
)
def test_bad_settings_are_refused_saying_which_and_why(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AutoscalingConfigError, match=message):
        parse(config(**changes))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"resources": {"CPU": 2}, "min_workers": 3, "max_workers": 1},
            r"min_workers 3 above its max_workers 1",
        ),
        ({"resources": {}}, r"'w' has no resources"),
        ({"resources": {"CPU": 0}}, r"'w' has no resources"),
        ({}, r"'w' has no resources"),
        ({"resources": {"CPU": -2}}, r"resources"),
        ({"resources": {"CPU": 1}, "max_workers": 1.5}, r"max_workers must be a whole number"),
        ({"resources": {"CPU": 1}, "labels": {"zone": 3}}, r"labels must map names to strings"),
        ({"resources": {"CPU": 1}, "disk": 10}, r"unknown key\(s\) disk"),
        ("cpu", r"must be a mapping"),
    ],
)
def test_bad_node_types_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(AutoscalingConfigError, match=message):
        parse({"available_node_types": {"w": spec}})


def test_unreadable_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(AutoscalingConfigError, match="cannot read the autoscaling config"):
        load(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("available_node_types: [unclosed")
    with pytest.raises(AutoscalingConfigError, match="is not valid YAML"):
        load(str(tmp_path / "bad.yaml"))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(AutoscalingConfigError, match="is a mapping of settings"):
        load(str(tmp_path / "list.yaml"))

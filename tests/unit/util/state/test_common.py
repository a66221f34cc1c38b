"""The state API's pure rules: filters, limits, detail fields and summaries."""

from __future__ import annotations

import dataclasses

import pytest

from manta.util.state import common


def actor(actor_id: str, class_name: str, state: str, **more) -> dict:
    return {
        "actor_id": actor_id,
        "class_name": class_name,
        "state": state,
        "job_id": "01000000",
        "name": "",
        "node_id": None,
        "pid": 7,
        "ray_namespace": "ns",
        "num_restarts": 0,
        **more,
    }


def test_filters_may_name_any_field_and_say_which_when_not():
    assert common.check_filters("actors", [("num_restarts", "=", 0)]) == [("num_restarts", "=", 0)]
    with pytest.raises(
        ValueError, match="Cannot filter workers by 'colour': the filterable columns are worker_id"
    ):
        common.check_filters("workers", [("colour", "=", "red")])
    with pytest.raises(ValueError, match="Unsupported filter predicate '<'"):
        common.check_filters("nodes", [("state", "<", "x")])
    with pytest.raises(ValueError, match="A filter is \\(column, operator, value\\)"):
        common.check_filters("jobs", ["state=RUNNING"])
    with pytest.raises(ValueError, match="the state API lists actors, nodes"):
        common.check_resource("gpus")


def test_tasks_filter_by_the_store_columns():
    common.check_filters("tasks", [("worker_pid", "!=", "1")])
    with pytest.raises(ValueError, match="Cannot filter tasks by 'events'"):
        common.check_filters("tasks", [("events", "=", "x")])


def test_values_compare_as_text_and_booleans_in_either_case():
    rows = [{"pid": 7, "is_alive": True}, {"pid": 8, "is_alive": False}]
    assert common.select(rows, [("pid", "=", "7")], 10) == ([rows[0]], 1)
    assert common.select(rows, [("is_alive", "=", "false")], 10) == ([rows[1]], 1)
    assert common.select(rows, [("is_alive", "!=", "TRUE")], 10) == ([rows[1]], 1)
    assert common.select(rows, [], 1) == ([rows[0]], 2)  # cut, but both matched


def test_a_huge_limit_is_capped_with_a_warning_and_a_negative_one_refused():
    assert common.capped_limit(50) == (50, None)
    limit, warning = common.capped_limit(10**9)
    assert limit == common.MAX_LIMIT and "at most 10000" in (warning or "")
    with pytest.raises(ValueError, match="at least 0"):
        common.capped_limit(-1)


def test_detail_fields_stay_none_unless_asked():
    row = actor("a1", "Kept", "ALIVE", death_cause="x", is_detached=True)
    [plain] = common.to_records("actors", [row], detail=False)
    [full] = common.to_records("actors", [row], detail=True)
    assert plain.num_restarts is None and plain.is_detached is None and plain.class_name == "Kept"
    assert full.num_restarts == 0 and full.is_detached is True
    assert full["class_name"] == "Kept" and full.get("missing", 3) == 3  # read as a dict too
    with pytest.raises(KeyError):
        full["missing"]


def test_every_record_keeps_rays_main_columns_first():
    for resource, record in common.RECORDS.items():
        names = [f.name for f in dataclasses.fields(record)]
        assert resource == "runtime_envs" or common.ID_COLUMNS[resource] in names
        main = common.main_columns(resource)
        assert names[: len(main)] == main  # detail fields come after the main ones


def test_actors_are_summarized_by_class_and_state():
    rows = [actor("a", "A", "ALIVE"), actor("b", "A", "DEAD"), actor("c", "B", "ALIVE")]
    summary = common.summarize_actors(rows)
    assert summary["total_actors"] == 3 and summary["summary_by"] == "class"
    assert summary["summary"]["A"]["state_counts"] == {"ALIVE": 1, "DEAD": 1}


def test_objects_are_summarized_once_per_object_by_call_site():
    def ref(object_id: str, site: str, pid: int, ref_type: str = "LOCAL_REFERENCE") -> dict:
        return {
            "object_id": object_id,
            "object_size": 2**20,
            "task_status": "FINISHED",
            "reference_type": ref_type,
            "call_site": site,
            "pid": pid,
            "ip": "10.0.0.1",
        }

    rows = [ref("o1", "f.py:3", 1), ref("o1", "f.py:3", 2, "BORROWED"), ref("o2", "", 1)]
    summary = common.summarize_objects(rows)
    assert summary["total_objects"] == 2 and summary["total_size_mb"] == 2.0
    site = summary["summary"]["f.py:3"]
    assert site["total_objects"] == 1 and site["total_num_workers"] == 2 and site["total_num_nodes"] == 1
    assert site["ref_type_counts"] == {"LOCAL_REFERENCE": 1, "BORROWED": 1}
    assert summary["summary"]["disabled"]["total_objects"] == 1 and summary["callsite_enabled"]

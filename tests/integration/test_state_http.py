"""The task-event store over the head's HTTP service (Ray's /api/v0 paths and shapes),
with a real HTTP client: roles, filters, limits and bad queries."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

import manta as ray
from manta.util.state import get_task
from tests.http_api import request
from tests.polling import wait_until


@pytest.fixture(scope="module")
def api(head):
    token = Path(head["session_dir"], "token").read_text().strip()
    return {"url": "http://" + head.dashboard_url, "token": token, "session_dir": head["session_dir"]}


@ray.remote
def double(x):
    return 2 * x


@ray.remote
def explode():
    raise KeyError("gone")


def query(**params) -> str:
    return urllib.parse.urlencode(params, doseq=True)


def test_tasks_are_listed_filtered_and_summarized(api):
    ok, bad = double.remote(2), explode.remote()
    assert ray.get(ok) == 4
    with pytest.raises(KeyError):
        ray.get(bad)
    wait_until(lambda: (lambda r: r is not None and r.state == "FAILED" and r.name)(get_task(bad)))
    status, body = request(
        api,
        "GET",
        "/api/v0/tasks?" + query(filter_keys="state", filter_predicates="=", filter_values="FAILED"),
    )
    assert status == 200 and body["result"] is True
    result = body["data"]["result"]
    assert bad.task_id().hex() in {r["task_id"] for r in result["result"]}
    assert all(r["state"] == "FAILED" for r in result["result"]) and result["total"] >= 2
    assert result["num_filtered"] == result["num_after_truncation"] == len(result["result"])
    status, body = request(api, "GET", "/api/v0/tasks?" + query(limit=1, detail="true"))
    assert status == 200 and len(body["data"]["result"]["result"]) == 1
    assert body["data"]["result"]["result"][0]["events"]  # detail fields
    status, body = request(api, "GET", "/api/v0/tasks/summarize")
    summary = body["data"]["result"]["node_id_to_summary"]["cluster"]["summary"]
    assert (
        summary["double"]["state_counts"]["FINISHED"] >= 1
        and summary["explode"]["state_counts"]["FAILED"] >= 1
    )
    status, events = request(api, "GET", "/api/v0/tasks/timeline")
    assert status == 200 and ok.task_id().hex() in {e["args"]["task_id"] for e in events}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (
            {"filter_keys": "colour", "filter_predicates": "=", "filter_values": "red"},
            "filterable columns are",
        ),
        ({"filter_keys": "state", "filter_predicates": "~", "filter_values": "x"}, "use one of =, !="),
        (
            {"filter_keys": ["state", "name"], "filter_predicates": "=", "filter_values": "x"},
            "same number of times",
        ),
        ({"limit": "lots"}, "'limit' must be an integer"),
        ({"limit": "-1"}, "'limit' must be at least 0"),
    ],
)
def test_bad_queries_are_400_naming_the_problem(api, params, words):
    status, body = request(api, "GET", "/api/v0/tasks?" + query(**params))
    assert status == 400 and words in body["error"]


def test_a_huge_limit_is_capped_and_said_so(api):
    status, body = request(api, "GET", "/api/v0/tasks?limit=99999999")
    assert status == 200 and "at most 10000" in body["data"]["result"]["warnings"][0]


def test_a_reader_may_list_and_no_one_else(api):
    status, body = request(api, "POST", "/api/tokens", {"role": "read", "name": "state-viewer"})
    assert status == 200, body
    for path in ("/api/v0/tasks", "/api/v0/tasks/summarize", "/api/v0/tasks/timeline"):
        assert request(api, "GET", path, token=body["token"])[0] == 200
        assert request(api, "GET", path, token=None)[0] == 401
        assert request(api, "GET", path, token="not-a-token")[0] == 401

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
        ({"limit": "-1"}, "'limit' must be between 0 and"),
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
    paths = ["/api/v0/tasks", "/api/v0/tasks/summarize", "/api/v0/tasks/timeline", "/api/v0/actors/summarize"]
    listed = ("actors", "nodes", "workers", "placement_groups", "objects", "jobs", "runtime_envs")
    paths += [f"/api/v0/{r}" for r in listed]
    for path in paths:
        assert request(api, "GET", path, token=body["token"])[0] == 200
        assert request(api, "GET", path, token=None)[0] == 401
        assert request(api, "GET", path, token="not-a-token")[0] == 401


def test_every_resource_is_listed_gotten_and_summarized(api):
    @ray.remote
    class Seen:
        def ready(self):
            return True

    seen = Seen.options(name="seen-over-http").remote()
    ray.get(seen.ready.remote())
    kept = ray.put(bytes(100_000))
    for resource in ("actors", "nodes", "workers", "placement_groups", "objects", "jobs", "runtime_envs"):
        status, body = request(api, "GET", f"/api/v0/{resource}")
        assert status == 200, (resource, body)
        assert body["data"]["result"]["num_after_truncation"] == len(body["data"]["result"]["result"])
    status, body = request(
        api,
        "GET",
        "/api/v0/actors?" + query(filter_keys="name", filter_predicates="=", filter_values="seen-over-http"),
    )
    [actor] = body["data"]["result"]["result"]
    assert actor["class_name"] == "Seen" and actor["state"] == "ALIVE"
    status, body = request(api, "GET", f"/api/v0/actors/{actor['actor_id']}")
    assert status == 200 and body["data"]["result"]["num_restarts"] == 0
    status, body = request(api, "GET", f"/api/v0/objects/{kept.hex()}")
    assert status == 200 and body["data"]["result"][0]["object_size"] >= 100_000
    status, body = request(api, "GET", "/api/v0/actors/summarize")
    assert (
        body["data"]["result"]["node_id_to_summary"]["cluster"]["summary"]["Seen"]["state_counts"]["ALIVE"]
        == 1
    )
    status, body = request(api, "GET", "/api/v0/objects/summarize")
    assert status == 200 and body["data"]["result"]["node_id_to_summary"]["cluster"]["total_objects"] >= 1
    ray.kill(seen)


@pytest.mark.parametrize("resource", ["actors", "nodes", "workers", "placement_groups", "jobs", "objects"])
def test_an_unknown_id_is_404_naming_it(api, resource):
    status, body = request(api, "GET", f"/api/v0/{resource}/feedface")
    assert status == 404 and "'feedface'" in body["error"]


def test_an_unknown_column_is_400_listing_the_valid_ones(api):
    status, body = request(
        api, "GET", "/api/v0/workers?" + query(filter_keys="colour", filter_predicates="=", filter_values="x")
    )
    assert status == 400 and "worker_id, is_alive, worker_type" in body["error"]


def test_the_python_api_reads_over_http_with_a_user_token(api, monkeypatch):
    """From off the cluster the head's dashboard is the way in, with a read token."""
    from manta.util.state import explain, list_actors, list_nodes, summarize_tasks

    status, body = request(api, "POST", "/api/tokens", {"role": "read", "name": "state-remote"})
    assert status == 200, body
    monkeypatch.setenv("MANTA_AUTH_TOKEN", body["token"])
    [node] = list_nodes(address=api["url"])
    assert node.state == "ALIVE" and node.start_time_ms is None  # detail fields only on request
    assert list_actors(address=api["url"], filters=[("state", "=", "NO-SUCH-STATE")]) == []
    assert "cluster" in summarize_tasks(address=api["url"])
    ref = double.remote(21)
    assert ray.get(ref) == 42
    assert explain(ref, address=api["url"])
    monkeypatch.setenv("MANTA_AUTH_TOKEN", "mt_000000000000_" + "0" * 64)
    with pytest.raises(RuntimeError, match="401"):
        list_nodes(address=api["url"])


def test_a_submitted_job_is_gotten_by_its_submission_id(api, client):
    from manta.job_submission import JobStatus
    from manta.util.state import get_job, list_jobs

    sid = client.submit_job(entrypoint="python -c \"import manta; manta.init(); print('listed')\"")
    wait_until(lambda: client.get_job_status(sid).is_terminal(), timeout=60)
    job = get_job(sid)
    assert job is not None and job.submission_id == sid and job.type.value == "SUBMISSION"
    assert job.status == JobStatus.SUCCEEDED and job.job_id  # its driver's job id filled in
    assert get_job(job.job_id) == job
    assert sid in {j.submission_id for j in list_jobs(filters=[("type", "=", "SUBMISSION")])}
    status, body = request(api, "GET", f"/api/v0/jobs/{sid}")
    assert status == 200 and body["data"]["result"]["submission_id"] == sid


def test_an_actor_is_killed_over_http_by_a_submit_role_and_the_kill_is_audited(api):
    @ray.remote(max_restarts=1)
    class Victim:
        def ping(self):
            return "pong"

    victim = Victim.remote()
    assert ray.get(victim.ping.remote()) == "pong"
    actor_id = victim._actor_id.hex()
    status, body = request(api, "POST", "/api/tokens", {"role": "read", "name": "kill-viewer"})
    assert status == 200, body
    status, body = request(api, "POST", f"/api/v0/actors/{actor_id}/kill", token=body["token"])
    assert status == 403 and "needs the 'submit' role" in body["error"]
    for bad, words in (("nothex", "is not an actor id"), ("ab" * 3, "is not an actor id")):
        status, body = request(api, "POST", f"/api/v0/actors/{bad}/kill")
        assert status == 400 and words in body["error"], body
    status, body = request(api, "POST", f"/api/v0/actors/{'0' * len(actor_id)}/kill")
    assert status == 404 and "there is no actor" in body["error"], body
    status, body = request(api, "POST", f"/api/v0/actors/{actor_id}/kill?no_restart=maybe")
    assert status == 400 and "no_restart must be true or false" in body["error"]
    status, body = request(api, "POST", f"/api/v0/actors/{actor_id}/kill")
    assert (status, body) == (200, {"killed": True})
    with pytest.raises(ray.exceptions.RayActorError):  # not restarted, though it had a restart left
        ray.get(victim.ping.remote())
    status, events = request(api, "GET", "/api/audit?limit=10000")
    assert status == 200
    kills = [e for e in events if e["event"] == "actor_kill"]
    assert kills and kills[-1]["actor_id"] == actor_id and kills[-1]["by"] == "cluster", kills


def test_listings_are_paged_with_an_offset(api):
    refs = [double.remote(i) for i in range(6)]
    ray.get(refs)
    wanted = {r.task_id().hex() for r in refs}
    by_name = [("func_or_class_name", "=", "double")]  # their owner's definitions are in, too
    wait_until(lambda: wanted <= {t.task_id for t in ray.util.state.list_tasks(filters=by_name, limit=10000)})
    base = dict(filter_keys="func_or_class_name", filter_predicates="=", filter_values="double", limit=4)
    pages = [
        request(api, "GET", "/api/v0/tasks?" + query(**base, offset=offset))[1]["data"]["result"]
        for offset in (0, 4)
    ]
    first, second = ([r["task_id"] for r in page["result"]] for page in pages)
    assert (
        len(first) == 4
        and not set(first) & set(second)
        and pages[0]["num_filtered"] == len(first) + len(second)
    )
    status, body = request(api, "GET", "/api/v0/actors?offset=-1")
    assert status == 400 and "offset" in body["error"]
    everything = request(api, "GET", "/api/v0/workers?limit=1000")[1]["data"]["result"]["result"]
    tail = request(api, "GET", "/api/v0/workers?limit=1000&offset=1")[1]["data"]["result"]["result"]
    assert [w["worker_id"] for w in tail] == [w["worker_id"] for w in everything[1:]]

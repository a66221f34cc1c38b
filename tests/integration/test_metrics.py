"""Metrics on a live cluster, read with a real HTTP client from the head: /metrics behind
the token, Ray's metric names for tasks, actors and nodes, user metrics defined in tasks,
actors and the driver, and the in-memory history for the dashboard's charts."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import manta as ray
from manta.util.metrics import Counter, Gauge, Histogram
from tests.http_api import request
from tests.polling import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api():
    context = ray.init(
        include_dashboard=True,
        num_cpus=2,
        # Reports and history samples come quickly, so the tests wait little for them.
        _system_config={"metrics_report_interval_s": 0.1, "metrics_history_interval_s": 0.2},
    )
    token = Path(context["session_dir"], "token").read_text().strip()
    yield {"url": "http://" + context.dashboard_url, "token": token}
    ray.shutdown()


@pytest.fixture(scope="module")
def reader(api) -> str:
    status, body = request(api, "POST", "/api/tokens", {"role": "read", "name": "metrics-reader"})
    assert status == 200, body
    return str(body["token"])


def scrape(api, token: str | None) -> tuple[int, str, str]:
    req = urllib.request.Request(api["url"] + "/metrics")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def samples(text: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


@ray.remote
def score(x: int) -> int:
    hits = Counter("metrics_test_hits", description="Calls of score.", tag_keys=("parity",))
    hits.inc(tags={"parity": "even" if x % 2 == 0 else "odd"})
    return x


@ray.remote
class Tank:
    def __init__(self) -> None:
        self.level = Gauge("metrics_test_level", tag_keys=("tank",)).set_default_tags({"tank": "a"})

    def fill(self, litres: float) -> None:
        self.level.set(litres)


@ray.remote
def define_a_clash() -> None:
    Counter("metrics_test_clash")
    Gauge("metrics_test_clash")


def test_metrics_need_a_token_and_the_read_role_is_enough(api, reader) -> None:
    assert scrape(api, None)[0] == 401
    assert scrape(api, "not-a-token")[0] == 401
    status, content_type, text = scrape(api, reader)
    assert status == 200 and content_type.startswith("text/plain")
    assert "# TYPE ray_node_mem_total gauge" in text


def test_tasks_actors_nodes_and_user_metrics_reach_the_head(api, reader) -> None:
    assert ray.get([score.remote(i) for i in range(5)]) == list(range(5))
    tank = Tank.remote()
    ray.get(tank.fill.remote(42.0))
    latency = Histogram("metrics_test_latency", boundaries=[10, 100])
    for ms in (5, 50, 500):
        latency.observe(ms)
    node_id = ray.get_runtime_context().get_node_id()

    def complete() -> list | None:
        got = samples(scrape(api, reader)[2])
        hits: dict[str, float] = {}  # a parity's hits may come from several workers: a series each
        for s in got:
            if s.name == "ray_metrics_test_hits_total":
                hits[s.labels["parity"]] = hits.get(s.labels["parity"], 0.0) + s.value
        finished = sum(
            s.value
            for s in got
            if s.name == "ray_tasks" and s.labels["Name"] == "score" and s.labels["State"] == "FINISHED"
        )
        levels = [s.value for s in got if s.name == "ray_metrics_test_level"]
        count = [s.value for s in got if s.name == "ray_metrics_test_latency_count"]
        done = hits == {"even": 3.0, "odd": 2.0} and finished == 5 and levels == [42.0] and count == [3.0]
        return got if done else None

    got = wait_until(complete, what="the tasks' and the user metrics in /metrics")
    actors = [s for s in got if s.name == "ray_actors" and s.labels["Name"] == "Tank"]
    assert [(s.labels["State"], s.value) for s in actors if s.value] == [("ALIVE", 1.0)]
    node = [s for s in got if s.name == "ray_node_mem_total"]
    assert [s.labels["NodeId"] for s in node] == [node_id] and node[0].value > 0
    assert any(s.name == "ray_node_cpu_utilization" and s.labels["NodeId"] == node_id for s in got)
    assert any(s.name == "ray_object_store_used_memory" for s in got)
    assert any(s.name == "ray_grpc_server_req_process_time_ms_count" and s.value > 0 for s in got)
    level = next(s for s in got if s.name == "ray_metrics_test_level")
    assert level.labels["tank"] == "a" and level.labels["NodeId"] == node_id and level.labels["WorkerId"]
    bucket = {s.labels["le"]: s.value for s in got if s.name == "ray_metrics_test_latency_bucket"}
    assert bucket == {"10.0": 1.0, "100.0": 2.0, "+Inf": 3.0}


def test_a_clashing_definition_in_a_task_fails_there(api) -> None:
    with pytest.raises(ValueError, match="already defined as a counter"):
        ray.get(define_a_clash.remote())


def test_the_history_keeps_cluster_samples_for_the_charts(api, reader) -> None:
    ray.get([score.remote(i) for i in range(3)])

    def history() -> dict | None:
        status, body = request(api, "GET", "/api/v0/metrics/history", token=reader)
        assert status == 200, body
        done = [s for s in body["samples"] if s["tasks"].get("FINISHED", 0) >= 3]
        return body if len(done) >= 2 else None

    body = wait_until(history, what="two history samples with finished tasks")
    assert body["interval_s"] == 0.2 and body["window_s"] == 3600  # an hour (metrics_history_s)
    last = body["samples"][-1]
    assert last["nodes_alive"] == 1 and last["cpu_count"] >= 1
    assert 0 < last["mem_used_bytes"] < last["mem_total_bytes"]
    assert last["object_store_capacity_bytes"] > 0
    since = body["samples"][-2]["time"]
    status, newer = request(api, "GET", f"/api/v0/metrics/history?since={since}", token=reader)
    assert status == 200 and newer["samples"] and all(s["time"] > since for s in newer["samples"])
    status, error = request(api, "GET", "/api/v0/metrics/history?since=yesterday", token=reader)
    assert status == 400 and "'since' must be a number" in error["error"]
    assert request(api, "GET", "/api/v0/metrics/history", token=None)[0] == 401


def test_rays_metric_check_condition_reads_the_cluster(api):
    """Ray's test helper, through the compat path, waits on samples of the cluster's metrics."""
    from manta.compat.ray_private.test_utils import MetricSamplePattern, get_metric_check_condition

    Gauge("compat_check_gauge", description="Set by the driver.").set(7)
    wanted = [
        MetricSamplePattern(name="ray_compat_check_gauge", value=7.0),
        MetricSamplePattern(name="ray_node_mem_total"),
    ]
    wait_until(get_metric_check_condition(wanted), timeout=30)
    assert not get_metric_check_condition([MetricSamplePattern(name="ray_compat_check_gauge", value=8.0)])()

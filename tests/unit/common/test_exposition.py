"""Families to Prometheus text and back, and the head's merge of several daemons' texts."""

from __future__ import annotations

from manta._private.common import exposition as ex
from manta._private.common import metric_defs as md
from manta._private.common.user_metrics import check_definition

NODE = ("n1", "10.0.0.1")


def samples(families, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value for fam in families for s in fam.samples if s.name == name
    }


def test_system_families_render_and_parse_back() -> None:
    text = ex.render(
        [
            ex.family(md.NODE_METRICS["ray_node_mem_used"], [((), 1024)], NODE),
            ex.family(md.NODE_METRICS["manta_object_store_spilled_bytes"], [((), 7)], NODE),
            ex.family(md.GCS_METRICS["ray_tasks"], [(("f", "RUNNING", "0", "01000000", "gcs"), 3)]),
        ]
    ).decode()
    assert "# TYPE ray_node_mem_used gauge" in text
    assert "manta_object_store_spilled_bytes_total" in text  # a counter's samples end in _total
    families = ex.parse(text)
    assert samples(families, "ray_node_mem_used") == {(("NodeAddress", "10.0.0.1"), ("NodeId", "n1")): 1024.0}
    assert samples(families, "ray_tasks") == {
        (("IsRetry", "0"), ("JobId", "01000000"), ("Name", "f"), ("Source", "gcs"), ("State", "RUNNING")): 3.0
    }


def test_histogram_counts_become_cumulative_buckets() -> None:
    fam = ex.histogram("ray_h", "H.", ("Method",), (1.0, 10.0), [(("Ping",), [2, 1, 1, 56.5])])
    (parsed,) = ex.parse(ex.render([fam]).decode())
    got = {(s.name, s.labels.get("le")): s.value for s in parsed.samples}
    assert got == {
        ("ray_h_bucket", "1.0"): 2.0,
        ("ray_h_bucket", "10.0"): 3.0,
        ("ray_h_bucket", "+Inf"): 4.0,
        ("ray_h_count", None): 4.0,
        ("ray_h_sum", None): 56.5,
    }


def test_user_metrics_carry_node_worker_and_tags_and_awkward_values_survive() -> None:
    counter = check_definition("hits", md.COUNTER, "", ("path",))
    families = list(ex.user_families([(counter, {("w1", ('a "quoted"\nvalue',)): 3.0})], NODE))
    (parsed,) = ex.parse(ex.render(families).decode())
    assert parsed.name == "ray_hits" and parsed.type == "counter"
    (sample,) = parsed.samples
    assert sample.name == "ray_hits_total" and sample.value == 3.0
    assert sample.labels == {
        "NodeId": "n1",
        "NodeAddress": "10.0.0.1",
        "WorkerId": "w1",
        "path": 'a "quoted"\nvalue',
    }


def test_merge_joins_families_of_one_name_and_leaves_out_a_conflicting_kind() -> None:
    gauge = check_definition("depth", md.GAUGE, "", ())
    counter = check_definition("depth", md.COUNTER, "", ())
    node_a = ex.parse(ex.render(ex.user_families([(gauge, {("w1", ()): 1.0})], ("a", "h1"))).decode())
    node_b = ex.parse(ex.render(ex.user_families([(gauge, {("w2", ()): 2.0})], ("b", "h2"))).decode())
    node_c = ex.parse(ex.render(ex.user_families([(counter, {("w3", ()): 5.0})], ("c", "h3"))).decode())
    merged, conflicts = ex.merge([node_a, node_b, node_c])
    assert [f.name for f in merged] == ["ray_depth"]
    assert sorted(s.labels["NodeId"] for s in merged[0].samples) == ["a", "b"]
    assert conflicts == ["metric ray_depth is a gauge on one node and a counter on another"]
    text = ex.render(merged).decode()
    assert text.count("# TYPE ray_depth gauge") == 1

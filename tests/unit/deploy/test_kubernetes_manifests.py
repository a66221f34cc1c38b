"""deploy/kubernetes/manifests, checked offline (k8s_checks.py). No Kubernetes cluster runs
here: what is tested for real and what only this way is in docs/kubernetes.md."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.deploy import k8s_checks as k8s

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
DOCS = [
    doc
    for path in sorted((DEPLOY / "manifests").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]


def test_every_manifest_is_valid_kubernetes_in_its_namespace() -> None:
    k8s.check_valid(DOCS)
    assert all(doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "manta" for doc in DOCS)
    [namespace] = k8s.of_kind(DOCS, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    k8s.check_pod_security(DOCS)


def test_the_autoscaler_may_touch_only_pods_in_its_namespace() -> None:
    k8s.check_rbac(DOCS, head="manta-head")


def test_the_head_service_exposes_its_three_ports_and_only_the_ingress_reaches_two() -> None:
    k8s.check_ports(DOCS)


def test_every_pod_speaks_mutual_tls_checking_one_name() -> None:
    k8s.check_tls(DOCS, server_name="nodes.manta.internal")


def test_the_autoscaling_configs_are_valid_and_make_valid_pods() -> None:
    assert len(k8s.check_autoscaling(DOCS)) == 2  # the long-lived cluster's and the Job's


def test_the_image_is_slim_non_root_and_builds_nothing() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    final = lines[stages[-1] :]
    assert final[0].startswith("FROM python:") and final[0].endswith("-slim")
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    text = "\n".join(lines)
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in text

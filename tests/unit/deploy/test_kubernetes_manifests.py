"""deploy/kubernetes, checked offline: every manifest against Kubernetes' published schemas
(kubernetes-validate, strict), the security settings the deployment guide asks for, and
the autoscaling configs inside them against Manta's own parser. No Kubernetes cluster
runs here: what is tested for real and what only this way is in docs/kubernetes.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from manta._private.autoscaler.config import parse
from manta._private.autoscaler.kubernetes_pods import check_template, node_pod

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "manifests").glob("*.yaml")):
        found += [
            (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
    return found


DOCS = documents()


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def pod_specs() -> list[dict[str, Any]]:
    return [doc["spec"]["template"]["spec"] for doc in (*of_kind("Deployment"), *of_kind("Job"))]


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_every_manifest_is_valid_kubernetes(where: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "manta", where


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    for spec in pod_specs():
        secrets = [v for v in spec.get("volumes", []) if "secret" in v]
        if secrets:  # mounted 0400: only with fsGroup can the non-root user read them
            assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not spec.get("hostNetwork") and not spec.get("hostPID")
        assert not any("hostPath" in volume for volume in spec.get("volumes", []))
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            # The token is a mounted Secret, never a literal in the spec.
            assert all("token" not in e["name"].lower() or "valueFrom" in e for e in container.get("env", []))
    namespace = of_kind("Namespace")[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_autoscaler_may_touch_only_pods_in_its_namespace() -> None:
    assert not of_kind("ClusterRole") and not of_kind("ClusterRoleBinding")
    [role] = of_kind("Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert set(rules) == {(("",), ("pods",)), (("apps",), ("deployments",))}
    assert set(rules[(("",), ("pods",))]["verbs"]) == {"get", "list", "create", "delete"}
    assert rules[(("apps",), ("deployments",))] == {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "resourceNames": ["manta-head"],
        "verbs": ["get"],
    }


def test_the_head_service_exposes_its_three_ports_and_only_the_ingress_reaches_two() -> None:
    [service] = of_kind("Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert {p["port"] for p in service["spec"]["ports"]} == {6379, 8265, 10001}
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind("NetworkPolicy")}
    assert policies["manta-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    [rule] = policies["manta-head-from-ingress"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {8265, 10001}  # not the gcs
    [pdb] = of_kind("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 0


def test_the_autoscaling_configs_are_valid_and_make_valid_pods() -> None:
    configs = [doc for doc in of_kind("ConfigMap") if "autoscaling.yaml" in doc.get("data", {})]
    assert len(configs) == 2  # the long-lived cluster's and the Job's
    for doc in configs:
        config = parse(yaml.safe_load(doc["data"]["autoscaling.yaml"]))
        assert config.provider["type"] == "kubernetes"
        for node_type in config.worker_types().values():
            check_template(node_type)
            pod = node_pod(
                node_type,
                f"{node_type.name}-0a1b2c3d",
                cluster=config.cluster_name,
                namespace="manta",
                head_address="manta-head.manta.svc:6379",
                token_secret=config.provider["token_secret"],
                owner={"apiVersion": "apps/v1", "kind": "Deployment", "name": "manta-head", "uid": "u-1"},
            )
            kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
            # Worker pods are inside the internal NetworkPolicy (it selects manta.io/cluster).
            assert "manta.io/cluster" in pod["metadata"]["labels"]


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

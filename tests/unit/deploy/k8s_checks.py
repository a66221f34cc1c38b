"""What every rendering of Manta's Kubernetes deployment must satisfy (the plain manifests
and the Helm chart's output): valid against Kubernetes' published schemas (offline,
strict), the restricted Pod Security Standard, least-privilege RBAC, the head's ports,
and autoscaling configs Manta's own parser accepts that make valid pods."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml

from manta._private.autoscaler.config import parse
from manta._private.autoscaler.kubernetes_pods import check_template, node_pod

K8S_VERSION = "1.30.0"  # the oldest Kubernetes the deployment supports

Docs = list[dict[str, Any]]


def of_kind(docs: Docs, kind: str) -> Docs:
    return [doc for doc in docs if doc["kind"] == kind]


def check_valid(docs: Docs) -> None:
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def check_pod_security(docs: Docs) -> None:
    specs = [doc["spec"]["template"]["spec"] for doc in (*of_kind(docs, "Deployment"), *of_kind(docs, "Job"))]
    assert specs
    for spec in specs:
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True and context["seccompProfile"] == {"type": "RuntimeDefault"}
        if any("secret" in v for v in spec.get("volumes", [])):  # mounted 0400: read through the group
            assert context["fsGroup"] == context["runAsUser"]
        assert not spec.get("hostNetwork") and not spec.get("hostPID")
        assert not any("hostPath" in volume for volume in spec.get("volumes", []))
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["privileged"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            # The token is a mounted Secret, never a literal in the spec.
            assert all("token" not in e["name"].lower() or "valueFrom" in e for e in container.get("env", []))


def check_rbac(docs: Docs, head: str) -> None:
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    [role] = of_kind(docs, "Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert set(rules) == {(("",), ("pods",)), (("apps",), ("deployments",))}
    assert set(rules[(("",), ("pods",))]["verbs"]) == {"get", "list", "create", "delete"}
    assert rules[(("apps",), ("deployments",))] == {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "resourceNames": [head],
        "verbs": ["get"],
    }


def check_ports(docs: Docs, gcs: int = 6379, dashboard: int = 8265, client: int = 10001) -> None:
    [service] = of_kind(docs, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert {p["port"] for p in service["spec"]["ports"]} == {gcs, dashboard, client}
    policies = {p["metadata"]["name"].split("-", 1)[1]: p["spec"] for p in of_kind(docs, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    [rule] = policies["head-from-ingress"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {dashboard, client}  # never the gcs
    [pdb] = of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 0


def check_autoscaling(docs: Docs) -> list[Any]:
    """Each autoscaling config parsed; each of its node types makes a valid pod."""
    configs = []
    for doc in of_kind(docs, "ConfigMap"):
        if "autoscaling.yaml" not in doc.get("data", {}):
            continue
        config = parse(yaml.safe_load(doc["data"]["autoscaling.yaml"]))
        provider = config.provider
        assert provider["type"] == "kubernetes"
        for node_type in config.worker_types().values():
            check_template(node_type)
            pod = node_pod(
                node_type,
                f"{node_type.name}-0a1b2c3d",
                cluster=config.cluster_name,
                namespace="manta",
                head_address="manta-head.manta.svc:6379",
                token_secret=provider["token_secret"],
                owner={"apiVersion": "apps/v1", "kind": "Deployment", "name": "manta-head", "uid": "u-1"},
                tls_secret=provider.get("tls_secret", ""),
                tls_server_name=provider.get("tls_server_name", ""),
            )
            kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
            # Worker pods are inside the internal NetworkPolicy (it selects manta.io/cluster).
            assert pod["metadata"]["labels"]["manta.io/cluster"] == config.cluster_name
        configs.append(config)
    return configs


def tls_settings(docs: Docs) -> list[dict[str, str]]:
    """The TLS environment of every Manta container (heads), one dict each."""
    settings = []
    for doc in (*of_kind(docs, "Deployment"), *of_kind(docs, "Job")):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
            settings.append({k: v for k, v in env.items() if k.startswith("MANTA_TLS_")})
    return settings


def check_tls(docs: Docs, server_name: str) -> None:
    """TLS on for the heads and, through the autoscaler's config, for their worker pods,
    all checking certificates against the same name."""
    for settings in tls_settings(docs):
        assert settings["MANTA_TLS_SERVER_NAME"] == server_name
        assert {"MANTA_TLS_CA", "MANTA_TLS_CERT", "MANTA_TLS_KEY"} <= set(settings)
    for doc in of_kind(docs, "ConfigMap"):
        if "autoscaling.yaml" in doc.get("data", {}):
            provider = yaml.safe_load(doc["data"]["autoscaling.yaml"])["provider"]
            assert provider["tls_server_name"] == server_name and provider["tls_secret"]

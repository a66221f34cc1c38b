"""The kubernetes provider's pods, checked against Kubernetes' published schemas offline
(kubernetes-validate; no Kubernetes cluster runs here)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from manta._private.autoscaler.config import AutoscalingConfigError, parse
from manta._private.autoscaler.kubernetes_pods import check_cluster_name, check_template, node_pod, pod_name

K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests support
OWNER = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "name": "manta-head",
    "uid": "0b4a3c1e-1111-2222-3333-444455556666",
}


def node_type(node_config: dict[str, Any], resources: dict[str, float] | None = None) -> Any:
    spec = {
        "resources": resources or {"CPU": 4, "GPU": 1, "memory": 8e9},
        "labels": {"pool": "gpu"},
        "max_workers": 2,
        "node_config": node_config,
    }
    return parse({"available_node_types": {"gpu-4": spec}}).node_types["gpu-4"]


TEMPLATE = {
    "metadata": {"labels": {"team": "ml"}, "annotations": {"note": "kept"}},
    "spec": {
        "containers": [
            {"name": "manta-node", "image": "manta:0.1.0", "env": [{"name": "KEEP", "value": "1"}]}
        ],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"accelerator": "a100"},
    },
}


def make(template: dict[str, Any] = TEMPLATE, **resources: float) -> dict[str, Any]:
    return node_pod(
        node_type(template, resources or None),
        "gpu-4-1a2b3c4d",
        cluster="prod",
        namespace="manta",
        head_address="manta-head:6379",
        token_secret="manta-token",
        owner=OWNER,
    )


def test_a_node_pod_is_a_valid_pod_that_joins_the_head() -> None:
    pod = make()
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "prod-gpu-4-1a2b3c4d" and meta["namespace"] == "manta"
    assert meta["labels"] == {
        "team": "ml",
        "pool": "gpu",
        "manta.io/node-type": "gpu-4",
        "manta.io/launch-id": "gpu-4-1a2b3c4d",
        "manta.io/cluster": "prod",
    }
    assert meta["annotations"] == {"note": "kept"}
    assert meta["ownerReferences"][0]["uid"] == OWNER["uid"]
    [main] = spec["containers"]
    assert main["command"][3:] == [
        "manta-head:6379",
        "--num-cpus",
        "4",
        "--num-gpus",
        "1",
        "--resources",
        "{}",
        "--labels",
        "pool=gpu,manta.io/node-type=gpu-4,manta.io/launch-id=gpu-4-1a2b3c4d",
    ]
    env = {e["name"]: e for e in main["env"]}
    assert env["MANTA_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "manta-token", "key": "token"}
    assert env["KEEP"]["value"] == "1" and "value" not in env["MANTA_AUTH_TOKEN"]  # never in the spec
    assert main["resources"]["limits"] == {"cpu": "4", "memory": "8000000000", "nvidia.com/gpu": "1"}
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["tolerations"] == TEMPLATE["spec"]["tolerations"]  # what the template set is kept
    assert {v["name"]: v["emptyDir"] for v in spec["volumes"]} == {
        "manta-tmp": {},
        "manta-shm": {"medium": "Memory"},
    }


def test_the_template_is_not_changed_and_its_own_limits_win() -> None:
    template = {
        "spec": {"containers": [{"name": "x", "image": "manta", "resources": {"limits": {"memory": "4Gi"}}}]}
    }
    pod = make(template, CPU=2)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert template["spec"]["containers"][0]["name"] == "x"  # a copy was changed, not the config


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"spec": {"containers": []}}, "must list the node's container"),
        ({"spec": {"containers": [{"name": "n"}]}}, "needs an image"),
        ({"pod": {}}, "node_config is a pod template"),
    ],
)
def test_templates_that_cannot_make_a_pod_are_refused(template: dict[str, Any], message: str) -> None:
    with pytest.raises(AutoscalingConfigError, match=message):
        check_template(node_type(template))


def test_names_and_labels_are_kubernetes_safe() -> None:
    assert pod_name("Prod_Cluster", "cpu.4-ab") == "prod-cluster-cpu-4-ab"
    assert len(pod_name("c" * 40, "x" * 40)) == 63
    with pytest.raises(AutoscalingConfigError, match="cluster_name"):
        check_cluster_name("has space")
    bad = parse(
        {
            "available_node_types": {
                "w": {
                    "resources": {"CPU": 1},
                    "labels": {"zone": "a b"},
                    "node_config": {"spec": {"containers": [{"image": "m"}]}},
                }
            }
        }
    )
    with pytest.raises(AutoscalingConfigError, match="not a valid Kubernetes label"):
        check_template(bad.node_types["w"])


def test_the_schema_check_catches_what_kubernetes_would_refuse() -> None:
    pod = make()
    pod["spec"]["containers"][0]["cpu"] = "4"  # not a container field: the API server refuses it
    with pytest.raises(kubernetes_validate.ValidationError, match="'cpu' was unexpected"):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_with_a_tls_secret_the_node_speaks_mutual_tls_checking_the_clusters_name() -> None:
    pod = node_pod(
        node_type(TEMPLATE),
        "gpu-4-1a2b3c4d",
        cluster="prod",
        namespace="manta",
        head_address="manta-head:6379",
        token_secret="manta-token",
        owner=None,
        tls_secret="manta-tls",
        tls_server_name="nodes.manta.internal",
    )
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    [main] = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["MANTA_TLS_CA"] == "/etc/manta/tls/ca.crt" and env["MANTA_TLS_KEY"] == "/etc/manta/tls/tls.key"
    assert env["MANTA_TLS_SERVER_NAME"] == "nodes.manta.internal"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["manta-tls"]["secret"] == {"secretName": "manta-tls", "defaultMode": 0o400}
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000  # the key is readable through the group
    assert "ownerReferences" not in pod["metadata"]

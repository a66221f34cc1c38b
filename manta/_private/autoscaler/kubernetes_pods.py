"""The pod of a worker node on Kubernetes (pure): a node type's pod template (its
``node_config``: ``metadata`` and ``spec``, as in a PodTemplateSpec) made into a pod that
runs ``manta start --address HEAD --block`` with the node type's resources, joins with
the cluster token from a Secret, carries the labels the autoscaler knows its nodes by,
and is owned by the cluster's head object (deleting the cluster deletes its pods).

What the template may set is kept (image, tolerations, node selectors, volumes, ...);
what Manta needs is added or enforced: the command, the token, the pod's IP, requests
and limits from the node type's resources, a non-root security context, scratch space
for /tmp and the object store (/dev/shm), and ``restartPolicy: Never`` (a node that dies
is replaced by the autoscaler, not restarted in place).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from manta._private.autoscaler.config import AutoscalingConfigError, NodeType
from manta._private.autoscaler.provider import launch_labels, start_options

CONTAINER = "manta-node"
IMAGE_USER = 1000  # the image's user (deploy/kubernetes/Dockerfile)
TLS_DIR = "/etc/manta/tls"
CLUSTER_LABEL = "manta.io/cluster"
_TEMPLATE_KEYS = {"metadata", "spec"}
_K8S_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_template(node_type: NodeType) -> None:
    """Raise AutoscalingConfigError for a node_config that cannot make a node's pod."""
    where = f"node type {node_type.name!r}"
    template = node_type.node_config
    unknown = set(template) - _TEMPLATE_KEYS
    if unknown:
        raise AutoscalingConfigError(
            f"{where}: the kubernetes provider's node_config is a pod template (metadata, spec), "
            f"not {', '.join(sorted(unknown))}"
        )
    containers = template.get("spec", {}).get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise AutoscalingConfigError(f"{where}: node_config.spec.containers must list the node's container")
    if not any(c.get("image") for c in containers):
        raise AutoscalingConfigError(f"{where}: node_config.spec.containers needs an image (Manta's)")
    # Launch ids are "<type>-<8 hex digits>" (monitor.py): checked at their longest.
    for key, value in {**node_type.labels, **launch_labels(node_type, f"{node_type.name}-00000000")}.items():
        if not _K8S_LABEL_NAME.match(key) or not _K8S_LABEL_VALUE.match(value) or len(value) > 63:
            raise AutoscalingConfigError(f"{where}: the label {key}={value} is not a valid Kubernetes label")


def check_cluster_name(cluster: str) -> None:
    if not _K8S_LABEL_VALUE.match(cluster) or len(cluster) > 40:
        raise AutoscalingConfigError(
            f"cluster_name {cluster!r} names pods and labels them: letters, digits, '-', '_', '.', "
            "40 characters at most"
        )


def pod_name(cluster: str, launch_id: str) -> str:
    """A DNS-1123 name for the pod (63 characters at most)."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{cluster}-{launch_id}".lower()).strip("-")
    return name[:63].rstrip("-")


def node_pod(
    node_type: NodeType,
    launch_id: str,
    *,
    cluster: str,
    namespace: str,
    head_address: str,
    token_secret: str,
    owner: dict[str, Any] | None,
    tls_secret: str = "",
    tls_server_name: str = "",
) -> dict[str, Any]:
    """The pod; with ``tls_secret`` (a Secret holding ca.crt, tls.crt and tls.key) the node
    speaks mutual TLS, checking servers against ``tls_server_name``."""
    template = copy.deepcopy(node_type.node_config)
    metadata = template.get("metadata", {})
    labels = {**metadata.get("labels", {}), **launch_labels(node_type, launch_id), CLUSTER_LABEL: cluster}
    metadata.update(name=pod_name(cluster, launch_id), namespace=namespace, labels=labels)
    if owner is not None:
        # (Not blockOwnerDeletion: that needs update on the owner's finalizers, which the
        # autoscaler's Role does not grant; the pods go with their owner all the same.)
        metadata["ownerReferences"] = [{**owner, "controller": False}]
    spec = template.get("spec", {})
    spec["restartPolicy"] = "Never"
    spec.setdefault("automountServiceAccountToken", False)  # a node needs no Kubernetes API
    containers = spec["containers"]
    main = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    main["name"] = CONTAINER
    main["command"] = _command(node_type, launch_id, head_address)
    main.pop("args", None)
    main["env"] = [e for e in main.get("env", []) if e.get("name") not in ("MANTA_AUTH_TOKEN", "POD_IP")] + [
        {"name": "MANTA_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": "token"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MANTA_TMPDIR", "value": "/tmp/manta"},
    ]
    main["resources"] = _requests(node_type, main.get("resources", {}))
    _restrict(spec, main)
    if tls_secret:
        _mount_tls(spec, main, tls_secret, tls_server_name)
    _mount_scratch(spec, main)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _restrict(spec: dict[str, Any], main: dict[str, Any]) -> None:
    """The restricted Pod Security Standard, whatever the template says to the contrary
    (it may choose the user and groups, not root)."""
    spec["securityContext"] = {
        "runAsUser": IMAGE_USER,
        "runAsGroup": IMAGE_USER,
        "fsGroup": IMAGE_USER,  # Secrets are mounted 0400: readable through the group
        **spec.get("securityContext", {}),
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    main["securityContext"] = {
        **main.get("securityContext", {}),
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _mount_tls(spec: dict[str, Any], main: dict[str, Any], secret: str, server_name: str) -> None:
    """The TLS settings replace any of the template's (a duplicate name is refused by the API)."""
    main["env"] = [e for e in main["env"] if not e.get("name", "").startswith("MANTA_TLS_")]
    main["volumeMounts"] = [m for m in main.get("volumeMounts", []) if m.get("name") != "manta-tls"]
    spec["volumes"] = [v for v in spec.get("volumes", []) if v.get("name") != "manta-tls"]
    main["env"] += [
        {"name": "MANTA_TLS_CA", "value": f"{TLS_DIR}/ca.crt"},
        {"name": "MANTA_TLS_CERT", "value": f"{TLS_DIR}/tls.crt"},
        {"name": "MANTA_TLS_KEY", "value": f"{TLS_DIR}/tls.key"},
        {"name": "MANTA_TLS_SERVER_NAME", "value": server_name},
    ]
    main.setdefault("volumeMounts", []).append({"name": "manta-tls", "mountPath": TLS_DIR, "readOnly": True})
    spec.setdefault("volumes", []).append(
        {"name": "manta-tls", "secret": {"secretName": secret, "defaultMode": 0o400}}
    )


def _mount_scratch(spec: dict[str, Any], main: dict[str, Any]) -> None:
    """/tmp (sessions, logs) and /dev/shm (the object store) in memory or on the node's
    disk, unless the template mounts its own there."""
    mounts = {m["mountPath"] for m in main.get("volumeMounts", [])}
    volumes = spec.setdefault("volumes", [])
    for name, path, medium in (("manta-tmp", "/tmp", None), ("manta-shm", "/dev/shm", "Memory")):
        if path not in mounts:
            main.setdefault("volumeMounts", []).append({"name": name, "mountPath": path})
            volumes.append({"name": name, "emptyDir": {"medium": medium} if medium else {}})


def _command(node_type: NodeType, launch_id: str, head_address: str) -> list[str]:
    return [
        "sh",
        "-c",
        # $POD_IP is the pod's address (the downward API): what other nodes dial.
        'exec manta start --address "$0" --node-ip-address "$POD_IP" --block "$@"',
        head_address,
        *start_options(node_type, launch_id),
    ]


def _requests(node_type: NodeType, given: dict[str, Any]) -> dict[str, Any]:
    """Requests and limits from the node type's resources (what the template says wins)."""
    amounts: dict[str, str] = {}
    if node_type.resources.get("CPU"):
        amounts["cpu"] = f"{node_type.resources['CPU']:g}"
    if node_type.resources.get("memory"):
        amounts["memory"] = str(int(node_type.resources["memory"]))
    gpus = {"nvidia.com/gpu": f"{node_type.resources['GPU']:g}"} if node_type.resources.get("GPU") else {}
    return {
        "requests": {**amounts, **gpus, **given.get("requests", {})},
        "limits": {**amounts, **gpus, **given.get("limits", {})},
    }

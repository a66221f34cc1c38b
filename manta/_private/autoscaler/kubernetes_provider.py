"""The ``kubernetes`` node provider: each worker node is a pod (kubernetes_pods.py) in the
autoscaler's own namespace, made and removed through the official ``kubernetes`` client
(``pip install 'manta-ray[kubernetes]'``) with the pod's service account, which needs
only get/list/create/delete on pods there, and get on its owner (deploy/kubernetes has
that Role).

Pods are found again by their labels, so a restarted autoscaler keeps its nodes; they are
owned by the object named in the provider config (the head's Deployment, by default), so
deleting the cluster deletes them. A pod that ended (Succeeded, Failed) is deleted and no
longer counts as launched.

    provider:
      type: kubernetes
      namespace: manta            # default: the autoscaler's own (its service account's)
      head_address: manta-head:6379  # $POD_IP:6379 for a head in a Job
      token_secret: manta-token   # a Secret whose "token" key holds the cluster token
      owner: {kind: Deployment, name: manta-head}  # or {kind: Pod, name: $POD_NAME}
      tls_secret: manta-tls       # ca.crt, tls.crt, tls.key: mutual TLS between the nodes
      tls_server_name: nodes.manta.internal  # the DNS name in that certificate
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from manta._private.autoscaler.config import AutoscalingConfigError, NodeType
from manta._private.autoscaler.kubernetes_pods import (
    CLUSTER_LABEL,
    check_cluster_name,
    check_template,
    node_pod,
    pod_name,
)
from manta._private.autoscaler.provider import LAUNCH_LABEL, TYPE_LABEL, Launched, ProviderError

logger = logging.getLogger("manta.autoscaler")

_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_PROVIDER_KEYS = {
    "type",
    "namespace",
    "head_address",
    "token_secret",
    "owner",
    "tls_secret",
    "tls_server_name",
}
_ENDED = ("Succeeded", "Failed")
_OWNER_APIS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Pod": "v1", "ConfigMap": "v1"}


class KubernetesProvider:
    def __init__(self, cluster: str, settings: dict[str, Any]) -> None:
        unknown = set(settings) - _PROVIDER_KEYS
        if unknown or not settings.get("head_address"):
            raise AutoscalingConfigError(
                f"the kubernetes provider takes {', '.join(sorted(_PROVIDER_KEYS))} (head_address required); "
                f"got {', '.join(sorted(settings))}"
            )
        check_cluster_name(cluster)
        try:
            import kubernetes
        except ImportError:
            raise AutoscalingConfigError(
                "the kubernetes provider needs the kubernetes client: pip install 'manta-ray[kubernetes]'"
            ) from None
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException as e:
            raise AutoscalingConfigError(
                f"the kubernetes provider runs inside a pod with a service account: {e}"
            ) from None
        # Any: the client's stubs want its model classes, and it takes plain manifests too.
        self._api: Any = kubernetes.client.CoreV1Api()
        self._errors = kubernetes.client.ApiException
        self._cluster = cluster
        self._namespace = settings.get("namespace") or _own_namespace()
        # $VARS are the head pod's (a Job's head names its own pod and IP: manifests/job.yaml).
        self._head = os.path.expandvars(str(settings["head_address"]))
        self._secret = str(settings.get("token_secret", "manta-token"))
        self._tls_secret = str(settings.get("tls_secret", ""))
        self._tls_server_name = str(settings.get("tls_server_name", ""))
        if self._tls_secret and not self._tls_server_name:
            raise AutoscalingConfigError(
                "provider.tls_secret needs provider.tls_server_name: the DNS name in that Secret's "
                "certificate, which nodes check one another against (pods have no names of their own)"
            )
        owner = dict(settings.get("owner", {"kind": "Deployment", "name": "manta-head"}))
        if owner.get("name"):
            owner["name"] = os.path.expandvars(str(owner["name"]))
        self._owner = self._owner_reference(owner)

    def check_node_config(self, node_type: NodeType) -> None:
        check_template(node_type)

    def launch(self, node_type: NodeType, launch_id: str) -> None:
        pod = node_pod(
            node_type,
            launch_id,
            cluster=self._cluster,
            namespace=self._namespace,
            head_address=self._head,
            token_secret=self._secret,
            owner=self._owner,
            tls_secret=self._tls_secret,
            tls_server_name=self._tls_server_name,
        )
        try:
            self._api.create_namespaced_pod(self._namespace, pod)
        except self._errors as e:
            raise ProviderError(f"creating pod {pod['metadata']['name']}: {e.status} {e.reason}") from e
        logger.info("created pod %s for a %s node", pod["metadata"]["name"], node_type.name)

    def terminate(self, launch_id: str) -> None:
        name = pod_name(self._cluster, launch_id)
        try:
            self._api.delete_namespaced_pod(name, self._namespace, grace_period_seconds=30)
        except self._errors as e:
            if e.status != 404:  # gone already: what was asked
                raise ProviderError(f"deleting pod {name}: {e.status} {e.reason}") from e

    def launched(self) -> list[Launched]:
        selector = f"{CLUSTER_LABEL}={self._cluster},{LAUNCH_LABEL}"
        try:
            pods = self._api.list_namespaced_pod(self._namespace, label_selector=selector).items
        except self._errors as e:
            raise ProviderError(f"listing pods: {e.status} {e.reason}") from e
        found = []
        for pod in pods:
            labels = pod.metadata.labels or {}
            if pod.status is not None and pod.status.phase in _ENDED:
                try:
                    self.terminate(labels[LAUNCH_LABEL])
                except ProviderError as e:  # tried again next round; the others still count
                    logger.warning("cannot delete the ended pod of %s: %s", labels[LAUNCH_LABEL], e)
                continue
            if pod.metadata.deletion_timestamp is None:
                created: datetime = pod.metadata.creation_timestamp
                found.append(Launched(labels[LAUNCH_LABEL], labels.get(TYPE_LABEL, ""), created.timestamp()))
        return found

    def shutdown(self) -> None:
        """Nothing: the pods outlive the autoscaler (one that restarts finds them again), and
        go with their owner when the cluster is deleted."""

    def _owner_reference(self, owner: dict[str, Any]) -> dict[str, Any] | None:
        if not owner:
            return None
        kind, name = owner.get("kind"), owner.get("name")
        if kind not in _OWNER_APIS or not name:
            raise AutoscalingConfigError(
                f"provider.owner must name a {' or '.join(_OWNER_APIS)} by kind and name"
            )
        import kubernetes

        apps: Any = kubernetes.client.AppsV1Api()
        read = {
            "Deployment": apps.read_namespaced_deployment,
            "StatefulSet": apps.read_namespaced_stateful_set,
            "Pod": self._api.read_namespaced_pod,
            "ConfigMap": self._api.read_namespaced_config_map,
        }[kind]
        try:
            uid = read(name, self._namespace).metadata.uid
        except self._errors as e:
            raise AutoscalingConfigError(
                f"cannot read the owner {kind} {name!r} in {self._namespace}: {e.status} {e.reason}"
            ) from None
        return {"apiVersion": _OWNER_APIS[kind], "kind": kind, "name": name, "uid": uid}


def _own_namespace() -> str:
    try:
        with open(_SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip()
    except OSError:
        return os.environ.get("POD_NAMESPACE", "default")

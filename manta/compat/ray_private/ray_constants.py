"""``ray._private.ray_constants``: the constants Ray programs and tests read from it, with
Ray's values where they are names or limits people match on, and Manta's where they
describe Manta (ports, sizes)."""

from __future__ import annotations

from manta._private.common.ids import ObjectID

ID_SIZE = ObjectID.SIZE
DEFAULT_PORT = 6379
DEFAULT_DASHBOARD_PORT = 8265
RAY_ADDRESS_ENVIRONMENT_VARIABLE = "RAY_ADDRESS"
# A remote function pickled larger than this earns a warning in Ray.
FUNCTION_SIZE_WARN_THRESHOLD = 10**7

# Kinds of errors Ray pushes to drivers.
PICKLING_LARGE_OBJECT_PUSH_ERROR = "pickling_large_object"
VERSION_MISMATCH_PUSH_ERROR = "version_mismatch"
WORKER_CRASH_PUSH_ERROR = "worker_crash"
WORKER_DIED_PUSH_ERROR = "worker_died"
PUT_RECONSTRUCTION_PUSH_ERROR = "put_reconstruction"
RESOURCE_DEADLOCK_ERROR = "resource_deadlock"
REMOVED_NODE_ERROR = "node_removed"
DASHBOARD_AGENT_DIED_ERROR = "dashboard_agent_died"
# The key-value namespace where Ray keeps exported functions (Manta keeps its own elsewhere).
KV_NAMESPACE_FUNCTION_TABLE = b"fun"
EXCESS_QUEUEING_WARNING = "excess_queueing_warning"
# Ray's process-title prefix of an idle worker. Manta's workers do not retitle themselves
# (they show as python), so tests that look for it find none.
WORKER_PROCESS_TYPE_IDLE_WORKER = "ray::IDLE"

"""``ray._private.gcs_utils``: the actor state numbers Ray's tests compare with."""

from __future__ import annotations


class ActorTableData:
    """Ray's actor states by number (as in its protocol); see ``test_utils.convert_actor_state``."""

    DEPENDENCIES_UNREADY = 0
    PENDING_CREATION = 1
    ALIVE = 2
    RESTARTING = 3
    DEAD = 4

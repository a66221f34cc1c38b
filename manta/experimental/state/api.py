"""``manta.experimental.state.api``: Ray's earlier path of ``manta.util.state``."""

from __future__ import annotations

from manta.util.state import *  # noqa: F403
from manta.util.state import __all__ as __all__

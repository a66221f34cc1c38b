"""``multiprocessing.Pool`` on the cluster (Ray's ``ray.util.multiprocessing``).

``from manta.util.multiprocessing import Pool`` is a drop-in for
``from multiprocessing import Pool``: the pool's processes are actors, anywhere in the
cluster. ``TimeoutError`` and ``JoinableQueue`` are the standard library's, re-exported
as Ray does.
"""

from multiprocessing import JoinableQueue, TimeoutError

from manta.util.multiprocessing.pool import Pool
from manta.util.multiprocessing.results import AsyncResult, IMapIterator

__all__ = ["AsyncResult", "IMapIterator", "JoinableQueue", "Pool", "TimeoutError"]

"""The joblib backend: joblib's batches go to a ``manta.util.multiprocessing.Pool``.

Imported only by ``register_manta``/``register_ray``, once joblib is known to be there.
joblib's batching (``AutoBatchingMixin``: batches sized so each takes a fraction of a
second) matters here: one actor call per item would cost more than most items do. As
with joblib's own process backends, ``n_jobs=1`` runs sequentially in this process.
"""

from __future__ import annotations

from typing import Any

from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
)

import manta
from manta.util.multiprocessing.pool import Pool
from manta.util.multiprocessing.results import AsyncResult


def _cluster_cpus() -> int:
    if not manta.is_initialized():
        manta.init()  # joins MANTA_ADDRESS's cluster or a running one, else starts one
    return max(int(manta.cluster_resources().get("CPU", 0)), 1)


class MantaBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]
    """joblib ``Parallel`` on the cluster: one pool actor per job.

    ``ray_remote_args`` (given to ``parallel_backend`` or to ``Parallel``) are the options
    of the pool's actors, as in Ray.
    """

    supports_retrieve_callback = True
    supports_timeout = True
    supports_return_generator = True
    supports_sharedmem = False
    uses_threads = False
    default_n_jobs = 1

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads, **kwargs)
        self.ray_remote_args = ray_remote_args
        self._pool: Pool | None = None

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """-1 is every CPU of the cluster, -2 all but one, ...; never more than the
        cluster's CPUs, since the pool has one actor per CPU at most."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        cpus = _cluster_cpus()
        if n_jobs < 0:
            return max(cpus + 1 + n_jobs, 1)
        return min(n_jobs, cpus)

    def configure(
        self,
        n_jobs: int = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **backend_kwargs: Any,
    ) -> int:
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        remote_args = ray_remote_args if ray_remote_args is not None else self.ray_remote_args
        self._pool = Pool(n_jobs, ray_remote_args=remote_args)
        self.parallel = parallel
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> AsyncResult:
        assert self._pool is not None, "submit before configure"
        # The callback gets the result or the exception, as with joblib's own pools.
        return self._pool.apply_async(func, callback=callback, error_callback=callback)

    def retrieve_result_callback(self, out: Any) -> Any:
        # A batch returns a list, so an exception here is always the batch's failure.
        if isinstance(out, BaseException):
            raise out
        return out

    def terminate(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        self.reset_batch_stats()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        self.terminate()
        if ensure_ready:
            self.configure(
                n_jobs=self.parallel.n_jobs, parallel=self.parallel, **self.parallel._backend_kwargs
            )

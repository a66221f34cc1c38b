"""A joblib backend that runs ``Parallel`` batches on the cluster (Ray's ``ray.util.joblib``).

    from manta.util.joblib import register_manta
    register_manta()
    with joblib.parallel_backend("manta"):
        Parallel(n_jobs=-1)(delayed(f)(i) for i in range(100))

joblib is an optional dependency, imported only when a backend is registered;
``register_ray`` registers the same backend as "ray", for Ray code run on Manta.
"""

from __future__ import annotations


def register_manta() -> None:
    """Register the backend as joblib's "manta" parallel backend.

    Raises:
        ImportError: joblib (1.3 or newer) is not installed.
    """
    _register("manta")


def register_ray() -> None:
    """Register the same backend under Ray's name, "ray" (for code written for Ray).

    Raises:
        ImportError: joblib (1.3 or newer) is not installed.
    """
    _register("ray")


def _register(name: str) -> None:
    try:
        import joblib
        from joblib.parallel import ParallelBackendBase
    except ImportError as e:
        raise ImportError(
            f"The {name!r} joblib backend needs joblib, which is not installed: pip install joblib"
        ) from e
    if not hasattr(ParallelBackendBase, "retrieve_result_callback"):
        raise ImportError(
            f"The {name!r} joblib backend needs joblib 1.3 or newer (found {joblib.__version__}): "
            "pip install -U joblib"
        )
    from manta.util.joblib.backend import MantaBackend

    joblib.register_parallel_backend(name, MantaBackend)


__all__ = ["register_manta", "register_ray"]

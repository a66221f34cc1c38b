"""``manta.job_config.JobConfig`` (Ray's ``ray.job_config``): settings of a driver's job,
given to ``init(job_config=...)``."""

from __future__ import annotations

from typing import Any


class JobConfig:
    """What a job runs with: ``code_search_path`` (directories its workers import user code
    from), ``runtime_env``, ``metadata``, ``ray_namespace`` and ``default_actor_lifetime``.
    ``init()``'s own ``runtime_env`` and ``namespace`` take precedence. ``jvm_options`` is
    accepted for Ray's signature; Manta runs Python only."""

    def __init__(
        self,
        jvm_options: list[str] | None = None,
        code_search_path: list[str] | tuple[str, ...] | None = None,
        runtime_env: dict[str, Any] | None = None,
        _client_job: bool = False,
        metadata: dict[str, str] | None = None,
        ray_namespace: str | None = None,
        default_actor_lifetime: str = "non_detached",
        _disable_job_level_lineage_reconstruction: bool = False,
        _py_driver_sys_path: list[str] | None = None,
    ) -> None:
        if code_search_path is not None and not isinstance(code_search_path, (list, tuple)):
            raise TypeError(f"The type of code search path is incorrect: {type(code_search_path)}")
        if default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError(
                f"Default actor lifetime must be one of 'detached' or 'non_detached', got {default_actor_lifetime!r}"
            )
        self.jvm_options = list(jvm_options or [])
        self.code_search_path = list(code_search_path or [])
        self.runtime_env = runtime_env
        self.metadata = dict(metadata or {})
        self.ray_namespace = ray_namespace
        self.default_actor_lifetime = default_actor_lifetime
        self._py_driver_sys_path = list(_py_driver_sys_path or [])

    def set_metadata(self, key: str, value: str) -> None:
        self.metadata[key] = value

    def set_runtime_env(self, runtime_env: dict[str, Any] | None) -> None:
        self.runtime_env = runtime_env

    def set_ray_namespace(self, ray_namespace: str) -> None:
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime: str) -> None:
        self.default_actor_lifetime = default_actor_lifetime

"""Not imported as a package: ``run_as_ray`` puts this folder on the ``PYTHONPATH`` of the
processes a program starts, so that their ``import ray`` finds ``children/ray`` (see there)."""

"""``import ray`` in a process started by a ``run_as_ray`` program.

``run_as_ray`` puts the folder above this package first on ``PYTHONPATH``, so the Python
processes the program starts (a driver script it launches, say) find this ``ray`` first:
it installs the import hook in that process and hands back Manta's ``ray`` in its place.
Processes outside that tree never see it.
"""

import sys

from manta.compat import install

del sys.modules[__name__]  # this stand-in; the import below goes through the hook
install()
import ray  # noqa: E402  (Manta's, now)

sys.modules[__name__] = ray

"""The warning Manta's deprecated Ray APIs raise (public as ``manta.util.annotations``)."""

from __future__ import annotations


class RayDeprecationWarning(DeprecationWarning):
    """Warned when a deprecated Ray API is used; a ``DeprecationWarning``, so that the
    usual filters for those cover it, and filters naming this class (as written for Ray)
    apply too."""

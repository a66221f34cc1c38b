"""The ``manta`` command."""

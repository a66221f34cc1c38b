"""The version of Manta, in one place (the package, the handshake and the build read it)."""

__version__ = "0.1.0"

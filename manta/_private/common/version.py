"""The version of Manta, in one place (the package, the handshake and the build read it)."""

__version__ = "0.1.0"

# The Ray release whose public API (and jobs REST API) Manta follows: what Ray's own
# clients are told they talk to.
RAY_API_VERSION = "2.60.0"

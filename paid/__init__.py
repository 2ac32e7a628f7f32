"""paid: a reconciliation daemon for Podman."""

__version__ = "0.1.0"

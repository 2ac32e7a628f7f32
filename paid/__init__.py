"""paid: a reconciliation daemon for Podman."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("paid")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

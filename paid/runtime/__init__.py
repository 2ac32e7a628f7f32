"""The container runtime seam.

``base`` holds the protocol and the error types every upper layer uses;
``podman`` is the one module that talks to Podman; ``fake`` is an in-memory
stand-in for fast unit tests.
"""

"""Translations in and out of paid's desired state: compose and Quadlet in, Kubernetes out.

Pure in the sense that matters: they read files and return documents and
problems; writing them, and talking to Podman, is the CLI's.
"""

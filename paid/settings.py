"""Where paid finds Podman and keeps its state, when nobody says.

Every option has an environment variable (``PAID_<OPTION>``) so that the
systemd unit and the container image can be configured without flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOTFUL_SOCKET = "/run/podman/podman.sock"
ROOT_STATE_DIR = "/var/lib/paid"


def default_podman_url(env: Mapping[str, str] = os.environ, *, uid: int | None = None) -> str:
    """``CONTAINER_HOST``, else the rootful socket as root, else the rootless one."""
    if env.get("CONTAINER_HOST"):
        return env["CONTAINER_HOST"]
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return f"unix://{ROOTFUL_SOCKET}"
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"unix://{runtime_dir}/podman/podman.sock"


def default_state_dir(env: Mapping[str, str] = os.environ, *, uid: int | None = None) -> str:
    """``/var/lib/paid`` as root, else ``$XDG_STATE_HOME/paid``."""
    if env.get("STATE_DIRECTORY"):  # set by systemd's StateDirectory=
        return env["STATE_DIRECTORY"].split(":")[0]
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return ROOT_STATE_DIR
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "paid")


ROOT_SECRETS_DIR = "/etc/paid/secrets"


def default_secrets_dir(env: Mapping[str, str] = os.environ, *, uid: int | None = None) -> str:
    """``/etc/paid/secrets`` as root, else ``$XDG_CONFIG_HOME/paid/secrets``.

    A rootless user cannot write under /etc; their secrets live in their own
    configuration directory, beside their own Podman's.
    """
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return ROOT_SECRETS_DIR
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return str(Path(base) / "paid" / "secrets")

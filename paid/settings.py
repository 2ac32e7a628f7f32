"""paid's one settings object, and where paid finds Podman and keeps its state.

``Settings`` is everything ``paid run`` is configured with; its
``timings`` (``Timings``) are every interval and back-off policy of the
control loop, shared by ``paid apply`` (kopf's idea of one settings
object). Tests shorten timings here instead of sleeping. Every option has
an environment variable (``PAID_<OPTION>``) so that the systemd unit and
the container image can be configured without flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from paid.state.networks import DEFAULT_NETWORK
from paid.state.secrets import DEFAULT_DIRECTORY as DEFAULT_SECRETS_DIRECTORY

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


class TimingsError(ValueError):
    """A ``Timings.parse`` entry that is not a known timing or not a sane number."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait after ``n`` attempts: ``base * 2**(n-1)``, at most ``maximum``."""

    base: float
    """Seconds after the first attempt before the second."""
    maximum: float
    """The longest wait between two attempts."""
    reset_after: float | None = None
    """Forget the attempts after this many quiet seconds (None: only ``reset`` does)."""

    def delay(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return float(min(self.base * 2 ** min(attempts - 1, 62), self.maximum))


@dataclass(frozen=True, slots=True)
class Timings:
    """Every interval of the control loop. Defaults are the documented ones."""

    requeue: BackoffPolicy = BackoffPolicy(1.0, 60.0, reset_after=600.0)
    """A reconcile that failed (Podman unreachable, a request refused)."""
    crash: BackoffPolicy = BackoffPolicy(10.0, 300.0, reset_after=600.0)
    """Restarts of a crashed or unhealthy container (the kubelet's numbers)."""
    first_deploy: BackoffPolicy = BackoffPolicy(10.0, 300.0)
    """A first deploy that failed its gate has nothing to roll back to: retries."""
    events: BackoffPolicy = BackoffPolicy(0.25, 10.0, reset_after=60.0)
    """Reconnecting to Podman's event stream."""
    dependency_poll: float = 1.0
    """Look again at a service waiting for its dependencies (sooner when one gets ready)."""
    hold_poll: float = 1.0
    """Look again at a service a backup or restore holds."""
    rollout_poll: float = 0.2
    """The shortest wait between two steps of a rollout (the longest is 1 s)."""
    probe_tick: float = 0.25
    """How often due probes are started."""
    podman_retry: BackoffPolicy = BackoffPolicy(0.1, 2.0)
    """A Podman call that failed transiently, retried within the call (3 tries, 5 s at most)."""
    registry_retry: float = 30.0
    """Ask a registry again for a tag's digest it did not give."""
    notify_poll: float = 1.0
    """How often the journal is read for notifications and due messages are sent."""
    notify_retry: BackoffPolicy = BackoffPolicy(5.0, 600.0)
    """A notification its target did not take, sent again."""
    notify_group: float = 60.0
    """At most one message per target, service and event this often; the rest are counted."""

    @classmethod
    def parse(cls, text: str) -> Timings:
        """``crash=1,first_deploy=2,dependency_poll=0.5``: base seconds of a policy, or a poll.

        For tests and tuning (``PAID_TIMINGS``); raises ``TimingsError`` on a bad entry.
        """
        timings = cls()
        known = {f.name for f in fields(cls)}
        changes: dict[str, object] = {}
        for entry in filter(None, (e.strip() for e in text.split(","))):
            name, sep, raw = entry.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise TimingsError(f"unknown timing {name!r} (known: {', '.join(sorted(known))})")
            try:
                value = float(raw)
            except ValueError:
                raise TimingsError(f"timing {name}={raw}: not a number of seconds") from None
            if not 0 < value < 86400:
                raise TimingsError(f"timing {name}={raw}: must be between 0 and 86400 seconds")
            current = getattr(timings, name)
            if isinstance(current, BackoffPolicy):
                changes[name] = replace(
                    current, base=value, maximum=max(value, current.maximum * value / current.base)
                )
            else:
                changes[name] = value
        return replace(timings, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Settings:
    directory: Path
    listen: str = "127.0.0.1:9707"
    resync_interval: float = 30.0
    watch_interval: float = 1.0
    workers: int = 4
    watch_events: bool = True
    # pidfds on managed containers' processes (``paid.daemon.deaths``): a Podman on this host only
    watch_processes: bool = False
    flags_path: Path | None = None
    allowed_host_paths: tuple[str, ...] = ()
    allowed_devices: tuple[str, ...] = ()
    default_network: str = DEFAULT_NETWORK
    secrets_dir: Path = Path(DEFAULT_SECRETS_DIRECTORY)
    age_identity: Path | None = None  # decrypts the repository's age-encrypted secrets
    backup_dir: Path | None = None  # default: <state dir>/backups
    backup_upload_command: str | None = None
    slo_default: float | None = None  # percent, for services without an slo section
    git_pull_interval: float = 0.0  # seconds between pulls of the checkout; 0: never
    allow_mass_prune: bool = False
    stall_limit: float = 600.0  # a reconcile running longer than this is hung
    first_pass_timeout: float = 60.0  # READY by then at the latest (systemd waits 90 s)
    image_update_interval: float = 900.0  # seconds between checks of followed tags; 0: never
    image_gc: bool = False  # prune unused images paid ran, daily
    image_gc_interval: float = 86_400.0
    timings: Timings = field(default_factory=Timings)

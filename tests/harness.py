"""A hermetic Podman for the test suite.

``PodmanService.start`` runs ``podman system service`` with its own
``--root``, ``--runroot``, socket and ``containers.conf`` under a temporary
directory, so the suite never sees or touches the host's containers or
images. Test images are made locally from Debian's static busybox with
``podman import``: no registry is needed (none is reachable here).

The service's events go to a file (``events_logger = "file"``), which the
tests read to count what really happened, independently of paid's own
bookkeeping.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

BUSYBOX = Path(os.environ.get("PAID_TEST_BUSYBOX", "/bin/busybox"))
IMAGE_REPO = "localhost/paid-test/busybox"
IMAGE = f"{IMAGE_REPO}:1"
IMAGE_V2 = f"{IMAGE_REPO}:2"
MUTATING_EVENTS = frozenset(
    {"create", "init", "start", "stop", "kill", "remove", "restart", "pause", "unpause", "rename"}
)

CONTAINERS_CONF = """\
[containers]
# At or below this host's hard limits, or runc cannot start anything.
default_ulimits = ["nofile=4096:4096", "nproc=8192:8192"]
log_driver = "k8s-file"

[engine]
# crun rejects this host's hybrid cgroup layout.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
# Podman rotates the file at 1 MB by default, and the tests' marks are
# positions in it: a whole suite writes several MB.
events_logfile_max_size = "1gb"
# Podman's default tmp_dir (/run/libpod: exit files, locks) is shared by
# every Podman on the host; `system reset` would wipe the host's.
tmp_dir = "{tmp}"
# An exec through the API (paid's exec probes) leaves two conmon processes
# that wait this long before exiting (Podman's default: 300 s).
exit_command_delay = 5

[network]
# netavark with aardvark-dns: DNS by container name on user networks. Its
# own config dir, so the host's networks are never seen or touched.
network_backend = "netavark"
network_config_dir = "{networks}"
"""


def _hard_limit(which: int, wanted: int) -> int:
    _, hard = resource.getrlimit(which)
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


@dataclass
class PodmanService:
    base: Path
    process: subprocess.Popen[bytes] | None = None
    _env: dict[str, str] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.base / "podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """The environment the podman CLI runs with against this service (its containers.conf)."""
        return dict(self._env)

    @property
    def events_log(self) -> Path:
        return self.base / "events.log"

    @classmethod
    def start(cls, base: Path) -> PodmanService:
        base.mkdir(parents=True, exist_ok=True)
        nofile = _hard_limit(resource.RLIMIT_NOFILE, 4096)
        nproc = _hard_limit(resource.RLIMIT_NPROC, 8192)
        conf = CONTAINERS_CONF.format(
            events=base / "events.log", tmp=base / "tmp", networks=base / "networks"
        )
        conf = conf.replace("nofile=4096:4096", f"nofile={nofile}:{nofile}")
        conf = conf.replace("nproc=8192:8192", f"nproc={nproc}:{nproc}")
        (base / "containers.conf").write_text(conf)
        env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "DOCKER_HOST")}
        env["CONTAINERS_CONF"] = str(base / "containers.conf")
        service = cls(base=base, _env=env)
        service.resume()
        return service

    def configure(self, **env: str) -> None:
        """Restart the API service with these extra environment variables."""
        self._env.update(env)
        self.pause()
        self.resume()

    def global_args(self) -> list[str]:
        """The podman CLI options that point at this service's storage."""
        return ["--root", str(self.base / "root"), "--runroot", str(self.base / "runroot")]

    def command(self, *args: str) -> list[str]:
        """``podman ARGS`` on this service's storage.

        Not all of it is private: Podman 4.3 keeps netavark's run state
        (aardvark-dns's per-network name tables, its IPAM database) in
        /run/containers/networks for every rootful Podman on the host, keyed
        by network name. Networks are named as the tests need; a host that
        runs a network of the same name meanwhile shares those tables.
        """
        return ["podman", *self.global_args(), *args]

    def resume(self) -> None:
        """(Re)start the API service on the same storage and socket."""
        log = (self.base / "service.log").open("ab")
        self.process = subprocess.Popen(
            self.command("system", "service", "--time=0", self.url),
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"podman service exited: {(self.base / 'service.log').read_text()}"
                )
            time.sleep(0.05)
        raise RuntimeError("podman service did not come up within 30 s")

    def pause(self) -> None:
        """Stop the API service (containers keep running): 'Podman went away'."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in sock.recv(1024)
        except OSError:
            return False

    def podman(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        """Run the podman CLI directly on this service's storage."""
        result = subprocess.run(
            self.command(*args),
            env=self._env,
            capture_output=True,
            check=False,
            input=input,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}"
            )
        return result.stdout.decode()

    def logs(self, name: str) -> str:
        """A container's output, stdout and stderr (``podman logs`` splits them again)."""
        result = subprocess.run(
            self.command("logs", name), env=self._env, capture_output=True, check=False, timeout=60
        )
        return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")

    def containers(self) -> list[dict[str, Any]]:
        return list(json.loads(self.podman("ps", "-a", "--format", "json") or "[]"))

    def inspect(self, name: str) -> dict[str, Any]:
        """The container named ``name`` (or with that ID, 12 hex digits or more).

        Podman also takes any unique prefix of an ID: ``inspect b`` answers
        with a container whose ID starts with b when none is named b, so a
        wait for "b is running" would be met by another container (1 run in
        16). A container of another name is refused here.
        """
        found = dict(json.loads(self.podman("container", "inspect", name))[0])
        by_id = len(name) >= 12 and all(c in "0123456789abcdef" for c in name)
        if not by_id and found.get("Name", "").lstrip("/") != name:
            raise AssertionError(f"no container named {name!r} (Podman matched an ID prefix)")
        return found

    def events(self) -> list[dict[str, Any]]:
        if not self.events_log.exists():
            return []
        out = []
        for line in self.events_log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def event_mark(self) -> int:
        return len(self.events())

    def container_events_since(self, mark: int) -> list[tuple[str, str]]:
        """(status, container name) of every container event after ``mark``."""
        return [
            (e.get("Status", ""), e.get("Name", ""))
            for e in self.events()[mark:]
            if e.get("Type") == "container"
        ]

    def network_events_since(self, mark: int) -> list[tuple[str, str]]:
        """(status, network name) of every network event after ``mark``."""
        return [
            (e.get("Status", ""), e.get("Network") or e.get("Name", ""))
            for e in self.events()[mark:]
            if e.get("Type") == "network"
        ]

    def clean(self) -> None:
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        self.podman("volume", "prune", "--force", check=False)
        self.podman("secret", "rm", "--all", check=False)
        self.podman("network", "prune", "--force", check=False)
        _forget_names()

    def build_images(self) -> None:
        """Import a busybox tree as IMAGE and tag it IMAGE_V2."""
        if self.podman("images", "-q", IMAGE, check=False).strip():
            return
        with tempfile.TemporaryDirectory() as tmp:
            tar_path = Path(tmp) / "rootfs.tar"
            with tarfile.open(tar_path, "w") as tar:
                _add_dir(tar, "bin")
                _add_dir(tar, "tmp", mode=0o1777)
                _add_dir(tar, "www")
                _add_dir(tar, "data")
                tar.add(BUSYBOX, arcname="bin/busybox")
                page = b"<h1>paid test</h1>\n"
                info = tarfile.TarInfo("www/index.html")
                info.size = len(page)
                tar.addfile(info, io.BytesIO(page))
                applets = subprocess.run(
                    [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
                ).stdout.split()
                for applet in applets:
                    if applet != "busybox":
                        info = tarfile.TarInfo(f"bin/{applet}")
                        info.type = tarfile.SYMTYPE
                        info.linkname = "busybox"
                        tar.addfile(info)
            self.podman(
                "import",
                "--change",
                "ENV PATH=/bin",
                "--change",
                'CMD ["sh"]',
                str(tar_path),
                IMAGE,
            )
        self.podman("tag", IMAGE, IMAGE_V2)

    def stop(self) -> None:
        self.clean()
        self.pause()
        self.podman("system", "reset", "--force", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


AARDVARK_RUN = Path("/run/containers/networks/aardvark-dns")


def _forget_names() -> None:
    """Give the next test a DNS server that starts fresh.

    aardvark-dns serves one name table per network from AARDVARK_RUN, shared
    by every rootful Podman 4.3 on the host, and netavark stops it when the
    last table goes. A container that died without netavark's teardown (a
    kill -9, the service taken away, a run cut short) leaves its names in
    the tables, and its pid file may name a process that is no longer
    aardvark-dns, which netavark then signals instead of starting a server.
    And Debian's aardvark-dns 1.4 can lose a network's listener on a reload
    (containers/aardvark-dns#389) until it restarts. Each would carry into
    later tests. So drop the entries of containers no conmon runs on this
    host (no Podman's live container is touched), and stop the server once
    no table is left.
    """
    pidfile = AARDVARK_RUN / "aardvark.pid"
    live = _running_containers()
    for table in AARDVARK_RUN.glob("*"):
        if table == pidfile or not table.is_file():
            continue
        header, *entries = table.read_text().splitlines() or [""]
        kept = [e for e in entries if e.split(" ", 1)[0] in live]
        if not kept:
            table.unlink(missing_ok=True)
        elif kept != entries:
            table.write_text("\n".join([header, *kept]) + "\n")
    tables = [p for p in AARDVARK_RUN.glob("*") if p != pidfile]
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        if not os.readlink(f"/proc/{pid}/exe").endswith("/aardvark-dns"):
            raise ProcessLookupError(pid)  # a stale pid, reused by another process
        if tables:
            return  # another Podman's network still needs it
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def _running_containers() -> set[str]:
    """IDs of the containers conmon supervises on this host, any Podman's."""
    ids: set[str] = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args and args[0].endswith(b"conmon"):
                ids.update(
                    args[i + 1].decode() for i, a in enumerate(args[:-1]) if a in (b"-c", b"--cid")
                )
    return ids


REGISTRY_CONFIG = """\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Registry:
    """Debian's docker-registry (the CNCF distribution registry) on loopback, for pulls."""

    base: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls, base: Path, *, users: dict[str, str] | None = None, port: int | None = None
    ) -> Registry:
        """Serve ``base``'s data; ``users`` (name: password) turns htpasswd auth on.

        ``port``: the port of an earlier run over the same data (a registry back).
        """
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is missing: scripts/install-deps installs it")
        base.mkdir(parents=True, exist_ok=True)
        registry = cls(base, port or free_port())
        config = base / "config.yml"
        text = REGISTRY_CONFIG.format(root=base / "data", port=registry.port)
        if users:
            # bcrypt, as the registry requires (crypt is glibc's, through libxcrypt).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # noqa: PLC0415 -- deprecated; only tests need it

                lines = [
                    f"{user}:{crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH))}"  # noqa: S324
                    for user, pw in users.items()
                ]
            (base / "htpasswd").write_text("\n".join(lines) + "\n")
            text += f"auth:\n  htpasswd: {{realm: paid-test, path: {base / 'htpasswd'}}}\n"
        config.write_text(text)
        log = (base / "registry.log").open("ab")
        registry.process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", registry.port), 0.2),
            ):
                return registry
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen: {(base / 'registry.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def use_registry(podman: PodmanService, *registries: Registry) -> None:
    """Let the suite's Podman, and paid, reach ``registries`` over plain HTTP.

    One registries.conf, used by the Podman service and by this process
    (paid's registry client reads the same file, as it would on a host).
    """
    conf = podman.base / "registries.conf"
    conf.write_text(
        "".join(f'[[registry]]\nlocation = "{r.host}"\ninsecure = true\n' for r in registries)
    )
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    podman.configure(CONTAINERS_REGISTRIES_CONF=str(conf))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def proxy_client(name: str, port: int = 8080, *, hold: bool = True) -> str:
    """A shell loop that asks ``name`` as a front proxy with a resolver does.

    It prints ``<uptime> OK|FAIL|NODNS`` per request, 20 ms apart (the
    kernel's clock: this busybox's ``date`` has no ``%N``). It resolves
    ``name`` (A records) at most once a second and tries the addresses in
    turn, starting one further each request (round robin); when none
    answers it resolves again and retries once (nginx's ``resolver`` with
    ``proxy_next_upstream error``). FAIL: DNS gave
    addresses and none served; NODNS: no address to try.

    ``hold``: a failed lookup keeps the last good answer, as HAProxy's ``hold
    timeout`` and Envoy do. Podman's DNS server before aardvark-dns 1.11
    (Debian 12 has 1.4) restarts its listeners on every reload, which it does
    whenever a container joins or leaves the network, and under queries can
    stop answering for seconds (containers/aardvark-dns#389).
    """
    keep = "" if hold else "ips=$got; "
    return rf"""
resolve() {{
  got=$(timeout 1 nslookup -type=a {name} 2>/dev/null | sed -n 's/^Address: \([0-9.]*\)$/\1/p')
  {keep}[ -n "$got" ] && ips=$got
}}
ask() {{
  n=$((n + 1)); set -- $ips; k=0; turn=""; rest=""
  [ $# -gt 0 ] && k=$((n % $#))
  for ip; do if [ $k -gt 0 ]; then rest="$rest $ip"; k=$((k - 1)); else turn="$turn $ip"; fi; done
  for ip in $turn $rest; do
    printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 "$ip" {port} | grep -q '200 OK' && return 0
  done
  return 1
}}
last=""; ips=""; n=0
while true; do
  read now _ < /proc/uptime; now=${{now%.*}}
  if [ "$now" != "$last" ] || [ -z "$ips" ]; then resolve; last=$now; fi
  ok=OK
  if ! ask; then
    resolve
    if [ -z "$ips" ]; then ok=NODNS; else ask || ok=FAIL; fi
  fi
  read up _ < /proc/uptime
  echo "$up $ok"
  sleep 0.02
done
"""


def service_doc(name: str, **spec: Any) -> dict[str, Any]:
    """A Service document with test-friendly defaults (busybox, fast stops)."""
    body: dict[str, Any] = {
        "image": IMAGE,
        "command": ["sleep", "3600"],
        "init": True,
        "terminationGracePeriodSeconds": 2,
        # Healing tests do not want a 10 s bake per deploy; rollout tests set their own.
        "rollout": {"minReadySeconds": 0},
    }
    body.update(spec)
    return {"apiVersion": "paid/v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def write_services(directory: Path, *docs: dict[str, Any], filename: str = "services.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def free_port() -> int:
    """A loopback port nothing listens on, and that no port-forwarding rule takes.

    netavark's DNAT rules of a container that died badly can outlive it (a
    Podman bug): a port they name looks free, but connections to it are
    sent to the dead container's address and time out.
    """
    forwarded = _forwarded_ports()
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in forwarded:
            return port


def _forwarded_ports() -> set[int]:
    iptables = shutil.which("iptables")
    if iptables is None:
        return set()
    listed = subprocess.run(
        [iptables, "-t", "nat", "-S"], capture_output=True, text=True, check=False
    ).stdout
    return {int(m) for m in re.findall(r"--dport (\d+)", listed)}


class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


def run_paid(
    podman: HasUrl, state_dir: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The ``paid`` command line, as a user runs it, against ``podman`` with ``state_dir``.

    ``podman``: the suite's Podman or a rootless one (``tests.rootless``).
    """
    import sys  # noqa: PLC0415

    env = {**os.environ, "PAID_PODMAN_URL": podman.url, "PAID_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "paid", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


EXAMPLE_CACHE = "/var/tmp/paid-example-cache"


def build_example_images(podman: PodmanService, example: Path) -> None:
    """An example's ``build-images`` (Debian packages) into ``podman``'s storage, cached."""
    if shutil.which("debootstrap") is None:
        import pytest  # noqa: PLC0415

        pytest.fail("debootstrap is missing: scripts/install-deps installs it")
    subprocess.run(
        [str(example / "build-images")],
        env={
            **podman.env,
            "PODMAN": "podman " + " ".join(podman.global_args()),
            "PAID_EXAMPLE_CACHE": os.environ.get(
                "PAID_EXAMPLE_CACHE", "/var/tmp/paid-example-cache"
            ),
        },
        check=True,
        timeout=1200,
    )

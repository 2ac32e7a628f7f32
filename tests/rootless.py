"""A rootless Podman run by an unprivileged user the suite creates.

``RootlessPodman.start()`` makes the user ``paid-rootless`` (with subordinate
ids), gives it a runtime directory and ``/dev/net/tun`` (slirp4netns needs
it), imports the test image into its storage and runs its ``podman system
service`` on ``/run/user/<uid>/podman/podman.sock``. Most tests run paid as
root against that socket: the containers, networks and volumes are the
user's, made by rootless Podman. ``user_paid()`` gives the user a paid of
its own, for paid itself run rootless on its per-user defaults.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import BUSYBOX

USER = "paid-rootless"
IMAGE = "localhost/paid-rootless/busybox:1"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=8192:8192"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
"""


def available() -> str | None:
    """Why a rootless Podman cannot be made here, or None."""
    if os.geteuid() != 0:
        return "making a user needs root"
    for tool in ("useradd", "newuidmap", "slirp4netns", "podman"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass
class RootlessPodman:
    uid: int
    home: Path
    runtime_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.runtime_dir / "podman" / "podman.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.home),
            "USER": USER,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }

    def run(
        self, argv: list[str], *, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` run as the user, in its home, with its environment (and ``env``)."""
        return subprocess.run(
            argv,
            env={**self.env(), **(env or {})},
            user=self.uid,
            group=self.uid,
            extra_groups=[],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def podman(self, *args: str, check: bool = True) -> str:
        """``podman ARGS`` as the user, on its own storage."""
        result = self.run(["podman", *args])
        if check and result.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {result.stderr}")
        return result.stdout

    @classmethod
    def start(cls) -> RootlessPodman:
        try:
            entry = pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
            entry = pwd.getpwnam(USER)
        for ids in ("/etc/subuid", "/etc/subgid"):
            text = Path(ids).read_text() if Path(ids).exists() else ""
            if not any(line.startswith(f"{USER}:") for line in text.splitlines()):
                with open(ids, "a") as file:
                    file.write(f"{USER}:300000:65536\n")
        tun = Path("/dev/net/tun")
        if tun.exists():
            tun.chmod(0o666)  # slirp4netns opens it as the user
        runtime_dir = Path(f"/run/user/{entry.pw_uid}")
        runtime_dir.mkdir(parents=True, exist_ok=True)
        os.chown(runtime_dir, entry.pw_uid, entry.pw_gid)
        runtime_dir.chmod(0o700)
        home = Path(entry.pw_dir)
        conf = home / ".config" / "containers" / "containers.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
        for path in (home / ".config", conf.parent, conf):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        podman = cls(uid=entry.pw_uid, home=home, runtime_dir=runtime_dir)
        podman.podman("system", "migrate", check=False)
        podman._import_image()
        (runtime_dir / "podman").mkdir(exist_ok=True)
        os.chown(runtime_dir / "podman", entry.pw_uid, entry.pw_gid)
        podman.process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", podman.url],
            env=podman.env(),
            user=podman.uid,
            group=podman.uid,
            extra_groups=[],
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not podman.socket.exists():
            if time.monotonic() > deadline or podman.process.poll() is not None:
                raise RuntimeError("the rootless podman service did not start")
            time.sleep(0.1)
        return podman

    def _import_image(self) -> None:
        if self.podman("images", "-q", IMAGE, check=False).strip():
            return
        tree = self.home / "busybox-tree"
        shutil.rmtree(tree, ignore_errors=True)
        for directory in ("bin", "www", "tmp", "data"):
            (tree / directory).mkdir(parents=True)
        (tree / "tmp").chmod(0o1777)
        shutil.copy(BUSYBOX, tree / "bin" / "busybox")
        (tree / "www" / "index.html").write_text("<h1>paid test</h1>\n")
        for applet in ("sh", "sleep", "httpd", "cat", "echo", "wget", "nslookup", "id"):
            (tree / "bin" / applet).symlink_to("busybox")
        subprocess.run(["chown", "-R", f"{self.uid}:{self.uid}", str(tree)], check=True)
        archive = self.home / "busybox.tar"
        subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "."], check=True)
        os.chown(archive, self.uid, self.uid)
        self.podman(
            "import", "--change", "ENV PATH=/bin", "--change", "VOLUME /data", str(archive), IMAGE
        )

    def stop(self) -> None:
        self.podman("rm", "--all", "--force", "--time", "0", check=False)
        self.podman("volume", "prune", "--force", check=False)
        self.podman("network", "prune", "--force", check=False)
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's: the suite's own may live under /root (0700)


def user_paid() -> Path:
    """A ``paid`` command the unprivileged user can run: this checkout in a venv of its own.

    Built once per version of the sources (their hash names it) in /var/tmp
    from Debian's Python, readable by everyone; pip's cache makes a rebuild quick.
    """
    digest = hashlib.sha256()
    for path in sorted([ROOT / "pyproject.toml", *(ROOT / "paid").rglob("*")]):
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    venv = Path(f"/var/tmp/paid-rootless-venv-{digest.hexdigest()[:16]}")
    paid = venv / "bin" / "paid"
    if paid.exists():
        return paid
    for old in Path("/var/tmp").glob("paid-rootless-venv-*"):
        shutil.rmtree(old, ignore_errors=True)
    building = Path(f"{venv}.partial")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(building)], check=True, timeout=120)
    source = building / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info"))
    subprocess.run(
        [str(building / "bin" / "pip"), "install", "-q", str(source)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    shutil.rmtree(source)
    building.rename(venv)
    # The venv's scripts name the interpreter by the .partial path: rewrite them.
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            text = script.read_bytes()
            if text.startswith(b"#!") and str(building).encode() in text[:200]:
                script.write_bytes(text.replace(str(building).encode(), str(venv).encode(), 1))
    (venv / "pyvenv.cfg").write_text(
        (venv / "pyvenv.cfg").read_text().replace(str(building), str(venv))
    )
    return paid

"""``ssh://`` Podman URLs: a local socket forwarded by ssh itself, opened within a deadline."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from paid.runtime.base import RuntimeUnavailable

CONNECT_TIMEOUT = 10.0  # seconds for an ssh:// connection to be up


class SshTunnel:
    """``ssh://user@host[:port]/path/podman.sock`` as a local socket: ssh's own forwarding.

    podman-py's ssh transport waits five minutes for a socket that a failed
    ssh never makes, and trusts any host key. This one runs ``ssh -N -L``
    in batch mode with the user's own known_hosts and keys (or
    ``CONTAINER_SSHKEY``), and gives up as soon as ssh does, or after
    ``CONNECT_TIMEOUT``, with ssh's own words. ``PAID_SSH_COMMAND`` (as
    git's ``GIT_SSH_COMMAND``) replaces ``ssh``, with options of its own.
    """

    def __init__(self, process: subprocess.Popen[bytes], directory: str, socket_path: str) -> None:
        self._process, self._directory, self.socket_path = process, directory, socket_path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @classmethod
    def open(cls, url: str, *, timeout: float = CONNECT_TIMEOUT) -> SshTunnel:
        parsed = urllib.parse.urlsplit(url)
        if not parsed.hostname or not parsed.path:
            raise RuntimeUnavailable(
                f"{url!r}: an ssh URL is ssh://[user@]host[:port]/path/to/podman.sock"
            )
        directory = tempfile.mkdtemp(prefix="paid-ssh-")
        local = os.path.join(directory, "podman.sock")
        command = [
            *shlex.split(os.environ.get("PAID_SSH_COMMAND") or "ssh"),
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            f"ConnectTimeout={max(1, int(timeout))}",
            "-L",
            f"{local}:{parsed.path}",
        ]
        if parsed.port:
            command += ["-p", str(parsed.port)]
        if os.environ.get("CONTAINER_SSHKEY"):
            command += ["-i", os.environ["CONTAINER_SSHKEY"]]
        command += [f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname]
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as err:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeUnavailable(f"cannot run ssh: {err.strerror or err}") from err
        tunnel = cls(process, directory, local)
        deadline = time.monotonic() + timeout
        while not os.path.exists(local):
            if process.poll() is not None:
                said = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
                tunnel.close()
                raise RuntimeUnavailable(f"ssh failed: {said.strip() or process.returncode}")
            if time.monotonic() >= deadline:
                tunnel.close()
                raise RuntimeUnavailable(f"ssh: no connection within {timeout:g} s")
            time.sleep(0.05)
        return tunnel

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        shutil.rmtree(self._directory, ignore_errors=True)

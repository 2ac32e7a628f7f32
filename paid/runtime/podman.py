"""The one module that talks to Podman (through podman-py).

Everything Podman can throw is translated here into the ``RuntimeFailure``
family of ``paid.runtime.base``; no podman-py or requests exception leaves
this module. Every HTTP request is counted by method and operation, which
is how tests and benchmarks know that a steady-state pass costs one list
call.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests
from podman import PodmanClient
from podman import errors as podman_errors

from paid.runtime import podman_answers as answers
from paid.runtime import podman_errors as failures
from paid.runtime import podman_requests as asks
from paid.runtime.base import (
    BuildRequest,
    ContainerMissing,
    ContainerRequest,
    ImageUnavailable,
    RequestRejected,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.runtime.registry_config import AuthFile, ConfigFileError
from paid.runtime.ssh import CONNECT_TIMEOUT, SshTunnel
from paid.state.actual import ActualContainer
from paid.state.images import LocalImage
from paid.state.labels import DEFAULT_INSTANCE, INSTANCE
from paid.state.networks import ActualNetwork, NetworkSpec
from paid.state.podman_host import PodmanHost

DEFAULT_TIMEOUT = 60.0  # seconds per HTTP request; a pull streams within it


class PodmanRuntime:
    """``Runtime`` on a Podman REST API socket (``unix://`` or ``tcp://``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        instance: str = DEFAULT_INSTANCE,
        auth: AuthFile | None = None,
    ) -> None:
        self.url = url
        self.instance = instance  # stamped on what it creates; others' containers are foreign
        self.auth = auth  # None: Podman's own credentials (its default auth file)
        self.requests: Counter[tuple[str, str]] = Counter()
        self._tunnel = SshTunnel.open(url) if url.startswith("ssh://") else None
        # tcp://: a host that drops packets is given CONNECT_TIMEOUT to answer, not the whole
        # request's (a unix socket connects or fails at once; ssh:// is bounded by its tunnel).
        bounded: Any = (CONNECT_TIMEOUT, timeout) if url.startswith("tcp://") else timeout
        try:
            base_url = self._tunnel.url if self._tunnel else url
            self._client = PodmanClient(base_url=base_url, timeout=bounded)
        except (ValueError, podman_errors.PodmanError) as err:
            if self._tunnel:
                self._tunnel.close()
            raise RuntimeUnavailable(f"cannot use Podman URL {url!r}: {err}") from err
        self._client.api.hooks["response"].append(self._count)

    @property
    def local(self) -> bool:
        """Podman answers on this host's socket: its process IDs are this host's."""
        return self.url.startswith("unix:")

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests[
            (response.request.method or "GET", failures.operation(response.request.path_url))
        ] += 1

    @property
    def mutating_requests(self) -> int:
        return sum(n for (method, _), n in self.requests.items() if method != "GET")

    def close(self) -> None:
        self._client.close()
        if self._tunnel:
            self._tunnel.close()

    # -- Runtime -------------------------------------------------------

    def version(self) -> str:
        # /_ping's headers, not /version: Podman 4.3 runs conmon, runc and
        # friends for /version (~0.2 s); the ping answers in a millisecond.
        with failures.translated("version"):
            response = self._client.api.get("/_ping")
            response.raise_for_status()
            headers = response.headers
            return str(headers.get("Libpod-API-Version") or headers.get("API-Version") or "?")

    def host(self) -> PodmanHost:
        with failures.translated("info"):
            response = self._client.api.get("/info")
            response.raise_for_status()
            info = response.json()
        host = info.get("host") or {}
        controllers = host.get("cgroupControllers")
        uid_map = (host.get("idMappings") or {}).get("uidmap") or []
        return PodmanHost(
            graph_root=str((info.get("store") or {}).get("graphRoot") or "/"),
            rootless=bool((host.get("security") or {}).get("rootless")),
            cgroup_version=str(host.get("cgroupVersion") or "v2"),
            cgroup_controllers=None if controllers is None else tuple(map(str, controllers)),
            subordinate_uids=sum(int(m.get("size") or 0) for m in uid_map[1:]),
        )

    def list_containers(self) -> list[ActualContainer]:
        with failures.translated("list containers"):
            listed = self._client.containers.list(all=True, sparse=True)
        return [answers.actual(c.attrs).seen_by(self.instance) for c in listed]

    def inspect_container(self, name: str) -> ActualContainer | None:
        with failures.translated(f"inspect {name}"):
            response = self._client.api.get(f"/containers/{name}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            attrs = response.json()
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        return ActualContainer(
            id=str(attrs.get("Id", "")),
            name=str(attrs.get("Name", "")).lstrip("/"),
            image=str(attrs.get("ImageName") or config.get("Image") or ""),
            state=str(state.get("Status", "unknown")).lower(),
            exit_code=int(state.get("ExitCode") or 0),
            labels=dict(config.get("Labels") or {}),
            image_id=str(attrs.get("Image") or ""),
            networks=tuple(sorted((attrs.get("NetworkSettings") or {}).get("Networks") or {})),
            created_at=answers.epoch(attrs.get("Created")),
            started_at=answers.epoch(state.get("StartedAt")),
            pid=answers.positive(state.get("Pid")),
        ).seen_by(self.instance)

    def image_present(self, image: str) -> bool:
        with failures.translated(f"look up image {image}"):
            return bool(self._client.images.exists(image))

    def pull_image(self, image: str, *, always: bool = False) -> None:
        # podman-py's pull swallows errors; read the stream ourselves.
        policy = "always" if always else "missing"
        headers = {}
        if self.auth is not None:
            try:
                credentials = self.auth.lookup(image)
            except ConfigFileError as err:
                raise ImageUnavailable(image, str(err), reason="failed") from err
            if credentials is not None:
                headers["X-Registry-Auth"] = credentials.header()
        with failures.translated(f"pull {image}", image=image):
            response = self._client.api.post(
                "/images/pull",
                params={"reference": image, "policy": policy},
                headers=headers,
                stream=True,
            )
            problems: list[str] = []
            for line in response.iter_lines():
                with contextlib.suppress(ValueError):
                    report = json.loads(line)
                    if isinstance(report, dict) and report.get("error"):
                        problems.append(str(report["error"]).strip())
            if response.status_code >= 400 or problems:
                detail = problems[-1] if problems else f"HTTP {response.status_code}"
                raise ImageUnavailable(image, detail)

    def build_image(self, request: BuildRequest) -> list[str]:
        with failures.translated(f"build {request.tag}", image=request.tag):
            try:
                _, stream = self._client.images.build(
                    path=request.context,
                    dockerfile=request.containerfile,
                    tag=request.tag,
                    buildargs=dict(request.args),
                    target=request.target,
                    rm=True,
                    forcerm=True,
                    timeout=BUILD_TIMEOUT,
                )
                return answers.build_lines(stream)
            except podman_errors.BuildError as err:
                tail = answers.build_lines(err.build_log)[-10:]
                detail = " ⏎ ".join([*tail, str(err.msg).strip()][-10:])
                raise ImageUnavailable(
                    request.tag, f"the build failed: {detail}", reason="build_failed"
                ) from err

    def inspect_image(self, image: str) -> LocalImage | None:
        with failures.translated(f"inspect image {image}"):
            response = self._client.api.get(f"/images/{image}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return answers.image(response.json())

    def list_images(self) -> list[LocalImage]:
        with failures.translated("list images"):
            response = self._client.api.get("/images/json", params={"all": False})
            response.raise_for_status()
            return [answers.image(attrs) for attrs in response.json()]

    def remove_image(self, image_id: str) -> None:
        """By ID, or by one of its names (that tag goes; the image with its last one)."""
        with failures.translated(f"remove image {image_id[:12]}"):
            response = self._client.api.delete(f"/images/{image_id}", params={"force": False})
            if response.status_code == 409:
                raise RequestRejected(f"image {image_id[:12]} is in use by a container")
            if response.status_code == 404:
                raise ContainerMissing(f"image {image_id[:12]} is gone")
            if response.status_code == 500 and "more than one tag" in response.text:
                # Podman 4.3's answer, not a fault: remove its tags one by one instead.
                raise RequestRejected(
                    f"remove image {image_id[:12]}: {failures.explain_body(response)}"
                )
            response.raise_for_status()

    def create_container(self, request: ContainerRequest) -> str:
        kwargs: dict[str, Any] = {
            "name": request.name,
            "labels": {**request.labels, INSTANCE: self.instance},
            "environment": dict(request.env),
            "stop_timeout": request.stop_timeout,
            "init": request.init,
        }
        if request.entrypoint is not None:
            kwargs["entrypoint"] = list(request.entrypoint)
        if request.command is not None:
            kwargs["command"] = list(request.command)
        if request.ports:
            kwargs["ports"] = {
                f"{p.container_port}/{p.protocol}": (asks.host_ip(p.host_ip), p.host_port)
                for p in request.ports
            }
        if request.volumes:
            kwargs["volumes"] = {
                v.source: {"bind": v.destination, "mode": "ro" if v.read_only else "rw"}
                for v in request.volumes
            }
        if request.memory_bytes is not None:
            kwargs["mem_limit"] = request.memory_bytes
        if request.cpus is not None:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = int(request.cpus * 100_000)
        if request.stop_signal is not None:
            kwargs["stop_signal"] = asks.signal_number(request.stop_signal)
        kwargs.update(asks.options(request.options))
        for config in request.configs:
            kwargs.setdefault("mounts", []).append(
                {
                    "type": "bind",
                    "source": config.host_path,
                    "target": config.target,
                    "read_only": True,
                }
            )
        if request.host_network:
            kwargs["network_mode"] = "host"
        elif request.networks:
            # Said, not left to Podman's default: a rootless Podman's default is slirp4netns,
            # which refuses networks ("can only be used with Bridge mode networking").
            kwargs["network_mode"] = "bridge"
            kwargs["networks"] = {
                name: asks.attachment(aliases, request.addresses.get(name, ()))
                for name, aliases in request.networks.items()
            }
        if request.secrets:  # mounted files only: type=env would show in inspect
            kwargs["secrets"] = [asks.secret(s) for s in request.secrets]
        with failures.translated(f"create {request.name}", image=request.image):
            container = self._client.containers.create(request.image, **kwargs)
        return str(container.id)

    def events(self) -> PodmanEventStream:
        """Open the container event stream (blocks until events arrive)."""
        with failures.translated("watch events"):
            response = self._client.api.get(
                "/events",
                params={"stream": "true", "filters": json.dumps({"type": ["container"]})},
                stream=True,
                timeout=(5, None),
            )
            response.raise_for_status()
        return PodmanEventStream(response)

    def start_container(self, name: str) -> None:
        self._post(name, "start")

    def unpause_container(self, name: str) -> None:
        self._post(name, "unpause")

    def stop_container(self, name: str, *, timeout: int) -> None:
        self._post(name, "stop", params={"timeout": timeout}, read_timeout=timeout + 30)

    def remove_container(self, name: str) -> None:
        with failures.translated(f"remove {name}"):
            response = self._client.api.delete(
                f"/containers/{name}", params={"force": True, "v": False}
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def rename_container(self, name: str, new_name: str) -> None:
        self._post(name, "rename", params={"name": new_name})

    def container_address(self, name: str) -> str | None:
        with failures.translated(f"inspect {name}"):
            response = self._client.api.get(f"/containers/{name}/json")
            response.raise_for_status(not_found=podman_errors.NotFound)
            attrs = response.json()
        settings = attrs.get("NetworkSettings") or {}
        if (attrs.get("HostConfig") or {}).get("NetworkMode") == "host":
            return "127.0.0.1"  # on the host's network: its ports are the host's
        if settings.get("IPAddress"):
            return str(settings["IPAddress"])
        for network in (settings.get("Networks") or {}).values():
            if network.get("IPAddress"):
                return str(network["IPAddress"])
        return None

    def exec_in(self, name: str, command: Sequence[str], *, timeout: float) -> int:
        with failures.translated(f"exec in {name}"):
            created = self._client.api.post(
                f"/containers/{name}/exec",
                data=json.dumps({"Cmd": list(command), "AttachStdout": True, "AttachStderr": True}),
                headers={"Content-Type": "application/json"},
            )
            created.raise_for_status(not_found=podman_errors.NotFound)
            exec_id = created.json()["Id"]
            try:
                started = self._client.api.post(
                    f"/exec/{exec_id}/start",
                    data=json.dumps({"Detach": False, "Tty": False}),
                    headers={"Content-Type": "application/json"},
                    timeout=timeout,
                )
                started.raise_for_status()
                _ = started.content  # the command's output: read until it exits
            except (requests.Timeout, requests.ConnectionError) as err:
                failure = RuntimeFailure(f"exec in {name} timed out after {timeout:g} s")
                raise failure from err
            inspected = self._client.api.get(f"/exec/{exec_id}/json")
            inspected.raise_for_status()
            return int(inspected.json().get("ExitCode") or 0)

    def kill_container(self, name: str, *, signal: str = "SIGKILL") -> None:
        self._post(name, "kill", params={"signal": signal})

    def pause_container(self, name: str) -> None:
        self._post(name, "pause")

    def volume_mountpoint(self, name: str) -> str:
        with failures.translated(f"inspect volume {name}"):
            response = self._client.api.get(f"/volumes/{name}/json")
            response.raise_for_status(not_found=podman_errors.NotFound)
            return str(response.json()["Mountpoint"])

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        with failures.translated(f"create volume {name}"):
            owned = {**labels, INSTANCE: self.instance} if labels is not None else None
            self._client.volumes.create(name, labels=owned)

    def volume_users(self, name: str) -> list[ActualContainer]:
        with failures.translated(f"list users of volume {name}"):
            response = self._client.api.get(
                "/containers/json",
                params={"all": True, "filters": json.dumps({"volume": [name]})},
            )
            response.raise_for_status()
            return [answers.actual(attrs).seen_by(self.instance) for attrs in response.json()]

    def volume_labels(self, name: str) -> dict[str, str] | None:
        with failures.translated(f"inspect volume {name}"):
            response = self._client.api.get(f"/volumes/{name}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return {str(k): str(v) for k, v in (response.json().get("Labels") or {}).items()}

    def list_secrets(self) -> dict[str, float]:
        with failures.translated("list secrets"):
            response = self._client.api.get("/secrets/json")
            response.raise_for_status()
            return {
                str(item["Spec"]["Name"]): answers.epoch(item.get("CreatedAt")) or 0.0
                for item in response.json()
            }

    def create_secret(self, name: str, value: bytes) -> None:
        # The value goes in the body only: never into a URL, a log or an error.
        with failures.translated(f"create secret {name}"):
            response = self._client.api.post("/secrets/create", params={"name": name}, data=value)
            if response.status_code == 409 or (
                response.status_code == 500 and "in use" in response.text
            ):
                return  # made by an earlier attempt; the name embeds the fingerprint
            response.raise_for_status()

    def remove_secret(self, name: str) -> None:
        with failures.translated(f"remove secret {name}"):
            response = self._client.api.delete(f"/secrets/{name}")
            response.raise_for_status(not_found=podman_errors.NotFound)

    def list_networks(self) -> list[ActualNetwork]:
        with failures.translated("list networks"):
            response = self._client.api.get("/networks/json")
            response.raise_for_status()
            listed = response.json() or []
        return [
            ActualNetwork(
                id=str(item.get("id", "")),
                name=str(item.get("name", "")),
                labels=dict(item.get("labels") or {}),
            ).seen_by(self.instance)
            for item in listed
        ]

    def create_network(self, name: str, spec: NetworkSpec, labels: Mapping[str, str]) -> str:
        body: dict[str, Any] = {
            "name": name,
            "driver": "bridge",
            "labels": {**labels, INSTANCE: self.instance},
            "internal": spec.internal,
            "dns_enabled": spec.dns,
            # netavark drops traffic into an isolated bridge from any other:
            # a service on one network alone is unreachable from the others.
            "options": {"isolate": "true"},
        }
        if spec.subnet is not None:
            body["subnets"] = [{"subnet": spec.subnet}]
        with failures.translated(f"create network {name}"):
            response = self._client.api.post(
                "/networks/create",
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status()
            return str(response.json().get("id", ""))

    def remove_network(self, name: str) -> None:
        with failures.translated(f"remove network {name}"):
            response = self._client.api.delete(f"/networks/{name}")
            response.raise_for_status(not_found=podman_errors.NotFound)

    def connect_network(
        self,
        network: str,
        container: str,
        *,
        aliases: Sequence[str],
        addresses: Sequence[str] = (),
    ) -> None:
        with failures.translated(f"connect {container} to {network}"):
            response = self._client.api.post(
                f"/networks/{network}/connect",
                data=json.dumps({"container": container, **asks.attachment(aliases, addresses)}),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def disconnect_network(self, network: str, container: str) -> None:
        with failures.translated(f"disconnect {container} from {network}"):
            response = self._client.api.post(
                f"/networks/{network}/disconnect",
                data=json.dumps({"Container": container}),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        with failures.translated(f"logs of {name}"):
            response = self._client.api.get(
                f"/containers/{name}/logs",
                params={"stdout": "true", "stderr": "true", "tail": str(lines)},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)
            return answers.demultiplex(response.content)[-lines:]

    def stream_logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[tuple[int, bytes]]:
        """What the container wrote, as (1 stdout | 2 stderr, bytes), as Podman sends it.

        With ``follow``, it goes on until the container stops (or the caller stops reading).
        """
        params = {"stdout": "true", "stderr": "true", "follow": str(follow).lower()}
        if since is not None:
            params["since"] = str(int(since))
        if tail is not None:
            params["tail"] = str(tail)
        if timestamps:
            params["timestamps"] = "true"
        with failures.translated(f"logs of {container_id[:12]}"):
            # Following waits for lines for as long as the reader wants; a one-off read
            # has the usual deadline, so a stuck Podman never hangs `paid logs`.
            response = self._client.api.get(
                f"/containers/{container_id}/logs",
                params=params,
                stream=True,
                timeout=None if follow else DEFAULT_TIMEOUT,
            )
            response.raise_for_status(not_found=podman_errors.NotFound)
            try:
                yield from answers.frames(response.iter_content(chunk_size=None))
            finally:
                response.close()

    def handover_argv(self, *args: str) -> list[str]:
        """The ``podman`` command line that talks to this same service (``podman --url``).

        For what only Podman's own client does well: an interactive exec with a terminal.
        """
        program = shutil.which("podman")
        if program is None:
            raise RuntimeUnavailable("the podman command is not installed here")
        return [program, "--url", self.url, *args]

    def _post(
        self,
        name: str,
        verb: str,
        *,
        params: dict[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> None:
        # Straight to the API: podman-py's Container.start() and friends first
        # need a Container object, which costs an inspect we do not need.
        with failures.translated(f"{verb} {name}"):
            response = self._client.api.post(
                f"/containers/{name}/{verb}", params=params or {}, timeout=read_timeout
            )
            if response.status_code == 304:  # already in that state
                return
            response.raise_for_status(not_found=podman_errors.NotFound)


class PodmanEventStream:
    """Podman's event stream (``GET /events?stream=true``), containers only."""

    def __init__(self, response: Any) -> None:  # podman-py's APIResponse wraps requests
        self._response = response

    def __iter__(self) -> Iterator[RuntimeEvent]:
        with failures.translated("read events"):
            try:
                for line in self._response.iter_lines():
                    if not line:
                        continue
                    event = answers.event(line)
                    if event is not None:
                        yield event
            except (AttributeError, ValueError) as err:  # the socket was closed under us
                raise RuntimeUnavailable(f"event stream closed: {err}") from err
        raise RuntimeUnavailable("event stream ended")

    def close(self) -> None:
        # Closing the response does not wake a thread blocked in read();
        # shutting the socket down does.
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()


BUILD_TIMEOUT = 3600.0  # seconds for a whole build's answer

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
import os
import re
import resource
import shutil
import socket
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from podman import PodmanClient
from podman import errors as podman_errors

from paid.runtime.base import (
    BuildRequest,
    ContainerMissing,
    ContainerOptions,
    ContainerRequest,
    ImageUnavailable,
    NameInUse,
    ObjectFault,
    RequestRejected,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
)
from paid.runtime.registry import AuthFile, ConfigFileError
from paid.runtime.ssh import CONNECT_TIMEOUT, SshTunnel
from paid.state.actual import ActualContainer
from paid.state.container_fields import TmpfsMount
from paid.state.images import LocalImage
from paid.state.labels import DEFAULT_INSTANCE, INSTANCE
from paid.state.networks import ActualNetwork, NetworkSpec
from paid.state.podman_host import PodmanHost
from paid.state.secrets import SecretMount
from paid.state.specs import PortMapping, signal_number

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

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests[
            (response.request.method or "GET", _operation(response.request.path_url))
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
        with _translated("version"):
            response = self._client.api.get("/_ping")
            response.raise_for_status()
            headers = response.headers
            return str(headers.get("Libpod-API-Version") or headers.get("API-Version") or "?")

    def host(self) -> PodmanHost:
        with _translated("info"):
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
        with _translated("list containers"):
            listed = self._client.containers.list(all=True, sparse=True)
        return [_actual(c.attrs).seen_by(self.instance) for c in listed]

    def inspect_container(self, name: str) -> ActualContainer | None:
        with _translated(f"inspect {name}"):
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
            created_at=_epoch(attrs.get("Created")),
            started_at=_epoch(state.get("StartedAt")),
        ).seen_by(self.instance)

    def image_present(self, image: str) -> bool:
        with _translated(f"look up image {image}"):
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
        with _translated(f"pull {image}", image=image):
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
        with _translated(f"build {request.tag}", image=request.tag):
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
                return _build_lines(stream)
            except podman_errors.BuildError as err:
                tail = _build_lines(err.build_log)[-10:]
                detail = " ⏎ ".join([*tail, str(err.msg).strip()][-10:])
                raise ImageUnavailable(
                    request.tag, f"the build failed: {detail}", reason="build_failed"
                ) from err

    def inspect_image(self, image: str) -> LocalImage | None:
        with _translated(f"inspect image {image}"):
            response = self._client.api.get(f"/images/{image}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return _image(response.json())

    def list_images(self) -> list[LocalImage]:
        with _translated("list images"):
            response = self._client.api.get("/images/json", params={"all": False})
            response.raise_for_status()
            return [_image(attrs) for attrs in response.json()]

    def remove_image(self, image_id: str) -> None:
        """By ID, or by one of its names (that tag goes; the image with its last one)."""
        with _translated(f"remove image {image_id[:12]}"):
            response = self._client.api.delete(f"/images/{image_id}", params={"force": False})
            if response.status_code == 409:
                raise RequestRejected(f"image {image_id[:12]} is in use by a container")
            if response.status_code == 404:
                raise ContainerMissing(f"image {image_id[:12]} is gone")
            if response.status_code == 500 and "more than one tag" in response.text:
                # Podman 4.3's answer, not a fault: remove its tags one by one instead.
                raise RequestRejected(f"remove image {image_id[:12]}: {_explain_body(response)}")
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
                f"{p.container_port}/{p.protocol}": (_host_ip(p.host_ip), p.host_port)
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
            kwargs["stop_signal"] = _signal_number(request.stop_signal)
        kwargs.update(_options(request.options))
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
                name: _attachment(aliases, request.addresses.get(name, ()))
                for name, aliases in request.networks.items()
            }
        if request.secrets:  # mounted files only: type=env would show in inspect
            kwargs["secrets"] = [_secret(s) for s in request.secrets]
        with _translated(f"create {request.name}", image=request.image):
            container = self._client.containers.create(request.image, **kwargs)
        return str(container.id)

    def events(self) -> PodmanEventStream:
        """Open the container event stream (blocks until events arrive)."""
        with _translated("watch events"):
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
        with _translated(f"remove {name}"):
            response = self._client.api.delete(
                f"/containers/{name}", params={"force": True, "v": False}
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def rename_container(self, name: str, new_name: str) -> None:
        self._post(name, "rename", params={"name": new_name})

    def container_address(self, name: str) -> str | None:
        with _translated(f"inspect {name}"):
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
        with _translated(f"exec in {name}"):
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
        with _translated(f"inspect volume {name}"):
            response = self._client.api.get(f"/volumes/{name}/json")
            response.raise_for_status(not_found=podman_errors.NotFound)
            return str(response.json()["Mountpoint"])

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> None:
        with _translated(f"create volume {name}"):
            owned = {**labels, INSTANCE: self.instance} if labels is not None else None
            self._client.volumes.create(name, labels=owned)

    def volume_users(self, name: str) -> list[ActualContainer]:
        with _translated(f"list users of volume {name}"):
            response = self._client.api.get(
                "/containers/json",
                params={"all": True, "filters": json.dumps({"volume": [name]})},
            )
            response.raise_for_status()
            return [_actual(attrs).seen_by(self.instance) for attrs in response.json()]

    def volume_labels(self, name: str) -> dict[str, str] | None:
        with _translated(f"inspect volume {name}"):
            response = self._client.api.get(f"/volumes/{name}/json")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return {str(k): str(v) for k, v in (response.json().get("Labels") or {}).items()}

    def list_secrets(self) -> dict[str, float]:
        with _translated("list secrets"):
            response = self._client.api.get("/secrets/json")
            response.raise_for_status()
            return {
                str(item["Spec"]["Name"]): _epoch(item.get("CreatedAt")) or 0.0
                for item in response.json()
            }

    def create_secret(self, name: str, value: bytes) -> None:
        # The value goes in the body only: never into a URL, a log or an error.
        with _translated(f"create secret {name}"):
            response = self._client.api.post("/secrets/create", params={"name": name}, data=value)
            if response.status_code == 409 or (
                response.status_code == 500 and "in use" in response.text
            ):
                return  # made by an earlier attempt; the name embeds the fingerprint
            response.raise_for_status()

    def remove_secret(self, name: str) -> None:
        with _translated(f"remove secret {name}"):
            response = self._client.api.delete(f"/secrets/{name}")
            response.raise_for_status(not_found=podman_errors.NotFound)

    def list_networks(self) -> list[ActualNetwork]:
        with _translated("list networks"):
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
        with _translated(f"create network {name}"):
            response = self._client.api.post(
                "/networks/create",
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status()
            return str(response.json().get("id", ""))

    def remove_network(self, name: str) -> None:
        with _translated(f"remove network {name}"):
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
        with _translated(f"connect {container} to {network}"):
            response = self._client.api.post(
                f"/networks/{network}/connect",
                data=json.dumps({"container": container, **_attachment(aliases, addresses)}),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def disconnect_network(self, network: str, container: str) -> None:
        with _translated(f"disconnect {container} from {network}"):
            response = self._client.api.post(
                f"/networks/{network}/disconnect",
                data=json.dumps({"Container": container}),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)

    def logs_tail(self, name: str, *, lines: int) -> list[str]:
        with _translated(f"logs of {name}"):
            response = self._client.api.get(
                f"/containers/{name}/logs",
                params={"stdout": "true", "stderr": "true", "tail": str(lines)},
            )
            response.raise_for_status(not_found=podman_errors.NotFound)
            return _demultiplex(response.content)[-lines:]

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
        with _translated(f"logs of {container_id[:12]}"):
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
                yield from _frames(response.iter_content(chunk_size=None))
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
        with _translated(f"{verb} {name}"):
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
        with _translated("read events"):
            try:
                for line in self._response.iter_lines():
                    if not line:
                        continue
                    event = _event(line)
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


def _event(line: bytes) -> RuntimeEvent | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("Type") != "container":
        return None
    actor = doc.get("Actor") or {}
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    name = attributes.pop("name", "")
    health = attributes.pop("health_status", None)
    attributes.pop("image", None)
    return RuntimeEvent(
        action=str(doc.get("Action") or doc.get("status") or ""),
        name=name,
        labels=attributes,
        health=health,
    )


def _demultiplex(raw: bytes) -> list[str]:
    """Lines of a Docker-style multiplexed log stream (8-byte frame headers)."""
    out = bytearray()
    i = 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1 : i + 4] == b"\0\0\0":
        size = int.from_bytes(raw[i + 4 : i + 8], "big")
        out += raw[i + 8 : i + 8 + size]
        i += 8 + size
    if i == 0:  # not multiplexed (a tty container)
        out = bytearray(raw)
    return out.decode("utf-8", "replace").splitlines()


def _frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """A Docker-style multiplexed stream as (stream, bytes); a tty's plain stream as stdout."""
    buffer = b""
    plain: bool | None = None
    for chunk in chunks:
        buffer += chunk
        if plain is None and len(buffer) >= 8:
            plain = not (buffer[0] in (0, 1, 2) and buffer[1:4] == b"\0\0\0")
        if plain:
            yield 1, buffer
            buffer = b""
            continue
        while len(buffer) >= 8:
            size = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + size:
                break
            yield (2 if buffer[0] == 2 else 1), buffer[8 : 8 + size]
            buffer = buffer[8 + size :]
    if buffer:
        yield 1, buffer


def _image(attrs: dict[str, Any]) -> LocalImage:
    """An image from Podman's inspect or list answer (both spell these alike)."""
    names = [str(n) for n in (attrs.get("RepoTags") or attrs.get("Names") or ())]
    return LocalImage(
        id=str(attrs.get("Id", "")).removeprefix("sha256:"),
        tags=tuple(n for n in names if "@" not in n and not n.startswith("<none>")),
        repo_digests=tuple(str(d) for d in attrs.get("RepoDigests") or ()),
        size=int(attrs.get("Size") or 0),
        volumes=tuple(sorted(str(v) for v in (attrs.get("Config") or {}).get("Volumes") or ())),
    )


def _actual(attrs: dict[str, Any]) -> ActualContainer:
    names = attrs.get("Names") or [""]
    return ActualContainer(
        id=str(attrs.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        image=str(attrs.get("Image", "")),
        state=str(attrs.get("State", "unknown")).lower(),
        exit_code=int(attrs.get("ExitCode") or 0),
        labels=dict(attrs.get("Labels") or {}),
        image_id=str(attrs.get("ImageID") or ""),
        published=tuple(_published(attrs.get("Ports") or [])),
        networks=tuple(sorted(str(n) for n in attrs.get("Networks") or ())),
        created_at=_epoch(attrs.get("Created")),
        started_at=_epoch(attrs.get("StartedAt")),
    )


def _epoch(value: Any) -> float | None:
    """Podman's times, as the list call gives them (epoch seconds or RFC 3339), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None  # Go's zero time is negative
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).timestamp()
    return None


def _published(ports: list[dict[str, Any]]) -> Iterator[PortMapping]:
    for port in ports:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            for offset in range(int(port.get("range") or 1)):
                yield PortMapping(
                    host_ip=str(port.get("host_ip") or "0.0.0.0"),  # noqa: S104
                    host_port=int(port["host_port"]) + offset,
                    container_port=int(port["container_port"]) + offset,
                    protocol=str(port.get("protocol") or "tcp"),
                )


def _attachment(aliases: Sequence[str], addresses: Sequence[str]) -> dict[str, Any]:
    """One network's per-container options, as Podman's API names them."""
    out: dict[str, Any] = {}
    if aliases:
        out["aliases"] = list(aliases)
    if addresses:
        out["static_ips"] = list(addresses)
    return out


BUILD_TIMEOUT = 3600.0  # seconds for a whole build's answer


def _build_lines(stream: Any) -> list[str]:
    """The text lines of Podman's build stream (JSON objects with a "stream" key)."""
    lines: list[str] = []
    for raw in stream or ():
        try:
            item = json.loads(raw)
        except (TypeError, ValueError):
            continue
        text = item.get("stream") if isinstance(item, dict) else None
        if isinstance(text, str):
            lines.extend(line for line in text.splitlines() if line.strip())
    return lines[-200:]


def _host_ip(address: str) -> str:
    """The HostIp Podman's API wants: empty for "every address".

    ``podman run -p 8080:80`` sends no address. Sent as ``0.0.0.0``, netavark
    1.4 writes a DNAT rule for ``-d 0.0.0.0/32``, which matches nothing: the
    port is held but unreachable, from loopback and from the host's addresses.
    """
    return "" if address in ("0.0.0.0", "::") else address  # noqa: S104


def _options(o: ContainerOptions) -> dict[str, Any]:
    """podman-py's keywords for the optional container fields; unset ones are left out."""
    kwargs: dict[str, Any] = {
        "log_config": {
            "Type": o.log_driver,
            "Config": {"size": o.log_max_size} if o.log_max_size else {},
        }
    }
    simple = {
        "user": o.user,
        "working_dir": o.working_dir,
        "hostname": o.hostname,
        "shm_size": o.shm_size,
        "pids_limit": o.pids_limit,
        "userns_mode": o.userns,
        "timezone": o.timezone,
    }
    kwargs.update({k: v for k, v in simple.items() if v is not None})
    flags = {
        "read_only": o.read_only,
        "privileged": o.privileged,
        "no_new_privileges": o.no_new_privileges,
    }
    kwargs.update({k: True for k, v in flags.items() if v})
    lists = {
        "group_add": list(o.group_add),
        "cap_add": list(o.cap_add),
        "cap_drop": list(o.cap_drop),
        "devices": list(o.devices),
        "dns": list(o.dns_servers),
        "dns_search": list(o.dns_search),
        "dns_opt": list(o.dns_options),
    }
    kwargs.update({k: v for k, v in lists.items() if v})
    if o.tmpfs:
        kwargs["mounts"] = [_tmpfs(t) for t in o.tmpfs]
    if o.ulimits:
        kwargs["ulimits"] = [
            {"Name": name, "Soft": soft, "Hard": hard}
            for name, (soft, hard) in _with_host_defaults(o.ulimits).items()
        ]
    if o.sysctls:
        kwargs["sysctls"] = dict(o.sysctls)
    if o.extra_hosts:
        kwargs["extra_hosts"] = dict(h.split(":", 1) for h in o.extra_hosts)
    if o.annotations:
        kwargs["annotations"] = dict(o.annotations)
    for option in o.security_opt:
        key, _, value = option.partition("=")
        if key == "label":
            kwargs.setdefault("security_opt", []).append(value)
        elif key == "apparmor":
            kwargs["apparmor_profile"] = value
        elif key == "seccomp":
            kwargs["seccomp_profile_path"] = value
        elif key == "mask":
            kwargs.setdefault("masked_paths", []).extend(value.split(":"))
        elif key == "unmask":
            kwargs.setdefault("unmasked_paths", []).extend(value.split(":"))
    return kwargs


def _with_host_defaults(ulimits: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """``ulimits`` with ``nofile`` and ``nproc`` filled in as Podman would without any.

    Given any ulimit, Podman 4.3 sets ``nofile`` and ``nproc`` to 1048576
    unless they are given too, and a host with lower limits refuses that
    start (EPERM from the OCI runtime). Compose files give ``nofile`` alone.
    The other is what Podman gives a container that names none: its
    ``containers.conf`` ``default_ulimits``, else this host's hard limit.
    """
    out = dict(ulimits)
    configured = _configured_ulimits()
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        if name in out:
            continue
        if name in configured:
            out[name] = configured[name]
            continue
        _, hard = resource.getrlimit(which)
        limit = _PODMAN_ULIMIT if hard == resource.RLIM_INFINITY else min(hard, _PODMAN_ULIMIT)
        out[name] = (limit, limit)
    return out


_PODMAN_ULIMIT = 1_048_576  # what Podman itself puts when none is given


def _configured_ulimits() -> dict[str, tuple[int, int]]:
    """``default_ulimits`` from the containers.conf files Podman reads, later ones winning.

    ``$CONTAINERS_CONF`` alone when set (as Podman does), else the system
    files and drop-ins. Unreadable or malformed files are skipped: this
    only fills in what the user left out.
    """
    override = os.environ.get("CONTAINERS_CONF")
    if override:
        paths = [Path(override)]
    else:
        paths = [Path("/usr/share/containers/containers.conf"), Path(_ETC_CONF)]
        with contextlib.suppress(OSError):
            paths += sorted(Path(_ETC_CONF + ".d").glob("*.conf"))
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        try:
            with path.open("rb") as file:
                entries = tomllib.load(file).get("containers", {}).get("default_ulimits", [])
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for entry in entries if isinstance(entries, list) else ():
            match = _ULIMIT_ENTRY.fullmatch(str(entry))
            if match:
                soft = int(match["soft"])
                found[match["name"]] = (soft, int(match["hard"] or soft))
    return found


_ETC_CONF = "/etc/containers/containers.conf"
_ULIMIT_ENTRY = re.compile(r"(?P<name>nofile|nproc)=(?P<soft>\d{1,19})(?::(?P<hard>\d{1,19}))?")


def _tmpfs(mount: TmpfsMount) -> dict[str, Any]:
    """A tmpfs mount in podman-py's form; its options reach mount(2) as written.

    podman-py passes only ``mode`` and ``size`` through, each as
    ``key=value``: the owner rides in the mode's option, which Podman splits
    on commas like any other list of mount options.
    """
    mode = ",".join(
        [mount.mode]
        + [
            f"{key}={value}"
            for key, value in (("uid", mount.uid), ("gid", mount.gid))
            if value is not None
        ]
    )
    out: dict[str, Any] = {"type": "tmpfs", "target": mount.path, "source": "tmpfs", "mode": mode}
    if mount.size:
        out["size"] = mount.size
    return out


def _secret(mount: SecretMount) -> dict[str, Any]:
    """A secret mounted as a file: under /run/secrets by its name, or at its own path."""
    out: dict[str, Any] = {"source": mount.podman_name, "target": mount.env or mount.target}
    out.update({k: v for k, v in (("uid", mount.uid), ("gid", mount.gid)) if v is not None})
    if mount.mode is not None:
        out["mode"] = mount.mode
    return out


def _signal_number(name: str) -> int:
    number = signal_number(name)
    if number is None:  # validation refuses these; a request built by hand may not
        raise RequestRejected(f"{name!r} is not a signal of this system")
    return number


def _operation(path: str) -> str:
    """``/v5.8.0/libpod/containers/web/start?x=1`` -> ``containers/start``: few, fixed labels."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts and parts[0].startswith("v") and parts[0][1:2].isdigit():
        parts = parts[1:]
    if parts and parts[0] == "libpod":
        parts = parts[1:]
    if not parts:
        return "/"
    if len(parts) >= 3:
        return f"{parts[0]}/{parts[-1]}"
    if len(parts) == 2 and parts[1] not in ("json", "create", "pull"):
        return f"{parts[0]}/item"
    return "/".join(parts)


# "the container name "x" is already in use by ..." (create), "name x already in use" (rename);
# never "address already in use", which is a host port.
_NAME_IN_USE = re.compile(r'name "?[^"\s]*"? (is )?already in use')


# A 500 about one object, not Podman failing: the breaker must not count them
# (one broken container opened it for every service).
_ONE_OBJECT = (
    "container not known",
    "no such object",
    "no such volume",
    "getting container from store",
    "OCI runtime error",
    "OCI runtime attempted to invoke a command that was not found",
    "crun:",
    "runc:",
    "error setting rlimit",
    "is being used",
    "in use by",
)


@contextlib.contextmanager
def _translated(what: str, *, image: str | None = None) -> Iterator[None]:
    try:
        yield
    except RuntimeFailure:
        raise
    except podman_errors.ImageNotFound as err:
        raise ImageUnavailable(image or "?", _explain(err)) from err
    except podman_errors.NotFound as err:
        raise ContainerMissing(f"{what}: {_explain(err)}") from err
    except podman_errors.APIError as err:
        status = err.response.status_code if err.response is not None else None
        detail = _explain(err)
        if status is None:
            cause = _transport_cause(err)
            raise RuntimeUnavailable(f"{what}: Podman is unreachable ({cause or detail})") from err
        if image is not None and "image not known" in detail:
            raise ImageUnavailable(image, detail) from err
        if _NAME_IN_USE.search(detail):  # Podman 4.3 answers 500, not 409, for this
            raise NameInUse(f"{what}: {detail}") from err
        if "address already in use" in detail:  # a host port: an answer, not an outage
            raise RequestRejected(f"{what}: a host port is taken: {detail}") from err
        if "invalid config provided" in detail:  # 500 for a spec Podman refuses: an answer
            raise RequestRejected(f"{what}: {detail}") from err
        if "container state improper" in detail:  # 500 for "not running": an answer too
            raise RequestRejected(f"{what}: {detail}") from err
        if "IPAM error" in detail or "failed to find free IP" in detail:  # 500, but an answer
            raise RequestRejected(
                f"{what}: the network has no free address left ({detail}); "
                "declare it with a larger spec.subnet"
            ) from err
        if "network is being used" in detail:  # 500: a network with containers on it
            raise RequestRejected(f"{what}: {detail}") from err
        if "unable to find network" in detail and what.startswith("create "):
            raise RequestRejected(f"{what}: {detail}") from err  # 404, but no container is missing
        if status == 404:
            raise ContainerMissing(f"{what}: {detail}") from err
        if status in (400, 409, 422):
            raise RequestRejected(f"{what}: {detail}") from err
        if "no such container" in detail or "does not exist in database" in detail:
            raise ContainerMissing(f"{what}: {detail}") from err  # 500, but simply gone
        if any(words in detail for words in _ONE_OBJECT):
            raise ObjectFault(f"{what}: {detail}") from err
        failure = RuntimeFailure(f"{what}: Podman answered {status}: {detail}")
        failure.transient = status >= 500 and "image not known" not in detail
        raise failure from err
    except (requests.ConnectionError, requests.Timeout, ConnectionError) as err:
        raise RuntimeUnavailable(f"{what}: Podman is unreachable ({err})") from err
    except podman_errors.PodmanError as err:
        raise RuntimeFailure(f"{what}: {err}") from err
    except requests.RequestException as err:
        raise RuntimeUnavailable(f"{what}: {err}") from err


def _explain_body(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.text).strip()
    except ValueError:
        return str(response.text).strip()


def _transport_cause(err: Exception) -> str | None:
    """Why the connection failed, in the words of the OS or of requests: not "GET failed"."""
    cause = err.__cause__
    if isinstance(cause, requests.ConnectTimeout):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(cause, requests.ReadTimeout):
        return "it accepted the connection but did not answer in time"
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return None


def _explain(err: Exception) -> str:
    explanation = getattr(err, "explanation", None)
    return str(explanation or err).strip()

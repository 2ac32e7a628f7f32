"""What Podman answers, as paid's values.

Inspect and list answers become ActualContainer and LocalImage; event
lines become RuntimeEvents; multiplexed log streams become lines. No
podman-py here: only the shapes the API writes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from paid.runtime.base import RuntimeEvent
from paid.state.actual import ActualContainer
from paid.state.images import LocalImage
from paid.state.specs import PortMapping


def event(line: bytes) -> RuntimeEvent | None:
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


def demultiplex(raw: bytes) -> list[str]:
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


def frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
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


def image(attrs: dict[str, Any]) -> LocalImage:
    """An image from Podman's inspect or list answer (both spell these alike)."""
    names = [str(n) for n in (attrs.get("RepoTags") or attrs.get("Names") or ())]
    return LocalImage(
        id=str(attrs.get("Id", "")).removeprefix("sha256:"),
        tags=tuple(n for n in names if "@" not in n and not n.startswith("<none>")),
        repo_digests=tuple(str(d) for d in attrs.get("RepoDigests") or ()),
        size=int(attrs.get("Size") or 0),
        volumes=tuple(sorted(str(v) for v in (attrs.get("Config") or {}).get("Volumes") or ())),
    )


def actual(attrs: dict[str, Any]) -> ActualContainer:
    names = attrs.get("Names") or [""]
    return ActualContainer(
        id=str(attrs.get("Id", "")),
        name=str(names[0]).lstrip("/"),
        image=str(attrs.get("Image", "")),
        state=str(attrs.get("State", "unknown")).lower(),
        exit_code=int(attrs.get("ExitCode") or 0),
        labels=dict(attrs.get("Labels") or {}),
        image_id=str(attrs.get("ImageID") or ""),
        published=tuple(published(attrs.get("Ports") or [])),
        networks=tuple(sorted(str(n) for n in attrs.get("Networks") or ())),
        created_at=epoch(attrs.get("Created")),
        started_at=epoch(attrs.get("StartedAt")),
        pid=positive(attrs.get("Pid")),
    )


def positive(value: Any) -> int | None:
    """A process ID as Podman reports it (0 when none runs), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def epoch(value: Any) -> float | None:
    """Podman's times, as the list call gives them (epoch seconds or RFC 3339), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None  # Go's zero time is negative
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).timestamp()
    return None


def published(ports: list[dict[str, Any]]) -> Iterator[PortMapping]:
    for port in ports:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            for offset in range(int(port.get("range") or 1)):
                yield PortMapping(
                    host_ip=str(port.get("host_ip") or "0.0.0.0"),  # noqa: S104
                    host_port=int(port["host_port"]) + offset,
                    container_port=int(port["container_port"]) + offset,
                    protocol=str(port.get("protocol") or "tcp"),
                )


def build_lines(stream: Any) -> list[str]:
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

"""Compose files merged as ``docker compose -f a.yaml -f b.yaml`` merges them.

``compose.override.yaml`` beside ``compose.yaml`` (and each naming family's
own override) is read by default, as compose reads it. The rules are the
Compose Spec's: mappings merge key by key, later files winning;
``command``, ``entrypoint`` and a healthcheck's ``test`` are replaced;
``environment``, ``labels``, ``extra_hosts``, ``sysctls``, ``ulimits``,
``depends_on`` and ``build.args`` merge as mappings whatever form each file
writes them in; ``volumes``, ``secrets`` and ``configs`` merge by their
target; ``ports``, ``expose``, ``dns``, ``dns_search``, ``tmpfs``,
``devices``, ``cap_add``, ``cap_drop`` and ``security_opt`` are unions;
any other list is replaced.

``Merged`` answers where a key came from (the last file that sets it), so
a refusal points at the file and line a user would edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from paid.state.reading import Document


class Located(Protocol):
    """A compose document, one file's or several merged: its value, and where a key is."""

    @property
    def file(self) -> str: ...

    @property
    def value(self) -> Any: ...

    def line_of(self, path: Sequence[str | int]) -> int: ...

    def where(self, path: Sequence[str | int]) -> tuple[str, int]: ...


OVERRIDES = {
    "compose.yaml": "compose.override.yaml",
    "compose.yml": "compose.override.yml",
    "docker-compose.yaml": "docker-compose.override.yaml",
    "docker-compose.yml": "docker-compose.override.yml",
}
_AS_MAPPING = frozenset(
    {"environment", "labels", "extra_hosts", "sysctls", "ulimits", "depends_on", "args"}
)
_BY_TARGET = frozenset({"volumes", "secrets", "configs"})
_UNIONS = frozenset(
    {"ports", "expose", "dns", "dns_search", "tmpfs", "devices", "cap_add", "cap_drop",
     "security_opt", "external_links", "group_add"}
)  # fmt: skip
_REPLACED = frozenset({"command", "entrypoint", "test"})


def override_of(path: Path) -> Path | None:
    """The override file compose would read beside ``path``, if there is one."""
    name = OVERRIDES.get(path.name)
    if name is None:
        return None
    candidate = path.parent / name
    return candidate if candidate.is_file() else None


def merge(base: Any, over: Any, key: str | None = None) -> Any:
    """``over`` merged onto ``base`` by the Compose Spec's rules (pure)."""
    if key in _AS_MAPPING and isinstance(base, (dict, list)) and isinstance(over, (dict, list)):
        merged = {**_mapping(base), **_mapping(over)}
        if key == "depends_on":  # the list form's names, as the long form's entries
            return {name: body if body is not None else {} for name, body in merged.items()}
        return merged
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, value in over.items():
            out[k] = merge(base[k], value, str(k)) if k in base else value
        return out
    if isinstance(base, list) and isinstance(over, list) and key not in _REPLACED:
        if key in _BY_TARGET:
            merged = {_target(item): item for item in base}
            merged.update({_target(item): item for item in over})
            return list(merged.values())
        if key in _UNIONS:
            return base + [item for item in over if item not in base]
    return over


def _mapping(value: dict[Any, Any] | list[Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    out: dict[str, Any] = {}
    for item in value:
        name, sep, rest = str(item).partition("=")
        if not sep and ":" in name and "=" not in str(item):
            name, _, rest = str(item).partition(":")  # extra_hosts' host:ip
            out[name] = rest
            continue
        out[name] = rest if sep else None
    return out


def _target(item: Any) -> str:
    """A volume's, secret's or config's target: what a later file's entry replaces."""
    if isinstance(item, dict):
        return str(item.get("target") or item.get("source") or item)
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


@dataclass
class Merged:
    """Several files' documents as one: the merged value, and where each key was written."""

    docs: Sequence[Document]
    value: Any

    @property
    def file(self) -> str:
        return self.docs[0].file

    def line_of(self, path: Sequence[str | int]) -> int:
        return self.where(path)[1]

    def where(self, path: Sequence[str | int]) -> tuple[str, int]:
        """The file and line of the last document that writes the deepest known prefix."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            for doc in reversed(self.docs):
                line = doc.lines.get(prefix)
                if line is not None:
                    return doc.file, line
        return self.docs[0].file, 1

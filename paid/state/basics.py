"""What every desired-state model shares: the strict base model, sizes, plain checks."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

_MEMORY = re.compile(r"^(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[KMGT]i?|[kmgt]|[KMGT]B|B)?$")
_MEMORY_UNITS = {
    None: 1,
    "B": 1,
    # Lowercase is Docker's and Podman's: 512m is 512 MiB. Uppercase
    # without i is Kubernetes' decimal: 512M is 512 MB.
    "k": 1024,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "m": 1024**2,
    "MB": 1000**2,
    "G": 1000**3,
    "g": 1024**3,
    "GB": 1000**3,
    "T": 1000**4,
    "t": 1024**4,
    "TB": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # runc refuses less than 6 MiB


class Model(BaseModel):
    """Base of every desired-state model: frozen, camelCase, strict about keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


def parse_memory(value: Any) -> Any:
    """Turn ``256Mi`` / ``512M`` / ``1G`` / bytes into a byte count."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 256Mi")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return value
    match = _MEMORY.fullmatch(value.strip())
    if not match:
        raise ValueError(f"memory {value!r} is not a size such as 256Mi, 512M or 1G")
    return int(float(match["value"]) * _MEMORY_UNITS[match["unit"]])


def parse_cpus(value: Any) -> Any:
    """Accept ``0.5``, ``2`` or the Kubernetes millicore form ``500m``."""
    if isinstance(value, str) and value.endswith("m") and value[:-1].isdigit():
        return int(value[:-1]) / 1000
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"cpus {value!r} is not a number such as 0.5 or 500m") from None
    return value


def no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL byte")
    return value


def absolute_path(value: str, what: str) -> str:
    if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
        raise ValueError(f"{what} {value!r} must be an absolute path without '..'")
    return posixpath.normpath(value)

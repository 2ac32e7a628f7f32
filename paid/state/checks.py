"""A pre-flight check's verdict: what was checked, on what, OK, WARN or FAIL, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    check: str  # a small fixed set: podman, disk, image, port, host_path
    subject: str
    status: Status
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

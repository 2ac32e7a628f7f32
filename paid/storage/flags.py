"""Feature flags: controller behaviours switched at run time, without a restart.

A YAML file (``paid run --flags FILE``) of booleans, re-read when it
changes. A file that does not validate is reported and ignored: the flags
in force stay as they were. A flag that is absent keeps its default (on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

FLAG_NAMES: Final = (
    "auto_rollback", "prune", "event_watch", "backups", "canary", "chaos", "image_updates"
)  # fmt: skip


class Flags(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, strict=True
    )

    auto_rollback: bool = True  # roll a failed rollout back (else leave the failed revision)
    prune: bool = True  # remove managed containers no longer desired
    event_watch: bool = True  # react to Podman events (else: resync only)
    backups: bool = True  # scheduled backups, and backups before rollouts
    canary: bool = True  # honour strategy: Canary (else roll out as Recreate)
    chaos: bool = True  # allow `paid chaos` (reserved: not built yet)
    image_updates: bool = True  # check followed tags (imageUpdate) and roll new digests out


class FlagsError(Exception):
    pass


def load_flags(path: str | Path) -> Flags:
    """Read ``path``; FlagsError with a readable reason when it is not a valid flags file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise FlagsError(f"{path}: cannot read: {err.strerror}") from err
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise FlagsError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, dict):
        raise FlagsError(f"{path}: a flags file is a mapping of flag: true|false")
    try:
        return Flags.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise FlagsError(f"{path}: {field}: {first['msg']}") from err

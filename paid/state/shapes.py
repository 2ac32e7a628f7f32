"""A container's shape: everything that defines it, as JSON, and the hash of it.

The ``paid.spec-hash`` label is this hash; drift is a different hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from paid.state.secrets import secret_basename
from paid.state.specs import ServiceSpec


def spec_hash(shape: dict[str, Any]) -> str:
    """sha256 of a normalized container shape: the ``paid.spec-hash`` label."""
    return hashlib.sha256(canonical_json(shape)).hexdigest()


def shape_of(
    *,
    name: str,
    labels: dict[str, str],
    spec: ServiceSpec,
    secret_fingerprints: dict[str, str] | None = None,
    config_digests: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything that defines the container, as one JSON-ready mapping.

    Secrets enter as their keyed fingerprints (never their values), so a
    changed secret file is drift like any other; configs enter as the
    digests of their content (by target).
    """
    shape = {"name": name, "labels": dict(sorted(labels.items())), **spec.container_shape()}
    fingerprints = secret_fingerprints or {}
    for key, entry in shape.get("secretEnv", {}).items():
        entry["fingerprint"] = fingerprints.get(key, "")
    for entry in shape.get("secrets", []):
        source = entry.get("file") or entry.get("encrypted", "")
        target = entry.get("target") or f"/run/secrets/{secret_basename(source)}"
        entry["fingerprint"] = fingerprints.get(f"file:{target}", "")
    digests = config_digests or {}
    for entry in shape.get("configs", []):
        entry["digest"] = digests.get(entry["target"], "")
    return shape


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

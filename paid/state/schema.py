"""The JSON Schema of paid's desired-state files, for editors and CI.

Generated from the same pydantic models the loader validates with, then
widened where the YAML takes a shorthand the models parse (``"8080:80"``
for a port, ``"data:/data"`` for a volume, ``"256Mi"`` for a size, a bare
number for a ulimit). ``schema/paid-v1.json`` is this, kept in the
repository; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from paid.state.field_docs import FIELD_DOCS
from paid.state.networks import NETWORK_NAME, NetworkDocument
from paid.state.notifiers import NotifierDocument
from paid.state.specs import ServiceDocument

_DOCUMENT = TypeAdapter(
    Annotated[ServiceDocument | NetworkDocument | NotifierDocument, Field(discriminator="kind")]
)

SCHEMA_ID = "https://paid.invalid/schema/paid-v1.json"
_SHORTHANDS = {
    "#/$defs/PortMapping": {"type": "string", "description": "[ip:]host:container[/tcp|udp]"},
    "#/$defs/VolumeMount": {"type": "string", "description": "source:/destination[:ro|rw]"},
    "#/$defs/TmpfsMount": {"type": "string", "description": "an absolute path"},
    "#/$defs/Ulimit": {"type": "integer", "description": "soft and hard alike"},
    "#/$defs/Attachment": {"type": "string", "pattern": NETWORK_NAME, "description": "a network"},
}
_SIZES = frozenset({"memory", "shmSize", "size", "maxSize"})
_SIZE = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?\s*([KMGT]i?|[kmgt]|[KMGT]B|B)?$"}


def json_schema() -> dict[str, Any]:
    """JSON Schema 2020-12 of every kind of document: Service, Network and Notifier.

    Every property carries a description (``FIELD_DOCS``). Only standard
    keywords: pydantic's OpenAPI ``discriminator`` is left out, so strict
    validators (ajv) accept it; ``kind``'s constants choose the branch.
    """
    schema = _DOCUMENT.json_schema(by_alias=True, mode="validation")
    schema.pop("discriminator", None)
    for name, definition in schema.get("$defs", {}).items():
        for field, prop in (definition.get("properties") or {}).items():
            described = FIELD_DOCS.get(f"{name}.{field}") or FIELD_DOCS.get(field)
            if described:
                prop["description"] = described
    widened = _widen(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "paid desired state",
        "description": "One document of a paid desired-state directory (apiVersion: paid/v1).",
        **widened,
    }


def _widen(node: Any) -> Any:
    if isinstance(node, list):
        return [_widen(item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in _SHORTHANDS:
        return {"anyOf": [_SHORTHANDS[ref], node]}
    return {
        _STANDARD.get(k, k): _widen(v) if k != "properties" else _properties(v)
        for k, v in node.items()
    }


# pydantic writes a constraint it cannot place (after a BeforeValidator) under its own name.
_STANDARD = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _properties(properties: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, prop in properties.items():
        widened = _widen(prop)
        if name in _SIZES:
            widened = {"anyOf": [_SIZE, widened]}
        elif name == "cpus":
            widened = {"anyOf": [{"type": "string", "pattern": r"^[0-9]+m$|^[0-9.]+$"}, widened]}
        if "description" in prop and "description" not in widened:
            widened = {"description": prop["description"], **widened}
        out[name] = widened
    return out

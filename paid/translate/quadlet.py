"""``paid import quadlet``: a directory of Quadlet units in, paid's documents out.

``.container`` units become Services, ``.network`` units Networks;
``.volume`` units need no document (paid makes named volumes when first
mounted) unless they ask for something paid cannot do. A key paid cannot
translate is a ``Problem`` (``file:line: Section.Key: why``), as in the
compose importer. Units are read by ``quadlet_units`` (drop-ins
included); ``quadlet_keys.KEYS`` is the table of what each key becomes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from paid.translate.compose_keys import network_name
from paid.translate.output import Output, Problem, Translation, in_order
from paid.translate.quadlet_keys import (
    BY_KEY,
    IGNORED_SECTIONS,
    KEYS,
    Context,
    boolean,
    moving,
    one,
)
from paid.translate.quadlet_units import Unit, UnitError, parse_unit
from paid.translate.systemd_syntax import Host, SpecifierError, expand, words

_SUFFIXES = (".container", ".network", ".volume")
__all__ = ["KEYS", "Unit", "UnitError", "import_quadlet", "mapping_table", "parse_unit"]


def import_quadlet(directory: Path, *, host: Host | None = None) -> Translation:
    """Translate every Quadlet unit of ``directory``, with its drop-ins.

    ``host``: what ``%h``, ``%t`` and the other user-dependent specifiers
    stand for (default: the user importing).
    """
    host = host or Host.current()
    translation = Translation()
    if not directory.is_dir():
        translation.problems.append(Problem(str(directory), 0, "", "not a directory"))
        return translation
    units = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in _SUFFIXES:
            continue
        try:
            units.append(parse_unit(path))
        except UnitError as err:
            translation.problems.append(Problem(str(path), 0, "", str(err)))
    if not units:
        translation.problems.append(Problem(str(directory), 0, "", "no .container units"))
    names = {u.name: _service_name(u) for u in units if u.path.suffix == ".container"}
    for unit in units:
        if unit.path.suffix == ".container":
            _container(unit, names, translation, host)
        elif unit.path.suffix == ".network":
            _network_unit(unit, translation)
        else:
            _volume_unit(unit, translation)
    return translation


def _service_name(unit: Unit) -> str:
    given = next(
        (
            one(e.value)
            for e in unit.entries
            if (e.section, e.key) == ("Container", "ContainerName")
        ),
        None,
    )
    return re.sub(r"[^a-z0-9-]+", "-", (given or unit.name).lower()).strip("-")[:63] or "service"


def _container(unit: Unit, names: dict[str, str], translation: Translation, host: Host) -> None:
    ctx = Context(unit, {}, translation, [], names)
    personal: set[str] = set()
    for entry in unit.entries:
        section, key = entry.section, entry.key
        ctx.line, ctx.key, ctx.file = entry.line, f"{section}.{key}", entry.file
        known = BY_KEY.get((section, key))
        if known is not None and known.handler is not None:
            try:
                value, used = expand(entry.value, unit=unit.path.name, host=host)
            except SpecifierError as err:
                ctx.problem(str(err))
                continue
            personal |= used
            try:
                known.handler(value, ctx)
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as err:
                ctx.problem(f"not a form paid reads ({err})")
        elif known is not None and known.paid != "metadata.name":
            ctx.problem(known.how)
        elif known is None and section not in IGNORED_SECTIONS:
            ctx.problem("no paid equivalent")
    ctx.file = None
    if personal:
        resolved = ", ".join(sorted(personal))
        ctx.notes.append(f"{resolved} resolved for {host.user} (home {host.home}) when imported")
    image = ctx.spec.get("image")
    if isinstance(image, str) and moving(image) and not ctx.follows:
        ctx.file, ctx.line = ctx.pinned_at
        ctx.key = "Container.Image"
        ctx.problem(
            f"{image} is not pinned: give a version tag or a digest, or AutoUpdate=registry "
            "to follow it"
        )
        ctx.file = None
    aliases = ctx.spec.pop("_aliases", None)
    if aliases:
        joined = ctx.spec.get("networks") or ["paid"]
        ctx.spec["networks"] = [{"name": n, "aliases": list(aliases)} for n in joined]
    if ctx.user:
        ctx.spec["user"] = ":".join(ctx.user[:2])
    if "image" not in ctx.spec:
        ctx.line, ctx.key = 0, "Container.Image"
        ctx.problem("required")
    labels = ctx.spec.pop("_labels", None)
    metadata: dict[str, Any] = {"name": names[unit.name]}
    if labels:
        metadata["labels"] = labels
    document = {
        "apiVersion": "paid/v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": in_order(ctx.spec),
    }
    translation.outputs.append(Output(f"{metadata['name']}.yaml", [document], ctx.notes))


def _network_unit(unit: Unit, translation: Translation) -> None:
    spec: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for entry in unit.entries:
        section, key, value, line = entry.section, entry.key, one(entry.value), entry.line
        if section != "Network":
            continue
        if key == "Subnet":
            spec["subnet"] = value
        elif key == "Internal":
            spec["internal"] = boolean(value)
        elif key == "DisableDNS":
            spec["dns"] = not boolean(value)
        elif key == "Label":
            labels.update(dict(w.partition("=")[::2] for w in words(entry.value)))
        elif key == "Driver" and value == "bridge":
            continue
        else:
            why = "no paid equivalent" if key != "NetworkName" else "paid names it after the unit"
            translation.problems.append(Problem(str(entry.file), line, f"Network.{key}", why))
    name = network_name(unit.name)
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    document: dict[str, Any] = {"apiVersion": "paid/v1", "kind": "Network", "metadata": metadata}
    if spec:
        document["spec"] = spec
    translation.outputs.append(Output(f"network-{name}.yaml", [document]))


def _volume_unit(unit: Unit, translation: Translation) -> None:
    for entry in unit.entries:
        if entry.section == "Volume" and entry.key not in ("Label", "VolumeName"):
            why = "paid's named volumes are local, without options"
            where = Problem(str(entry.file), entry.line, f"Volume.{entry.key}", why)
            translation.problems.append(where)


def mapping_table() -> str:
    """The README's table of Quadlet keys, from ``KEYS``."""
    rows = ["| Quadlet | paid | how |", "|---|---|---|"]
    rows += [f"| `[{k.section}] {k.key}=` | {k.paid} | {k.how} |" for k in KEYS]
    return "\n".join(rows)

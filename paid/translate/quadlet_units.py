"""Quadlet unit files as systemd reads them: sections, keys, continuations, drop-ins.

``parse_unit`` reads a unit and its drop-ins (in systemd's order, from
``systemd_syntax.drop_ins``) into one list of entries, each with its file
and line, an empty assignment clearing what the key had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paid.storage.files import NotRegular, read_regular_file
from paid.translate.systemd_syntax import drop_ins


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``Key=value`` of a unit or of one of its drop-ins, where it was written."""

    section: str
    key: str
    value: str
    line: int
    file: Path


@dataclass
class Unit:
    """One unit file with its drop-ins: its entries in order, each with its file and line."""

    path: Path
    entries: list[Entry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


MAX_UNIT_BYTES = 1 << 20


class UnitError(Exception):
    """A unit that cannot be read as text: what it is, said once."""


def _unit_text(path: Path) -> str:
    """A regular file's UTF-8 text, at most ``MAX_UNIT_BYTES``; never blocking on a FIFO."""
    try:
        data = read_regular_file(path, limit=MAX_UNIT_BYTES)
    except NotRegular as err:
        raise UnitError(f"is {err.kind}: a unit is a file") from err
    except OSError as err:
        raise UnitError(f"cannot read: {err.strerror}") from err
    if len(data) > MAX_UNIT_BYTES:
        raise UnitError(f"larger than {MAX_UNIT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnitError(f"not UTF-8 text (byte {err.start})") from err


def parse_unit(path: Path) -> Unit:
    """systemd's unit syntax: sections, ``Key=value``, comments, ``\\`` continuations.

    The unit's drop-ins (``systemd_syntax.drop_ins``) are read after it, in
    systemd's order. An empty assignment (``Environment=``) resets what the
    key was given before it, as systemd's list settings do. ``UnitError``
    when a file is not a readable text file.
    """
    unit = Unit(path)
    _read_entries(path, unit)
    for part in drop_ins(path):
        try:
            _read_entries(part, unit)
        except UnitError as err:
            raise UnitError(f"its drop-in {part}: {err}") from err
    return unit


def _read_entries(path: Path, unit: Unit) -> None:
    section = ""
    pending, start = "", 0
    for number, raw in enumerate(_unit_text(path).splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending, start = pending + line[:-1] + " ", start or number
            continue
        line, at = pending + line, start or number
        pending, start = "", 0
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, found, value = line.partition("=")
        if not found:
            continue
        key, value = key.strip(), value.strip()
        if not value:  # systemd: an empty assignment clears the list
            unit.entries = [e for e in unit.entries if (e.section, e.key) != (section, key)]
            continue
        unit.entries.append(Entry(section, key, value, at, path))

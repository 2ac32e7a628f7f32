"""What an import produces, and writing it: documents, problems, notes, files to copy."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paid.state.specs import ServiceSpec

_ORDER = ["image"] + [f.alias or name for name, f in ServiceSpec.model_fields.items()]


def in_order(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec's fields in the order paid's documentation gives them (image first)."""
    rank = {name: i for i, name in enumerate(_ORDER)}
    return dict(sorted(spec.items(), key=lambda item: rank.get(item[0], len(rank))))


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """What an importer cannot translate: ``file:line: key: why``."""

    file: str
    line: int
    key: str
    why: str
    output: str = field(default="", compare=False)  # the output file it spoils, if one

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.why}"


@dataclass
class Output:
    """One file to write: its documents, and the comments a human should read first."""

    filename: str
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = "".join(f"# paid import: {note}\n" for note in self.notes)
        body = yaml.safe_dump_all(self.documents, sort_keys=False, default_flow_style=None)
        return head + body


@dataclass
class Translation:
    """An importer's whole answer."""

    outputs: list[Output] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    copies: dict[str, Path] = field(default_factory=dict)  # relative path in DIR -> source


STAGING_PREFIX = ".paid-import-"


def _not_copied(directory: Path) -> Any:
    """copytree's ignore: the output directory itself (it may sit inside the project), hidden files.

    A bind of the project directory (``.:/code``) copies the project; the
    output being written, ``.git`` and other dot files are not part of it.
    """
    out = directory.resolve()

    def ignore(parent: str, names: list[str]) -> set[str]:
        return {n for n in names if n.startswith(".") or (Path(parent) / n).resolve() == out}

    return ignore


def write(translation: Translation, directory: Path) -> list[Path]:
    """Write the outputs and copied files into ``directory``, all or nothing.

    Everything is written into a temporary directory beside it first; a
    file that already exists in ``directory`` is an error before anything
    is moved, so an import never overwrites a hand-edited file.
    """
    targets = [o.filename for o in translation.outputs] + list(translation.copies)
    taken = [t for t in targets if (directory / t).exists()]
    if taken:
        raise FileExistsError(f"{directory}: already has {', '.join(sorted(taken))}")
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    written: list[Path] = []
    try:
        for output in translation.outputs:
            (staging / output.filename).write_text(output.text())
        for relative, source in translation.copies.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, ignore=_not_copied(directory))
            else:
                shutil.copy2(source, target)
        for relative in targets:
            final = directory / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, final)
            written.append(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written

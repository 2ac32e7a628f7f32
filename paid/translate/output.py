"""What an import produces, and writing it: documents, problems, notes, files to copy."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from paid.state.specs import ServiceSpec
from paid.storage.files import kind_of

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
MAX_COPY_BYTES = 1 << 30  # what an import copies in all; more is refused before a byte is copied
MAX_COPY_FILES = 50_000


def project_path(root: Path, path: str) -> tuple[Path, Path] | str:
    """``(relative, source)`` of a file or directory inside ``root``, or why it is not one.

    Only regular files and directories of them, checked before anything is
    copied: a FIFO or a device would hang the copy, a symlink out of the
    project would copy what is not the project's, and a 2 GiB file would be
    copied whole before anything refused it.
    """
    if "\0" in path:
        return f"{path!r} holds a NUL byte"
    try:
        base = root.resolve()
        source = (root / path).resolve()
    except (OSError, RuntimeError) as err:
        return f"{path}: {getattr(err, 'strerror', None) or err}"
    if source != base and base not in source.parents:
        return f"{path} is outside the project directory"
    problem = _tree_problem(source, path)
    if problem is not None:
        return problem
    return source.relative_to(base), source


def _tree_problem(source: Path, shown: str) -> str | None:
    try:
        info = os.lstat(source)
    except OSError as err:
        return f"{shown} does not exist" if err.errno == 2 else f"{shown}: {err.strerror}"
    if stat.S_ISREG(info.st_mode):
        return None if info.st_size <= MAX_COPY_BYTES else f"{shown} is larger than 1 GiB"
    if not stat.S_ISDIR(info.st_mode):
        return f"{shown} is {kind_of(info.st_mode)}: only files and directories are copied"
    total = files = 0
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            entry = Path(dirpath, name)
            mode = os.lstat(entry).st_mode
            if stat.S_ISLNK(mode):
                continue  # copied as a link, never followed
            if not stat.S_ISREG(mode):
                return f"{entry} is {kind_of(mode)}: only files and directories are copied"
            files += 1
            total += os.lstat(entry).st_size
            if files > MAX_COPY_FILES or total > MAX_COPY_BYTES:
                return f"{shown} holds more than {MAX_COPY_FILES} files or 1 GiB"
    return None


def _not_copied(directory: Path) -> Any:
    """copytree's ignore: the output directory itself (it may sit inside the project), hidden files.

    A bind of the project directory (``.:/code``) copies the project; the
    output being written, ``.git`` and other dot files are not part of it.
    """
    out = directory.resolve()

    def ignore(parent: str, names: list[str]) -> set[str]:
        return {n for n in names if n.startswith(".") or (Path(parent) / n).resolve() == out}

    return ignore


def collisions(translation: Translation, source: str) -> list[Problem]:
    """Two outputs, or an output and a copied file, that would be written to one path.

    (A service ``network-web`` beside a network ``web``; an ``env_file:
    web.yaml`` beside the service ``web``'s own file.) Reported, never one
    overwriting the other.
    """
    seen: dict[str, str] = {}
    problems = []
    for filename, what in [(o.filename, "a translated file") for o in translation.outputs] + [
        (relative, "a copied file") for relative in translation.copies
    ]:
        key = str(PurePosixPath(filename))
        if key in seen:
            problems.append(
                Problem(source, 0, key, f"{what} and {seen[key]} would both be {key}: rename one")
            )
        seen.setdefault(key, what)
    return problems


def write(translation: Translation, directory: Path) -> list[Path]:
    """Write the outputs and copied files into ``directory``, all or nothing.

    Everything is written into a temporary directory beside it first; a
    file that already exists in ``directory`` is an error before anything
    is moved, so an import never overwrites a hand-edited file.
    """
    # A file also inside a copied directory (a config file in a bind-mounted directory)
    # comes with that directory.
    folders = [Path(r) for r, source in translation.copies.items() if source.is_dir()]
    copies = {
        relative: source
        for relative, source in translation.copies.items()
        if not any(folder in Path(relative).parents for folder in folders)
    }
    targets = [o.filename for o in translation.outputs] + list(copies)
    taken = [t for t in targets if (directory / t).exists()]
    if taken:
        raise FileExistsError(f"{directory}: already has {', '.join(sorted(taken))}")
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    written: list[Path] = []
    try:
        for output in translation.outputs:
            (staging / output.filename).write_text(output.text())
        for relative, source in copies.items():
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

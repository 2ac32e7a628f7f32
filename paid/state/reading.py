"""Reading YAML safely: one file in, plain values with the line of every path out.

Documents are *composed* (not constructed) so that every value keeps the
line it came from; the node tree is then turned into plain Python values
by a walk that counts nodes (aliases included, which stops "billion
laughs" documents), refuses duplicate and non-scalar keys (PyYAML would
silently keep the last), refuses tags beyond plain data, and turns any
scalar its tag cannot make a value of into a located error. Only regular
files are read, and only up to the size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES_PER_DOCUMENT = 10_000
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, order=True)
class LoadError:
    """One problem with the desired state, pointing at where it is."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass(slots=True)
class Document:
    file: str
    index: int
    value: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def where(self, path: Sequence[str | int]) -> tuple[str, int]:
        """The file, and the line of the deepest known prefix of ``path``."""
        return self.file, self.line_of(path)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


class _TooLarge(Exception):
    pass


class _BadTag(Exception):
    def __init__(self, tag: str, line: int, field: str) -> None:
        super().__init__(tag)
        self.tag, self.line, self.field = tag, line, field


class _BadScalar(Exception):
    """A scalar its tag cannot make a value of (``!!int abc``, a 5,000-digit number)."""

    def __init__(self, message: str, line: int, field: str) -> None:
        super().__init__(message)
        self.message, self.line, self.field = message, line, field


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, message: str = "duplicate key") -> None:
        super().__init__(key)
        self.key, self.line, self.message = key, line, message


def read_bytes(data: bytes, *, display: str) -> tuple[list[Document], list[LoadError]]:
    """The documents of one file's bytes (a file read, or standard input)."""
    if len(data) > MAX_FILE_BYTES:
        return [], [LoadError(display, 0, "", f"file is over the limit of {MAX_FILE_BYTES} bytes")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return [], [LoadError(display, line, "", f"not UTF-8 text ({err.reason})")]

    documents: list[Document] = []
    errors: list[LoadError] = []
    try:
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            if node is None:
                continue
            doc = Document(display, index, None)
            counter = [0]
            try:
                doc.value = _to_python(node, (), doc.lines, counter)
            except _TooLarge:
                errors.append(
                    LoadError(
                        display,
                        node.start_mark.line + 1,
                        "",
                        f"document is nested deeper than {MAX_DEPTH} levels or expands to "
                        f"more than {MAX_NODES_PER_DOCUMENT} nodes (aliases included)",
                    )
                )
                continue
            except _BadTag as bad:
                errors.append(
                    LoadError(
                        display, bad.line, bad.field, f"YAML tag {bad.tag} is not allowed here"
                    )
                )
                continue
            except _BadScalar as bad:
                errors.append(LoadError(display, bad.line, bad.field, bad.message))
                continue
            except _DuplicateKey as dup:
                errors.append(LoadError(display, dup.line, dup.key, dup.message))
                continue
            if doc.value is not None:
                documents.append(doc)
    except RecursionError:
        errors.append(LoadError(display, 0, "", f"nested deeper than {MAX_DEPTH} levels"))
    except yaml.reader.ReaderError as err:  # NUL and other characters YAML forbids
        line = text[: err.position].count("\n") + 1 if err.position is not None else 0
        character = chr(err.character) if isinstance(err.character, int) else err.character
        message = f"invalid YAML: character {character!r} is not allowed"
        errors.append(LoadError(display, line, "", message))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(err, "problem", None) or str(err)
        errors.append(LoadError(display, line, "", f"invalid YAML: {problem}"))
    return documents, errors


_scalars = yaml.constructor.SafeConstructor()


def _to_python(node: yaml.Node, path: Path_, lines: dict[Path_, int], counter: list[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES_PER_DOCUMENT or len(path) > MAX_DEPTH:
        raise _TooLarge
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    if node.tag not in _PLAIN_TAGS and not _implicit_timestamp(node):
        raise _BadTag(node.tag, line, dotted(path))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for key, value in _merged(value_node, path, lines, counter).items():
                    result.setdefault(key, value)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _DuplicateKey(
                    dotted(path) or "<root>",
                    key_node.start_mark.line + 1,
                    "a key must be a plain value, not a mapping or a list",
                )
            key = _to_python(key_node, (*path, "<key>"), {}, counter)
            if key in explicit:
                raise _DuplicateKey(dotted((*path, str(key))), key_node.start_mark.line + 1)
            explicit.add(key)
            child = (*path, key if isinstance(key, str) else str(key))
            lines[child] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, child, lines, counter)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines, counter) for i, item in enumerate(node.value)]
    try:
        return _scalars.construct_object(node, deep=True)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OverflowError,
        yaml.YAMLError,
    ) as err:
        # `!!int abc`, `!!bool maybe`, an integer past Python's digit limit, ...
        shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        reason = (
            "too long a number" if "digit" in str(err) else f"not a {node.tag.rsplit(':', 1)[-1]}"
        )
        raise _BadScalar(f"{shown!r}: {reason}", line, dotted(path)) from None


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _implicit_timestamp(node: yaml.Node) -> bool:
    """An unquoted date (``2024-01-01``): a value, which validation then judges by field."""
    return node.tag == _TIMESTAMP_TAG and isinstance(node, yaml.ScalarNode) and not node.style


def _merged(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], counter: list[int]
) -> dict[Any, Any]:
    """The mappings named by a ``<<:`` merge key, earlier ones winning."""
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    merged: dict[Any, Any] = {}
    for source in sources:
        value = _to_python(source, path, lines, counter)
        if isinstance(value, dict):
            for key, item in value.items():
                merged.setdefault(key, item)
    return merged


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out

"""Files from the repository: configs mounted read-only, and env files.

``configs: [{source: conf/nginx.conf, target: /etc/nginx/nginx.conf}]``
names a file or a directory relative to the YAML file's own directory.
It must stay inside the desired-state tree: ``..`` out of it, a symlink
leading out, and anything but regular files and directories are refused,
as is more than ``MAX_CONFIG_BYTES``.

The content is part of the spec hash (its *digest*), so an edit is a
rollout through the health gate. Each digest is copied once into the
state directory's ``configs/<digest>/`` and mounted from there, so every
kept revision has its own copy: a rollback brings back the old content,
and an edit in the checkout never changes what a running container sees.

Env files (``envFiles: [app.env]``) follow the same path rules and
compose's ``env_file`` format: ``KEY=VALUE`` lines, ``#`` comments,
blank lines, an optional ``export``, single or double quotes.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator

from paid.state.basics import Model, absolute_path, no_nul

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # per config, a directory's files together
MAX_CONFIG_FILES = 1_000
MAX_ENV_FILE_BYTES = 1024 * 1024
CONTENT = "content"  # configs/<digest>/content is the file or directory mounted
_MODE = re.compile(r"^0?[0-7]{3}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A config or env file cannot be used; ``line`` is the env file's line, if any."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _relative(value: str, what: str) -> str:
    no_nul(value, what)
    if value.startswith("/"):
        raise ValueError(f"{what} {value!r}: name it relative to the YAML file's directory")
    if not value or posixpath.normpath(value) in (".", ""):
        raise ValueError(f"{what} must name a file or directory")
    return value


class ConfigMount(Model):
    """A file or directory of the repository, mounted read-only at ``target``."""

    source: str
    target: str
    mode: str = "0444"  # of the files; directories are 0555

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _relative(value, "source")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        value = absolute_path(value, "target")
        if posixpath.normpath(value) == "/":
            raise ValueError("target cannot be /")
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not _MODE.fullmatch(value):
            raise ValueError(f'mode {value!r} is not an octal mode such as "0444"')
        return value

    @property
    def file_mode(self) -> int:
        return int(self.mode, 8)


def env_file_name(value: str) -> str:
    return _relative(value, "env file")


@dataclass(frozen=True, slots=True)
class ConfigContent:
    """A config as loaded: where it is mounted, its digest, and where to copy it from."""

    target: str
    digest: str
    mode: int
    source: Path | None = None  # None: rebuilt from a revision; only the kept copy serves


# -- env files -------------------------------------------------------------------


def parse_env(text: str) -> dict[str, str]:
    """compose's env_file format; ``ConfigError`` names the line of a bad one."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"line {number}: {key!r} is not KEY=VALUE", line=number)
        if not _ENV_NAME.fullmatch(key):
            raise ConfigError(f"line {number}: {key!r} is not a variable name", line=number)
        out[key] = _value(value.strip(), number)
    return out


def _value(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = _closing(value, quote)
        if end < 0:
            raise ConfigError(f"line {number}: the {quote} quote is not closed", line=number)
        inner = value[1:end]
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"line {number}: text after the closing quote", line=number)
        if quote == '"':
            inner = re.sub(r"\\([\\\"nt$])", _unescape, inner)
        return inner
    if "\0" in value:
        raise ConfigError(f"line {number}: a NUL byte", line=number)
    comment = re.search(r"\s#", value)
    return value[: comment.start()].rstrip() if comment else value


def _closing(value: str, quote: str) -> int:
    i = 1
    while i < len(value):
        if quote == '"' and value[i] == "\\":
            i += 2
            continue
        if value[i] == quote:
            return i
        i += 1
    return -1


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t"}.get(match[1], match[1])


# -- the copies ------------------------------------------------------------------


def digests_in(shape: object) -> set[str]:
    """The config digests a recorded container shape names."""
    if not isinstance(shape, dict):
        return set()
    return {
        str(c["digest"])
        for c in shape.get("configs") or ()
        if isinstance(c, dict) and isinstance(c.get("digest"), str)
    }

"""systemd's own syntax, as Quadlet reads it: words, escapes, specifiers, drop-ins.

Pure functions over text (``drop_ins`` only lists a directory). Written
from systemd.syntax(7), systemd.unit(5) and podman-systemd.unit(5):

- ``words``: systemd's word splitting with unquoting and C escapes
  (``extract_first_word`` with UNQUOTE, CUNESCAPE and RELAX), not a shell's.
- ``expand``: the specifiers (``%n``, ``%h``, ``%%`` ...) a unit may use,
  for the unit and the user it is imported for; the rest are refused.
- ``drop_ins``: the ``.conf`` files merged onto a unit, in systemd's order.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_WHITESPACE = " \t\n\r"
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "s": " ",
}  # fmt: skip


def words(value: str) -> list[str]:
    """``value`` split as systemd splits ``Exec=`` or ``Environment=``.

    Quotes (``"`` or ``'``) group words and may start anywhere in one; C
    escapes (``\\n``, ``\\t``, ``\\x41``, ``\\101``, ``\\u00e9`` ...) are decoded in
    and out of quotes; an unknown escape is kept as written; an unclosed
    quote ends at the end of the line (systemd's "relax").
    """
    out: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return out
        word: list[str] = []
        quote = ""
        while i < n:
            c = value[i]
            if c == "\\":
                decoded, i = _escape(value, i)
                word.append(decoded)
                continue
            if quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
            elif c in "'\"":
                quote = c
            elif c in _WHITESPACE:
                break
            else:
                word.append(c)
            i += 1
        out.append("".join(word))


def _escape(value: str, i: int) -> tuple[str, int]:
    """The character the escape at ``value[i]`` (a backslash) stands for, and where it ends."""
    if i + 1 >= len(value):
        return "\\", i + 1
    c = value[i + 1]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 2
    digits = {"x": (16, 2), "u": (16, 4), "U": (16, 8)}.get(c)
    if digits is not None:
        base, count = digits
        text, start = value[i + 2 : i + 2 + count], i + 2
    elif c in "01234567":
        base, count, text, start = 8, 3, value[i + 1 : i + 4], i + 1
    else:
        return "\\" + c, i + 2  # relaxed: kept as written
    try:
        if len(text) != count:
            raise ValueError(text)
        code = int(text, base)
        if code == 0 or code > 0x10FFFF:
            raise ValueError(text)
        return chr(code), start + count
    except ValueError:
        return "\\" + c, i + 2


class SpecifierError(ValueError):
    """A specifier that cannot be resolved when importing (it depends on the running host)."""


@dataclass(frozen=True, slots=True)
class Host:
    """What the user-dependent specifiers resolve to, for the user importing."""

    home: str
    user: str
    uid: int
    runtime: str  # %t
    state: str  # %S
    cache: str  # %C
    logs: str  # %L
    config: str  # %E

    @classmethod
    def current(cls, environ: Mapping[str, str] | None = None) -> Host:
        env = os.environ if environ is None else environ
        uid = os.getuid()
        try:
            entry = pwd.getpwuid(uid)
            name, home = entry.pw_name, entry.pw_dir
        except KeyError:
            name, home = str(uid), env.get("HOME", "/")
        if uid == 0:
            return cls(home, name, uid, "/run", "/var/lib", "/var/cache", "/var/log", "/etc")
        state = env.get("XDG_STATE_HOME") or f"{home}/.local/state"
        return cls(
            home,
            name,
            uid,
            env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}",
            state,
            env.get("XDG_CACHE_HOME") or f"{home}/.cache",
            f"{state}/log",
            env.get("XDG_CONFIG_HOME") or f"{home}/.config",
        )


# Specifiers of the running host (hostname, machine and boot IDs, OS release...): their
# value on the importing machine is not the value where the service will run.
_HOST_ONLY = frozenset("abBgGHlmMoqvwWAyY")


def expand(value: str, *, unit: str, host: Host) -> tuple[str, set[str]]:
    """``value`` with its specifiers replaced; also which user-dependent ones were used.

    ``unit`` is the unit file's name (``web.container``): ``%n`` is the
    service Quadlet makes of it (``web.service``), ``%N`` and ``%p`` its
    name (``web``), ``%i`` the instance of a template (``web@1`` → ``1``).
    """
    base = unit.rsplit(".", 1)[0]
    prefix, _, instance = base.partition("@")
    last = prefix.rsplit("-", 1)[-1]
    fixed = {
        "%": "%", "n": f"{base}.service", "N": base, "p": prefix, "P": prefix,
        "i": instance, "I": instance, "j": last, "J": last, "f": "/" + (instance or prefix),
        "T": "/tmp", "V": "/var/tmp",  # noqa: S108 -- systemd's own values
    }  # fmt: skip
    personal = {
        "h": host.home, "u": host.user, "U": str(host.uid), "t": host.runtime,
        "S": host.state, "C": host.cache, "L": host.logs, "E": host.config,
    }  # fmt: skip
    out: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(value):
        c = value[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(value):
            raise SpecifierError("a lone % at the end: write %% for a percent sign")
        spec = value[i + 1]
        if spec in fixed:
            out.append(fixed[spec])
        elif spec in personal:
            out.append(personal[spec])
            used.add(f"%{spec}")
        elif spec in _HOST_ONLY:
            raise SpecifierError(
                f"%{spec} is the running host's, not known when importing: write its value"
            )
        else:
            raise SpecifierError(f"%{spec} is not a systemd specifier: write %% for a percent sign")
        i += 2
    return "".join(out), used


def drop_ins(unit: Path) -> list[Path]:
    """The drop-in files merged onto ``unit``, in the order systemd applies them.

    From ``<unit>.d/``, each ``<prefix>-.<type>.d/`` of a dashed name
    (``a-b-c.container`` → ``a-b-.container.d``, ``a-.container.d``), and
    ``<type>.d/``, beside the unit. Files are ``*.conf``, applied in the
    order of their names; of two with one name, the more specific
    directory's (the unit's own first) is used and the other ignored.
    """
    kind = unit.suffix.lstrip(".")
    stem = unit.stem
    directories = [unit.parent / f"{unit.name}.d"]
    parts = stem.split("-")
    for end in range(len(parts) - 1, 0, -1):
        directories.append(unit.parent / f"{'-'.join(parts[:end])}-.{kind}.d")
    directories.append(unit.parent / f"{kind}.d")
    chosen: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir() or directory.is_symlink():
            continue
        for path in directory.iterdir():
            if path.suffix == ".conf" and path.name not in chosen:
                chosen[path.name] = path
    return [chosen[name] for name in sorted(chosen)]

"""The shape of an age file, checked without a key (``paid validate --offline``).

An age file (https://age-encryption.org/v1) is a text header, one stanza
per recipient, a MAC line, then the binary payload; or all of it in
base64 between ``-----BEGIN AGE ENCRYPTED FILE-----`` lines (armored).
This reads only the header's structure, so a file that is not age at all
(a plain secret committed by mistake, a SOPS file, a truncated copy) is
named before any host needs its key. The cryptography is the age
library's (``paid.storage.secret_files``), never this module's.
"""

from __future__ import annotations

import base64
import binascii
import re

VERSION_LINE = b"age-encryption.org/v1"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_MAC = re.compile(rb"--- [A-Za-z0-9+/]{43}")
_STANZA = re.compile(rb"-> [!-~]+( [!-~]+)*")
_BODY = re.compile(rb"[A-Za-z0-9+/]{0,64}")
PAYLOAD_MIN = 16 + 16  # the payload's nonce and one chunk's tag: the empty plaintext


class NotAge(ValueError):
    """The bytes are not an age file; the message says what was found instead."""


def recipient_types(data: bytes) -> list[str]:
    """The stanza types of an age file (``X25519``, ``ssh-ed25519`` ...); ``NotAge`` if not one."""
    binary = _dearmored(data) if data.lstrip().startswith(ARMOR_BEGIN) else data
    lines = binary.split(b"\n")
    if lines[0] != VERSION_LINE:
        raise NotAge(_what_instead(data))
    types: list[str] = []
    at = 1
    while at < len(lines) and lines[at].startswith(b"-> "):
        if not _STANZA.fullmatch(lines[at]):
            raise NotAge(f"header line {at + 1} is not a recipient stanza")
        types.append(lines[at].split(b" ")[1].decode("ascii"))
        at += 1
        while at < len(lines) and not lines[at].startswith((b"-> ", b"---")):
            if not _BODY.fullmatch(lines[at]):
                raise NotAge(f"header line {at + 1} is not a stanza's base64 body")
            at += 1
    types = [t for t in types if not t.endswith("-grease")]  # age's random decoys
    if not types:
        raise NotAge("the header names no recipient")
    if at >= len(lines) or not _MAC.match(lines[at]):
        raise NotAge("the header has no MAC line (a truncated file?)")
    header_end = sum(len(line) + 1 for line in lines[:at]) + len(b"--- ") + 43 + 1
    if len(binary) - header_end < PAYLOAD_MIN:
        raise NotAge("the payload is missing or truncated")
    return types


def _dearmored(data: bytes) -> bytes:
    text = data.strip()
    if not text.endswith(ARMOR_END):
        raise NotAge(f"armored, but does not end with {ARMOR_END.decode()} (a truncated file?)")
    inner = text[len(ARMOR_BEGIN) : -len(ARMOR_END)]
    try:
        return base64.b64decode(b"".join(inner.split()), validate=True)
    except (binascii.Error, ValueError):
        raise NotAge("armored, but its body is not base64") from None


def _what_instead(data: bytes) -> str:
    head = data.lstrip()[:200]
    if b"sops:" in data or b'"sops"' in data:
        return "a SOPS file, not an age file: paid reads age files (paid secret encrypt)"
    if not data:
        return "the file is empty"
    if head.startswith(b"age-encryption.org/"):
        first = head.split(b"\n", 1)[0].decode(errors="replace")
        return f"an age version paid does not read ({first})"
    return "not an age file (no age-encryption.org/v1 header): was it committed unencrypted?"

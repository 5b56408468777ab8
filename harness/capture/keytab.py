"""MIT keytab files, read-only and sans-IO (the format of MIT krb5 ``keytab.txt``, version 0x502).

Layout (all integers big-endian in version 0x502)::

    0x05 0x02
    entry*: int32 size (negative: a hole of |size| bytes, skipped)
            uint16 num_components, counted realm, counted component * num_components
            uint32 name_type, uint32 timestamp, uint8 vno8,
            keyblock: uint16 enctype, counted key
            [uint32 vno]   (present when the entry has 4 more bytes; replaces vno8 when non-zero)

A counted string is a uint16 length and the bytes. Version 0x501 (native byte order, no name type,
num_components counting the realm too) is rejected with the reason. Key bytes are never shown by
``repr``.

:func:`password_entries` gives the entries a keytab would hold for a principal whose password is
known (``wmh check-pcap --password`` with the service account's password): the keys come from the
string-to-key of each etype (RFC 4757 3 for rc4-hmac, no salt; RFC 3962 4 for AES with the default
salt, the realm followed by the name components, RFC 4120 4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from harness.capture.krb_crypto import ETYPE_AES128, ETYPE_AES256, ETYPE_RC4_HMAC, KerberosCryptoError, string_to_key

MAX_KEYTAB = 16 * 1024 * 1024


class KeytabError(ValueError):
    """A keytab that cannot be read (the reason says why; never shows key material)."""


@dataclass(frozen=True)
class KeytabEntry:
    realm: str
    components: tuple[str, ...]
    name_type: int
    timestamp: int
    kvno: int
    etype: int
    key: bytes = field(repr=False)

    @property
    def principal(self) -> str:
        return "/".join(self.components) + "@" + self.realm


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise KeytabError("keytab entry truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u(self, fmt: str) -> int:
        return int(struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0])

    def counted(self) -> bytes:
        return self.take(self.u(">H"))


def parse_keytab(data: bytes) -> list[KeytabEntry]:
    """Every key entry of a keytab image; KeytabError on anything malformed."""
    if len(data) > MAX_KEYTAB:
        raise KeytabError(f"keytab of {len(data)} bytes exceeds {MAX_KEYTAB}")
    if data[:2] != b"\x05\x02":
        raise KeytabError("not an MIT keytab of version 0x502" if data[:1] == b"\x05" else "not an MIT keytab")
    entries: list[KeytabEntry] = []
    pos = 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size == 0:
            break
        if pos + abs(size) > len(data):
            raise KeytabError("keytab entry runs past the end of the file")
        if size < 0:
            pos += -size
            continue
        cur = _Cursor(data[pos:pos + size])
        pos += size
        try:
            count = cur.u(">H")
            realm = cur.counted().decode("utf-8")
            components = tuple(cur.counted().decode("utf-8") for _ in range(count))
        except UnicodeDecodeError as exc:
            raise KeytabError("keytab principal name is not UTF-8") from exc
        name_type, timestamp, vno8 = cur.u(">I"), cur.u(">I"), cur.u(">B")
        etype = cur.u(">H")
        key = cur.counted()
        kvno = vno8
        if len(cur.data) - cur.pos >= 4:
            vno32 = cur.u(">I")
            kvno = vno32 or vno8
        entries.append(KeytabEntry(realm, components, name_type, timestamp, kvno, etype, key))
    return entries


def read_keytab(path: Path) -> list[KeytabEntry]:
    """:func:`parse_keytab` of a file; KeytabError when it cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEYTAB + 1)
    except OSError as exc:
        raise KeytabError(f"cannot read keytab: {exc.strerror or exc}") from exc
    return parse_keytab(data)


def default_salt(realm: str, components: tuple[str, ...]) -> str:
    """The default salt of a principal: the realm and the name components concatenated (RFC 4120 4)."""
    return realm + "".join(components)


def password_entries(password: str, realm: str, components: tuple[str, ...],
                     etypes: tuple[int, ...] = (ETYPE_RC4_HMAC, ETYPE_AES256, ETYPE_AES128),
                     kvno: int = 0) -> list[KeytabEntry]:
    """Keytab entries derived from a password (see the module docstring); KeytabError when the
    password cannot be turned into a key. ``kvno`` 0 stands for "any version"."""
    out: list[KeytabEntry] = []
    for etype in etypes:
        try:
            key = string_to_key(etype, password, default_salt(realm, components))
        except KerberosCryptoError as exc:
            raise KeytabError(f"no etype {etype} key from the password: {exc}") from exc
        out.append(KeytabEntry(realm, components, 1, 0, kvno, etype, key))
    return out


__all__ = ["KeytabEntry", "KeytabError", "default_salt", "parse_keytab", "password_entries", "read_keytab"]

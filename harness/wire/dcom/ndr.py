"""Minimal NDR 2.0 marshalling (C706 14; MS-RPCE 2.2.5), little-endian, for the DCOM/WMI stubs.

:class:`NdrWriter` and :class:`NdrReader` handle primitive alignment (C706 14.2.2), unique/full
pointer referent ids (14.3.10), conformant and conformant-varying arrays (14.3.3.2-14.3.3.4),
conformant-varying strings (``[string] wchar_t*``, 14.3.4), the ``BSTR`` wire form
(FLAGGED_WORD_BLOB, MS-OAUT 2.2.23.2) and ``MInterfacePointer`` (MS-DCOM 2.2.14). Deferral of
embedded pointees is the caller's job (it writes them in the order C706 14.3.12.3 requires).
The reader raises only :class:`NdrError` and bounds every count by the remaining input.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NdrError(Exception):
    """Malformed NDR data (RPC_X_BAD_STUB_DATA)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NdrWriter:
    """Append NDR representations; alignment is relative to the start of the stub."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._next_ref = 0x00020000

    def align(self, n: int) -> None:
        self.buf += b"\x00" * (-len(self.buf) % n)

    def u8(self, v: int) -> None:
        self.buf += struct.pack("<B", v)

    def u16(self, v: int) -> None:
        self.align(2)
        self.buf += struct.pack("<H", v)

    def u32(self, v: int) -> None:
        self.align(4)
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)

    def i32(self, v: int) -> None:
        self.align(4)
        self.buf += struct.pack("<i", v)

    def u64(self, v: int) -> None:
        self.align(8)
        self.buf += struct.pack("<Q", v)

    def guid(self, v: uuid.UUID) -> None:
        self.align(4)
        self.buf += v.bytes_le

    def raw(self, data: bytes) -> None:
        self.buf += data

    def referent(self, present: bool) -> bool:
        """A unique/full pointer: a fresh non-zero referent id, or 0 for NULL."""
        if not present:
            self.u32(0)
            return False
        self.u32(self._next_ref)
        self._next_ref += 4
        return True

    def wstr(self, text: str) -> None:
        """A conformant varying ``[string] wchar_t`` array with its terminating NUL (C706 14.3.4)."""
        data = (text + "\x00").encode("utf-16-le")
        n = len(data) // 2
        self.u32(n)
        self.u32(0)
        self.u32(n)
        self.raw(data)

    def lpwstr(self, text: str | None) -> None:
        if self.referent(text is not None):
            assert text is not None
            self.wstr(text)

    def bstr(self, text: str | None) -> None:
        """``BSTR`` as its wire form: a unique pointer to FLAGGED_WORD_BLOB (MS-OAUT 2.2.23.2):
        max count, fFlags (the byte length; receivers ignore it), clSize, then clSize characters."""
        if self.referent(text is not None):
            assert text is not None
            data = text.encode("utf-16-le")
            n = len(data) // 2
            self.u32(n)
            self.u32(len(data))
            self.u32(n)
            self.raw(data)

    def interface_pointer_body(self, objref: bytes) -> None:
        """MInterfacePointer (MS-DCOM 2.2.14): conformant struct, max count first."""
        self.u32(len(objref))
        self.u32(len(objref))
        self.raw(objref)

    def interface_pointer(self, objref: bytes | None) -> None:
        """A top-level unique pointer to an MInterfacePointer (pointee follows at once)."""
        if self.referent(objref is not None):
            assert objref is not None
            self.interface_pointer_body(objref)

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class NdrReader:
    """Read NDR representations from a stub; every read is bounds checked."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def _take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise NdrError(f"stub too short for {what} at offset {self.pos}")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def u8(self, what: str = "octet") -> int:
        return self._take(1, what)[0]

    def u16(self, what: str = "short") -> int:
        self.align(2)
        return int(struct.unpack("<H", self._take(2, what))[0])

    def u32(self, what: str = "long") -> int:
        self.align(4)
        return int(struct.unpack("<I", self._take(4, what))[0])

    def i32(self, what: str = "long") -> int:
        self.align(4)
        return int(struct.unpack("<i", self._take(4, what))[0])

    def u64(self, what: str = "hyper") -> int:
        self.align(8)
        return int(struct.unpack("<Q", self._take(8, what))[0])

    def guid(self, what: str = "GUID") -> uuid.UUID:
        self.align(4)
        return uuid.UUID(bytes_le=self._take(16, what))

    def raw(self, size: int, what: str = "bytes") -> bytes:
        return self._take(size, what)

    def count(self, what: str, unit: int) -> int:
        """A conformance/variance count, bounded by what is left of the stub."""
        n = self.u32(what)
        if n * unit > len(self.data) - self.pos:
            raise NdrError(f"{what} count {n} exceeds the stub")
        return n

    def sized_array(self, what: str, unit: int, size: int, read: Callable[[NdrReader], T]) -> list[T]:
        """A conformant array sized by an earlier field (``[size_is(size)]``, C706 14.3.3.2): its
        conformance (max count) must equal ``size``; then ``read(self)`` reads each element."""
        n = self.count(what, unit)
        if n != size:
            raise NdrError(f"{what}: conformance {n} differs from the size field {size}")
        return [read(self) for _ in range(n)]

    def referent(self, what: str = "pointer") -> bool:
        return self.u32(what) != 0

    def wstr(self, what: str = "string") -> str:
        """Conformant varying wide string; the BSTR wire form is accepted too (same shape)."""
        max_count = self.count(f"{what} max count", 0)
        _offset_or_flags = self.u32(f"{what} offset")
        actual = self.count(f"{what} length", 2)
        if actual > max_count and max_count != 0:
            raise NdrError(f"{what}: actual count {actual} exceeds max count {max_count}")
        raw = self._take(2 * actual, what)
        try:
            text = raw.decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise NdrError(f"{what} is not UTF-16: {exc}") from None
        return text[:-1] if text.endswith("\x00") else text

    def lpwstr(self, what: str = "string") -> str | None:
        return self.wstr(what) if self.referent(what) else None

    def bstr(self, what: str = "BSTR") -> str | None:
        """A BSTR: FLAGGED_WORD_BLOB (MS-OAUT 2.2.23.2), or the ``[string]`` form some clients send
        for it (impacket: observed client behaviour); both are max count, a long, count, characters."""
        return self.lpwstr(what)

    def interface_pointer_body(self, what: str = "MInterfacePointer") -> bytes:
        max_count = self.count(f"{what} max count", 1)
        size = self.u32(f"{what} ulCntData")
        if size > max_count:
            raise NdrError(f"{what}: ulCntData {size} exceeds the conformance {max_count}")
        return self._take(size, what)

    def interface_pointer(self, what: str = "MInterfacePointer") -> bytes | None:
        return self.interface_pointer_body(what) if self.referent(what) else None

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos


# ---------------------------------------------------------------- type serialization version 1


def serialize_type1(body: bytes) -> bytes:
    """MS-RPCE 2.2.6 type serialization version 1: common header (version 1, little-endian,
    length 8, filler 0xCCCCCCCC), private header (buffer length padded to 8, filler), data."""
    padded = body + b"\x00" * (-len(body) % 8)
    return struct.pack("<BBHI", 1, 0x10, 8, 0xCCCCCCCC) + struct.pack("<II", len(padded), 0) + padded


def deserialize_type1(data: bytes) -> bytes:
    """The data of a type serialization version 1 buffer (MS-RPCE 2.2.6); NdrError if malformed."""
    if len(data) < 16:
        raise NdrError("type serialization header truncated")
    version, endian, hlen, _filler = struct.unpack_from("<BBHI", data, 0)
    if version != 1 or endian != 0x10 or hlen != 8:
        raise NdrError("unsupported type serialization header")
    length = struct.unpack_from("<I", data, 8)[0]
    if 16 + length > len(data):
        raise NdrError("type serialization buffer length exceeds the data")
    return data[16:16 + length]

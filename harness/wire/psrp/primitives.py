"""Typed Python values for the MS-PSRP 2.2.5.1 primitive types that have no exact native Python equivalent.

Natural mappings (used by :mod:`harness.wire.psrp.clixml`):

=====================  ==========  ==========================================================
CLIXML element         2.2.5.1.x   Python value
=====================  ==========  ==========================================================
``<S>``                 .1         ``str``
``<C>``                 .2         :class:`Char` (a one character ``str``)
``<B>``                 .3         ``bool``
``<DT>``                .4         ``datetime.datetime`` (or :class:`DateTime` for 100 ns ticks)
``<TS>``                .5         :class:`Duration` (``datetime.timedelta`` accepted on encode)
``<By>`` / ``<SB>``     .6 / .7    :class:`Byte` / :class:`SByte`
``<U16>`` / ``<I16>``   .8 / .9    :class:`UInt16` / :class:`Int16`
``<U32>`` / ``<I32>``   .10 / .11  :class:`UInt32` / ``int`` (or :class:`Int32`)
``<U64>`` / ``<I64>``   .12 / .13  :class:`UInt64` / :class:`Int64`
``<Sg>`` / ``<Db>``     .14 / .15  :class:`Single` / ``float``
``<D>``                 .16        ``decimal.Decimal``
``<BA>``                .17        ``bytes``
``<G>``                 .18        ``uuid.UUID``
``<URI>``               .19        :class:`Uri`
``<Nil>``               .20        ``None``
``<Version>``           .21        :class:`Version`
``<XD>``                .22        :class:`XmlDocument`
``<SBK>``               .23        :class:`ScriptBlock`
``<SS>``                .24        :class:`SecureString` (opaque encrypted bytes)
=====================  ==========  ==========================================================
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass
from typing import ClassVar

from harness.wire.psrp.errors import PsrpEncodeError

TICKS_PER_SECOND = 10_000_000
""".NET ``TimeSpan`` / ``DateTime`` tick: 100 ns (MS-PSRP 2.2.5.1.4, 2.2.5.1.5)."""


class _BoundedInt(int):
    """An ``int`` tagged with its CLIXML integer type; construction checks the type's range."""

    TAG: ClassVar[str] = ""
    MIN: ClassVar[int] = 0
    MAX: ClassVar[int] = 0

    def __new__(cls, value: int = 0) -> _BoundedInt:
        number = int(value)
        if not cls.MIN <= number <= cls.MAX:
            raise PsrpEncodeError(f"{number} out of range for {cls.__name__} [{cls.MIN}, {cls.MAX}]")
        return super().__new__(cls, number)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Byte(_BoundedInt):
    """Unsigned byte ``<By>`` (MS-PSRP 2.2.5.1.6)."""

    TAG, MIN, MAX = "By", 0, 0xFF


class SByte(_BoundedInt):
    """Signed byte ``<SB>`` (MS-PSRP 2.2.5.1.7)."""

    TAG, MIN, MAX = "SB", -0x80, 0x7F


class UInt16(_BoundedInt):
    """``<U16>`` (MS-PSRP 2.2.5.1.8)."""

    TAG, MIN, MAX = "U16", 0, 0xFFFF


class Int16(_BoundedInt):
    """``<I16>`` (MS-PSRP 2.2.5.1.9)."""

    TAG, MIN, MAX = "I16", -0x8000, 0x7FFF


class UInt32(_BoundedInt):
    """``<U32>`` (MS-PSRP 2.2.5.1.10)."""

    TAG, MIN, MAX = "U32", 0, 0xFFFF_FFFF


class Int32(_BoundedInt):
    """``<I32>`` (MS-PSRP 2.2.5.1.11). A plain ``int`` is also encoded as ``<I32>``."""

    TAG, MIN, MAX = "I32", -0x8000_0000, 0x7FFF_FFFF


class UInt64(_BoundedInt):
    """``<U64>`` (MS-PSRP 2.2.5.1.12)."""

    TAG, MIN, MAX = "U64", 0, 0xFFFF_FFFF_FFFF_FFFF


class Int64(_BoundedInt):
    """``<I64>`` (MS-PSRP 2.2.5.1.13)."""

    TAG, MIN, MAX = "I64", -0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF


INT_TYPES: tuple[type[_BoundedInt], ...] = (Byte, SByte, UInt16, Int16, UInt32, Int32, UInt64, Int64)


class Single(float):
    """IEEE 754 binary32 ``<Sg>`` (MS-PSRP 2.2.5.1.14); the value is rounded to single precision on construction."""

    def __new__(cls, value: float = 0.0) -> Single:
        try:
            rounded: float = struct.unpack("<f", struct.pack("<f", float(value)))[0]
        except (OverflowError, struct.error) as exc:
            raise PsrpEncodeError(f"{value!r} does not fit a Single") from exc
        return super().__new__(cls, rounded)

    def __repr__(self) -> str:
        return f"Single({float(self)!r})"


class Char(str):
    """A UTF-16 code unit ``<C>`` (MS-PSRP 2.2.5.1.2): exactly one character in U+0000..U+FFFF."""

    def __new__(cls, value: str) -> Char:
        if len(value) != 1 or ord(value) > 0xFFFF:
            raise PsrpEncodeError(f"Char must be one UTF-16 code unit, got {value!r}")
        return super().__new__(cls, value)


class Uri(str):
    """``<URI>`` (MS-PSRP 2.2.5.1.19)."""


class XmlDocument(str):
    """``<XD>``: the XML document text (MS-PSRP 2.2.5.1.22)."""


class ScriptBlock(str):
    """``<SBK>``: the script block source text (MS-PSRP 2.2.5.1.23)."""


_VERSION_RE = re.compile(r"\A\d{1,10}\.\d{1,10}(?:\.\d{1,10}(?:\.\d{1,10})?)?\Z")


class Version(str):
    """``<Version>`` ``major.minor[.build[.revision]]`` (MS-PSRP 2.2.5.1.21), each part a non-negative Int32."""

    def __new__(cls, value: str) -> Version:
        if not _VERSION_RE.match(value) or any(int(part) > 0x7FFF_FFFF for part in value.split(".")):
            raise PsrpEncodeError(f"invalid Version {value!r}")
        return super().__new__(cls, value)

    @property
    def parts(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.split("."))


@dataclass(frozen=True)
class SecureString:
    """``<SS>`` (MS-PSRP 2.2.5.1.24): the AES-256-CBC encrypted UTF-16LE string, kept opaque.

    :mod:`harness.wire.psrp.keyexchange` encrypts and decrypts it with the session key.
    """

    ciphertext: bytes


@dataclass(frozen=True)
class DateTime:
    """A ``<DT>`` value with 100 ns precision (MS-PSRP 2.2.5.1.4).

    ``datetime.datetime`` only has microseconds; ``sub_microsecond_ticks`` (0..9) holds the seventh fractional
    digit that .NET may send. The decoder returns a plain ``datetime`` whenever that digit is 0.
    A naive ``value`` is ``DateTimeKind.Unspecified`` (no zone designator on the wire).
    """

    value: dt.datetime
    sub_microsecond_ticks: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.sub_microsecond_ticks <= 9:
            raise PsrpEncodeError("sub_microsecond_ticks must be 0..9")


@dataclass(frozen=True)
class Duration:
    """A ``<TS>`` ``System.TimeSpan`` (MS-PSRP 2.2.5.1.5) as a signed number of 100 ns ticks."""

    ticks: int

    def __post_init__(self) -> None:
        if not -(2**63) <= self.ticks < 2**63:
            raise PsrpEncodeError("TimeSpan ticks out of Int64 range")

    @classmethod
    def from_timedelta(cls, value: dt.timedelta) -> Duration:
        return cls((value.days * 86_400 + value.seconds) * TICKS_PER_SECOND + value.microseconds * 10)

    def to_timedelta(self) -> dt.timedelta:
        """Nearest ``timedelta`` (truncates the sub-microsecond ticks toward zero)."""
        sign = -1 if self.ticks < 0 else 1
        return sign * dt.timedelta(microseconds=abs(self.ticks) // 10)

"""MS-PSRP 2.2.5 serialization ("CLIXML"): primitives, complex objects, object and type-name references.

* :func:`serialize` turns a Python value (see :mod:`harness.wire.psrp.primitives` for the type mapping,
  :class:`PSObject` for ``<Obj>``) into CLIXML text. A :class:`PSObject`, ``list`` or ``dict`` met a second time
  (same Python object) is written as ``<Ref RefId=".."/>`` (MS-PSRP 2.2.5.2.2), an identical type-name list is
  written as ``<TNRef>`` (MS-PSRP 2.2.5.2.3). ``list`` encodes as an ``Object[]`` ``<LST>`` and ``dict`` as a
  ``Hashtable`` ``<DCT>``; both decode as :class:`PSObject`.
* :func:`deserialize` parses CLIXML with a hardened lxml parser (no DTD, no entities, no network, no huge tree),
  bounded nesting depth, bounded object count and RefId length, and raises only :class:`PsrpDecodeError`.

``PSObject`` graphs round trip exactly: ``deserialize(serialize(x)) == x`` including shared references and cycles
(compare with :func:`graphs_equal`, which is what ``PSObject.__eq__`` uses).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree

from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.primitives import (
    INT_TYPES,
    TICKS_PER_SECOND,
    Char,
    DateTime,
    Duration,
    Int32,
    ScriptBlock,
    SecureString,
    Single,
    Uri,
    Version,
    XmlDocument,
    _BoundedInt,
)
from harness.wire.xmlsafe import HardenedParser, parse_hardened

# --------------------------------------------------------------------------------------------------------------
# model


class _NoValue:
    """Sentinel: the ``<Obj>`` has no primitive content."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()

CONTAINER_TAGS: Final = frozenset({"LST", "IE", "STK", "QUE", "DCT"})
"""MS-PSRP 2.2.5.2.6: list (LST), enumerable (IE), stack (STK), queue (QUE), dictionary (DCT)."""

LIST_TYPE_NAMES: Final = ("System.Object[]", "System.Array", "System.Object")
ARRAYLIST_TYPE_NAMES: Final = ("System.Collections.ArrayList", "System.Object")
HASHTABLE_TYPE_NAMES: Final = ("System.Collections.Hashtable", "System.Object")
PRIMITIVE_DICTIONARY_TYPE_NAMES: Final = (
    "System.Management.Automation.PSPrimitiveDictionary",
    "System.Collections.Hashtable",
    "System.Object",
)
STACK_TYPE_NAMES: Final = ("System.Collections.Stack", "System.Object")
QUEUE_TYPE_NAMES: Final = ("System.Collections.Queue", "System.Object")
ENUM_BASE_TYPE_NAMES: Final = ("System.Enum", "System.ValueType", "System.Object")


@dataclass(eq=False)
class PSObject:
    """A complex object ``<Obj>`` (MS-PSRP 2.2.5.2).

    ``type_names``: ``<TN>`` list, most derived first (2.2.5.2.3); ``to_string``: ``<ToString>`` (2.2.5.2.4);
    ``value``: primitive content such as an enum's ``<I32>`` (2.2.5.2.5), :data:`NO_VALUE` if absent;
    ``container``: one of ``LST IE STK QUE DCT`` (2.2.5.2.6) with ``items`` (lists, stacks, queues; wire order)
    or ``entries`` (dictionary ``<En>`` key/value pairs, wire order); ``adapted_properties``: ``<Props>``
    (2.2.5.2.7); ``extended_properties``: ``<MS>`` (2.2.5.2.8).
    """

    type_names: list[str] = field(default_factory=list)
    to_string: str | None = None
    value: Any = NO_VALUE
    container: str | None = None
    items: list[Any] = field(default_factory=list)
    entries: list[tuple[Any, Any]] = field(default_factory=list)
    adapted_properties: dict[str, Any] = field(default_factory=dict)
    extended_properties: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PSObject) and graphs_equal(self, other)

    __hash__ = None  # type: ignore[assignment]

    def get(self, name: str, default: Any = None) -> Any:
        """Property lookup: extended (``<MS>``) first, then adapted (``<Props>``)."""
        if name in self.extended_properties:
            return self.extended_properties[name]
        return self.adapted_properties.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.extended_properties or name in self.adapted_properties

    def as_dict(self) -> dict[Any, Any]:
        """``entries`` as a Python dict (keys must be hashable)."""
        try:
            return dict(self.entries)
        except TypeError as exc:
            raise PsrpDecodeError("dictionary key is not hashable") from exc


class PropertySet(dict[str, Any]):
    """A property set (MS-PSRP 2.2.5.3.4.3): a named collection of extended properties.

    Valid only as the value of an extended property: it is written as a nested ``<MS N="name">`` inside the
    ``<MS>`` of an object (MS-PSRP 2.2.5.2.9, example "a point ... with 1 property set"), may itself hold property
    sets, and decodes back to a :class:`PropertySet`. Anywhere else it is rejected by the encoder.
    """


def ps_list(items: Iterable[Any], type_names: Iterable[str] = LIST_TYPE_NAMES, tag: str = "LST") -> PSObject:
    """A list object (MS-PSRP 2.2.5.2.6.3), ``Object[]`` by default."""
    return PSObject(type_names=list(type_names), container=tag, items=list(items))


def ps_dict(
    entries: Mapping[Any, Any] | Iterable[tuple[Any, Any]], type_names: Iterable[str] = HASHTABLE_TYPE_NAMES
) -> PSObject:
    """A dictionary object (MS-PSRP 2.2.5.2.6.4), ``Hashtable`` by default."""
    pairs = list(entries.items()) if isinstance(entries, Mapping) else list(entries)
    return PSObject(type_names=list(type_names), container="DCT", entries=pairs)


def ps_enum(type_name: str, value: int, to_string: str) -> PSObject:
    """An enum value (MS-PSRP 2.2.5.2.5, e.g. 2.2.3.6 PSThreadOptions): TN + ToString + ``<I32>``."""
    return PSObject(type_names=[type_name, *ENUM_BASE_TYPE_NAMES], to_string=to_string, value=int(value))


# --------------------------------------------------------------------------------------------------------------
# structural equality


def _primitive_equal(a: Any, b: Any) -> bool:
    # Int32 and int are the same <I32> on the wire; the decoder returns plain int.
    if type(a) is Int32:
        a = int(a)
    if type(b) is Int32:
        b = int(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dt.datetime):
        return bool(a == b and a.utcoffset() == b.utcoffset())
    if isinstance(a, DateTime):
        return _primitive_equal(a.value, b.value) and a.sub_microsecond_ticks == b.sub_microsecond_ticks
    return bool(a == b)


class _GraphComparer:
    def __init__(self) -> None:
        self.forward: dict[int, int] = {}
        self.backward: dict[int, int] = {}

    def equal(self, a: Any, b: Any) -> bool:
        a_node = isinstance(a, (PSObject, list, dict))
        b_node = isinstance(b, (PSObject, list, dict))
        if not (a_node or b_node):
            return _primitive_equal(a, b)
        if type(a) is not type(b):
            return False
        mapped = self.forward.get(id(a))
        if mapped is not None:
            return mapped == id(b)
        if id(b) in self.backward:
            return False
        self.forward[id(a)] = id(b)
        self.backward[id(b)] = id(a)
        if isinstance(a, list):
            return len(a) == len(b) and all(self.equal(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict):
            return len(a) == len(b) and all(
                self.equal(ka, kb) and self.equal(va, vb)
                for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
            )
        assert isinstance(b, PSObject)
        return (
            a.type_names == b.type_names
            and a.to_string == b.to_string
            and type(a.to_string) is type(b.to_string)
            and a.container == b.container
            and (a.value is NO_VALUE) == (b.value is NO_VALUE)
            and (a.value is NO_VALUE or self.equal(a.value, b.value))
            and len(a.items) == len(b.items)
            and all(self.equal(x, y) for x, y in zip(a.items, b.items, strict=True))
            and len(a.entries) == len(b.entries)
            and all(
                self.equal(ka, kb) and self.equal(va, vb)
                for (ka, va), (kb, vb) in zip(a.entries, b.entries, strict=True)
            )
            and self._props_equal(a.adapted_properties, b.adapted_properties)
            and self._props_equal(a.extended_properties, b.extended_properties)
        )

    def _props_equal(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        return list(a) == list(b) and all(self.equal(a[k], b[k]) for k in a)


def graphs_equal(a: Any, b: Any) -> bool:
    """Structural equality of two decoded values: same types, same values, same sharing and cycle structure."""
    return _GraphComparer().equal(a, b)


# --------------------------------------------------------------------------------------------------------------
# strings: MS-PSRP 2.2.5.3.2 encoding of characters that XML cannot carry

_ESCAPE_RE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\U00010000-\U0010ffff]|_(?=[xX])")
_UNESCAPE_RE = re.compile(r"_[xX]([0-9A-Fa-f]{4})_")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    if char == "_":
        return "_x005F_"
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"_x{0xD800 + (code >> 10):04X}__x{0xDC00 + (code & 0x3FF):04X}_"
    return f"_x{code:04X}_"


def encode_string(value: str) -> str:
    """MS-PSRP 2.2.5.3.2: C0/C1 control characters and U+FFFE/U+FFFF become ``_xHHHH_``; an ``_`` that precedes
    ``x``/``X`` becomes ``_x005F_`` (the decoder is case-insensitive on the ``x``). Characters outside the BMP are
    written as their two UTF-16 surrogate code units (PowerShell serializes UTF-16 code units one by one;
    pypsrp relies on the same form). Lone surrogates are escaped as well so every Python ``str`` round trips.
    """
    return _ESCAPE_RE.sub(_escape_char, value)


def decode_string(value: str) -> str:
    """Inverse of :func:`encode_string`; escaped surrogate pairs are recombined."""
    if "_" not in value:
        return value
    decoded = _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), value)
    if _SURROGATE_RE.search(decoded):
        decoded = decoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return decoded


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(value: str) -> str:
    return _xml_text(value).replace('"', "&quot;")


# --------------------------------------------------------------------------------------------------------------
# primitive text forms


def _format_float(value: float) -> str:
    """XML Schema float/double lexical form as .NET writes it: ``INF``, ``-INF``, ``NaN`` (MS-PSRP 2.2.5.1.14)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(float(value))


def _format_single(value: Single) -> str:
    """Shortest decimal text that reads back as the same binary32 value (what .NET's "R" format aims at)."""
    if math.isnan(value) or math.isinf(value):
        return _format_float(value)
    for precision in range(1, 10):
        text = f"{float(value):.{precision}g}"
        try:
            same = Single(float(text)) == value
        except PsrpEncodeError:  # rounded past the binary32 maximum
            continue
        if same:
            return text.replace("e+", "E+").replace("e-", "E-")
    return repr(float(value))  # pragma: no cover - 9 significant digits always suffice for binary32


def _format_datetime(value: dt.datetime, extra_ticks: int) -> str:
    """MS-PSRP 2.2.5.1.4: XML Schema dateTime with up to 7 fractional digits; ``Z`` for UTC, ``+hh:mm`` otherwise."""
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    ticks = value.microsecond * 10 + extra_ticks
    if ticks:
        text += "." + f"{ticks:07d}".rstrip("0")
    offset = value.utcoffset()
    if offset is not None:
        total = int(offset.total_seconds())
        if offset.microseconds or total % 60:
            raise PsrpEncodeError("DateTime offset must be a whole number of minutes")
        if total == 0:
            text += "Z"
        else:
            sign = "+" if total > 0 else "-"
            total = abs(total)
            text += f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
    return text


def _format_duration(ticks: int) -> str:
    """MS-PSRP 2.2.5.1.5: XML Schema duration as ``XmlConvert.ToString(TimeSpan)`` writes it (days, never years)."""
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    days, rest = divmod(ticks, 86_400 * TICKS_PER_SECOND)
    hours, rest = divmod(rest, 3600 * TICKS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * TICKS_PER_SECOND)
    seconds, fraction = divmod(rest, TICKS_PER_SECOND)
    text = sign + "P"
    if days:
        text += f"{days}D"
    if hours or minutes or seconds or fraction or not days:
        text += "T"
        if hours:
            text += f"{hours}H"
        if minutes:
            text += f"{minutes}M"
        if seconds or fraction or not (hours or minutes):
            text += str(seconds)
            if fraction:
                text += "." + f"{fraction:07d}".rstrip("0")
            text += "S"
    return text


def _format_decimal(value: decimal.Decimal) -> str:
    """``System.Decimal`` text (MS-PSRP 2.2.5.1.16): at most 29 integer digits and a scale of at most 28."""
    if not value.is_finite():
        raise PsrpEncodeError("Decimal must be finite")
    text = format(value, "f")
    integer, _, fraction = text.lstrip("-").partition(".")
    if len(integer) > 29 or len(fraction) > 28:
        raise PsrpEncodeError(f"Decimal {text[:40]} is outside System.Decimal range/scale")
    return text


# --------------------------------------------------------------------------------------------------------------
# encoder


DEFAULT_MAX_DEPTH: Final = 100


class _Encoder:
    def __init__(self, max_depth: int) -> None:
        self.out: list[str] = []
        self.ref_ids: dict[int, int] = {}
        self.tn_ids: dict[tuple[str, ...], int] = {}
        self.max_depth = max_depth

    def value(self, value: Any, name: str | None, depth: int) -> None:
        if depth > self.max_depth:
            raise PsrpEncodeError(f"object graph deeper than {self.max_depth}")
        attr = "" if name is None else f' N="{_xml_attr(encode_string(name))}"'
        kind = type(value)
        simple = _SIMPLE_ENCODERS.get(kind)
        if simple is not None:
            tag, text = simple(value)
            self._element(tag, attr, text)
            return
        if value is None:
            self.out.append(f"<Nil{attr} />")
        elif isinstance(value, PropertySet):
            raise PsrpEncodeError("a PropertySet is only valid as an extended property (MS-PSRP 2.2.5.2.9)")
        elif isinstance(value, (PSObject, list, dict)):
            self.obj(value, attr, depth)
        else:
            tag, text = _encode_other(value)
            self._element(tag, attr, text)

    def _element(self, tag: str, attr: str, text: str) -> None:
        if text:
            self.out.append(f"<{tag}{attr}>{text}</{tag}>")
        else:
            self.out.append(f"<{tag}{attr} />")

    def obj(self, value: PSObject | list[Any] | dict[Any, Any], attr: str, depth: int) -> None:
        ref = self.ref_ids.get(id(value))
        if ref is not None:
            self.out.append(f'<Ref{attr} RefId="{ref}" />')
            return
        ref = len(self.ref_ids)
        self.ref_ids[id(value)] = ref
        out = self.out
        out.append(f'<Obj{attr} RefId="{ref}">')
        if isinstance(value, list):
            self._type_names(LIST_TYPE_NAMES)
            self._items("LST", value, depth)
        elif isinstance(value, dict):
            self._type_names(HASHTABLE_TYPE_NAMES)
            self._entries(list(value.items()), depth)
        else:
            if value.type_names:
                self._type_names(tuple(value.type_names))
            if value.to_string is not None:
                out.append(f"<ToString>{_xml_text(encode_string(value.to_string))}</ToString>")
            if value.value is not NO_VALUE:
                if value.container is not None:
                    raise PsrpEncodeError("an Obj cannot carry both a primitive value and a container")
                if isinstance(value.value, (PSObject, list, dict)):
                    raise PsrpEncodeError("the primitive content of an Obj must not be an object")
                self.value(value.value, None, depth + 1)
            if value.container is not None:
                if value.container == "DCT":
                    if value.items:
                        raise PsrpEncodeError("a DCT object carries entries, not items")
                    self._entries(value.entries, depth)
                elif value.container in CONTAINER_TAGS:
                    if value.entries:
                        raise PsrpEncodeError(f"a {value.container} object carries items, not entries")
                    self._items(value.container, value.items, depth)
                else:
                    raise PsrpEncodeError(f"unknown container {value.container!r}")
            elif value.items or value.entries:
                raise PsrpEncodeError("items/entries given without a container")
            if value.adapted_properties:
                out.append("<Props>")
                self._members(value.adapted_properties, depth, sets=False)
                out.append("</Props>")
            if value.extended_properties:
                out.append("<MS>")
                self._members(value.extended_properties, depth, sets=True)
                out.append("</MS>")
        out.append("</Obj>")

    def _members(self, props: Mapping[str, Any], depth: int, *, sets: bool) -> None:
        """Named members of ``<Props>`` (2.2.5.2.8) or ``<MS>`` (2.2.5.2.9); only ``<MS>`` may nest property sets."""
        for key, item in props.items():
            if not isinstance(key, str):
                raise PsrpEncodeError(f"property name must be str, got {type(key).__name__}")
            if isinstance(item, PropertySet):
                if not sets:
                    raise PsrpEncodeError("a PropertySet is only valid as an extended property (MS-PSRP 2.2.5.2.9)")
                if depth + 1 > self.max_depth:
                    raise PsrpEncodeError(f"object graph deeper than {self.max_depth}")
                self.out.append(f'<MS N="{_xml_attr(encode_string(key))}">')
                self._members(item, depth + 1, sets=True)
                self.out.append("</MS>")
            else:
                self.value(item, key, depth + 1)

    def _type_names(self, names: tuple[str, ...]) -> None:
        ref = self.tn_ids.get(names)
        if ref is not None:
            self.out.append(f'<TNRef RefId="{ref}" />')
            return
        ref = len(self.tn_ids)
        self.tn_ids[names] = ref
        body = "".join(f"<T>{_xml_text(encode_string(n))}</T>" for n in names)
        self.out.append(f'<TN RefId="{ref}">{body}</TN>')

    def _items(self, tag: str, items: list[Any], depth: int) -> None:
        self.out.append(f"<{tag}>")
        for item in items:
            self.value(item, None, depth + 1)
        self.out.append(f"</{tag}>")

    def _entries(self, entries: list[tuple[Any, Any]], depth: int) -> None:
        self.out.append("<DCT>")
        for key, item in entries:
            self.out.append("<En>")
            self.value(key, "Key", depth + 1)
            self.value(item, "Value", depth + 1)
            self.out.append("</En>")
        self.out.append("</DCT>")


def _enc_str(tag: str) -> Callable[[Any], tuple[str, str]]:
    return lambda v: (tag, _xml_text(encode_string(v)))


def _enc_int(value: int) -> tuple[str, str]:
    if not Int32.MIN <= value <= Int32.MAX:
        raise PsrpEncodeError(f"int {value} does not fit Int32; wrap it in Int64/UInt64/UInt32")
    return "I32", str(value)


def _enc_bounded(value: _BoundedInt) -> tuple[str, str]:
    return value.TAG, str(int(value))


_SIMPLE_ENCODERS: dict[type, Callable[[Any], tuple[str, str]]] = {
    str: _enc_str("S"),
    bool: lambda v: ("B", "true" if v else "false"),
    int: _enc_int,
    float: lambda v: ("Db", _format_float(v)),
    Single: lambda v: ("Sg", _format_single(v)),
    Char: lambda v: ("C", str(ord(v))),
    Uri: _enc_str("URI"),
    XmlDocument: _enc_str("XD"),
    ScriptBlock: _enc_str("SBK"),
    Version: lambda v: ("Version", str.__str__(v)),
    bytes: lambda v: ("BA", base64.b64encode(v).decode("ascii")),
    uuid.UUID: lambda v: ("G", str(v)),
    decimal.Decimal: lambda v: ("D", _format_decimal(v)),
    dt.datetime: lambda v: ("DT", _format_datetime(v, 0)),
    DateTime: lambda v: ("DT", _format_datetime(v.value, v.sub_microsecond_ticks)),
    Duration: lambda v: ("TS", _format_duration(v.ticks)),
    dt.timedelta: lambda v: ("TS", _format_duration(Duration.from_timedelta(v).ticks)),
    SecureString: lambda v: ("SS", base64.b64encode(v.ciphertext).decode("ascii")),
}
for _int_type in INT_TYPES:
    _SIMPLE_ENCODERS[_int_type] = _enc_bounded


def _encode_other(value: Any) -> tuple[str, str]:
    """Subclasses (IntEnum, str subclasses...) take the encoder of their closest known base."""
    for kind in type(value).__mro__[1:]:
        encoder = _SIMPLE_ENCODERS.get(kind)
        if encoder is not None:
            return encoder(value)
    raise PsrpEncodeError(f"cannot serialize a value of type {type(value).__name__}")


def serialize(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> str:
    """CLIXML text (no XML declaration) for one value (MS-PSRP 2.2.5). RefIds and TN RefIds start at 0."""
    encoder = _Encoder(max_depth)
    encoder.value(value, None, 0)
    return "".join(encoder.out)


def serialize_bytes(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """UTF-8 CLIXML bytes (no BOM) for one value."""
    return serialize(value, max_depth=max_depth).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------------------------------------------
# decoder


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds enforced by :func:`deserialize` so hostile input cannot exhaust memory or stack."""

    max_size: int = 64 * 1024 * 1024
    max_depth: int = DEFAULT_MAX_DEPTH
    max_objects: int = 1_000_000
    max_ref_id_length: int = 20


DEFAULT_LIMITS: Final = DecodeLimits()

_INT_RE = re.compile(r"\A[+-]?[0-9]{1,40}\Z")
_FLOAT_RE = re.compile(r"\A[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")
_DECIMAL_RE = re.compile(r"\A[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?\Z")
_GUID_RE = re.compile(r"\A[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")
_DT_RE = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})?\Z")
_TS_RE = re.compile(r"\A(-)?P(?:(\d{1,9})D)?(?:T(?:(\d{1,12})H)?(?:(\d{1,14})M)?(?:(\d{1,16})(?:\.(\d{1,7}))?S)?)?\Z")


def _dec_int(bounded: type[_BoundedInt] | None) -> Callable[[str], Any]:
    low, high = (Int32.MIN, Int32.MAX) if bounded is None else (bounded.MIN, bounded.MAX)

    def decode(text: str) -> Any:
        if not _INT_RE.match(text):
            raise PsrpDecodeError(f"invalid integer {text[:40]!r}")
        number = int(text)
        if not low <= number <= high:
            raise PsrpDecodeError(f"integer {number} out of range [{low}, {high}]")
        return number if bounded is None else bounded(number)

    return decode


def _parse_float(text: str) -> float:
    if text in ("INF", "+INF", "Infinity"):
        return math.inf
    if text in ("-INF", "-Infinity"):
        return -math.inf
    if text == "NaN":
        return math.nan
    if not _FLOAT_RE.match(text):
        raise PsrpDecodeError(f"invalid floating point number {text[:40]!r}")
    return float(text)


def _dec_single(text: str) -> Single:
    value = _parse_float(text)
    try:
        return Single(value)
    except PsrpEncodeError as exc:
        raise PsrpDecodeError(f"{text[:40]!r} out of Single range") from exc


def _dec_bool(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise PsrpDecodeError(f"invalid Boolean {text[:20]!r}")


def _dec_char(text: str) -> Char:
    if not _INT_RE.match(text) or not 0 <= int(text) <= 0xFFFF:
        raise PsrpDecodeError(f"invalid Char code {text[:20]!r}")
    return Char(chr(int(text)))


def _dec_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PsrpDecodeError("invalid base64") from exc


def _dec_guid(text: str) -> uuid.UUID:
    if not _GUID_RE.match(text):
        raise PsrpDecodeError(f"invalid Guid {text[:40]!r}")
    return uuid.UUID(text)


def _dec_decimal(text: str) -> decimal.Decimal:
    if not _DECIMAL_RE.match(text):
        raise PsrpDecodeError(f"invalid Decimal {text[:40]!r}")
    return decimal.Decimal(text)


def _dec_version(text: str) -> Version:
    try:
        return Version(text)
    except PsrpEncodeError as exc:
        raise PsrpDecodeError(exc.reason) from exc


def _dec_datetime(text: str) -> dt.datetime | DateTime:
    match = _DT_RE.match(text)
    if not match:
        raise PsrpDecodeError(f"invalid DateTime {text[:40]!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    ticks = int((match.group(7) or "").ljust(7, "0"))
    zone = match.group(8)
    tzinfo: dt.tzinfo | None = None
    if zone == "Z":
        tzinfo = dt.UTC
    elif zone is not None:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59:
            raise PsrpDecodeError(f"invalid DateTime offset {zone!r}")
        offset = dt.timedelta(hours=hours, minutes=minutes)
        tzinfo = dt.UTC if not offset else dt.timezone(offset if zone[0] == "+" else -offset)
    try:
        value = dt.datetime(year, month, day, hour, minute, second, ticks // 10, tzinfo=tzinfo)
    except ValueError as exc:
        raise PsrpDecodeError(f"invalid DateTime {text[:40]!r}: {exc}") from exc
    return value if ticks % 10 == 0 else DateTime(value, ticks % 10)


def _dec_duration(text: str) -> Duration:
    match = _TS_RE.match(text)
    if not match or text.endswith(("P", "T")):
        raise PsrpDecodeError(f"invalid TimeSpan {text[:40]!r}")
    days, hours, minutes, seconds = (int(match.group(i) or 0) for i in range(2, 6))
    fraction = int((match.group(6) or "").ljust(7, "0"))
    ticks = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * TICKS_PER_SECOND + fraction
    if match.group(1):
        ticks = -ticks
    try:
        return Duration(ticks)
    except PsrpEncodeError as exc:
        raise PsrpDecodeError("TimeSpan out of range") from exc


def _dec_nil(text: str) -> None:
    if text:
        raise PsrpDecodeError("Nil must be empty")
    return None


_PRIMITIVE_DECODERS: dict[str, Callable[[str], Any]] = {
    "S": decode_string,
    "C": _dec_char,
    "B": _dec_bool,
    "DT": _dec_datetime,
    "TS": _dec_duration,
    "By": _dec_int(INT_TYPES[0]),
    "SB": _dec_int(INT_TYPES[1]),
    "U16": _dec_int(INT_TYPES[2]),
    "I16": _dec_int(INT_TYPES[3]),
    "U32": _dec_int(INT_TYPES[4]),
    "I32": _dec_int(None),
    "U64": _dec_int(INT_TYPES[6]),
    "I64": _dec_int(INT_TYPES[7]),
    "Sg": _dec_single,
    "Db": _parse_float,
    "D": _dec_decimal,
    "BA": _dec_base64,
    "G": _dec_guid,
    "URI": lambda t: Uri(decode_string(t)),
    "Nil": _dec_nil,
    "Version": _dec_version,
    "XD": lambda t: XmlDocument(decode_string(t)),
    "SBK": lambda t: ScriptBlock(decode_string(t)),
    "SS": lambda t: SecureString(_dec_base64(t)),
}
_STRIPPED: Final = frozenset(
    {"C", "B", "DT", "TS", "By", "SB", "U16", "I16", "U32", "I32", "U64", "I64", "Sg", "Db", "D", "BA", "G", "SS"}
)

_PARSER = HardenedParser(keep_comments=False, collect_ids=False)


def _clixml_error(reason: str) -> PsrpDecodeError:
    return PsrpDecodeError(f"CLIXML: {reason}")


def parse_xml(data: bytes | str, max_size: int) -> etree._Element:
    """Hardened parse of one XML document (no DTD, entities, network or huge trees) -> root element."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_size:
        raise PsrpDecodeError(f"CLIXML larger than {max_size} bytes")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return parse_hardened(raw, _PARSER, _clixml_error)


class _Decoder:
    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.objects: dict[str, Any] = {}
        self.type_names: dict[str, list[str]] = {}

    def _ref_id(self, element: etree._Element) -> str:
        ref = element.get("RefId")
        if ref is None:
            raise PsrpDecodeError(f"<{element.tag}> without RefId")
        if len(ref) > self.limits.max_ref_id_length or not ref:
            raise PsrpDecodeError(f"RefId {ref[:40]!r} too long or empty")
        return ref

    def value(self, element: etree._Element, depth: int) -> Any:
        if depth > self.limits.max_depth:
            raise PsrpDecodeError(f"CLIXML nested deeper than {self.limits.max_depth}")
        tag = element.tag
        if not isinstance(tag, str):
            raise PsrpDecodeError("unexpected XML node")
        decoder = _PRIMITIVE_DECODERS.get(tag)
        if decoder is not None:
            if len(element):
                raise PsrpDecodeError(f"primitive <{tag}> has child elements")
            text = element.text or ""
            if tag in _STRIPPED:
                text = text.strip()
            return decoder(text)
        if tag == "Obj":
            return self.obj(element, depth)
        if tag == "Ref":
            ref = self._ref_id(element)
            if ref not in self.objects:
                raise PsrpDecodeError(f"Ref to unknown RefId {ref!r}")
            return self.objects[ref]
        raise PsrpDecodeError(f"unknown CLIXML element <{tag[:40]}>")

    def obj(self, element: etree._Element, depth: int) -> PSObject:
        obj = PSObject()
        ref = element.get("RefId")
        if ref is not None:
            ref = self._ref_id(element)
            if ref in self.objects:
                raise PsrpDecodeError(f"duplicate Obj RefId {ref!r}")
            if len(self.objects) >= self.limits.max_objects:
                raise PsrpDecodeError(f"more than {self.limits.max_objects} objects")
            self.objects[ref] = obj
        seen_types = False
        for child in element:
            tag = child.tag
            if tag == "TN" or tag == "TNRef":
                if seen_types:
                    raise PsrpDecodeError("more than one TN/TNRef in an Obj")
                seen_types = True
                obj.type_names = self._tn(child)
            elif tag == "ToString":
                if obj.to_string is not None or len(child):
                    raise PsrpDecodeError("duplicate or structured ToString")
                obj.to_string = decode_string(child.text or "")
            elif tag == "Props" or tag == "MS":
                target = obj.adapted_properties if tag == "Props" else obj.extended_properties
                self._members(child, target, depth)
            elif isinstance(tag, str) and tag in CONTAINER_TAGS:
                if obj.container is not None or obj.value is not NO_VALUE:
                    raise PsrpDecodeError("an Obj carries more than one content element")
                obj.container = tag
                if tag == "DCT":
                    obj.entries = [self._entry(en, depth) for en in child]
                else:
                    obj.items = [self.value(item, depth + 1) for item in child]
            elif tag in _PRIMITIVE_DECODERS:
                if obj.container is not None or obj.value is not NO_VALUE:
                    raise PsrpDecodeError("an Obj carries more than one content element")
                obj.value = self.value(child, depth + 1)
            else:
                raise PsrpDecodeError(f"unexpected <{str(tag)[:40]}> inside Obj")
        return obj

    def _members(self, element: etree._Element, target: dict[str, Any], depth: int) -> None:
        """Fill ``target`` from ``<Props>`` / ``<MS>``. Every member needs its N attribute (2.2.5.3.1; the XSD of
        section 6 keys members by @N); a nested ``<MS N="..">`` in ``<MS>`` is a property set (2.2.5.2.9)."""
        tag = element.tag
        for prop in element:
            name = prop.get("N")
            if name is None:
                raise PsrpDecodeError(f"property in <{tag}> without N")
            key = decode_string(name)
            if key in target:
                raise PsrpDecodeError(f"duplicate property {key[:40]!r}")
            if prop.tag == "MS" and tag == "MS":
                if depth + 1 > self.limits.max_depth:
                    raise PsrpDecodeError(f"CLIXML nested deeper than {self.limits.max_depth}")
                members = PropertySet()
                self._members(prop, members, depth + 1)
                target[key] = members
            else:
                target[key] = self.value(prop, depth + 1)

    def _tn(self, element: etree._Element) -> list[str]:
        ref = self._ref_id(element)
        if element.tag == "TNRef":
            names = self.type_names.get(ref)
            if names is None:
                raise PsrpDecodeError(f"TNRef to unknown RefId {ref!r}")
            return list(names)
        if ref in self.type_names:
            raise PsrpDecodeError(f"duplicate TN RefId {ref!r}")
        if len(self.type_names) >= self.limits.max_objects:
            raise PsrpDecodeError("too many type name lists")
        names = []
        for item in element:
            if item.tag != "T" or len(item):
                raise PsrpDecodeError("TN may contain only <T> elements")
            names.append(decode_string(item.text or ""))
        self.type_names[ref] = names
        return list(names)

    def _entry(self, element: etree._Element, depth: int) -> tuple[Any, Any]:
        if element.tag != "En":
            raise PsrpDecodeError("DCT may contain only <En> elements")
        key: Any = NO_VALUE
        item: Any = NO_VALUE
        for child in element:
            name = child.get("N")
            if name == "Key" and key is NO_VALUE:
                key = self.value(child, depth + 1)
            elif name == "Value" and item is NO_VALUE:
                item = self.value(child, depth + 1)
            else:
                raise PsrpDecodeError("En must hold exactly one Key and one Value")
        if key is NO_VALUE or item is NO_VALUE:
            raise PsrpDecodeError("En must hold exactly one Key and one Value")
        return key, item


def deserialize_element(element: etree._Element, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode an already parsed CLIXML element (MS-PSRP 2.2.5)."""
    try:
        return _Decoder(limits).value(element, 0)
    except RecursionError as exc:  # pragma: no cover - guarded by max_depth
        raise PsrpDecodeError("CLIXML nested too deeply") from exc


def deserialize(data: bytes | str, *, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode one CLIXML value (MS-PSRP 2.2.5). A UTF-8 BOM is tolerated. Raises only :class:`PsrpDecodeError`."""
    return deserialize_element(parse_xml(data, limits.max_size), limits)

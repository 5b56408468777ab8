"""MS-WMIO encoder: :mod:`.model` objects -> bytes, in a canonical layout.

Canonical choices (all consistent with the MS-WMIO 3 sample encodings, which this encoder reproduces
octet for octet): strings compressed when every character is below U+0100 (2.2.78); qualifier names
that are well-known strings use DictionaryReferences (2.2.80); the PropertyLookupTable is sorted by
property name (2.2.21); ValueTable offsets follow declaration order; a class heap holds the class
name, the class qualifiers, then per property (lookup order) its name, PropertyInfo and qualifier
data, then the default values; an instance heap holds the class name then the values (lookup order).
NULL class defaults are filled with 0xFF octets, unused instance slots with zeros.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence

from .encstring import encode_string
from .errors import WmioEncodeError
from .heap import NO_REF, HeapBuilder
from .model import (
    SIGNATURE,
    CimType,
    Decoration,
    ObjectFlags,
    Qualifier,
    Value,
    WmiClass,
    WmiInstance,
    WmiMethod,
    WmiObject,
    WmiProperty,
    type_code,
    value_size,
)

MAX_DEPTH = 16

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_RANGES: dict[CimType, tuple[int, int, struct.Struct]] = {
    CimType.SINT8: (-(2**7), 2**7 - 1, struct.Struct("<b")),
    CimType.UINT8: (0, 2**8 - 1, struct.Struct("<B")),
    CimType.SINT16: (-(2**15), 2**15 - 1, struct.Struct("<h")),
    CimType.UINT16: (0, 2**16 - 1, struct.Struct("<H")),
    CimType.SINT32: (-(2**31), 2**31 - 1, struct.Struct("<i")),
    CimType.UINT32: (0, 2**32 - 1, struct.Struct("<I")),
    CimType.SINT64: (-(2**63), 2**63 - 1, struct.Struct("<q")),
    CimType.UINT64: (0, 2**64 - 1, struct.Struct("<Q")),
}
_REAL = {CimType.REAL32: struct.Struct("<f"), CimType.REAL64: struct.Struct("<d")}
_STRINGLIKE = frozenset((CimType.STRING, CimType.DATETIME, CimType.REFERENCE))
# DSP0004 datetime: yyyymmddHHMMSS.mmmmmmsUUU (timestamp) or ddddddddHHMMSS.mmmmmm:000 (interval);
# "*" marks insignificant digits.
_DATETIME = re.compile(r"[0-9*]{14}\.[0-9*]{6}([+-][0-9*]{3}|:000)\Z")


def _lookup_order(props: Sequence[WmiProperty]) -> list[int]:
    """Indices of ``props`` in PropertyLookupTable order (sorted by name, MS-WMIO 2.2.21)."""
    return sorted(range(len(props)), key=lambda i: (props[i].name.lower(), props[i].name))


def _check_scalar(cim_type: CimType, value: object) -> None:
    ok: bool
    if cim_type in _RANGES:
        lo, hi, _ = _RANGES[cim_type]
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    elif cim_type in _REAL:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and cim_type is CimType.REAL32 and math.isfinite(float(value)):  # type: ignore[arg-type]
            ok = abs(float(value)) <= 3.4028234663852886e38  # type: ignore[arg-type]
    elif cim_type is CimType.BOOLEAN:
        ok = isinstance(value, bool)
    elif cim_type is CimType.CHAR16:
        ok = isinstance(value, str) and len(value) == 1 and ord(value) <= 0xFFFF
    elif cim_type is CimType.DATETIME:
        ok = isinstance(value, str) and _DATETIME.match(value) is not None
    elif cim_type in _STRINGLIKE:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, (WmiClass, WmiInstance))
    if not ok:
        raise WmioEncodeError(f"value {value!r} is not a valid {cim_type.name}")


class _Encoder:
    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 0

    # -- values (2.2.71 EncodedValue) -------------------------------------------------------------
    def inline(self, cim_type: CimType, is_array: bool, value: Value, heap: HeapBuilder, fill: int) -> bytes:
        """The inline octets of a value; heap-resident parts are appended to ``heap``."""
        size = value_size(cim_type, is_array)
        if value is None:
            return bytes([fill]) * size
        if is_array:
            if not isinstance(value, list):
                raise WmioEncodeError(f"array property value must be a list, not {type(value).__name__}")
            return _U32.pack(self.array(cim_type, value, heap))
        _check_scalar(cim_type, value)
        if cim_type in _RANGES:
            return _RANGES[cim_type][2].pack(value)
        if cim_type in _REAL:
            return _REAL[cim_type].pack(value)
        if cim_type is CimType.BOOLEAN:
            return b"\xff\xff" if value else b"\x00\x00"
        if cim_type is CimType.CHAR16:
            return _U16.pack(ord(value))  # type: ignore[arg-type]
        if cim_type in _STRINGLIKE:
            return _U32.pack(heap.add_string(value))  # type: ignore[arg-type]
        return _U32.pack(heap.add(self.embedded(value)))  # type: ignore[arg-type]

    def array(self, cim_type: CimType, items: Sequence[object], heap: HeapBuilder) -> int:
        """An array in the heap: count then items; strings and objects through HeapRefs (2.2.71)."""
        for item in items:
            if item is None:
                raise WmioEncodeError("arrays cannot contain NULL elements")
            _check_scalar(cim_type, item)
        count = _U32.pack(len(items))
        if cim_type in _RANGES:
            fmt = _RANGES[cim_type][2].format[1:]
            return heap.add(count + struct.pack(f"<{len(items)}{fmt}", *items))
        if cim_type in _REAL:
            fmt = _REAL[cim_type].format[1:]
            return heap.add(count + struct.pack(f"<{len(items)}{fmt}", *items))
        if cim_type is CimType.BOOLEAN:
            return heap.add(count + b"".join(b"\xff\xff" if i else b"\x00\x00" for i in items))
        if cim_type is CimType.CHAR16:
            return heap.add(count + b"".join(_U16.pack(ord(i)) for i in items))  # type: ignore[arg-type]
        ref = heap.add(count)
        slots = heap.reserve(4 * len(items))
        refs = []
        for item in items:
            if cim_type is CimType.OBJECT:
                refs.append(heap.add(self.embedded(item)))  # type: ignore[arg-type]
            else:
                refs.append(heap.add_string(item))  # type: ignore[arg-type]
        heap.patch(slots, struct.pack(f"<{len(refs)}I", *refs))
        return ref

    def embedded(self, obj: WmiObject) -> bytes:
        """ObjectEncodingLength then ObjectBlock (used for embedded objects, 2.2.71)."""
        block = self.object_block(obj)
        return _U32.pack(len(block)) + block

    # -- qualifiers (2.2.59) ---------------------------------------------------------------------
    def qualifier_set(self, quals: Sequence[Qualifier], heap: HeapBuilder) -> bytes:
        parts = []
        for q in quals:
            if not 0 <= q.flavor <= 0xFF:
                raise WmioEncodeError(f"qualifier flavor {q.flavor} does not fit an octet")
            name = heap.string_ref(q.name, dictionary=True)
            head = struct.pack("<IBI", name, q.flavor, type_code(q.cim_type, q.is_array))
            parts.append(head + self.inline(q.cim_type, q.is_array, q.value, heap, 0xFF))
        body = b"".join(parts)
        return _U32.pack(len(body) + 4) + body

    @staticmethod
    def qualifier_set_size(quals: Sequence[Qualifier]) -> int:
        return 4 + sum(9 + value_size(q.cim_type, q.is_array) for q in quals)

    # -- class part (2.2.15) ---------------------------------------------------------------------
    def class_part(self, cls: WmiClass) -> bytes:
        heap = HeapBuilder()
        name_ref = heap.add_string(cls.name) if cls.name else NO_REF
        derivation = b"".join(
            (enc := encode_string(name)) + _U32.pack(len(enc)) for name in cls.derivation
        )
        derivation = _U32.pack(len(derivation) + 4) + derivation
        class_quals = self.qualifier_set(cls.qualifiers, heap)
        props = cls.properties
        count = len(props)
        offsets: list[int] = []
        vt_len = 0
        for prop in props:
            offsets.append(vt_len)
            vt_len += value_size(prop.cim_type, prop.is_array)
        nd = bytearray((count + 3) // 4)
        lookup = bytearray()
        order = _lookup_order(props)
        for i in order:
            prop = props[i]
            prop_name = heap.add_string(prop.name)
            info_ref = heap.reserve(14 + self.qualifier_set_size(prop.qualifiers))
            quals = self.qualifier_set(prop.qualifiers, heap)
            if not 0 <= prop.class_of_origin <= 0xFFFFFFFF:
                raise WmioEncodeError("ClassOfOrigin does not fit 32 bits")
            if count > 0xFFFF:
                raise WmioEncodeError("too many properties for a 16-bit DeclarationOrder")
            info = struct.pack(
                "<IHII", type_code(prop.cim_type, prop.is_array, prop.inherited), i, offsets[i],
                prop.class_of_origin,
            ) + quals
            heap.patch(info_ref, info)
            lookup += struct.pack("<II", prop_name, info_ref)
            flags = (1 if prop.default is None else 0) | (2 if prop.default_inherited else 0)
            nd[i >> 2] |= flags << ((i & 3) * 2)
        values = bytearray(vt_len)
        for i in order:
            prop = props[i]
            size = value_size(prop.cim_type, prop.is_array)
            values[offsets[i]:offsets[i] + size] = self.inline(prop.cim_type, prop.is_array, prop.default, heap, 0xFF)
        nd_len = len(nd) + vt_len
        body = (derivation + class_quals + _U32.pack(count) + bytes(lookup) + bytes(nd) + bytes(values)
                + heap.encode())
        return struct.pack("<IBII", 13 + len(body), 0, name_ref, nd_len) + body

    # -- methods part (2.2.38) -----------------------------------------------------------------
    def methods_part(self, methods: Sequence[WmiMethod]) -> bytes:
        if len(methods) > 0xFFFF:
            raise WmioEncodeError("too many methods for a 16-bit MethodCount")
        heap = HeapBuilder()
        descs = []
        for m in methods:
            name = heap.add_string(m.name)
            qual_ref = NO_REF
            if m.qualifiers:
                qual_ref = heap.reserve(self.qualifier_set_size(m.qualifiers))
                heap.patch(qual_ref, self.qualifier_set(m.qualifiers, heap))
            in_ref = self.signature(m.in_signature, heap)
            out_ref = self.signature(m.out_signature, heap)
            if not (0 <= m.flags <= 0xFF and 0 <= m.origin <= 0xFFFFFFFF):
                raise WmioEncodeError("method flags/origin out of range")
            descs.append(struct.pack("<IB3sIIII", name, m.flags, b"\x00\x00\x00", m.origin, qual_ref, in_ref, out_ref))
        body = b"".join(descs) + heap.encode()
        return struct.pack("<IHH", 8 + len(body), len(methods), 0) + body

    def signature(self, sig: WmiClass | None, heap: HeapBuilder) -> int:
        """MethodSignatureBlock (2.2.70) in the method heap; absent signatures are 0xFFFFFFFF."""
        if sig is None:
            return NO_REF
        if not isinstance(sig, WmiClass):
            raise WmioEncodeError("a method signature must be a WmiClass")
        return heap.add(self.embedded(sig))

    # -- object block (2.2.5) ----------------------------------------------------------------------
    def object_block(self, obj: WmiObject) -> bytes:
        if self.depth >= MAX_DEPTH:
            raise WmioEncodeError("objects nested too deeply")
        self.depth += 1
        try:
            is_class = isinstance(obj, WmiClass)
            if not is_class and not isinstance(obj, WmiInstance):
                raise WmioEncodeError(f"not a WmiClass or WmiInstance: {type(obj).__name__}")
            extra = obj.extra_flags
            if extra & (ObjectFlags.CLASS | ObjectFlags.INSTANCE | ObjectFlags.DECORATED) or not 0 <= extra <= 0xFF:
                raise WmioEncodeError("extra_flags may not carry the CLASS, INSTANCE or DECORATED bits")
            flags = (ObjectFlags.CLASS if is_class else ObjectFlags.INSTANCE) | extra
            out = bytearray()
            if obj.decoration is not None:
                flags |= ObjectFlags.DECORATED
            out.append(int(flags))
            if obj.decoration is not None:
                out += self.decoration(obj.decoration)
            if isinstance(obj, WmiClass):
                parent = obj.parent if obj.parent is not None else WmiClass("")
                out += self.class_part(parent) + self.methods_part(parent.methods)
                out += self.class_part(obj) + self.methods_part(obj.methods)
            else:
                out += self.instance(obj)
            return bytes(out)
        finally:
            self.depth -= 1

    @staticmethod
    def decoration(dec: Decoration) -> bytes:
        return encode_string(dec.server) + encode_string(dec.namespace)

    def instance(self, inst: WmiInstance) -> bytes:
        """InstanceType (2.2.53): the class part, then instance data with its own heap."""
        cls = inst.class_
        props = cls.properties
        known = {p.name for p in props}
        for name in inst.values:
            if name not in known:
                raise WmioEncodeError(f"instance value for unknown property {name!r}")
        heap = HeapBuilder()
        name_ref = heap.add_string(cls.name)
        offsets: list[int] = []
        vt_len = 0
        for prop in props:
            offsets.append(vt_len)
            vt_len += value_size(prop.cim_type, prop.is_array)
        nd = bytearray((len(props) + 3) // 4)
        values = bytearray(vt_len)
        order = _lookup_order(props)
        for i in order:
            prop = props[i]
            if prop.name not in inst.values:
                flags = 2 | (1 if prop.default is None else 0)
            else:
                value = inst.values[prop.name]
                flags = 1 if value is None else 0
                if value is not None:
                    size = value_size(prop.cim_type, prop.is_array)
                    values[offsets[i]:offsets[i] + size] = self.inline(prop.cim_type, prop.is_array, value, heap, 0)
            nd[i >> 2] |= flags << ((i & 3) * 2)
        quals = self.qualifier_set(inst.qualifiers, heap)
        if inst.property_qualifiers is None:
            prop_quals = b"\x01"
        else:
            unknown = set(inst.property_qualifiers) - known
            if unknown:
                raise WmioEncodeError(f"property qualifiers for unknown properties {sorted(unknown)}")
            prop_quals = b"\x02" + b"".join(
                self.qualifier_set(inst.property_qualifiers.get(props[i].name, []), heap) for i in order
            )
        body = bytes(nd) + bytes(values) + quals + prop_quals + heap.encode()
        return self.class_part(cls) + struct.pack("<IBI", 9 + len(body), 0, name_ref) + body


def encode_object_block(obj: WmiObject) -> bytes:
    """Encode ``obj`` as an ObjectBlock (MS-WMIO 2.2.5; EncodingUnitObjectBlock, 2.2.2)."""
    try:
        return _Encoder().object_block(obj)
    except (struct.error, OverflowError, TypeError, ValueError) as exc:
        raise WmioEncodeError(f"cannot encode: {exc}") from exc


def encode_encoding_unit(obj: WmiObject) -> bytes:
    """Encode ``obj`` as an EncodingUnit (MS-WMIO 2.2.1): Signature, ObjectEncodingLength, ObjectBlock."""
    block = encode_object_block(obj)
    return struct.pack("<II", SIGNATURE, len(block)) + block

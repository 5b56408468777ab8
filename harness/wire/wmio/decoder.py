"""MS-WMIO decoder: bytes -> :mod:`.model` objects.

Every length, count and offset is checked against the enclosing block before use; embedded objects
are limited in nesting depth and the total decoding work is bounded by a budget proportional to the
input size, so hostile input can neither loop nor allocate without bound. The only exception raised is
:class:`~.errors.WmioDecodeError` with the absolute offset of the problem.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import cast

from .encstring import decode_string
from .errors import WmioDecodeError
from .heap import DICTIONARY, DICTIONARY_FLAG, HEAP_LENGTH_FLAG, NO_REF
from .model import (
    CIM_ARRAY_FLAG,
    CIM_INHERITED_FLAG,
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
    value_size,
)

DEFAULT_MAX_DEPTH = 16

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")
_CLASS_HEADER = struct.Struct("<IBII")  # 2.2.16 EncodingLength ReservedOctet ClassNameRef NdTableValueTableLength
_QUALIFIER_HEAD = struct.Struct("<IBI")  # 2.2.60 QualifierName QualifierFlavor QualifierType
_PROPERTY_INFO = struct.Struct("<IHII")  # 2.2.30 PropertyType DeclarationOrder ValueTableOffset ClassOfOrigin
_METHODS_HEAD = struct.Struct("<IHH")  # 2.2.38 EncodingLength MethodCount MethodCountPadding
_METHOD_DESC = struct.Struct("<IB3sIIII")  # 2.2.41
_INSTANCE_HEAD = struct.Struct("<IBI")  # 2.2.53 EncodingLength InstanceFlags InstanceClassName

_SCALAR: dict[int, struct.Struct] = {
    CimType.SINT8: struct.Struct("<b"), CimType.UINT8: struct.Struct("<B"),
    CimType.SINT16: struct.Struct("<h"), CimType.UINT16: struct.Struct("<H"),
    CimType.SINT32: struct.Struct("<i"), CimType.UINT32: struct.Struct("<I"),
    CimType.SINT64: struct.Struct("<q"), CimType.UINT64: struct.Struct("<Q"),
    CimType.REAL32: struct.Struct("<f"), CimType.REAL64: struct.Struct("<d"),
}
_STRINGLIKE = frozenset((CimType.STRING, CimType.DATETIME, CimType.REFERENCE))
_CIMTYPES: dict[int, CimType] = {int(t): t for t in CimType}


class _Heap:
    """A heap's octets as [start, end) of the buffer (MS-WMIO 2.2.66)."""

    __slots__ = ("end", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end


class _Decoder:
    __slots__ = ("budget", "buf", "max_depth")

    def __init__(self, buf: bytes, max_depth: int) -> None:
        self.buf = buf
        self.max_depth = max_depth
        # Work budget: units of decoded items; bounds amplification through shared heap references.
        self.budget = 64 * len(buf) + 4096

    # -- primitives ---------------------------------------------------------------------------
    def charge(self, units: int, offset: int) -> None:
        self.budget -= units
        if self.budget < 0:
            raise WmioDecodeError("decoding work limit exceeded (amplifying references)", offset)

    def need(self, offset: int, size: int, end: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > end:
            raise WmioDecodeError(f"truncated {what}: needs {size} octets", offset)

    def u32(self, offset: int, end: int, what: str) -> int:
        self.need(offset, 4, end, what)
        return cast(int, _U32.unpack_from(self.buf, offset)[0])

    def heap(self, offset: int, end: int, what: str) -> tuple[_Heap, int]:
        """Parse a Heap (2.2.66) at ``offset``; return it and the offset after it."""
        raw = self.u32(offset, end, what + " HeapLength")
        if not raw & HEAP_LENGTH_FLAG:
            raise WmioDecodeError(f"{what} HeapLength lacks its most significant bit", offset)
        length = raw & 0x7FFFFFFF
        self.need(offset + 4, length, end, what)
        return _Heap(offset + 4, offset + 4 + length), offset + 4 + length

    def heap_pos(self, heap: _Heap, ref: int, at: int) -> int:
        if ref >= heap.end - heap.start:
            raise WmioDecodeError(f"HeapRef 0x{ref:x} outside the heap", at)
        return heap.start + ref

    def heap_string(self, heap: _Heap, ref: int, at: int) -> str:
        """Resolve a HeapStringRef (2.2.68), including DictionaryReferences (2.2.80)."""
        if ref & DICTIONARY_FLAG:
            index = ref & 0x7FFFFFFF
            if index >= len(DICTIONARY):
                raise WmioDecodeError(f"unknown DictionaryReference {index}", at)
            return DICTIONARY[index]
        text, _ = decode_string(self.buf, self.heap_pos(heap, ref, at), heap.end)
        self.charge(1 + len(text) // 16, at)
        return text

    # -- values (2.2.71 EncodedValue) -------------------------------------------------------------
    def cim_type(self, code: int, at: int) -> tuple[CimType, bool]:
        base = code & ~(CIM_ARRAY_FLAG | CIM_INHERITED_FLAG)
        cim_type = _CIMTYPES.get(base)
        if cim_type is None:
            raise WmioDecodeError(f"unknown CimType 0x{code:x}", at)
        return cim_type, bool(code & CIM_ARRAY_FLAG)

    def inline_value(self, cim_type: CimType, is_array: bool, offset: int, heap: _Heap, depth: int) -> Value:
        """Decode the EncodedValue whose inline part is at ``offset`` (bounds checked by the caller)."""
        buf = self.buf
        if is_array:
            ref = cast(int, _U32.unpack_from(buf, offset)[0])
            if ref == NO_REF:
                return None
            return cast(Value, self.array(cim_type, self.heap_pos(heap, ref, offset), heap, depth))
        scalar = _SCALAR.get(cim_type)
        if scalar is not None:
            return cast("int | float", scalar.unpack_from(buf, offset)[0])
        if cim_type is CimType.BOOLEAN:
            return bool(_U16.unpack_from(buf, offset)[0])
        if cim_type is CimType.CHAR16:
            return chr(_U16.unpack_from(buf, offset)[0])
        ref = cast(int, _U32.unpack_from(buf, offset)[0])
        if ref == NO_REF:
            return None
        pos = self.heap_pos(heap, ref, offset)
        if cim_type in _STRINGLIKE:
            text, _ = decode_string(buf, pos, heap.end)
            self.charge(1 + len(text) // 16, offset)
            return text
        return self.embedded(pos, heap.end, depth)

    def array(self, cim_type: CimType, pos: int, heap: _Heap, depth: int) -> list[Value]:
        """An array in the heap: a UINT32 count then the items (2.2.71); strings/objects by HeapRef."""
        count = self.u32(pos, heap.end, "array count")
        pos += 4
        size = 4 if cim_type in _STRINGLIKE or cim_type is CimType.OBJECT else value_size(cim_type, False)
        self.need(pos, count * size, heap.end, "array items")
        self.charge(count, pos)
        buf = self.buf
        scalar = _SCALAR.get(cim_type)
        if scalar is not None:
            return list(v[0] for v in scalar.iter_unpack(buf[pos:pos + count * size]))
        if cim_type is CimType.BOOLEAN:
            return [bool(v[0]) for v in _U16.iter_unpack(buf[pos:pos + count * 2])]
        if cim_type is CimType.CHAR16:
            return [chr(v[0]) for v in _U16.iter_unpack(buf[pos:pos + count * 2])]
        items: list[Value] = []
        for i in range(count):
            at = pos + 4 * i
            ref = cast(int, _U32.unpack_from(buf, at)[0])
            item_pos = self.heap_pos(heap, ref, at)
            if cim_type is CimType.OBJECT:
                items.append(self.embedded(item_pos, heap.end, depth))
            else:
                text, _ = decode_string(buf, item_pos, heap.end)
                self.charge(1 + len(text) // 16, at)
                items.append(text)
        return items

    def embedded(self, pos: int, end: int, depth: int) -> WmiObject:
        """An embedded object: ObjectEncodingLength (2.2.4) then ObjectBlock (2.2.5)."""
        if depth >= self.max_depth:
            raise WmioDecodeError("embedded objects nested too deeply", pos)
        length = self.u32(pos, end, "embedded ObjectEncodingLength")
        self.need(pos + 4, length, end, "embedded ObjectBlock")
        self.charge(64, pos)
        return self.object_block(pos + 4, pos + 4 + length, depth + 1)

    # -- qualifiers (2.2.59 QualifierSet) -------------------------------------------------------
    def qualifier_set(self, offset: int, end: int, heap: _Heap | None, depth: int) -> tuple[list[Qualifier], int]:
        """A QualifierSet at ``offset``; ``heap`` None means the heap is not known yet (validate only)."""
        length = self.u32(offset, end, "QualifierSet EncodingLength")
        if length < 4:
            raise WmioDecodeError("QualifierSet EncodingLength below 4", offset)
        set_end = offset + length
        self.need(offset, length, end, "QualifierSet")
        pos = offset + 4
        quals: list[Qualifier] = []
        while pos < set_end:
            self.need(pos, 9, set_end, "Qualifier")
            name_ref, flavor, type_code = _QUALIFIER_HEAD.unpack_from(self.buf, pos)
            cim_type, is_array = self.cim_type(type_code, pos + 5)
            value_at = pos + 9
            size = value_size(cim_type, is_array)
            self.need(value_at, size, set_end, "QualifierValue")
            self.charge(1, pos)
            if heap is not None:
                name = self.heap_string(heap, name_ref, pos)
                value = self.inline_value(cim_type, is_array, value_at, heap, depth)
                quals.append(Qualifier(name, cim_type, value, is_array, flavor))
            pos = value_at + size
        return quals, set_end

    # -- class part (2.2.15) ---------------------------------------------------------------------
    def class_part(self, offset: int, end: int, depth: int) -> tuple[WmiClass, int, int, list[tuple[int, int]]]:
        """Return (class, offset after the ClassPart, NdTableValueTableLength, and the
        (DeclarationOrder, ValueTableOffset) of each property in declaration order)."""
        buf = self.buf
        self.need(offset, _CLASS_HEADER.size, end, "ClassHeader")
        length, _reserved, name_ref, nd_len = _CLASS_HEADER.unpack_from(buf, offset)
        if length < _CLASS_HEADER.size:
            raise WmioDecodeError("ClassHeader EncodingLength too small", offset)
        self.need(offset, length, end, "ClassPart")
        part_end = offset + length
        # DerivationList (2.2.17)
        dl_at = offset + _CLASS_HEADER.size
        dl_len = self.u32(dl_at, part_end, "DerivationList EncodingLength")
        if dl_len < 4:
            raise WmioDecodeError("DerivationList EncodingLength below 4", dl_at)
        self.need(dl_at, dl_len, part_end, "DerivationList")
        dl_end = dl_at + dl_len
        derivation: list[str] = []
        pos = dl_at + 4
        while pos < dl_end:
            name, after = decode_string(buf, pos, dl_end)
            entry_len = self.u32(after, dl_end, "ClassNameEncoding length")
            if entry_len != after - pos:
                raise WmioDecodeError("ClassNameEncoding length does not match its string", after)
            self.charge(1 + len(name) // 16, pos)
            derivation.append(name)
            pos = after + 4
        # ClassQualifierSet (2.2.20): located now, decoded once the heap is known.
        qs_at = dl_end
        _, plt_at = self.qualifier_set(qs_at, part_end, None, depth)
        # PropertyLookupTable (2.2.21)
        count = self.u32(plt_at, part_end, "PropertyCount")
        self.need(plt_at + 4, count * 8, part_end, "PropertyLookupTable")
        self.charge(count, plt_at)
        nd_at = plt_at + 4 + count * 8
        nd_bytes = (count + 3) // 4
        if nd_len < nd_bytes:
            raise WmioDecodeError("NdTableValueTableLength smaller than the NdTable", offset + 9)
        self.need(nd_at, nd_len, part_end, "NdTable and ValueTable")
        heap, _after_heap = self.heap(nd_at + nd_len, part_end, "ClassHeap")
        name = "" if name_ref == NO_REF else self.heap_string(heap, name_ref, offset + 5)
        qualifiers, _ = self.qualifier_set(qs_at, part_end, heap, depth)
        vt_at = nd_at + nd_bytes
        vt_end = nd_at + nd_len
        decoded: list[tuple[int, int, WmiProperty]] = []
        for i in range(count):
            at = plt_at + 4 + 8 * i
            name_r, info_r = _U32x2.unpack_from(buf, at)
            prop_name = self.heap_string(heap, name_r, at)
            info_at = self.heap_pos(heap, info_r, at + 4)
            self.need(info_at, _PROPERTY_INFO.size, heap.end, "PropertyInfo")
            ptype, order, vt_off, origin = _PROPERTY_INFO.unpack_from(buf, info_at)
            cim_type, is_array = self.cim_type(ptype, info_at)
            pquals, _ = self.qualifier_set(info_at + _PROPERTY_INFO.size, heap.end, heap, depth)
            nd = (buf[nd_at + (order >> 2)] >> ((order & 3) * 2)) & 3 if order < count else -1
            if nd < 0:
                raise WmioDecodeError(f"DeclarationOrder {order} out of range", info_at + 4)
            size = value_size(cim_type, is_array)
            if vt_off > vt_end - vt_at - size:
                raise WmioDecodeError("ValueTableOffset outside the ValueTable", info_at + 6)
            default: Value = None
            if not nd & 1:
                default = self.inline_value(cim_type, is_array, vt_at + vt_off, heap, depth)
            prop = WmiProperty(
                prop_name, cim_type, is_array, pquals, default, bool(ptype & CIM_INHERITED_FLAG),
                origin, bool(nd & 2),
            )
            decoded.append((order, vt_off, prop))
        decoded.sort(key=lambda item: item[0])
        cls = WmiClass(name, derivation, qualifiers, [p for _, _, p in decoded])
        return cls, part_end, nd_len, [(o, v) for o, v, _ in decoded]

    # -- methods part (2.2.38) -----------------------------------------------------------------
    def methods_part(self, offset: int, end: int, depth: int) -> tuple[list[WmiMethod], int]:
        buf = self.buf
        self.need(offset, _METHODS_HEAD.size, end, "MethodsPart")
        length, count, _pad = _METHODS_HEAD.unpack_from(buf, offset)
        self.need(offset, length, end, "MethodsPart")
        part_end = offset + length
        desc_at = offset + _METHODS_HEAD.size
        self.need(desc_at, count * _METHOD_DESC.size, part_end, "MethodDescription")
        self.charge(count, desc_at)
        heap, _ = self.heap(desc_at + count * _METHOD_DESC.size, part_end, "MethodHeap")
        methods: list[WmiMethod] = []
        for i in range(count):
            at = desc_at + i * _METHOD_DESC.size
            name_r, flags, _padding, origin, qual_r, in_r, out_r = _METHOD_DESC.unpack_from(buf, at)
            name = self.heap_string(heap, name_r, at)
            quals: list[Qualifier] = []
            if qual_r != NO_REF:
                quals, _ = self.qualifier_set(self.heap_pos(heap, qual_r, at + 12), heap.end, heap, depth)
            methods.append(WmiMethod(
                name, quals, self.signature(heap, in_r, at + 16, depth),
                self.signature(heap, out_r, at + 20, depth), flags, origin,
            ))
        return methods, part_end

    def signature(self, heap: _Heap, ref: int, at: int, depth: int) -> WmiClass | None:
        """MethodSignatureBlock (2.2.70): EncodingLength then a class ObjectBlock (absent if 0)."""
        if ref == NO_REF:
            return None
        pos = self.heap_pos(heap, ref, at)
        length = self.u32(pos, heap.end, "MethodSignatureBlock EncodingLength")
        if length == 0:
            return None
        if depth >= self.max_depth:
            raise WmioDecodeError("method signatures nested too deeply", pos)
        self.need(pos + 4, length, heap.end, "MethodSignatureBlock")
        obj = self.object_block(pos + 4, pos + 4 + length, depth + 1)
        if not isinstance(obj, WmiClass):
            raise WmioDecodeError("a method signature must be a class", pos + 4)
        return obj

    def class_and_methods(self, offset: int, end: int, depth: int) -> tuple[WmiClass, int]:
        """ClassAndMethodsPart (2.2.14)."""
        cls, pos, _, _ = self.class_part(offset, end, depth)
        cls.methods, pos = self.methods_part(pos, end, depth)
        return cls, pos

    # -- object block (2.2.5) --------------------------------------------------------------------
    def object_block(self, offset: int, end: int, depth: int) -> WmiObject:
        buf = self.buf
        self.need(offset, 1, end, "ObjectFlags")
        flags = buf[offset]
        is_class = bool(flags & ObjectFlags.CLASS)
        if is_class == bool(flags & ObjectFlags.INSTANCE):
            raise WmioDecodeError("ObjectFlags must set exactly one of CLASS (0x01) and INSTANCE (0x02)", offset)
        extra = int(flags & ~(ObjectFlags.CLASS | ObjectFlags.INSTANCE | ObjectFlags.DECORATED))
        pos = offset + 1
        decoration: Decoration | None = None
        if flags & ObjectFlags.DECORATED:
            server, pos = decode_string(buf, pos, end)
            namespace, pos = decode_string(buf, pos, end)
            decoration = Decoration(server, namespace)
        if is_class:
            parent, pos = self.class_and_methods(pos, end, depth)
            cls, pos = self.class_and_methods(pos, end, depth)
            empty = (not parent.name and not parent.properties and not parent.qualifiers
                     and not parent.methods and not parent.derivation)
            cls.parent = None if empty else parent
            cls.decoration = decoration
            cls.extra_flags = extra
            return cls
        return self.instance(pos, end, depth, decoration, extra)

    def instance(self, offset: int, end: int, depth: int, decoration: Decoration | None, extra: int) -> WmiInstance:
        """InstanceType (2.2.53): CurrentClass (a ClassPart, as in the MS-WMIO 3 example) then the
        instance data."""
        buf = self.buf
        cls, pos, nd_len, offsets = self.class_part(offset, end, depth)
        self.need(pos, _INSTANCE_HEAD.size, end, "InstanceType")
        length, _flags, name_ref = _INSTANCE_HEAD.unpack_from(buf, pos)
        self.need(pos, length, end, "InstanceType")
        inst_end = pos + length
        nd_at = pos + _INSTANCE_HEAD.size
        self.need(nd_at, nd_len, inst_end, "instance NdTable and InstanceData")
        qs_at = nd_at + nd_len
        _, flag_at = self.qualifier_set(qs_at, inst_end, None, depth)
        self.need(flag_at, 1, inst_end, "InstPropQualSetFlag")
        flag = buf[flag_at]
        pos = flag_at + 1
        prop_sets: list[int] = []
        if flag == 2:
            for _ in cls.properties:
                prop_sets.append(pos)
                _, pos = self.qualifier_set(pos, inst_end, None, depth)
        elif flag != 1:
            raise WmioDecodeError(f"invalid InstPropQualSetFlag {flag}", flag_at)
        heap, _ = self.heap(pos, inst_end, "InstanceHeap")
        class_name = self.heap_string(heap, name_ref, nd_at - 4)
        if class_name != cls.name:
            raise WmioDecodeError("InstanceClassName differs from the class name", nd_at - 4)
        nd_bytes = (len(cls.properties) + 3) // 4
        vt_at = nd_at + nd_bytes
        values: dict[str, Value] = {}
        for prop, (order, vt_off) in zip(cls.properties, offsets, strict=True):
            nd = (buf[nd_at + (order >> 2)] >> ((order & 3) * 2)) & 3
            if nd & 2:
                continue
            if nd & 1:
                values[prop.name] = None
            else:
                values[prop.name] = self.inline_value(prop.cim_type, prop.is_array, vt_at + vt_off, heap, depth)
        qualifiers, _ = self.qualifier_set(qs_at, inst_end, heap, depth)
        prop_quals: dict[str, list[Qualifier]] | None = None
        if flag == 2:
            lookup = sorted(cls.properties, key=_lookup_key)
            prop_quals = {}
            for prop, at in zip(lookup, prop_sets, strict=True):
                prop_quals[prop.name], _ = self.qualifier_set(at, inst_end, heap, depth)
        return WmiInstance(cls, values, qualifiers, prop_quals, decoration, extra)


def _lookup_key(prop: WmiProperty) -> tuple[str, str]:
    return (prop.name.lower(), prop.name)


def decode_object_block(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> WmiObject:
    """Decode an ObjectBlock (MS-WMIO 2.2.5) filling ``data`` (EncodingUnitObjectBlock, 2.2.2)."""
    buf = bytes(data)
    return _run(buf, max_depth, lambda d: d.object_block(0, len(buf), 0))


def decode_encoding_unit(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH,
                         allow_short: bool = False) -> WmiObject:
    """Decode an EncodingUnit (MS-WMIO 2.2.1): Signature 0x12345678, ObjectEncodingLength, ObjectBlock.

    Octets after the ObjectBlock inside ObjectEncodingLength are ignored (the MS-WMIO 3 examples
    declare a length larger than the encoding). ``allow_short`` also tolerates an ObjectEncodingLength
    larger than the available data, as in the MS-WMIO 3.1 class sample.
    """
    buf = bytes(data)

    def run(dec: _Decoder) -> WmiObject:
        if len(buf) < 8:
            raise WmioDecodeError("truncated EncodingUnit header", 0)
        signature, length = _U32x2.unpack_from(buf, 0)
        if signature != SIGNATURE:
            raise WmioDecodeError(f"bad EncodingUnit Signature 0x{signature:08x}", 0)
        if 8 + length > len(buf):
            if not allow_short:
                raise WmioDecodeError("ObjectEncodingLength beyond the data", 4)
            length = len(buf) - 8
        return dec.object_block(8, 8 + length, 0)

    return _run(buf, max_depth, run)


def _run(buf: bytes, max_depth: int, fn: Callable[[_Decoder], WmiObject]) -> WmiObject:
    dec = _Decoder(buf, max_depth)
    try:
        return fn(dec)
    except WmioDecodeError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        raise WmioDecodeError(f"malformed encoding: {exc.__class__.__name__}: {exc}", 0) from exc

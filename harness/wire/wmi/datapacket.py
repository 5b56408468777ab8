"""Sans-IO codec of the MS-WMI ObjectArray ("WBEMDATA" data packet), MS-WMI 2.2.14.

The ObjectArray carries the CIM objects of IWbemWCOSmartEnum::Next (MS-WMI 3.1.4.7.1) and of the
optimized IWbemObjectSink::Indicate (3.1.4.2.1). Layout (all little-endian, no alignment):

==========  ===================  ==============================================================
offset      field                value (MS-WMI 2.2.14)
==========  ===================  ==============================================================
0           dwByteOrdering       0 (little-endian)
4           abSignature          ``WBEMDATA``
12          dwSizeOfHeader1      0x1A: the fields from dwByteOrdering to bPacketType
16          dwDataSize1          length of the data from dwSizeOfHeader2 on
20          dwFlags              0
24          bVersion             1
25          bPacketType          "dependent on the call context" (see :class:`PacketType`)
26          dwSizeOfHeader2      8 (dwSizeOfHeader2 and dwDataSize2)
30          dwDataSize2          length of the data after this field
34          dwSizeOfHeader3      12 (dwSizeOfHeader3, dwDataSize3, dwNumObjects)
38          dwDataSize3          length of wbemObjects
42          dwNumObjects         number of objects
46          wbemObjects          dwNumObjects WBEM_DATAPACKET_OBJECTs
==========  ===================  ==============================================================

Each WBEM_DATAPACKET_OBJECT (2.2.14.1) is dwSizeOfHeader (9), dwSizeOfData, bObjectType and the
object: WBEMOBJECT_CLASS (2.2.14.2: header 8, size, an ObjectBlock of the class, MS-WMIO 2.2.2),
WBEMOBJECT_INSTANCE (2.2.14.3: header 0x18, size, classID, an ObjectBlock of the instance) or
WBEMOBJECT_INSTANCE_NOCLASS (2.2.14.4: header 0x18, size, classID, an EncodingUnitInstanceNoClass,
MS-WMIO 2.2.3: the instance without its CurrentClass block).

Class caching (MS-WMI 2.2.14, 2.2.14.4): the sender identifies each CIM class by a GUID it generates;
the first instance of a class travels as WBEMOBJECT_INSTANCE (with CurrentClass), every further
instance of it as WBEMOBJECT_INSTANCE_NOCLASS naming the same classID, and the receiver rebuilds it
with the CurrentClass of that earlier WBEMOBJECT_INSTANCE. A classID the receiver has not seen MUST
be treated as an error. :class:`ClassIdMap` is the sender's side, :class:`ClassCache` the receiver's;
both outlive one packet so the caller decides their scope (the mock and the client keep them for all
the Next calls of one proxyGUID; see :mod:`harness.targets.mock.wmi_server`).

:func:`decode_object_array` raises only :class:`DataPacketError` (a :class:`WmioDecodeError` whose
``offset`` is absolute in the packet); every size is checked against the data before anything is
allocated, and the object count and class cache are bounded. :func:`encode_object_array` raises
only :class:`~harness.wire.wmio.WmioEncodeError`.
"""

from __future__ import annotations

import enum
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.wire.wmio import (
    ObjectFlags,
    WmiClass,
    WmiInstance,
    WmiObject,
    WmioDecodeError,
    WmioEncodeError,
    decode_object_block,
    encode_object_block,
)
from harness.wire.wmio.encstring import decode_string

SIGNATURE = b"WBEMDATA"
BYTE_ORDERING_LITTLE_ENDIAN = 0
VERSION = 1
SIZE_OF_HEADER1 = 0x1A
SIZE_OF_HEADER2 = 8
SIZE_OF_HEADER3 = 12
#: Offset of wbemObjects: the three headers (26 + 8 + 12).
OBJECTS_OFFSET = SIZE_OF_HEADER1 + SIZE_OF_HEADER2 + SIZE_OF_HEADER3
OBJECT_HEADER_SIZE = 9          # WBEM_DATAPACKET_OBJECT dwSizeOfHeader (2.2.14.1)
CLASS_HEADER_SIZE = 8           # WBEMOBJECT_CLASS dwSizeOfHeader (2.2.14.2)
INSTANCE_HEADER_SIZE = 0x18     # WBEMOBJECT_INSTANCE / _NOCLASS dwSizeOfHeader (2.2.14.3, 2.2.14.4)

#: Bounds of one packet and of one receiver's class cache (the mock's own limits, not the spec's).
MAX_OBJECTS = 100_000
MAX_CACHED_CLASSES = 4096
MAX_CACHED_BYTES = 16 * 1024 * 1024

_HEAD = struct.Struct("<I8sIIIBBIIIII")     # every field up to and including dwNumObjects
_OBJ_HEAD = struct.Struct("<IIB")
_PART_HEAD = struct.Struct("<II")
_U32 = struct.Struct("<I")


class PacketType(enum.IntEnum):
    """bPacketType. MS-WMI 2.2.14 only says the value "is dependent on the call context"; these are
    the values Windows uses (observed Windows behaviour: aiowmi, which interoperates with Windows,
    requires 1 in IWbemWCOSmartEnum::Next responses)."""

    OBJECTSINK_INDICATE = 0
    SMARTENUM_NEXT = 1


class ObjectType(enum.IntEnum):
    """bObjectType of WBEM_DATAPACKET_OBJECT (MS-WMI 2.2.14.1)."""

    CLASS = 1               # WBEMOBJECT_CLASS
    INSTANCE = 2            # WBEMOBJECT_INSTANCE
    INSTANCE_NOCLASS = 3    # WBEMOBJECT_INSTANCE_NOCLASS


class DataPacketError(WmioDecodeError):
    """A malformed ObjectArray; ``offset`` is the absolute offset in the packet."""


@dataclass(frozen=True)
class PacketObject:
    """One decoded WBEM_DATAPACKET_OBJECT: its type, classID (instances) and offset in the packet."""

    kind: ObjectType
    obj: WmiObject
    class_id: uuid.UUID | None
    offset: int


@dataclass(frozen=True)
class ObjectArray:
    """A decoded ObjectArray (MS-WMI 2.2.14)."""

    packet_type: int
    entries: tuple[PacketObject, ...]

    @property
    def objects(self) -> list[WmiObject]:
        return [e.obj for e in self.entries]


def current_class_span(block: bytes, at: int = 0, end: int | None = None) -> tuple[int, int]:
    """(start, end) of the CurrentClass block of the instance ObjectBlock at ``at`` in ``block``.

    ObjectBlock = ObjectFlags [Decoration] InstanceType (MS-WMIO 2.2.5); Decoration is two
    Encoded-Strings (2.2.7, 2.2.78); InstanceType opens with CurrentClass, a ClassPart (2.2.53,
    2.2.15) whose ClassHeader starts with EncodingLength, the length of the whole ClassPart (2.2.16).
    """
    stop = len(block) if end is None else end
    if at >= stop:
        raise WmioDecodeError("empty ObjectBlock", at)
    flags = block[at]
    pos = at + 1
    if flags & ObjectFlags.DECORATED:
        _, pos = decode_string(block, pos, stop)
        _, pos = decode_string(block, pos, stop)
    if pos + 4 > stop:
        raise WmioDecodeError("ObjectBlock too short for the CurrentClass EncodingLength", pos)
    length = _U32.unpack_from(block, pos)[0]
    if length < 4 or pos + length > stop:
        raise WmioDecodeError(f"CurrentClass EncodingLength {length} beyond the ObjectBlock", pos)
    return pos, pos + length


# ------------------------------------------------------------------------------------ sender


@dataclass
class ClassIdMap:
    """The sender's classIDs (MS-WMI 2.2.14): one GUID per distinct CurrentClass encoding, generated
    when the class is first sent. ``new_id`` defaults to random GUIDs, as the spec requires."""

    new_id: Callable[[], uuid.UUID] = uuid.uuid4
    max_classes: int = MAX_CACHED_CLASSES
    ids: dict[bytes, uuid.UUID] = field(default_factory=dict)

    def lookup(self, current_class: bytes) -> tuple[uuid.UUID, bool]:
        """(classID, first time) for a CurrentClass encoding."""
        known = self.ids.get(current_class)
        if known is not None:
            return known, False
        if len(self.ids) >= self.max_classes:
            raise WmioEncodeError(f"more than {self.max_classes} distinct classes for one receiver")
        class_id = self.new_id()
        self.ids[current_class] = class_id
        return class_id, True


def _part(header_size: int, body: bytes, class_id: uuid.UUID | None) -> bytes:
    head = _PART_HEAD.pack(header_size, len(body))
    return head + (class_id.bytes_le if class_id is not None else b"") + body


def _packet_object(kind: ObjectType, inner: bytes) -> bytes:
    return _OBJ_HEAD.pack(OBJECT_HEADER_SIZE, len(inner), int(kind)) + inner


def encode_packet_object(obj: WmiObject, class_ids: ClassIdMap) -> bytes:
    """One WBEM_DATAPACKET_OBJECT (MS-WMI 2.2.14.1): a class as WBEMOBJECT_CLASS; an instance as
    WBEMOBJECT_INSTANCE the first time its class is sent to this receiver (a new classID), else as
    WBEMOBJECT_INSTANCE_NOCLASS (2.2.14.4; MS-WMIO 2.2.3: the ObjectBlock without CurrentClass)."""
    block = encode_object_block(obj)
    if isinstance(obj, WmiClass):
        return _packet_object(ObjectType.CLASS, _part(CLASS_HEADER_SIZE, block, None))
    try:
        start, end = current_class_span(block)
    except WmioDecodeError as exc:     # our own encoding: cannot happen unless the encoder is broken
        raise WmioEncodeError(f"cannot locate CurrentClass: {exc.reason}") from exc
    class_id, first = class_ids.lookup(block[start:end])
    if first:
        return _packet_object(ObjectType.INSTANCE, _part(INSTANCE_HEADER_SIZE, block, class_id))
    return _packet_object(ObjectType.INSTANCE_NOCLASS,
                          _part(INSTANCE_HEADER_SIZE, block[:start] + block[end:], class_id))


def encode_object_array(objects: Sequence[WmiObject], *, packet_type: int = PacketType.SMARTENUM_NEXT,
                        class_ids: ClassIdMap | None = None) -> bytes:
    """Encode ``objects`` as an ObjectArray (MS-WMI 2.2.14). Pass the same ``class_ids`` for every
    packet sent to one receiver so that each class is sent once; None = a map for this packet only."""
    if not 0 <= packet_type <= 0xFF:
        raise WmioEncodeError(f"bPacketType {packet_type} does not fit one octet")
    ids = class_ids if class_ids is not None else ClassIdMap()
    for obj in objects:
        if not isinstance(obj, (WmiClass, WmiInstance)):
            raise WmioEncodeError(f"not a WmiClass or WmiInstance: {type(obj).__name__}")
    body = b"".join(encode_packet_object(obj, ids) for obj in objects)
    size3 = len(body)
    size2 = SIZE_OF_HEADER3 + size3
    size1 = SIZE_OF_HEADER2 + size2
    if size1 > 0xFFFFFFFF - SIZE_OF_HEADER1:
        raise WmioEncodeError("ObjectArray larger than 4 GiB")
    head = _HEAD.pack(BYTE_ORDERING_LITTLE_ENDIAN, SIGNATURE, SIZE_OF_HEADER1, size1, 0, VERSION, packet_type,
                      SIZE_OF_HEADER2, size2, SIZE_OF_HEADER3, size3, len(objects))
    return head + body


# ---------------------------------------------------------------------------------- receiver


@dataclass
class ClassCache:
    """The receiver's classID -> CurrentClass encoding map (MS-WMI 2.2.14.4), bounded in entries
    and octets; exceeding a bound is a :class:`DataPacketError`."""

    max_classes: int = MAX_CACHED_CLASSES
    max_bytes: int = MAX_CACHED_BYTES
    classes: dict[uuid.UUID, bytes] = field(default_factory=dict)
    size: int = 0

    def get(self, class_id: uuid.UUID) -> bytes | None:
        return self.classes.get(class_id)

    def commit(self, staged: dict[uuid.UUID, bytes], at: int) -> None:
        added = {k: v for k, v in staged.items() if k not in self.classes}
        grow = sum(len(v) for v in added.values())
        if len(self.classes) + len(added) > self.max_classes:
            raise DataPacketError(f"more than {self.max_classes} cached classIDs", at)
        if self.size + grow > self.max_bytes:
            raise DataPacketError(f"class cache above {self.max_bytes} octets", at)
        self.classes.update(added)
        self.size += grow


def _check(cond: bool, reason: str, at: int) -> None:
    if not cond:
        raise DataPacketError(reason, at)


def _wmio(fn: Callable[[], WmiObject], base: int, remap: Callable[[int], int] | None = None) -> WmiObject:
    """Run an MS-WMIO decode of bytes starting at ``base`` in the packet; re-raise with the offset in
    the packet (``remap`` maps offsets of a spliced buffer back)."""
    try:
        return fn()
    except DataPacketError:
        raise
    except WmioDecodeError as exc:
        local = remap(exc.offset) if remap is not None else exc.offset
        raise DataPacketError(f"MS-WMIO: {exc.reason}", base + local) from None


def _decode_class(data: bytes, at: int, end: int) -> WmiObject:
    """WBEMOBJECT_CLASS (2.2.14.2)."""
    _check(at + _PART_HEAD.size <= end, "WBEMOBJECT_CLASS header truncated", at)
    header, size = _PART_HEAD.unpack_from(data, at)
    _check(header == CLASS_HEADER_SIZE, f"WBEMOBJECT_CLASS dwSizeOfHeader {header}, 8 required", at)
    start = at + CLASS_HEADER_SIZE
    _check(start + size == end, f"WBEMOBJECT_CLASS dwSizeOfData {size} disagrees with its object", at + 4)
    obj = _wmio(lambda: decode_object_block(data[start:end]), start)
    _check(isinstance(obj, WmiClass), "WBEMOBJECT_CLASS holds an instance", start)
    return obj


def _instance_part(data: bytes, at: int, end: int, what: str) -> tuple[uuid.UUID, int, int]:
    """Header of WBEMOBJECT_INSTANCE / _NOCLASS (2.2.14.3-4): (classID, data start, data end)."""
    _check(at + INSTANCE_HEADER_SIZE <= end, f"{what} header truncated", at)
    header, size = _PART_HEAD.unpack_from(data, at)
    _check(header == INSTANCE_HEADER_SIZE, f"{what} dwSizeOfHeader {header}, 0x18 required", at)
    start = at + INSTANCE_HEADER_SIZE
    _check(start + size == end, f"{what} dwSizeOfData {size} disagrees with its object", at + 4)
    return uuid.UUID(bytes_le=data[at + 8:at + 24]), start, end


def _decode_instance(data: bytes, at: int, end: int, cache: ClassCache,
                     staged: dict[uuid.UUID, bytes]) -> tuple[WmiObject, uuid.UUID]:
    """WBEMOBJECT_INSTANCE (2.2.14.3): a whole instance; its CurrentClass is remembered by classID."""
    class_id, start, stop = _instance_part(data, at, end, "WBEMOBJECT_INSTANCE")
    block = data[start:stop]
    obj = _wmio(lambda: decode_object_block(block), start)
    _check(isinstance(obj, WmiInstance), "WBEMOBJECT_INSTANCE holds a class", start)
    cls_start, cls_end = current_class_span(data, start, stop)
    current = data[cls_start:cls_end]
    known = staged.get(class_id) or cache.get(class_id)
    _check(known is None or known == current, f"classID {class_id} already names another class", at + 8)
    staged[class_id] = current
    return obj, class_id


def _decode_noclass(data: bytes, at: int, end: int, cache: ClassCache,
                    staged: dict[uuid.UUID, bytes]) -> tuple[WmiObject, uuid.UUID]:
    """WBEMOBJECT_INSTANCE_NOCLASS (2.2.14.4): EncodingUnitInstanceNoClass (MS-WMIO 2.2.3), rebuilt
    with the CurrentClass of the WBEMOBJECT_INSTANCE of the same classID; an unknown classID "MUST be
    treated as an error"."""
    class_id, start, stop = _instance_part(data, at, end, "WBEMOBJECT_INSTANCE_NOCLASS")
    current = staged.get(class_id) or cache.get(class_id)
    _check(current is not None, f"classID {class_id} names no class sent before", at + 8)
    assert current is not None
    _check(start < stop, "empty EncodingUnitInstanceNoClass", start)
    flags = data[start]
    # MS-WMIO 2.2.3: "the bit flag CIM class (0x01) MUST NOT be set in ObjectFlags"
    _check(not flags & ObjectFlags.CLASS, "EncodingUnitInstanceNoClass with the CIM class ObjectFlag", start)
    pos = start + 1
    if flags & ObjectFlags.DECORATED:
        try:
            _, pos = decode_string(data, pos, stop)
            _, pos = decode_string(data, pos, stop)
        except WmioDecodeError as exc:
            raise DataPacketError(f"MS-WMIO Decoration: {exc.reason}", exc.offset) from None
    prefix = pos - start
    block = data[start:pos] + current + data[pos:stop]
    n = len(current)

    def remap(offset: int) -> int:
        if offset < prefix:
            return offset
        return max(prefix, offset - n)

    obj = _wmio(lambda: decode_object_block(block), start, remap)
    _check(isinstance(obj, WmiInstance), "EncodingUnitInstanceNoClass does not decode to an instance", start)
    return obj, class_id


def decode_object_array(data: bytes, *, cache: ClassCache | None = None, packet_type: int | None = None,
                        max_objects: int = MAX_OBJECTS) -> ObjectArray:
    """Decode an ObjectArray (MS-WMI 2.2.14). ``cache`` carries the classIDs of earlier packets from
    the same sender and receives this packet's (only when the whole packet decodes); ``packet_type``
    requires that bPacketType. Raises only :class:`DataPacketError`."""
    buf = bytes(data)
    try:
        return _decode(buf, cache if cache is not None else ClassCache(), packet_type, max_objects)
    except DataPacketError:
        raise
    except WmioDecodeError as exc:
        raise DataPacketError(exc.reason, exc.offset) from None
    except (struct.error, ValueError, IndexError, RecursionError, MemoryError) as exc:
        raise DataPacketError(f"malformed ObjectArray: {exc.__class__.__name__}: {exc}", 0) from None


def _decode(buf: bytes, cache: ClassCache, packet_type: int | None, max_objects: int) -> ObjectArray:
    _check(len(buf) >= _HEAD.size, f"{len(buf)} octets: shorter than the ObjectArray headers ({_HEAD.size})", 0)
    (order, signature, h1, size1, flags, version, ptype, h2, size2, h3, size3, count) = _HEAD.unpack_from(buf, 0)
    _check(order == BYTE_ORDERING_LITTLE_ENDIAN, f"dwByteOrdering 0x{order:08x}, 0 (little-endian) required", 0)
    _check(signature == SIGNATURE, f"abSignature {signature!r}, b'WBEMDATA' required", 4)
    _check(h1 == SIZE_OF_HEADER1, f"dwSizeOfHeader1 0x{h1:x}, 0x1A required", 12)
    _check(flags == 0, f"dwFlags 0x{flags:08x}, 0 required", 20)
    _check(version == VERSION, f"bVersion {version}, 1 required", 24)
    _check(packet_type is None or ptype == packet_type, f"bPacketType {ptype}, {packet_type} expected", 25)
    _check(h2 == SIZE_OF_HEADER2, f"dwSizeOfHeader2 {h2}, 8 required", 26)
    _check(h3 == SIZE_OF_HEADER3, f"dwSizeOfHeader3 {h3}, 12 required", 34)
    _check(SIZE_OF_HEADER1 + size1 == len(buf),
           f"dwDataSize1 {size1}: the packet holds {len(buf) - SIZE_OF_HEADER1} octets after the first header", 16)
    _check(size1 == SIZE_OF_HEADER2 + size2, f"dwDataSize2 {size2} disagrees with dwDataSize1 {size1}", 30)
    _check(size2 == SIZE_OF_HEADER3 + size3, f"dwDataSize3 {size3} disagrees with dwDataSize2 {size2}", 38)
    limit = min(max_objects, size3 // (OBJECT_HEADER_SIZE + CLASS_HEADER_SIZE))
    _check(count <= limit, f"dwNumObjects {count} cannot fit in {size3} octets (or exceeds {max_objects})", 42)
    staged: dict[uuid.UUID, bytes] = {}
    entries: list[PacketObject] = []
    pos = OBJECTS_OFFSET
    end = len(buf)
    for i in range(count):
        _check(pos + OBJECT_HEADER_SIZE <= end, f"object {i}: WBEM_DATAPACKET_OBJECT header truncated", pos)
        header, size, kind = _OBJ_HEAD.unpack_from(buf, pos)
        _check(header == OBJECT_HEADER_SIZE, f"object {i}: dwSizeOfHeader {header}, 9 required", pos)
        start = pos + OBJECT_HEADER_SIZE
        _check(size <= end - start, f"object {i}: dwSizeOfData {size} beyond the packet", pos + 4)
        stop = start + size
        class_id: uuid.UUID | None = None
        if kind == ObjectType.CLASS:
            obj = _decode_class(buf, start, stop)
        elif kind == ObjectType.INSTANCE:
            obj, class_id = _decode_instance(buf, start, stop, cache, staged)
        elif kind == ObjectType.INSTANCE_NOCLASS:
            obj, class_id = _decode_noclass(buf, start, stop, cache, staged)
        else:
            raise DataPacketError(f"object {i}: bObjectType {kind} is not 1, 2 or 3", pos + 8)
        entries.append(PacketObject(ObjectType(kind), obj, class_id, pos))
        pos = stop
    _check(pos == end, f"{end - pos} octet(s) after the last of {count} objects", pos)
    cache.commit(staged, OBJECTS_OFFSET)
    return ObjectArray(ptype, tuple(entries))

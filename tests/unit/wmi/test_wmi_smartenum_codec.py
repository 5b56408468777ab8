"""The ObjectArray codec against the MS-WMI 2.2.14 layout, field by field (2.2.14.1-2.2.14.4), the
class-once rule with its classID cache, and its typed errors; plus the IWbemWCOSmartEnum NDR stubs
(3.1.4.6.1, 3.1.4.7.1)."""

from __future__ import annotations

import struct
import uuid

import pytest

from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter
from harness.wire.wmi.datapacket import (
    ClassCache,
    ClassIdMap,
    DataPacketError,
    ObjectType,
    PacketType,
    current_class_span,
    decode_object_array,
    encode_object_array,
)
from harness.wire.wmi.smartenum import (
    SmartNextRequest,
    SmartNextResponse,
    read_next_request,
    read_next_response,
    write_next_request,
    write_next_response,
)
from harness.wire.wmio import (
    CimType,
    Decoration,
    WmiClass,
    WmiInstance,
    WmioEncodeError,
    WmiProperty,
    decode_object_block,
    encode_object_block,
)

CLASS_A = WmiClass("Test_A", properties=[WmiProperty("Name", CimType.STRING), WmiProperty("Size", CimType.UINT32)])
CLASS_B = WmiClass("Test_B", properties=[WmiProperty("Id", CimType.SINT64)])


def _a(name: str, size: int | None = None, decoration: Decoration | None = None) -> WmiInstance:
    return WmiInstance(CLASS_A, {"Name": name, "Size": size}, decoration=decoration)


def _ids() -> ClassIdMap:
    counter = iter(range(1, 1000))
    return ClassIdMap(new_id=lambda: uuid.UUID(int=next(counter)))


def _objects(packet: bytes) -> list[tuple[int, int, int, bytes]]:
    """(offset, dwSizeOfData, bObjectType, Object) of every WBEM_DATAPACKET_OBJECT, read by hand."""
    out = []
    pos = 46
    for _ in range(struct.unpack_from("<I", packet, 42)[0]):
        header, size, kind = struct.unpack_from("<IIB", packet, pos)
        assert header == 9
        out.append((pos, size, kind, packet[pos + 9:pos + 9 + size]))
        pos += 9 + size
    assert pos == len(packet)
    return out


def test_header_fields_at_the_offsets_of_2_2_14() -> None:
    packet = encode_object_array([_a("x", 1), _a("y", 2)], class_ids=_ids())
    (order, signature, h1, size1, flags, version, ptype, h2, size2, h3, size3, count) = struct.unpack_from(
        "<I8sIIIBBIIIII", packet, 0)
    assert (order, signature, h1, flags, version, ptype) == (0, b"WBEMDATA", 0x1A, 0, 1, 1)
    assert (h2, h3, count) == (8, 12, 2)
    assert size1 == len(packet) - 26            # from dwSizeOfHeader2 to the end
    assert size2 == len(packet) - 34            # after dwDataSize2
    assert size3 == len(packet) - 46            # wbemObjects
    assert encode_object_array([], packet_type=PacketType.OBJECTSINK_INDICATE)[25] == 0


def test_first_instance_carries_the_class_later_ones_reference_it() -> None:
    ids = _ids()
    first = _a("x", 1, Decoration("HOST", "ROOT\\CIMV2"))
    packet = encode_object_array([first, CLASS_B, _a("y"), _a("z", 3, Decoration("H2", "NS"))], class_ids=ids)
    objs = _objects(packet)
    assert [kind for _, _, kind, _ in objs] == [2, 1, 3, 3]
    # WBEMOBJECT_INSTANCE (2.2.14.3): header 0x18, size, classID, the whole ObjectBlock
    header, size = struct.unpack_from("<II", objs[0][3], 0)
    assert header == 0x18 and size == objs[0][1] - 0x18
    assert uuid.UUID(bytes_le=objs[0][3][8:24]) == uuid.UUID(int=1)
    assert objs[0][3][24:] == encode_object_block(first)
    # WBEMOBJECT_CLASS (2.2.14.2): header 8, size, ObjectBlock of the class
    assert struct.unpack_from("<II", objs[1][3], 0) == (8, objs[1][1] - 8)
    assert objs[1][3][8:] == encode_object_block(CLASS_B)
    # WBEMOBJECT_INSTANCE_NOCLASS (2.2.14.4): same classID, ObjectBlock minus CurrentClass (MS-WMIO 2.2.3)
    for _, _, _, body in objs[2:]:
        assert uuid.UUID(bytes_le=body[8:24]) == uuid.UUID(int=1)
    block = encode_object_block(_a("z", 3, Decoration("H2", "NS")))
    start, end = current_class_span(block)
    assert objs[3][3][24:] == block[:start] + block[end:] and objs[3][3][24] & 0x01 == 0
    decoded = decode_object_array(packet)
    assert decoded.packet_type == PacketType.SMARTENUM_NEXT
    assert decoded.objects == [first, CLASS_B, _a("y"), _a("z", 3, Decoration("H2", "NS"))]
    assert [e.class_id for e in decoded.entries] == [uuid.UUID(int=1), None, uuid.UUID(int=1), uuid.UUID(int=1)]


def test_class_ids_and_cache_span_packets_and_distinguish_classes() -> None:
    ids, cache = _ids(), ClassCache()
    b_inst = WmiInstance(CLASS_B, {"Id": -5})
    p1 = decode_object_array(encode_object_array([_a("x")], class_ids=ids), cache=cache)
    p2 = decode_object_array(encode_object_array([_a("y"), b_inst, WmiInstance(CLASS_B, {})], class_ids=ids),
                             cache=cache)
    assert [e.kind for e in p1.entries + p2.entries] == [
        ObjectType.INSTANCE, ObjectType.INSTANCE_NOCLASS, ObjectType.INSTANCE, ObjectType.INSTANCE_NOCLASS]
    assert p2.objects == [_a("y"), b_inst, WmiInstance(CLASS_B, {})]
    assert set(cache.classes) == {uuid.UUID(int=1), uuid.UUID(int=2)}
    # a fresh receiver cannot resolve the second packet: "MUST be treated as an error" (2.2.14.4)
    second = encode_object_array([_a("w")], class_ids=ids)
    with pytest.raises(DataPacketError, match="names no class sent before") as info:
        decode_object_array(second)
    assert info.value.offset == 46 + 9 + 8


def test_cache_is_only_updated_by_a_packet_that_decodes() -> None:
    good = encode_object_array([_a("x"), _a("y")], class_ids=_ids())
    second = _objects(good)[1][0]
    bad = bytearray(good)
    bad[second + 8] = 7                       # the second object's bObjectType: the first was staged
    cache = ClassCache()
    with pytest.raises(DataPacketError, match="bObjectType 7"):
        decode_object_array(bytes(bad), cache=cache)
    assert cache.classes == {}
    decode_object_array(good, cache=cache)
    assert list(cache.classes) == [uuid.UUID(int=1)]


def test_header_violations_are_typed_errors_with_offsets() -> None:
    good = encode_object_array([_a("x")], class_ids=_ids())
    cases = [
        (0, struct.pack("<I", 0xFFFFFFFF), "dwByteOrdering", 0),
        (4, b"WBEMDATX", "abSignature", 4),
        (12, struct.pack("<I", 0x1B), "dwSizeOfHeader1", 12),
        (16, struct.pack("<I", 5), "dwDataSize1", 16),
        (20, struct.pack("<I", 1), "dwFlags", 20),
        (24, b"\x02", "bVersion", 24),
        (26, struct.pack("<I", 9), "dwSizeOfHeader2", 26),
        (30, struct.pack("<I", 1), "dwDataSize2", 30),
        (34, struct.pack("<I", 13), "dwSizeOfHeader3", 34),
        (38, struct.pack("<I", 1), "dwDataSize3", 38),
        (42, struct.pack("<I", 0xFFFFFFFF), "dwNumObjects", 42),
        (46, struct.pack("<I", 10), "dwSizeOfHeader 10, 9", 46),
        (54, b"\x07", "bObjectType 7", 54),
        (55, struct.pack("<I", 0x19), "0x18 required", 55),
    ]
    for at, patch, reason, offset in cases:
        bad = bytearray(good)
        bad[at:at + len(patch)] = patch
        with pytest.raises(DataPacketError, match=reason) as info:
            decode_object_array(bytes(bad))
        assert info.value.offset == offset, reason
    with pytest.raises(DataPacketError, match="bPacketType 1, 0 expected"):
        decode_object_array(good, packet_type=PacketType.OBJECTSINK_INDICATE)
    with pytest.raises(DataPacketError, match="shorter than"):
        decode_object_array(good[:45])
    with pytest.raises(DataPacketError, match="dwDataSize1"):
        decode_object_array(good + b"\x00")


def test_object_type_must_match_its_object_and_class_ids_stay_bound() -> None:
    packet = bytearray(encode_object_array([CLASS_B], class_ids=_ids()))
    packet[54] = 2          # bObjectType says instance, the object is a WBEMOBJECT_CLASS
    with pytest.raises(DataPacketError):
        decode_object_array(bytes(packet))
    # the same classID sent with another class in a later packet
    ids = _ids()
    cache = ClassCache()
    decode_object_array(encode_object_array([_a("x")], class_ids=ids), cache=cache)
    other = encode_object_array([WmiInstance(CLASS_B, {})], class_ids=_ids())   # reuses GUID 1
    with pytest.raises(DataPacketError, match="already names another class"):
        decode_object_array(other, cache=cache)


def test_bounds_of_the_receiver_cache_and_the_sender_map() -> None:
    ids = _ids()
    packet = encode_object_array([_a("x"), WmiInstance(CLASS_B, {})], class_ids=ids)
    with pytest.raises(DataPacketError, match="more than 1 cached"):
        decode_object_array(packet, cache=ClassCache(max_classes=1))
    with pytest.raises(DataPacketError, match="class cache above"):
        decode_object_array(packet, cache=ClassCache(max_bytes=10))
    with pytest.raises(WmioEncodeError, match="more than 1 distinct"):
        encode_object_array([_a("x"), WmiInstance(CLASS_B, {})], class_ids=ClassIdMap(max_classes=1))
    with pytest.raises(DataPacketError, match="dwNumObjects"):
        decode_object_array(packet, max_objects=1)


def test_decoded_noclass_equals_a_full_decode() -> None:
    inst = _a("y", 7, Decoration("S", "N"))
    packet = encode_object_array([_a("x"), inst])
    assert decode_object_array(packet).objects[1] == decode_object_block(encode_object_block(inst)) == inst


def test_smart_next_stubs_round_trip_and_check_pdwbuffsize() -> None:
    w = NdrWriter()
    req = SmartNextRequest(uuid.UUID(int=7), 0xFFFFFFFF, 10)
    write_next_request(w, req)
    assert len(w.getvalue()) == 24 and read_next_request(NdrReader(w.getvalue())) == req
    for resp in (SmartNextResponse(2, b"WBEMDATA-ish", 0), SmartNextResponse(0, None, 1)):
        w = NdrWriter()
        write_next_response(w, resp)
        assert read_next_response(NdrReader(w.getvalue())) == resp
    w = NdrWriter()
    write_next_response(w, SmartNextResponse(1, b"abcd", 0))
    raw = bytearray(w.getvalue())
    raw[4:8] = struct.pack("<I", 3)            # pdwBuffSize disagrees with the conformance
    with pytest.raises(NdrError, match="differs from pdwBuffSize"):
        read_next_response(NdrReader(bytes(raw)))
    raw = bytearray(struct.pack("<IIII", 0, 4, 0, 1))   # NULL pBuffer with a size
    with pytest.raises(NdrError, match="NULL pBuffer"):
        read_next_response(NdrReader(bytes(raw)))

"""Sans-IO DCE/RPC PDU codec (harness.wire.dcom.pdu): round trips, fragmentation, malformed input."""

from __future__ import annotations

import struct
import uuid

import pytest

from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Auth3,
    AuthLevel,
    AuthType,
    Bind,
    BindAck,
    BindNak,
    ContextElement,
    ContextResultEntry,
    Fault,
    NakReason,
    Pdu,
    PduBuffer,
    PduError,
    PfcFlags,
    PType,
    Reassembler,
    Request,
    Response,
    SecTrailer,
    decode_pdu,
    encode_pdu,
    fragment_stub,
    stub_span,
)

IFACE = (uuid.UUID("000001a0-0000-0000-c000-000000000046"), 0, 0)
BOTH = PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG


def test_bind_round_trip_with_two_contexts_and_verifier() -> None:
    body = Bind(4280, 4280, 7, [ContextElement(0, IFACE, [NDR_SYNTAX]),
                                ContextElement(1, IFACE, [NDR_SYNTAX, (uuid.uuid4(), 1, 0)])])
    auth = SecTrailer(AuthType.WINNT, AuthLevel.PKT_PRIVACY, 0, 79231, b"NTLMSSP\x00\x01\x00\x00\x00")
    data = encode_pdu(Pdu(PType.BIND, 3, body, BOTH, auth))
    assert data[:4] == b"\x05\x00\x0b\x03" and struct.unpack_from("<H", data, 8)[0] == len(data)
    pdu = decode_pdu(data)
    assert pdu.ptype is PType.BIND and pdu.call_id == 3 and pdu.body == body
    assert pdu.auth is not None and pdu.auth.auth_value == auth.auth_value
    assert (len(data) - len(auth.auth_value) - 8) % 4 == 0   # sec_trailer 4-aligned (MS-RPCE 2.2.2.11)


def test_bind_ack_round_trip_aligns_result_list() -> None:
    for sec in ("", "135", "49667"):
        body = BindAck(5840, 5840, 0x1234, sec, [ContextResultEntry(0, 0, NDR_SYNTAX), ContextResultEntry(2, 1)])
        pdu = decode_pdu(encode_pdu(Pdu(PType.BIND_ACK, 1, body)))
        assert pdu.body == body


def test_bind_nak_request_response_fault_auth3_round_trip() -> None:
    nak = decode_pdu(encode_pdu(Pdu(PType.BIND_NAK, 1, BindNak(NakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED))))
    assert isinstance(nak.body, BindNak) and nak.body.reason == 8 and nak.body.versions == [(5, 0)]
    obj = uuid.uuid4()
    req = decode_pdu(encode_pdu(Pdu(PType.REQUEST, 9, Request(1, 6, b"stubdata", obj))))
    assert isinstance(req.body, Request) and req.flags & PfcFlags.OBJECT_UUID
    assert (req.body.context_id, req.body.opnum, req.body.stub, req.body.object_uuid) == (1, 6, b"stubdata", obj)
    resp = decode_pdu(encode_pdu(Pdu(PType.RESPONSE, 9, Response(1, b"x" * 13))))
    assert isinstance(resp.body, Response) and resp.body.stub == b"x" * 13 and resp.body.alloc_hint == 13
    fault = decode_pdu(encode_pdu(Pdu(PType.FAULT, 9, Fault(0x1C010003, 1))))
    assert isinstance(fault.body, Fault) and fault.body.status == 0x1C010003
    auth3 = decode_pdu(encode_pdu(Pdu(PType.AUTH3, 10, Auth3(), BOTH, SecTrailer(10, 6, 0, 5, b"tok"))))
    assert isinstance(auth3.body, Auth3) and auth3.auth is not None and auth3.auth.auth_value == b"tok"


def test_request_with_verifier_strips_auth_padding() -> None:
    stub = b"abcdefghij"
    data = encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 4, stub), BOTH, SecTrailer(10, 5, 0, 1, bytes(16))))
    pdu = decode_pdu(data)
    assert pdu.auth is not None and pdu.auth.auth_pad_length == 6   # padded to 16 octets
    assert isinstance(pdu.body, Request) and pdu.body.stub == stub
    start, end = stub_span(data)
    assert data[start:end] == stub + bytes(6)


def test_fragmentation_and_reassembly() -> None:
    stub = bytes(range(256)) * 40
    frags = fragment_stub(stub, 1000)
    assert frags[0][0] & PfcFlags.FIRST_FRAG and frags[-1][0] & PfcFlags.LAST_FRAG
    assert all(not f & (PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG) for f, _ in frags[1:-1])
    stream = b"".join(encode_pdu(Pdu(PType.REQUEST, 5, Request(0, 3, piece, None, len(stub)), flags))
                      for flags, piece in frags)
    framer = PduBuffer()
    raws = framer.feed(stream[:7]) + framer.feed(stream[7:3000]) + framer.feed(stream[3000:])
    assert len(raws) == len(frags)
    re = Reassembler()
    out = None
    for raw in raws:
        pdu = decode_pdu(raw)
        assert isinstance(pdu.body, Request)
        out = re.add(pdu, pdu.body.stub)
    assert out == stub and not re.in_progress


def test_reassembly_errors() -> None:
    re = Reassembler(max_size=100)
    middle = Pdu(PType.REQUEST, 1, Request(0, 1, b"x"), PfcFlags.NONE)
    with pytest.raises(PduError):
        re.add(middle, b"x")
    first = Pdu(PType.REQUEST, 1, Request(0, 1, b"x"), PfcFlags.FIRST_FRAG)
    re.add(first, b"x" * 60)
    with pytest.raises(PduError):
        re.add(Pdu(PType.REQUEST, 2, Request(0, 1, b"x"), PfcFlags.LAST_FRAG), b"x")
    with pytest.raises(PduError):
        re.add(Pdu(PType.REQUEST, 1, Request(0, 2, b"x"), PfcFlags.LAST_FRAG), b"x")
    with pytest.raises(PduError):
        re.add(Pdu(PType.REQUEST, 1, Request(0, 1, b"x"), PfcFlags.NONE), b"x" * 60)


@pytest.mark.parametrize("data", [
    b"", b"\x05\x00", b"\x04\x00\x0b\x03\x10\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00",
    b"\x05\x00\x63\x03\x10\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00",
    b"\x05\x00\x0b\x03\x10\x00\x00\x00\x20\x00\x00\x00\x01\x00\x00\x00",
    b"\x05\x00\x0b\x03\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00",
    b"\x05\x00\x0b\x03\x10\x00\x00\x00\x1c\x00\x00\x00\x01\x00\x00\x00" + b"\x00" * 8 + b"\x01\x00\x00\x00",
    b"\x05\x00\x00\x03\x10\x00\x00\x00\x18\x00\x40\x00\x01\x00\x00\x00" + b"\x00" * 8,
])
def test_malformed_pdus_raise_typed_error(data: bytes) -> None:
    with pytest.raises(PduError):
        decode_pdu(data)


def test_truncations_of_valid_pdus_never_escape() -> None:
    """Every truncation (frag_length patched to match) raises PduError or decodes to a different PDU."""
    original = Bind(contexts=[ContextElement(0, IFACE, [NDR_SYNTAX])])
    data = encode_pdu(Pdu(PType.BIND, 1, original, BOTH, SecTrailer(10, 6, 0, 1, b"x" * 40)))
    raised = 0
    for cut in range(len(data)):
        broken = bytearray(data[:cut])
        if len(broken) >= 10:
            struct.pack_into("<H", broken, 8, len(broken))
        try:
            pdu = decode_pdu(bytes(broken))
        except PduError:
            raised += 1
            continue
        assert pdu.body != original or pdu.auth != SecTrailer(10, 6, 0, 1, b"x" * 40)
    assert raised > len(data) // 2


def test_framer_refuses_impossible_lengths() -> None:
    with pytest.raises(PduError):
        PduBuffer().feed(b"\x05\x00\x0b\x03\x10\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00")

"""The DCE/RPC dissector and raw-stream synthesiser on hand-built PDUs (C706 12.6; MS-DCOM 2.2.14,
2.2.18.6; MS-WMI 2.2.4.1, 3.1.4; MS-WMIO 2.2.1)."""

from __future__ import annotations

import struct
import time
import uuid

import pytest

from harness.capture.dcerpc import (
    dissect_stream,
    find_objects,
    interface_name,
    looks_like_dcerpc,
    method_name,
    split_pdus,
    summarise,
)
from harness.capture.dcerpc_synth import mask_secrets, parse_binding, synthesise_all, synthesise_raw
from harness.capture.pcapng import pcapng_bytes
from harness.capture.reader import HalfStream, TcpStream, frames_from_bytes, reassemble
from harness.capture.synth import SynthError
from harness.cim.mof import default_store
from harness.transport.tap import Exchange
from harness.wire.dcom.ndr import NdrWriter
from harness.wire.dcom.orpc import CLSID_ACTIVATION_PROPERTIES_IN, IID_IREMUNKNOWN2, ObjRefCustom
from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Bind,
    BindAck,
    ContextElement,
    ContextResultEntry,
    Fault,
    Pdu,
    PfcFlags,
    PType,
    Request,
    Response,
    encode_pdu,
)
from harness.wire.wmi.constants import CLSID_WBEM_CLASS_OBJECT, IID_IWBEM_CLASS_OBJECT, IID_IWBEM_SERVICES
from harness.wire.wmio import encode_encoding_unit
from harness.wire.wmio.pywbem_bridge import from_pywbem_class, from_pywbem_instance

NS = "root/cimv2"


def _service_objref(*, corrupt: bool = False, clsid: uuid.UUID = CLSID_WBEM_CLASS_OBJECT) -> bytes:
    store = default_store()
    cls = store.get_class(NS, "Win32_Service")
    inst = store.enumerate_instances(NS, "Win32_Service")[0]
    unit = encode_encoding_unit(from_pywbem_instance(inst, from_pywbem_class(cls)))
    if corrupt:
        unit = b"\x00\x00\x00\x00" + unit[4:]
    return ObjRefCustom(IID_IWBEM_CLASS_OBJECT, clsid, unit).encode()


def _stub_with(*objrefs: bytes) -> bytes:
    w = NdrWriter()
    w.u32(0x11223344)
    for ref in objrefs:
        w.interface_pointer(ref)
    w.u32(0)
    return w.getvalue()


def _stream(client_pdus: list[bytes], server_pdus: list[bytes]) -> TcpStream:
    """Client and server PDUs alternating in frames 1, 2, 3, ... (client first)."""
    def half(pdus: list[bytes], first: int) -> HalfStream:
        data = b"".join(pdus)
        offsets, pos = [], 0
        for i, p in enumerate(pdus):
            offsets.append((pos, first + 2 * i))
            pos += len(p)
        return HalfStream(chunks=[(0, data)] if data else [], frame_map=offsets)

    return TcpStream(0, ("127.0.0.1", 50000), ("127.0.0.1", 135), 1, True,
                     half(client_pdus, 1), half(server_pdus, 2))


def _bind(call_id: int, iid: uuid.UUID, ptype: PType = PType.BIND) -> bytes:
    return encode_pdu(Pdu(ptype, call_id, Bind(contexts=[ContextElement(0, (iid, 0, 0), [NDR_SYNTAX])])))


def _bind_ack(call_id: int, ptype: PType = PType.BIND_ACK) -> bytes:
    return encode_pdu(Pdu(ptype, call_id, BindAck(secondary_address="135",
                                                  results=[ContextResultEntry(0, 0, NDR_SYNTAX)])))


def test_interface_and_method_names() -> None:
    assert interface_name(IID_IWBEM_SERVICES) == "IWbemServices"
    assert method_name(IID_IWBEM_SERVICES, 20) == "IWbemServices::ExecQuery"
    assert method_name(IID_IWBEM_SERVICES, 6) == "IWbemServices::GetObject"
    assert method_name(IID_IREMUNKNOWN2, 6) == "IRemUnknown2::RemQueryInterface2"
    assert method_name(IID_IWBEM_SERVICES, 99) == "IWbemServices::opnum 99"
    other = uuid.UUID(int=7)
    assert interface_name(other) == str(other) and method_name(other, 1) == f"{other}::opnum 1"
    assert method_name(None, 3) == "opnum 3"


def test_find_objects_decodes_wbem_objects_only() -> None:
    count = len(default_store().get_class(NS, "Win32_Service").properties)
    found, errors = find_objects(_stub_with(_service_objref(), _service_objref(),
                                            _service_objref(clsid=CLSID_ACTIVATION_PROPERTIES_IN)))
    assert errors == []
    assert found == [f"Win32_Service instance, {count} properties"] * 2
    assert summarise(found) == [f"2 x Win32_Service instance, {count} properties"]
    found, errors = find_objects(_stub_with(_service_objref(corrupt=True)))
    assert found == [] and len(errors) == 1 and "does not decode" in errors[0]
    assert find_objects(b"MEOW" * 50) == ([], [])
    assert len(find_objects(b"MEOW" + _stub_with(_service_objref()))[0]) == 1   # a stray signature first


def test_split_pdus_skips_garbage_and_notes_truncation() -> None:
    a, b = _bind(1, IID_IWBEM_SERVICES), _bind_ack(1)
    half = HalfStream(chunks=[(0, a + b"\xff" * 7 + b + b[:10])])
    pdus, notes = split_pdus(half)
    assert [p for _, p in pdus] == [a, b]
    assert any("not a DCE/RPC PDU" in n for n in notes) and any("truncated" in n for n in notes)
    assert looks_like_dcerpc(a) and not looks_like_dcerpc(b) and not looks_like_dcerpc(b"POST / HTTP/1.1\r\n\r\n")


def test_dissect_pairs_calls_and_flags_protocol_errors() -> None:
    stub = _stub_with(_service_objref())
    first, second = stub[:40], stub[40:]
    client = [
        _bind(1, IID_IWBEM_SERVICES),
        encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 6, b"\x00" * 8))),
        encode_pdu(Pdu(PType.REQUEST, 4, Request(5, 3, b""))),          # context 5 was never bound
        encode_pdu(Pdu(PType.REQUEST, 6, Request(0, 20, b"q"))),
    ]
    server = [
        _bind_ack(1),
        encode_pdu(Pdu(PType.RESPONSE, 2, Response(0, first), PfcFlags.FIRST_FRAG)),
        encode_pdu(Pdu(PType.RESPONSE, 2, Response(0, second), PfcFlags.LAST_FRAG)),
        encode_pdu(Pdu(PType.RESPONSE, 9, Response(0, b"\x00" * 4))),   # no request 9
        encode_pdu(Pdu(PType.FAULT, 6, Fault(0x1C010002))),
    ]
    messages, _ = dissect_stream(_stream(client, server))
    assert len(messages) == 9
    get_parts = [m for m in messages if m.method == "IWbemServices::GetObject" and m.direction == "response"]
    assert len(get_parts) == 2 and "(fragment)" in get_parts[0].summary
    assert get_parts[1].objects[0].startswith("Win32_Service instance") and get_parts[1].verdict == "pass"
    unbound = next(m for m in messages if m.call_id == 4)
    assert unbound.verdict == "fail" and "never bound" in unbound.errors[0]
    orphan = next(m for m in messages if m.call_id == 9)
    assert orphan.verdict == "fail" and "no request" in orphan.errors[0]
    fault = next(m for m in messages if m.ptype == "fault")
    assert fault.verdict == "info" and fault.method == "IWbemServices::ExecQuery" and "0x1c010002" in fault.errors[0]


def test_dissect_reports_broken_fragments_and_malformed_pdus() -> None:
    client = [_bind(1, IID_IWBEM_SERVICES), encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 6, b"")))]
    bad = bytearray(encode_pdu(Pdu(PType.RESPONSE, 2, Response(0, b"x" * 8))))
    bad[1] = 1
    bad[4] = 0x00   # big-endian data representation: refused by the codec
    server = [_bind_ack(1), encode_pdu(Pdu(PType.RESPONSE, 2, Response(0, b"tail"), PfcFlags.LAST_FRAG)),
              bytes(bad)]
    messages, _ = dissect_stream(_stream(client, server))
    middle = next(m for m in messages if m.direction == "response" and m.ptype == "response" and m.verdict == "fail"
                  and any("reassembly" in e for e in m.errors))
    assert "without a first fragment" in middle.errors[0]
    assert any(m.verdict == "fail" and "malformed PDU" in m.errors[0] for m in messages)


def _exchange(direction: str, body: bytes, *, peer: str = "ncacn_ip_tcp:127.0.0.1[135]",
              local: str = "127.0.0.1:50123", protocol: str = "dcerpc", status: int | None = None,
              at: float = 0.0) -> Exchange:
    return Exchange("t::x", protocol, direction, peer, time.time() + at, {}, body,  # type: ignore[arg-type]
                    status, local)


def test_raw_synthesis_round_trips_and_merges_with_http() -> None:
    bind, ack = _bind(1, IID_IWBEM_SERVICES), _bind_ack(1)
    big = encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 6, bytes(range(256)) * 20)))
    raw = [_exchange("request", bind), _exchange("response", ack, at=0.001), _exchange("request", big, at=0.002)]
    http = [_exchange("request", b"<x/>", peer="http://127.0.0.1:5985/wsman", protocol="wsman", at=0.0005,
                      local="127.0.0.1:0"),
            _exchange("response", b"<y/>", peer="http://127.0.0.1:5985/wsman", protocol="wsman", status=200,
                      at=0.0015, local="127.0.0.1:0")]
    packets = synthesise_all(raw + http, mss=536)
    streams = reassemble(frames_from_bytes(pcapng_bytes(packets)))
    assert len(streams) == 2
    rpc = next(s for s in streams if s.server == ("127.0.0.1", 135))
    assert rpc.client == ("127.0.0.1", 50123)
    assert b"".join(c for _, c in rpc.to_server.chunks) == bind + big
    assert b"".join(c for _, c in rpc.to_client.chunks) == ack
    assert synthesise_raw(http) == []


def test_raw_synthesis_refuses_bad_input_and_masks_secrets() -> None:
    with pytest.raises(SynthError):
        synthesise_raw([_exchange("request", b"x", peer="http://h/wsman")])
    with pytest.raises(SynthError):
        synthesise_raw([_exchange("request", b"x")], mss=0)
    assert parse_binding("ncacn_ip_tcp:host.example[49667]") == ("host.example", 49667)
    masked = mask_secrets(b"a" + "s3cret".encode("utf-16-le") + b"s3cret", ["s3cret", ""])
    assert masked == b"a" + b"*" * 12 + b"*" * 6
    named = synthesise_raw([_exchange("request", _bind(1, IID_IWBEM_SERVICES), peer="ncacn_ip_tcp:wmi.host[135]")])
    (stream,) = reassemble(frames_from_bytes(pcapng_bytes(named)))
    assert stream.server[0].startswith("198.51.100.")
    assert struct.unpack_from("<H", b"".join(c for _, c in stream.to_server.chunks), 8)[0] > 16

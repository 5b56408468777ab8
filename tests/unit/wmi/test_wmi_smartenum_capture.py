"""Smart enumeration in captures: `wmh check-pcap` decodes the ObjectArray of IWbemWCOSmartEnum::Next
responses (MS-WMI 3.1.4.7.1, 2.2.14) into object summaries, resolving WBEMOBJECT_INSTANCE_NOCLASS
objects against classes sent in earlier calls of the same smart enumerator and proxyGUID."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.capture.check import check_capture, run_check_pcap
from harness.capture.dcerpc import dissect_stream
from harness.capture.dcerpc_synth import write_capture_all
from harness.capture.reader import HalfStream, TcpStream
from harness.capture.reference import record_wmi_exchanges
from harness.cim.mof import default_store
from harness.targets.mock import wmi_server as wmi_server_mod
from harness.transport.tap import Exchange
from harness.wire.dcom.ndr import NdrWriter
from harness.wire.dcom.orpc import (
    DualStringArray,
    ObjRefStandard,
    OrpcThis,
    StdObjRef,
    write_orpcthat,
    write_orpcthis,
)
from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Bind,
    BindAck,
    ContextElement,
    ContextResultEntry,
    Pdu,
    PType,
    Request,
    Response,
    encode_pdu,
)
from harness.wire.wmi.constants import IID_IWBEM_LEVEL1_LOGIN
from harness.wire.wmi.datapacket import ClassIdMap, encode_object_array
from harness.wire.wmi.smartenum import (
    IID_IWBEM_WCO_SMART_ENUM,
    SmartNextRequest,
    SmartNextResponse,
    write_get_smart_enum_response,
    write_next_request,
    write_next_response,
)

PASSWORD = "Sm4rt-Capture-9!"
NS = "root/cimv2"
STORE = default_store()
SERVICE_COUNT = len(STORE.enumerate_instances(NS, "Win32_Service"))
SERVICE_PROPERTIES = len(STORE.get_class(NS, "Win32_Service").properties)
SMART_NEXT = "IWbemWCOSmartEnum::Next"


def _record() -> list[Exchange]:
    async def work(client: Any) -> None:
        enum = await client.exec_query_enum("SELECT * FROM Win32_Service", smart=True)
        while not enum.done:
            await enum.next(5, timeout=5)
        await enum.release()

    return record_wmi_exchanges(work, PASSWORD)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smartenum") / "smart.pcapng"
    write_capture_all(_record(), path, secrets=[PASSWORD])
    return path


def _instances(objects: list[str]) -> int:
    total = 0
    for line in objects:
        if "Win32_Service instance" in line:
            assert line.endswith(f"Win32_Service instance, {SERVICE_PROPERTIES} properties"), line
            head = line.split(" x ", 1)[0]
            total += int(head) if " x " in line else 1
    return total


def test_check_pcap_reports_the_objects_of_every_smart_next(capture: Path) -> None:
    report = check_capture(capture, password=PASSWORD)
    assert report.passed, [m.errors for m in report.messages if m.verdict == "fail"]
    answers = [m for m in report.messages if m.action == SMART_NEXT and m.direction == "response"]
    assert len(answers) == -(-SERVICE_COUNT // 5) + (1 if SERVICE_COUNT % 5 == 0 else 0)
    assert sum(_instances(m.objects) for m in answers) == SERVICE_COUNT
    first = next(line for line in answers[0].objects if line.startswith("ObjectArray"))
    assert "1 instance(s) with their class, 4 without" in first
    later = [line for m in answers[1:] for line in m.objects if line.startswith("ObjectArray")]
    assert later and all("0 instance(s) with their class" in line for line in later)
    assert answers[-1].objects[-1] == "HRESULT 0x00000001"        # WBEM_S_FALSE at the end
    assert any(m.action == "IWbemFetchSmartEnum::GetSmartEnum" for m in report.messages)
    code, text = run_check_pcap(str(capture), as_json=False, password=PASSWORD)
    assert code == 0 and SMART_NEXT in text and "without (class sent before)" in text


def test_without_the_password_the_packets_stay_encrypted(capture: Path) -> None:
    report = check_capture(capture)
    answers = [m for m in report.messages if m.action == SMART_NEXT and m.direction == "response"]
    assert answers and all(m.verdict == "encrypted" and m.objects == ["NTLM PKT_PRIVACY"] for m in answers)


# ------------------------------------------------------------------ hand-built, aiowmi-style calls


def _stream(client_pdus: list[bytes], server_pdus: list[bytes]) -> TcpStream:
    def half(pdus: list[bytes], first: int) -> HalfStream:
        offsets, pos = [], 0
        for i, p in enumerate(pdus):
            offsets.append((pos, first + 2 * i))
            pos += len(p)
        data = b"".join(pdus)
        return HalfStream(chunks=[(0, data)] if data else [], frame_map=offsets)

    return TcpStream(0, ("127.0.0.1", 50000), ("127.0.0.1", 49700), 1, True,
                     half(client_pdus, 1), half(server_pdus, 2))


def _request(call_id: int, opnum: int, ipid: uuid.UUID, body: bytes = b"") -> bytes:
    w = NdrWriter()
    write_orpcthis(w, OrpcThis())
    return encode_pdu(Pdu(PType.REQUEST, call_id, Request(0, opnum, w.getvalue() + body, object_uuid=ipid)))


def _response(call_id: int, fill: NdrWriter) -> bytes:
    w = NdrWriter()
    write_orpcthat(w)
    return encode_pdu(Pdu(PType.RESPONSE, call_id, Response(0, w.getvalue() + fill.getvalue())))


def _next_pdus(call_id: int, smart: uuid.UUID, proxy: uuid.UUID, packet: bytes, returned: int) -> tuple[bytes, bytes]:
    req = NdrWriter()
    write_next_request(req, SmartNextRequest(proxy, 0xFFFFFFFF, returned))
    resp = NdrWriter()
    write_next_response(resp, SmartNextResponse(returned, packet, 0))
    return _request(call_id, 3, smart, req.getvalue()), _response(call_id, resp)


def test_smart_enumerator_called_on_a_foreign_context_is_named_by_its_ipid() -> None:
    """aiowmi calls every ORPC interface on the context it bound for IWbemLevel1Login; the IPID
    from GetSmartEnum's OBJREF_STANDARD identifies IWbemWCOSmartEnum (MS-DCOM 3.1.1.5.1)."""
    objects = wmi_server_mod._Objects(STORE, "WMH-CAP")
    insts = [objects.instance(NS, i) for i in STORE.enumerate_instances(NS, "Win32_Service")[:4]]
    smart, fetch, proxy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    objref = ObjRefStandard(IID_IWBEM_WCO_SMART_ENUM, StdObjRef(0x1000, 5, 1, 2, smart),
                            DualStringArray([], [])).encode()
    get = NdrWriter()
    write_get_smart_enum_response(get, objref, 0)
    ids = ClassIdMap()
    next1 = _next_pdus(3, smart, proxy, encode_object_array(insts[:2], class_ids=ids), 2)
    next2 = _next_pdus(4, smart, proxy, encode_object_array(insts[2:], class_ids=ids), 2)
    orphan_ids = ClassIdMap()
    encode_object_array(insts[:1], class_ids=orphan_ids)       # its class never reaches the capture
    next3 = _next_pdus(5, smart, uuid.uuid4(), encode_object_array(insts[1:2], class_ids=orphan_ids), 1)
    bind = encode_pdu(Pdu(PType.BIND, 1, Bind(contexts=[ContextElement(0, (IID_IWBEM_LEVEL1_LOGIN, 0, 0),
                                                                       [NDR_SYNTAX])])))
    ack = encode_pdu(Pdu(PType.BIND_ACK, 1, BindAck(secondary_address="49700",
                                                    results=[ContextResultEntry(0, 0, NDR_SYNTAX)])))
    client = [bind, _request(2, 3, fetch), next1[0], next2[0], next3[0]]
    server = [ack, _response(2, get), next1[1], next2[1], next3[1]]
    messages, _ = dissect_stream(_stream(client, server))
    by_call = {(m.call_id, m.direction): m for m in messages}
    assert by_call[(2, "request")].method == "IWbemLevel1Login::EstablishPosition"   # context name only
    for call in (3, 4):
        for direction in ("request", "response"):
            assert by_call[(call, direction)].method == SMART_NEXT
    assert by_call[(3, "response")].objects[0] == f"2 x Win32_Service instance, {SERVICE_PROPERTIES} properties"
    assert "1 instance(s) with their class, 1 without" in by_call[(3, "response")].objects[1]
    assert "0 instance(s) with their class, 2 without" in by_call[(4, "response")].objects[1]
    assert by_call[(4, "response")].verdict == "pass"
    broken = by_call[(5, "response")]           # another proxyGUID: its own, empty, class cache
    assert broken.verdict == "fail" and "names no class sent before" in broken.errors[0]

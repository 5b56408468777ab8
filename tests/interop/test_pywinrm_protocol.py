"""pywinrm's ``winrm.protocol.Protocol`` (unmodified, configured through its constructor only)
against a real ``wmh serve`` subprocess. The envelopes are literal XML written the way the Windows
WinRM client writes them (MS-WSMV 4 examples: prefixes s/a/n/w/p/b, header order, PT60.000S), plus
one built with pywinrm's own public header builder. pywinrm sends them and parses the faults.
Every request and response is also run through our XSDs."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import xmltodict
from _wire import WMI_CIMV2, MockServer, WireMessage, assert_valid
from winrm.exceptions import InvalidCredentialsError, WSManFaultError
from winrm.protocol import Protocol

from harness.validate import default_validator
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import (
    ERROR_WSMAN_ACTION_MISMATCH,
    ERROR_WSMAN_RESOURCE_NOT_FOUND,
    parse_fault,
)

pytestmark = pytest.mark.interop

SERVICE_URI = WMI_CIMV2 + "Win32_Service"
OS_URI = WMI_CIMV2 + "Win32_OperatingSystem"
NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmid": "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd",
}
MAX_PULLS = 200

#: Identify as the Windows client sends it (DSP0226 11; MS-WSMV 3.1.4.16): no addressing headers.
IDENTIFY = """<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">
  <s:Header/>
  <s:Body><wsmid:Identify/></s:Body>
</s:Envelope>"""

#: The Windows client's envelope (MS-WSMV 4.x examples): header order To, ResourceURI, ReplyTo,
#: Action, MaxEnvelopeSize, MessageID, Locale, DataLocale, SessionId, OperationID, SequenceId,
#: [SelectorSet], OperationTimeout.
ENVELOPE = """<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
    xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"
    xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
    xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
    xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd">
  <s:Header>
    <a:To>{to}</a:To>
    <w:ResourceURI s:mustUnderstand="true">{resource_uri}</w:ResourceURI>
    <a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
    <a:Action s:mustUnderstand="true">{action}</a:Action>
    <w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize>
    <a:MessageID>{message_id}</a:MessageID>
    <w:Locale xml:lang="en-US" s:mustUnderstand="false"/>
    <p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>
    <p:SessionId s:mustUnderstand="false">uuid:{session}</p:SessionId>
    <p:OperationID s:mustUnderstand="false">uuid:{operation}</p:OperationID>
    <p:SequenceId s:mustUnderstand="false">1</p:SequenceId>
    {selectors}
    <w:OperationTimeout>PT60.000S</w:OperationTimeout>
  </s:Header>
  <s:Body>{body}</s:Body>
</s:Envelope>"""

TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
SESSION = str(uuid.uuid4()).upper()


def new_id() -> str:
    return "uuid:" + str(uuid.uuid4()).upper()


class Recorder:
    """Sends through pywinrm and keeps what went over the wire (pywinrm returns the raw response;
    for faults pywinrm keeps it on the exception)."""

    def __init__(self, protocol: Protocol, endpoint: str) -> None:
        self.protocol = protocol
        self.endpoint = endpoint
        self.wire: list[WireMessage] = []

    def envelope(self, action: str, resource_uri: str, body: str = "", selectors: dict[str, str] | None = None,
                 message_id: str | None = None) -> str:
        selector_xml = ""
        if selectors:
            selector_xml = "<w:SelectorSet>" + "".join(
                f'<w:Selector Name="{k}">{v}</w:Selector>' for k, v in selectors.items()) + "</w:SelectorSet>"
        return ENVELOPE.format(to=self.endpoint, resource_uri=resource_uri, action=action,
                               message_id=message_id or new_id(), session=SESSION,
                               operation=str(uuid.uuid4()).upper(), selectors=selector_xml, body=body)

    def send(self, xml: str) -> ET.Element:
        self.wire.append(WireMessage("request", xml.encode("utf-8")))
        try:
            response = self.protocol.send_message(xml)
        except WSManFaultError as exc:
            self.wire.append(WireMessage("response", exc.response.encode("utf-8")))
            raise
        self.wire.append(WireMessage("response", response))
        return ET.fromstring(response)


@pytest.fixture
def winrm(mock_server: MockServer) -> Iterator[Recorder]:
    protocol = Protocol(mock_server.endpoint, transport="basic", username=mock_server.username,
                        password=mock_server.password, read_timeout_sec=10, operation_timeout_sec=5,
                        proxy=None, ca_trust_path=None)  # type: ignore[arg-type]  # None: documented by pywinrm
    try:
        yield Recorder(protocol, mock_server.endpoint)
    finally:
        session = protocol.transport.session
        if session is not None:
            session.close()


def relates_to(root: ET.Element) -> str | None:
    return root.findtext("s:Header/a:RelatesTo", namespaces=NS)


# ------------------------------------------------------------------------------------- identify
@pytest.mark.spec("MS-WSMV 3.1.4.16", "DSP0226 11")
def test_identify(winrm: Recorder) -> None:
    root = winrm.send(IDENTIFY)
    response = root.find("s:Body/wsmid:IdentifyResponse", NS)
    assert response is not None, ET.tostring(root)[:500]
    assert response.findtext("wsmid:ProtocolVersion", namespaces=NS) == NS["w"]
    assert response.findtext("wsmid:ProductVendor", namespaces=NS) == "Microsoft Corporation"
    assert (response.findtext("wsmid:ProductVersion", namespaces=NS) or "").startswith("OS: ")
    assert_valid(winrm.wire)


def test_wrong_password_is_rejected_by_http_401(mock_server: MockServer) -> None:
    """MS-WSMV 2.2.9.1: bad credentials are an HTTP 401, which pywinrm reports as such."""
    protocol = Protocol(mock_server.endpoint, transport="basic", username=mock_server.username,
                        password="not-" + mock_server.password, read_timeout_sec=10,
                        operation_timeout_sec=5, proxy=None, ca_trust_path=None)  # type: ignore[arg-type]  # None: documented by pywinrm
    with pytest.raises(InvalidCredentialsError):
        protocol.send_message(IDENTIFY)


# ------------------------------------------------------------------------------------- transfer
@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 7.3")
def test_raw_get(winrm: Recorder) -> None:
    message_id = new_id()
    root = winrm.send(winrm.envelope(TRANSFER + "Get", SERVICE_URI, selectors={"Name": "Spooler"},
                                     message_id=message_id))
    assert relates_to(root) == message_id
    assert root.findtext("s:Header/a:Action", namespaces=NS) == TRANSFER + "GetResponse"
    instance = root.find(f"s:Body/{{{SERVICE_URI}}}Win32_Service", NS)
    assert instance is not None
    assert instance.findtext(f"{{{SERVICE_URI}}}Name") == "Spooler"
    assert_valid(winrm.wire)


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 7.3")
def test_get_built_with_pywinrm_header_builder(winrm: Recorder) -> None:
    """pywinrm's public ``build_wsman_header`` (its documented way to send custom requests):
    a Get of the Win32_OperatingSystem singleton, which needs no selectors.

    Observed pywinrm behaviour: its header puts ``mustUnderstand`` without the SOAP namespace on
    ReplyTo/Address, MaxEnvelopeSize, ResourceURI and Action (SOAP 1.2 part 1 5.2.3 defines only
    ``s:mustUnderstand``), and ``a:To`` is the literal ``http://windows-host:5985/wsman``. Windows
    ignores both; the mock must too.
    """
    request = {"env:Envelope": winrm.protocol.build_wsman_header(action=TRANSFER + "Get", resource_uri=OS_URI)}
    # SOAP 1.2 part 1 5.3: s:Body is mandatory; pywinrm's own operations add it the same way.
    request["env:Envelope"].setdefault("env:Body", {})
    message_id = request["env:Envelope"]["env:Header"]["a:MessageID"]
    xml = xmltodict.unparse(request)
    root = winrm.send(xml)
    assert relates_to(root) == message_id
    os_el = root.find(f"s:Body/{{{OS_URI}}}Win32_OperatingSystem", NS)
    assert os_el is not None, ET.tostring(root)[:500]
    assert (os_el.findtext(f"{{{OS_URI}}}Caption") or "").startswith("Microsoft Windows")
    request_wire, response_wire = winrm.wire
    # pywinrm's deviation (above) is the only thing our XSDs find in its request; the answer is valid.
    errors = default_validator().validate(request_wire.body)
    assert errors and all("attribute 'mustUnderstand'" in e and "not allowed" in e for e in errors), errors
    assert_valid([response_wire])


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 14", "MS-WSMV 2.2.4.x WSManFault")
def test_missing_instance_fault_as_pywinrm_parses_it(winrm: Recorder) -> None:
    with pytest.raises(WSManFaultError) as info:
        winrm.send(winrm.envelope(TRANSFER + "Get", SERVICE_URI, selectors={"Name": "NoSuchService"}))
    err = info.value
    sent = parse_fault(parse_envelope(err.response.encode("utf-8")))  # what our server sent, our parser
    assert err.code == 500  # observed Windows behaviour: every fault is HTTP 500
    assert err.fault_code == sent.code == "s:Sender"
    assert err.fault_subcode == sent.subcode == "a:DestinationUnreachable"
    assert err.wsman_fault_code == sent.wsman_code == ERROR_WSMAN_RESOURCE_NOT_FOUND
    assert err.reason == sent.reason and "0x80041002" in err.reason  # the WMI status, in the text
    assert_valid(winrm.wire)


@pytest.mark.spec("MS-WSMV 3.1.4.15", "DSP0226 14")
def test_unknown_action_fault_as_pywinrm_parses_it(winrm: Recorder) -> None:
    with pytest.raises(WSManFaultError) as info:
        winrm.send(winrm.envelope("http://example.invalid/NotAnAction", SERVICE_URI, selectors={"Name": "WinRM"}))
    err = info.value
    sent = parse_fault(parse_envelope(err.response.encode("utf-8")))
    assert err.fault_subcode == sent.subcode == "a:ActionNotSupported"
    assert err.wsman_fault_code == sent.wsman_code == ERROR_WSMAN_ACTION_MISMATCH
    assert_valid(winrm.wire)


# ---------------------------------------------------------------------------------- enumeration
def _items(response: ET.Element, items_path: str) -> list[ET.Element]:
    items = response.find(items_path, NS)
    return list(items) if items is not None else []


@pytest.mark.spec("MS-WSMV 3.1.4.8", "MS-WSMV 3.1.4.9", "DSP0226 8.2.3", "DSP0226 8.4")
def test_raw_enumerate_and_pull(winrm: Recorder, service_names: set[str]) -> None:
    enumerate_body = "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>6</w:MaxElements></n:Enumerate>"
    root = winrm.send(winrm.envelope(ENUMERATION + "Enumerate", SERVICE_URI, enumerate_body))
    response = root.find("s:Body/n:EnumerateResponse", NS)
    assert response is not None, ET.tostring(root)[:500]
    items = _items(response, "w:Items")
    assert len(items) == 6
    done = response.find("w:EndOfSequence", NS) is not None
    context = response.findtext("n:EnumerationContext", namespaces=NS)
    pulls = 0
    while not done:
        assert context and pulls < MAX_PULLS
        pull_body = (f"<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext>"
                     "<n:MaxElements>6</n:MaxElements></n:Pull>")
        pulled = winrm.send(winrm.envelope(ENUMERATION + "Pull", SERVICE_URI, pull_body)).find(
            "s:Body/n:PullResponse", NS)
        assert pulled is not None
        page = _items(pulled, "n:Items")
        assert 0 < len(page) <= 6
        items.extend(page)
        done = pulled.find("n:EndOfSequence", NS) is not None
        context = pulled.findtext("n:EnumerationContext", namespaces=NS) or context
        pulls += 1
    names = [i.findtext(f"{{{SERVICE_URI}}}Name") for i in items]
    assert len(names) == len(set(names))
    assert set(names) == service_names
    assert_valid(winrm.wire)


@pytest.mark.spec("MS-WSMV 3.1.4.8", "MS-WSMV 3.1.4.10", "DSP0226 8.5")
def test_raw_enumerate_then_release(winrm: Recorder) -> None:
    """A plain (not optimized) Enumerate answers only a context (DSP0226 8.2); Release ends it and
    a Pull on the released context is wsen:InvalidEnumerationContext."""
    root = winrm.send(winrm.envelope(ENUMERATION + "Enumerate", SERVICE_URI, "<n:Enumerate/>"))
    response = root.find("s:Body/n:EnumerateResponse", NS)
    assert response is not None
    assert response.find("w:Items", NS) is None
    context = response.findtext("n:EnumerationContext", namespaces=NS)
    assert context
    release = f"<n:Release><n:EnumerationContext>{context}</n:EnumerationContext></n:Release>"
    root = winrm.send(winrm.envelope(ENUMERATION + "Release", SERVICE_URI, release))
    assert root.findtext("s:Header/a:Action", namespaces=NS) == ENUMERATION + "ReleaseResponse"
    pull = f"<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext></n:Pull>"
    with pytest.raises(WSManFaultError) as info:
        winrm.send(winrm.envelope(ENUMERATION + "Pull", SERVICE_URI, pull))
    assert (info.value.fault_subcode or "").endswith(":InvalidEnumerationContext")
    assert_valid(winrm.wire)

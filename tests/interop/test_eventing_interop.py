"""WS-Eventing over WS-Man (DSP0226 10; MS-WSMV 3.1.4.6, 3.1.4.7; MS-WMOD 3.3) between unmodified
third-party clients and a real ``wmh serve`` subprocess: a pull-mode Subscribe, Pulls that return
the events, and Unsubscribe. Every message is also run through our XSDs.

pypsrp has no eventing API. Its raw path is ``WSMan.invoke(action, resource_uri, resource,
option_set, selector_set, timeout)`` (``WSMan.send`` is the WinRS Send of MS-WSMV 3.1.4.13, not a
generic sender): it writes the standard WS-Man header and puts any element in the body, which is
enough for Subscribe (a ``wse:Subscribe`` body) and Pull (``WSMan.pull`` with a ``wsen:Pull`` body
naming the subscription's enumeration context). It cannot express Unsubscribe: DSP0226 10.4 (and
WS-Addressing 2004/08 3.3) require the subscription manager's reference parameter
``wse:Identifier`` as a SOAP *header*, and ``WSMan._create_header`` only ever writes Action,
DataLocale, Locale, MaxEnvelopeSize, MessageID, OperationTimeout, ReplyTo, ResourceURI, To, and the
option and selector sets -- no arbitrary header block. Unsubscribe therefore goes through pywinrm's
``Protocol.send_message``, which sends a complete envelope we write ourselves.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from _wire import WMI_CIMV2, MockServer, WireMessage, assert_valid, capture_pypsrp, pypsrp_messages
from lxml import etree
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan
from winrm.exceptions import WinRMOperationTimeoutError
from winrm.exceptions import WSManFaultError as WinRMFaultError
from winrm.protocol import Protocol

from harness.wire.wsman.cimxml import element_to_properties

pytestmark = pytest.mark.interop

ALL_CLASSES = WMI_CIMV2 + "*"
ENVIRONMENT_URI = WMI_CIMV2 + "Win32_Environment"
WSE = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
SUBSCRIBE = WSE + "/Subscribe"
UNSUBSCRIBE = WSE + "/Unsubscribe"
PULL_MODE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"


def _query(prefix: str) -> str:
    return (f"SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
            f"AND TargetInstance.Name LIKE '{prefix}%'")


def _subscribe_body(wql: str) -> ET.Element:
    """``wse:Subscribe`` in Pull delivery mode (DSP0226 10.2, 10.2.9.4) with a WQL filter."""
    sub = ET.Element(f"{{{WSE}}}Subscribe")
    ET.SubElement(sub, f"{{{WSE}}}Delivery", Mode=PULL_MODE)
    ET.SubElement(sub, f"{{{WSE}}}Expires").text = "PT600.000S"
    ET.SubElement(sub, f"{{{WSMAN}}}Filter", Dialect=WQL).text = wql
    return sub


def _pull_body(context: str, max_elements: int = 10) -> ET.Element:
    pull = ET.Element(f"{{{WSEN}}}Pull")
    ET.SubElement(pull, f"{{{WSEN}}}EnumerationContext").text = context
    ET.SubElement(pull, f"{{{WSEN}}}MaxTime").text = "PT5.000S"
    ET.SubElement(pull, f"{{{WSEN}}}MaxElements").text = str(max_elements)
    return pull


def _manager(response_root: ET.Element) -> tuple[str, str]:
    """(identifier, enumeration context) of a SubscribeResponse (DSP0226 10.2.4, 10.2.9.4)."""
    resp = response_root.find(f"{{{SOAP}}}Body/{{{WSE}}}SubscribeResponse")
    assert resp is not None, ET.tostring(response_root)[:600]
    ident = resp.findtext(f"{{{WSE}}}SubscriptionManager/{{{WSA}}}ReferenceParameters/{{{WSE}}}Identifier")
    context = resp.findtext(f"{{{WSEN}}}EnumerationContext")
    assert ident and context, "a Pull-mode subscription names its Identifier and EnumerationContext"
    return ident, context


def _event_names(pull_body: ET.Element) -> list[str]:
    """TargetInstance.Name of each wsman:Event item of a PullResponse, in order."""
    items = pull_body.find(f"{{{WSEN}}}PullResponse/{{{WSEN}}}Items")
    assert items is not None, ET.tostring(pull_body)[:600]
    names = []
    for event in items.findall(f"{{{WSMAN}}}Event"):
        assert event.get("Action"), "each event item carries its Action (DSP0226 10.2.9.4)"
        [instance] = list(event)
        props = element_to_properties(etree.fromstring(ET.tostring(instance)))
        target = props.get("TargetInstance")
        assert isinstance(target, dict)
        names.append(str(target["Name"]))
    return names


def _environment(name: str) -> ET.Element:
    new = ET.Element(f"{{{ENVIRONMENT_URI}}}Win32_Environment")
    ET.SubElement(new, f"{{{ENVIRONMENT_URI}}}Name").text = name
    ET.SubElement(new, f"{{{ENVIRONMENT_URI}}}UserName").text = "<SYSTEM>"
    ET.SubElement(new, f"{{{ENVIRONMENT_URI}}}VariableValue").text = "interop"
    return new


def _selectors(name: str) -> SelectorSet:
    s = SelectorSet()
    s.add_option("Name", name)
    s.add_option("UserName", "<SYSTEM>")
    return s


@pytest.fixture
def psrp(mock_server: MockServer, caplog: pytest.LogCaptureFixture) -> Iterator[WSMan]:
    capture_pypsrp(caplog)
    client = WSMan(mock_server.host, port=mock_server.port, username=mock_server.username,
                   password=mock_server.password, ssl=False, path="wsman", auth="basic",
                   encryption="never", no_proxy=True, connection_timeout=5, read_timeout=15,
                   operation_timeout=5)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def winrm_protocol(mock_server: MockServer) -> Iterator[Protocol]:
    protocol = Protocol(mock_server.endpoint, transport="basic", username=mock_server.username,
                        password=mock_server.password, read_timeout_sec=15, operation_timeout_sec=10,
                        proxy=None, ca_trust_path=None)  # type: ignore[arg-type]  # None: documented by pywinrm
    try:
        yield protocol
    finally:
        session = protocol.transport.session
        if session is not None:
            session.close()


#: A complete envelope as the Windows client writes it, for pywinrm's send_message; ``extra`` holds
#: additional header blocks (the wse:Identifier reference parameter, DSP0226 10.4).
ENVELOPE = """<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
    xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing"
    xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"
    xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
  <s:Header>
    <a:To>{to}</a:To>
    <w:ResourceURI s:mustUnderstand="true">{resource_uri}</w:ResourceURI>
    <a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
    <a:Action s:mustUnderstand="true">{action}</a:Action>
    <w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize>
    <a:MessageID>uuid:{message_id}</a:MessageID>
    <w:Locale xml:lang="en-US" s:mustUnderstand="false"/>
    <w:OperationTimeout>PT10.000S</w:OperationTimeout>
    {extra}
  </s:Header>
  <s:Body>{body}</s:Body>
</s:Envelope>"""


def _winrm_send(protocol: Protocol, endpoint: str, wire: list[WireMessage], action: str, body: str,
                extra: str = "") -> ET.Element:
    xml = ENVELOPE.format(to=endpoint, resource_uri=ALL_CLASSES, action=action, message_id=str(uuid.uuid4()).upper(),
                          extra=extra, body=body)
    wire.append(WireMessage("request", xml.encode("utf-8")))
    try:
        response = protocol.send_message(xml)
    except WinRMFaultError as exc:
        wire.append(WireMessage("response", exc.response.encode("utf-8")))
        raise
    wire.append(WireMessage("response", response))
    return ET.fromstring(response)


def _unsubscribe(protocol: Protocol, endpoint: str, wire: list[WireMessage], identifier: str) -> ET.Element:
    return _winrm_send(protocol, endpoint, wire, UNSUBSCRIBE, "<e:Unsubscribe/>",
                       f"<e:Identifier>{identifier}</e:Identifier>")


@pytest.mark.spec("MS-WMOD 3.3", "MS-WSMV 3.1.4.6", "DSP0226 10.2.9.4", "DSP0226 10.4")
def test_pypsrp_subscribes_and_pulls_events(psrp: WSMan, caplog: pytest.LogCaptureFixture,
                                            winrm_protocol: Protocol, mock_server: MockServer) -> None:
    prefix = "WMH_EVI_" + uuid.uuid4().hex[:8].upper()
    names = [f"{prefix}_{i}" for i in range(3)]
    response = psrp.invoke(SUBSCRIBE, ALL_CLASSES, _subscribe_body(_query(prefix)))
    identifier, context = _manager(response)
    wire: list[WireMessage] = []
    try:
        for name in names:
            psrp.create(ENVIRONMENT_URI, _environment(name))
        got: list[str] = []
        for _ in range(5):
            body = psrp.pull(ALL_CLASSES, _pull_body(context, max_elements=2))
            page = _event_names(body)
            assert 0 < len(page) <= 2, "a Pull honours MaxElements and returns at least one event"
            got.extend(page)
            if len(got) >= len(names):
                break
        assert got == names, "every creation exactly once, in order"
        assert_valid(pypsrp_messages(caplog))
    finally:
        root = _unsubscribe(winrm_protocol, mock_server.endpoint, wire, identifier)
        assert root.find(f"{{{SOAP}}}Header/{{{WSA}}}Action").text == UNSUBSCRIBE + "Response"  # type: ignore[union-attr]
        for name in names:
            psrp.delete(ENVIRONMENT_URI, selector_set=_selectors(name))
    assert_valid(wire)


@pytest.mark.spec("MS-WMOD 3.3", "MS-WSMV 3.1.4.6", "MS-WSMV 3.1.4.7", "DSP0226 10.2.9.4")
def test_pywinrm_subscribe_pull_unsubscribe(winrm_protocol: Protocol, mock_server: MockServer,
                                            psrp: WSMan) -> None:
    prefix = "WMH_EVW_" + uuid.uuid4().hex[:8].upper()
    wire: list[WireMessage] = []
    subscribe = ET.tostring(_subscribe_body(_query(prefix)), encoding="unicode")
    identifier, context = _manager(_winrm_send(winrm_protocol, mock_server.endpoint, wire, SUBSCRIBE, subscribe))
    try:
        psrp.create(ENVIRONMENT_URI, _environment(prefix))
        pull = ET.tostring(_pull_body(context), encoding="unicode")
        root = _winrm_send(winrm_protocol, mock_server.endpoint, wire, WSEN + "/Pull", pull)
        body = root.find(f"{{{SOAP}}}Body")
        assert body is not None
        assert _event_names(body) == [prefix]
        short = pull.replace("PT5.000S", "PT0.200S")
        # pywinrm turns the w:TimedOut fault (ERROR_WSMAN_OPERATION_TIMEDOUT) into its own exception.
        with pytest.raises(WinRMOperationTimeoutError):
            _winrm_send(winrm_protocol, mock_server.endpoint, wire, WSEN + "/Pull", short)
    finally:
        _unsubscribe(winrm_protocol, mock_server.endpoint, wire, identifier)
        psrp.delete(ENVIRONMENT_URI, selector_set=_selectors(prefix))
    with pytest.raises(WinRMFaultError):
        _winrm_send(winrm_protocol, mock_server.endpoint, wire, WSEN + "/Pull", pull)
    assert_valid(wire)


def test_namespaces_match_pypsrp() -> None:
    """pypsrp's own namespace table names the same WS-Enumeration and WS-Man URIs we write."""
    assert NAMESPACES["wsen"] == WSEN and NAMESPACES["wsman"] == WSMAN and NAMESPACES["wsa"] == WSA

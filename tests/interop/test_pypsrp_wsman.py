"""pypsrp's ``pypsrp.wsman.WSMan`` (unmodified, configured through its constructor only) against a
real ``wmh serve`` subprocess: WS-Transfer, WS-Enumeration, custom actions and faults, parsed by a
client we did not write. Every message pypsrp sends and receives is also run through our XSDs."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from _wire import WMI_CIMV2, MockServer, assert_valid, capture_pypsrp, pypsrp_messages
from pypsrp.exceptions import WSManFaultError
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import (
    ERROR_WSMAN_ENUMERATE_INVALID_ENUMERATION_CONTEXT,
    ERROR_WSMAN_RESOURCE_NOT_FOUND,
    parse_fault,
)

pytestmark = pytest.mark.interop

NS = NAMESPACES
SERVICE_URI = WMI_CIMV2 + "Win32_Service"
ENVIRONMENT_URI = WMI_CIMV2 + "Win32_Environment"
PROCESS_URI = WMI_CIMV2 + "Win32_Process"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
MAX_PULLS = 200


@pytest.fixture
def psrp(mock_server: MockServer, caplog: pytest.LogCaptureFixture) -> Iterator[WSMan]:
    """A pypsrp WSMan client on the mock: Basic auth over plain HTTP (so no message encryption)."""
    capture_pypsrp(caplog)
    client = WSMan(mock_server.host, port=mock_server.port, username=mock_server.username,
                   password=mock_server.password, ssl=False, path="wsman", auth="basic",
                   encryption="never", no_proxy=True, connection_timeout=5, read_timeout=10,
                   operation_timeout=5)
    try:
        yield client
    finally:
        client.close()


def q(prefix: str, local: str) -> str:
    """Clark notation of a name in one of pypsrp's namespaces."""
    return f"{{{NS[prefix]}}}{local}"


def selectors(**values: str) -> SelectorSet:
    s = SelectorSet()
    for name, value in values.items():
        s.add_option(name, value)
    return s


def prop(instance: ET.Element, uri: str, name: str) -> str | None:
    el = instance.find(f"{{{uri}}}{name}")
    assert el is not None, f"{name} missing in {ET.tostring(instance)[:400]!r}"
    return el.text


def last_response(caplog: pytest.LogCaptureFixture) -> bytes:
    responses = [m for m in pypsrp_messages(caplog) if m.direction == "response"]
    assert responses, "pypsrp logged no response"
    return responses[-1].body


# ------------------------------------------------------------------------------------- transfer
@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 7.3")
def test_get_service(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    body = psrp.get(SERVICE_URI, selector_set=selectors(Name="WinRM"))
    instance = body.find(f"{{{SERVICE_URI}}}Win32_Service")
    assert instance is not None, ET.tostring(body)[:500]
    assert prop(instance, SERVICE_URI, "Name") == "WinRM"
    assert prop(instance, SERVICE_URI, "State") in {"Running", "Stopped"}
    assert_valid(pypsrp_messages(caplog))


@pytest.mark.spec("MS-WSMV 3.1.4.5", "MS-WSMV 3.1.4.1", "MS-WSMV 3.1.4.6", "DSP0226 7.5", "DSP0226 7.6")
def test_create_get_delete_environment(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    name = "WMH_INTEROP_" + uuid.uuid4().hex[:8].upper()
    p = ENVIRONMENT_URI
    new = ET.Element(f"{{{p}}}Win32_Environment")
    ET.SubElement(new, f"{{{p}}}Name").text = name
    ET.SubElement(new, f"{{{p}}}UserName").text = "<SYSTEM>"
    ET.SubElement(new, f"{{{p}}}VariableValue").text = "interop"
    created = psrp.create(p, new)

    # DSP0226 7.5: the response is the EPR of the new object; use ITS selectors for what follows.
    rc = created.find("wst:ResourceCreated", NS)
    assert rc is not None, ET.tostring(created)[:500]
    assert rc.findtext("wsa:ReferenceParameters/wsman:ResourceURI", namespaces=NS) == p
    got_selectors = {s.get("Name"): s.text for s in rc.findall(
        "wsa:ReferenceParameters/wsman:SelectorSet/wsman:Selector", NS)}
    assert got_selectors == {"Name": name, "UserName": "<SYSTEM>"}

    sel = selectors(**{k: v for k, v in got_selectors.items() if k and v})
    body = psrp.get(p, selector_set=sel)
    instance = body.find(f"{{{p}}}Win32_Environment")
    assert instance is not None
    assert prop(instance, p, "Name") == name
    assert prop(instance, p, "VariableValue") == "interop"

    psrp.delete(p, selector_set=sel)
    with pytest.raises(WSManFaultError) as info:
        psrp.get(p, selector_set=sel)
    # Observed Windows behaviour (see harness.wire.wsman.faults): a missing WMI instance is
    # ERROR_WSMAN_RESOURCE_NOT_FOUND; pypsrp surfaces the f:WSManFault Code over the subcode.
    assert info.value.code == ERROR_WSMAN_RESOURCE_NOT_FOUND
    assert info.value.reason
    assert_valid(pypsrp_messages(caplog))


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 14", "MS-WSMV 2.2.4.x WSManFault")
def test_missing_instance_fault_as_pypsrp_parses_it(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(WSManFaultError) as info:
        psrp.get(SERVICE_URI, selector_set=selectors(Name="NoSuchService"))
    err = info.value
    # What our server sent, read with our own parser; pypsrp must have found the same fields.
    sent = parse_fault(parse_envelope(last_response(caplog)))
    assert sent.subcode == "a:DestinationUnreachable"
    assert sent.wsman_code == ERROR_WSMAN_RESOURCE_NOT_FOUND
    assert err.code == sent.wsman_code  # pypsrp: the WSManFault Code wins over the s:Subcode
    assert err.machine == sent.machine and err.machine
    assert err.reason == (sent.message or sent.reason).strip()
    assert_valid(pypsrp_messages(caplog))


# ---------------------------------------------------------------------------------- enumeration
def _enumerate_body(max_elements: int, *, wql: str | None = None, mode: str | None = None) -> ET.Element:
    enum = ET.Element(q("wsen", "Enumerate"))
    ET.SubElement(enum, q("wsman", "OptimizeEnumeration"))
    ET.SubElement(enum, q("wsman", "MaxElements")).text = str(max_elements)
    if mode is not None:
        ET.SubElement(enum, q("wsman", "EnumerationMode")).text = mode
    if wql is not None:
        ET.SubElement(enum, q("wsman", "Filter"), Dialect=WQL).text = wql
    return enum


def _pull_body(context: str, max_elements: int) -> ET.Element:
    pull = ET.Element(q("wsen", "Pull"))
    ET.SubElement(pull, q("wsen", "EnumerationContext")).text = context
    ET.SubElement(pull, q("wsen", "MaxElements")).text = str(max_elements)
    return pull


def enumerate_all(psrp: WSMan, uri: str, max_elements: int, **kwargs: str) -> tuple[list[ET.Element], int]:
    """Optimized Enumerate, then Pull until EndOfSequence (DSP0226 8.2.3, 8.4). Returns the items
    (children of wsman:Items / wsen:Items) and the number of round trips."""
    body = psrp.enumerate(uri, _enumerate_body(max_elements, **kwargs))
    response = body.find("wsen:EnumerateResponse", NS)
    assert response is not None, ET.tostring(body)[:500]
    items = list(response.find("wsman:Items", NS) or [])
    done = response.find("wsman:EndOfSequence", NS) is not None
    context = response.findtext("wsen:EnumerationContext", namespaces=NS)
    trips = 1
    while not done:
        assert context, "no EndOfSequence and no EnumerationContext"
        assert trips < MAX_PULLS, "enumeration does not end"
        pulled = psrp.pull(uri, _pull_body(context, max_elements)).find("wsen:PullResponse", NS)
        assert pulled is not None
        page = list(pulled.find("wsen:Items", NS) or [])
        assert 0 < len(page) <= max_elements * (2 if kwargs.get("mode") == "EnumerateObjectAndEPR" else 1)
        items.extend(page)
        done = pulled.find("wsen:EndOfSequence", NS) is not None
        context = pulled.findtext("wsen:EnumerationContext", namespaces=NS) or context
        trips += 1
    return items, trips


@pytest.mark.spec("MS-WSMV 3.1.4.8", "MS-WSMV 3.1.4.9", "DSP0226 8.2.3", "DSP0226 8.4")
def test_enumerate_and_pull_all_services(psrp: WSMan, caplog: pytest.LogCaptureFixture,
                                         service_names: set[str]) -> None:
    items, trips = enumerate_all(psrp, SERVICE_URI, 4)
    names = [prop(i, SERVICE_URI, "Name") for i in items]
    assert len(names) == len(set(names)), "an item came twice"
    assert set(names) == service_names
    assert trips == -(-len(service_names) // 4)  # every page full but the last
    assert_valid(pypsrp_messages(caplog))


@pytest.mark.spec("MS-WSMV 3.1.4.8", "DSP0226 8.3", "MS-WSMV 2.2.4.x WQL filter")
def test_enumerate_with_wql_filter(psrp: WSMan, caplog: pytest.LogCaptureFixture,
                                   service_names: set[str]) -> None:
    from harness.cim.mof import default_store

    expected = {str(i["Name"]) for i in default_store().enumerate_instances("root/cimv2", "Win32_Service")
                if i["State"] == "Running"}
    assert expected and expected != service_names  # the filter must select something, not everything
    items, _ = enumerate_all(psrp, SERVICE_URI, 5,
                             wql="SELECT * FROM Win32_Service WHERE State = 'Running'")
    assert {prop(i, SERVICE_URI, "Name") for i in items} == expected
    assert all(prop(i, SERVICE_URI, "State") == "Running" for i in items)
    assert_valid(pypsrp_messages(caplog))


@pytest.mark.spec("MS-WSMV 3.1.4.8", "DSP0226 8.7 EnumerateEPR")
def test_enumerate_epr_mode(psrp: WSMan, caplog: pytest.LogCaptureFixture, service_names: set[str]) -> None:
    items, _ = enumerate_all(psrp, SERVICE_URI, 10, mode="EnumerateEPR")
    assert all(i.tag == q("wsa", "EndpointReference") for i in items)
    names = set()
    for epr in items:
        assert epr.findtext("wsa:ReferenceParameters/wsman:ResourceURI", namespaces=NS) == SERVICE_URI
        for s in epr.findall("wsa:ReferenceParameters/wsman:SelectorSet/wsman:Selector", NS):
            if s.get("Name") == "Name":
                names.add(s.text)
    assert names == service_names
    assert_valid(pypsrp_messages(caplog))


@pytest.mark.spec("MS-WSMV 3.1.4.9", "DSP0226 8.4")
def test_pull_with_unknown_context_is_a_fault(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(WSManFaultError) as info:
        psrp.pull(SERVICE_URI, _pull_body("uuid:" + str(uuid.uuid4()).upper(), 1))
    sent = parse_fault(parse_envelope(last_response(caplog)))
    assert sent.subcode == "wsen:InvalidEnumerationContext" or sent.subcode.endswith(":InvalidEnumerationContext")
    assert info.value.code == sent.wsman_code == ERROR_WSMAN_ENUMERATE_INVALID_ENUMERATION_CONTEXT
    assert_valid(pypsrp_messages(caplog))


# --------------------------------------------------------------------------------------- invoke
@pytest.mark.spec("MS-WSMV 3.1.4.15", "DSP0227 9", "MS-WMOD 2.5.2.2")
def test_invoke_process_create_and_terminate(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    p = PROCESS_URI
    create_in = ET.Element(f"{{{p}}}Create_INPUT")
    ET.SubElement(create_in, f"{{{p}}}CommandLine").text = "notepad.exe interop.txt"
    response = psrp.invoke(f"{p}/Create", p, create_in)
    out = response.find(f"s:Body/{{{p}}}Create_OUTPUT", NS)
    assert out is not None, ET.tostring(response)[:600]
    assert out.findtext(f"{{{p}}}ReturnValue") == "0"
    pid = out.findtext(f"{{{p}}}ProcessId")
    assert pid is not None and int(pid) > 0

    # The new process is a real instance of the store: Get it, then Terminate it (an instance method).
    body = psrp.get(p, selector_set=selectors(Handle=pid))
    process = body.find(f"{{{p}}}Win32_Process")
    assert process is not None
    assert prop(process, p, "ProcessId") == pid
    assert prop(process, p, "Name") == "notepad.exe"

    terminate_in = ET.Element(f"{{{p}}}Terminate_INPUT")
    ET.SubElement(terminate_in, f"{{{p}}}Reason").text = "0"
    response = psrp.invoke(f"{p}/Terminate", p, terminate_in, selector_set=selectors(Handle=pid))
    assert response.findtext(f"s:Body/{{{p}}}Terminate_OUTPUT/{{{p}}}ReturnValue", namespaces=NS) == "0"
    with pytest.raises(WSManFaultError) as info:
        psrp.get(p, selector_set=selectors(Handle=pid))
    assert info.value.code == ERROR_WSMAN_RESOURCE_NOT_FOUND
    assert_valid(pypsrp_messages(caplog))


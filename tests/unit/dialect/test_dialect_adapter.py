"""harness.wire.wsman.dialect: MS-WSMV <-> MS-WSMAN 2005/06 rewriting, detection, refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from harness.validate.schema import WSManValidator
from harness.wire.wsman import dialect as d
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import build_fault, make_fault, parse_fault
from harness.wire.wsman.header import EndpointReference, Header, Option
from harness.wire.wsman.ns import NS_SOAP, NS_WSMAN, RESOURCE_WMI_PREFIX, Action

SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
SERVICE_2005 = d.RESOURCE_WMI_PREFIX_2005 + "root/cimv2/Win32_Service"
EPR = EndpointReference(address="http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous",
                        resource_uri=SERVICE, selectors={"Name": "WinRM"})


def _header(action: str = "") -> Header:
    return Header(action=action, resource_uri=SERVICE, selectors={"Name": "WinRM"}, max_envelope_size=512000,
                  operation_timeout=60.0, locale="en-US", options=[Option("opt", "1", must_comply=False)])


def _instance(name: str = "WinRM") -> etree._Element:
    el = etree.Element(f"{{{SERVICE}}}Win32_Service", nsmap={"p": SERVICE})
    etree.SubElement(el, f"{{{SERVICE}}}Name").text = name
    return el


MESSAGES: dict[str, Callable[[], bytes]] = {
    "get": lambda: msg.build_get_request(_header()),
    "get-response": lambda: msg.build_get_response("uuid:1", _instance()),
    "put": lambda: msg.build_put_request(_header(), _instance()),
    "put-response": lambda: msg.build_put_response("uuid:1", _instance()),
    "create": lambda: msg.build_create_request(_header(), _instance()),
    "create-response": lambda: msg.build_create_response("uuid:1", EPR),
    "delete": lambda: msg.build_delete_request(_header()),
    "delete-response": lambda: msg.build_delete_response("uuid:1"),
    "enumerate": lambda: msg.build_enumerate_request(_header(), msg.EnumerateRequest(
        enumeration_mode="EnumerateObjectAndEPR", optimize=True, max_elements=5, expires="PT60S")),
    "enumerate-response": lambda: msg.build_enumerate_response("uuid:1", msg.EnumerationItems(
        items=[_instance("a"), _instance("b")], epr_items=[EPR, EPR], context="ctx", end_of_sequence=False)),
    "pull": lambda: msg.build_pull_request(_header(), msg.PullRequest("ctx", 5, "PT10S")),
    "pull-response": lambda: msg.build_pull_response("uuid:1", msg.EnumerationItems(
        items=[_instance("c")], end_of_sequence=True)),
    "pull-response-epr": lambda: msg.build_pull_response("uuid:1", msg.EnumerationItems(
        epr_items=[EPR], context="ctx2")),
    "release": lambda: msg.build_release_request(_header(), "ctx"),
    "release-response": lambda: msg.build_release_response("uuid:1"),
    "invoke": lambda: msg.build_invoke_request(_header(), "StopService", {}),
    "invoke-response": lambda: msg.build_invoke_response("uuid:1", SERVICE, "StopService", 0, {}),
    "fault": lambda: build_fault(make_fault("InvalidSelectors"), "uuid:1"),
    "fault-must-understand": lambda: build_fault(
        make_fault("MustUnderstand", not_understood=["{urn:x}Thing"]), "uuid:1"),
    "identify": msg.build_identify_request,
    "identify-response": lambda: msg.build_identify_response(msg.IdentifyResponse()),
}


@pytest.fixture(scope="module")
def validator() -> WSManValidator:
    return WSManValidator()


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_message_type_round_trips_through_the_2005_dialect(name: str, validator: WSManValidator) -> None:
    original = MESSAGES[name]()
    old = d.convert(original, d.WSMV, d.WSMAN2005)
    if not name.startswith("identify"):  # IdentifyResponse names DSP0226 1.x as its ProtocolVersion text
        assert NS_WSMAN.encode() not in old, "a DSP0226 1.x namespace is left in the 2005/06 message"
    assert RESOURCE_WMI_PREFIX.encode() not in old, "an MS-WSMV WMI resource URI is left"
    assert d.detect(old) in (d.WSMAN2005, None)
    assert validator.validate(old) == [], name
    back = d.convert(old, d.WSMAN2005, d.WSMV)
    assert back == original
    assert validator.validate(back) == []


def test_the_2005_get_request_carries_the_ms_wsman_names() -> None:
    old = etree.fromstring(d.convert(MESSAGES["get"](), d.WSMV, d.WSMAN2005))
    w = f"{{{d.NS_WSMAN_2005}}}"
    assert old.findtext(f".//{w}ResourceURI") == SERVICE_2005  # MS-WSMAN 4.1.1
    assert old.find(f".//{w}SelectorSet/{w}Selector").get("Name") == "Name"
    assert old.findtext(f".//{w}MaxEnvelopeSize") == "512000"
    assert old.findtext(f".//{w}OperationTimeout") == "PT60.000S"
    assert old.find(f".//{w}Locale").get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"
    assert old.find(f".//{w}OptionSet/{w}Option").get("Name") == "opt"
    assert old.findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}Action") == Action.GET


def test_custom_action_and_instance_namespace_follow_the_resource_uri() -> None:
    old = etree.fromstring(d.convert(MESSAGES["invoke"](), d.WSMV, d.WSMAN2005))
    assert old.findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}Action") == SERVICE_2005 + "/StopService"
    body = old.find(f"{{{NS_SOAP}}}Body")
    assert etree.QName(body[0]).namespace == SERVICE_2005


def test_fault_subcode_qname_follows_the_rewritten_namespace() -> None:
    old = etree.fromstring(d.convert(MESSAGES["fault"](), d.WSMV, d.WSMAN2005))
    value = old.find(f".//{{{NS_SOAP}}}Subcode/{{{NS_SOAP}}}Value")
    prefix, _, local = value.text.partition(":")
    assert value.nsmap[prefix] == d.NS_WSMAN_2005 and local == "InvalidSelectors"
    assert old.findtext(".//{{{}}}Action".format("http://schemas.xmlsoap.org/ws/2004/08/addressing")) == \
        d.WSMAN_URI_PREFIX_2005 + "fault"
    assert old.findtext(f".//{{{d.NS_WSMAN_2005}}}FaultDetail") == \
        d.WSMAN_URI_PREFIX_2005 + "faultDetail/UnexpectedSelectors"
    fault = parse_fault(parse_envelope(d.convert(etree.tostring(old), d.WSMAN2005, d.WSMV)))
    assert fault.subcode == "w:InvalidSelectors" and fault.wsman_code == 2150858843


def test_detection() -> None:
    assert d.detect(MESSAGES["get"]()) == d.WSMV
    assert d.detect(d.convert(MESSAGES["get"](), d.WSMV, d.WSMAN2005)) == d.WSMAN2005
    assert d.detect(MESSAGES["identify"]()) == d.WSMV  # uses no wsman element, declares only DSP0226's
    bare = b'<s:Envelope xmlns:s="%s"><s:Header/><s:Body/></s:Envelope>' % NS_SOAP.encode()
    assert d.detect(bare) is None
    original = MESSAGES["get"]()
    alias = d.convert(original, d.WSMV, d.WSMAN2005).replace(
        d.NS_WSMAN_2005.encode(), d.NS_WSMAN_2005_ALIASES[0].encode())
    assert d.detect(alias) == d.WSMAN2005
    assert d.convert(alias, d.WSMAN2005, d.WSMV) == original


def _mixed() -> bytes:
    data = d.convert(MESSAGES["get"](), d.WSMV, d.WSMAN2005)
    return data.replace(b"<s:Header>", b'<s:Header><m:OperationTimeout xmlns:m="%s">PT1S</m:OperationTimeout>'
                        % NS_WSMAN.encode())


def test_mixed_dialect_envelopes_are_rejected_with_a_clear_reason() -> None:
    with pytest.raises(d.DialectError) as info:
        d.detect(_mixed())
    assert "mixes" in info.value.reason and info.value.fault == "SchemaValidationError"
    with pytest.raises(d.DialectError):
        d.convert(_mixed(), d.WSMAN2005, d.WSMV)


def test_converting_from_the_wrong_source_dialect_is_refused() -> None:
    with pytest.raises(d.DialectError):
        d.convert(MESSAGES["get"](), d.WSMAN2005, d.WSMV)


def test_a_filter_has_no_2005_spelling() -> None:
    """MS-WSMAN 3.1.4.1.13: Windows Server 2003 servers fault a request with wsman:Filter."""
    data = msg.build_enumerate_request(_header(), msg.EnumerateRequest(filter_dialect="urn:wql", filter_text="x"))
    with pytest.raises(d.DialectError) as info:
        d.convert(data, d.WSMV, d.WSMAN2005)
    assert info.value.fault == "FilteringNotSupported"


def test_bad_input_raises_only_the_typed_error() -> None:
    for data in (b"", b"<not-closed", b"\x00\xff", b'<!DOCTYPE x [<!ENTITY a "b">]><x/>'):
        with pytest.raises(WSManDecodeError):
            d.convert(data, d.WSMAN2005, d.WSMV)
    with pytest.raises(d.DialectError):
        d.check_dialect("wsman2007")
    deep = b"<a>" * 600 + b"</a>" * 600
    with pytest.raises(WSManDecodeError):
        d.convert(deep, d.WSMAN2005, d.WSMV)


def test_same_dialect_is_unchanged_and_the_codec_boundary_helpers() -> None:
    data = MESSAGES["get"]()
    assert d.convert(data, d.WSMV, d.WSMV) is data
    assert d.from_codec(data, None) is data
    old = d.from_codec(data, d.WSMAN2005)
    assert d.to_codec(old) == (d.WSMAN2005, data)
    assert d.to_codec(old, accepted=(d.WSMV,)) == (d.WSMAN2005, old)
    assert d.wsman_namespace(d.WSMAN2005) == d.NS_WSMAN_2005

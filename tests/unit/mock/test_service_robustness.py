"""Malformed requests to the mock get the spec's SOAP fault, never a crash (guide: bad input)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.client.resources import wmi_uri
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

ADMIN = Principal("wmh")
READER = Principal("reader", read_only=True)
SERVICE_URI = wmi_uri("Win32_Service")


def fault_of(status: int, body: bytes) -> WSManFault:
    assert status == HTTP_FAULT
    env = parse_envelope(body)
    assert is_fault(env)
    return parse_fault(env)


def get_request(**header: object) -> bytes:
    h = Header(action=Action.GET, resource_uri=SERVICE_URI, selectors={"Name": "WinRM"})
    for k, v in header.items():
        setattr(h, k, v)
    return msg.build_get_request(h)


def test_a_valid_get_is_answered(service: WSManService):
    status, body = service.handle(get_request(), ADMIN)
    assert status == HTTP_OK
    assert b"WinRM" in body


def test_not_xml_is_a_schema_fault(service: WSManService):
    fault = fault_of(*service.handle(b"this is not xml", ADMIN))
    assert fault.code == "s:Sender"


def test_xml_bomb_is_refused_without_expansion(service: WSManService):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>')
    fault = fault_of(*service.handle(bomb, ADMIN))
    assert "DTD" in fault.reason


def test_external_entity_is_refused(service: WSManService):
    xxe = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>&x;</s:Body></s:Envelope>')
    status, body = service.handle(xxe, ADMIN)
    assert status == HTTP_FAULT and b"root:" not in body


def test_soap_11_is_a_version_mismatch(service: WSManService):
    soap11 = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/><e:Body/></e:Envelope>')
    fault = fault_of(*service.handle(soap11, ADMIN))
    assert fault.code == "s:VersionMismatch"


def test_unknown_action_is_action_not_supported(service: WSManService):
    from harness.wire.wsman.envelope import build_envelope

    h = Header(action="http://example.org/NoSuchAction", resource_uri=SERVICE_URI, selectors={"Name": "WinRM"})
    fault = fault_of(*service.handle(build_envelope(h), ADMIN))
    assert fault.subcode_name == "ActionNotSupported"


def test_unknown_resource_is_destination_unreachable(service: WSManService):
    fault = fault_of(*service.handle(get_request(resource_uri="http://example.org/nothing"), ADMIN))
    assert fault.subcode_name == "DestinationUnreachable"


def test_unknown_class_is_destination_unreachable_with_the_wmi_error(service: WSManService):
    fault = fault_of(*service.handle(get_request(resource_uri=wmi_uri("Win32_NoSuchClass")), ADMIN))
    assert fault.subcode_name == "DestinationUnreachable"
    assert fault.wsman_code == 0x80041010  # WBEM_E_INVALID_CLASS, MS-WMI 2.2.11


def test_unexpected_selector_is_invalid_selectors(service: WSManService):
    fault = fault_of(*service.handle(get_request(selectors={"Bogus": "1"}), ADMIN))
    assert fault.subcode_name == "InvalidSelectors"
    assert fault.detail is not None and fault.detail.endswith("UnexpectedSelectors")


def test_tiny_max_envelope_size_is_an_encoding_limit(service: WSManService):
    fault = fault_of(*service.handle(get_request(max_envelope_size=100), ADMIN))
    assert fault.subcode_name == "EncodingLimit"


def test_response_larger_than_max_envelope_size_is_an_encoding_limit(service: WSManService):
    page = msg.EnumerateRequest(optimize=True, max_elements=1000)
    h = Header(action=Action.ENUMERATE, resource_uri=SERVICE_URI, max_envelope_size=8192)
    status, body = service.handle(msg.build_enumerate_request(h, page), ADMIN)
    # items are packed to fit: the answer is a valid page, never an oversized envelope
    assert status == HTTP_OK and len(body) <= 8192


def test_missing_message_id_is_a_header_fault(service: WSManService):
    fault = fault_of(*service.handle(get_request(message_id=""), ADMIN))
    assert fault.subcode_name == "MessageInformationHeaderRequired"


def test_unknown_must_understand_header_is_a_must_understand_fault(service: WSManService):
    data = get_request().replace(
        b"<s:Body", b'<s:Body', 1).replace(
        b"</s:Header>", b'<x:Odd xmlns:x="urn:odd" s:mustUnderstand="true">1</x:Odd></s:Header>', 1)
    fault = fault_of(*service.handle(data, ADMIN))
    assert fault.code == "s:MustUnderstand"


def test_read_only_user_can_get_but_not_put(service: WSManService):
    assert service.handle(get_request(), READER)[0] == HTTP_OK
    h = Header(action=Action.PUT, resource_uri=SERVICE_URI, selectors={"Name": "WinRM"})
    from lxml import etree

    body = etree.fromstring(f'<p:Win32_Service xmlns:p="{SERVICE_URI}"><p:DisplayName>x</p:DisplayName>'
                            f'</p:Win32_Service>'.encode())
    fault = fault_of(*service.handle(msg.build_put_request(h, body), READER))
    assert fault.subcode_name == "AccessDenied"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes_always_get_a_fault(service: WSManService, data: bytes):
    status, body = service.handle(data, ADMIN)
    assert status == HTTP_FAULT
    assert is_fault(parse_envelope(body))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_requests_never_crash_the_service(service: WSManService, data: st.DataObject):
    base = bytearray(get_request())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    status, body = service.handle(bytes(base), ADMIN)
    assert status in (HTTP_OK, HTTP_FAULT)
    env = parse_envelope(body)
    if status == HTTP_FAULT:
        assert parse_fault(env).subcode_name != "InternalError", "malformed input must not look like a mock defect"

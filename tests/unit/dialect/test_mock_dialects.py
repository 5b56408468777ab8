"""The mock answers in the dialect of the request; restricted dialects and mixed envelopes fault."""

from __future__ import annotations

import pytest
from lxml import etree

from harness.cim.mof import default_store
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.wire.wsman import dialect as d
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import NS_WSMAN, RESOURCE_WMI_PREFIX

ADMIN = Principal("wmh")
SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"


@pytest.fixture(scope="module")
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"))


def _get(name: str = "WinRM") -> bytes:
    return msg.build_get_request(Header(action="", resource_uri=SERVICE, selectors={"Name": name},
                                        max_envelope_size=512000))


def _fault_of(body: bytes, dialect: str) -> object:
    return parse_fault(parse_envelope(d.convert(body, dialect, d.WSMV)))


def test_a_2005_request_is_answered_in_2005(service: WSManService) -> None:
    status, body = service.handle(d.convert(_get(), d.WSMV, d.WSMAN2005), ADMIN)
    assert status == 200
    assert d.detect(body) == d.WSMAN2005 and NS_WSMAN.encode() not in body
    item = msg.parse_get_response(parse_envelope(d.convert(body, d.WSMAN2005, d.WSMV))).item
    assert item is not None and item.findtext(f"{{{SERVICE}}}Name") == "WinRM"


def test_a_2005_fault_is_answered_in_2005(service: WSManService) -> None:
    status, body = service.handle(d.convert(_get("NoSuchService"), d.WSMV, d.WSMAN2005), ADMIN)
    assert status == 500 and NS_WSMAN.encode() not in body
    assert d.WSMAN_URI_PREFIX_2005.encode() + b"fault" in body
    assert _fault_of(body, d.WSMAN2005).code == "s:Sender"  # type: ignore[attr-defined]


def test_a_wsmv_request_is_still_answered_in_wsmv(service: WSManService) -> None:
    status, body = service.handle(_get(), ADMIN)
    assert status == 200 and d.detect(body) == d.WSMV


def test_a_mixed_envelope_is_a_schema_validation_fault(service: WSManService) -> None:
    data = d.convert(_get(), d.WSMV, d.WSMAN2005).replace(
        b"<s:Header>", b'<s:Header><m:OperationTimeout xmlns:m="%s">PT1S</m:OperationTimeout>' % NS_WSMAN.encode())
    status, body = service.handle(data, ADMIN)
    fault = parse_fault(parse_envelope(body))
    assert status == 500 and fault.subcode == "w:SchemaValidationError"
    assert "mixes" in fault.reason


def test_a_filter_in_2005_is_refused_as_windows_server_2003_does(service: WSManService) -> None:
    data = d.convert(msg.build_enumerate_request(Header(action="", resource_uri=SERVICE), msg.EnumerateRequest()),
                     d.WSMV, d.WSMAN2005)
    filtered = data.replace(b"<n:Enumerate/>", b'<n:Enumerate><w:Filter Dialect="urn:x">x</w:Filter></n:Enumerate>')
    assert filtered != data
    status, body = service.handle(filtered, ADMIN)
    assert status == 500 and d.detect(body) == d.WSMAN2005, "answered in the dialect of the request"
    answer = parse_envelope(d.convert(body, d.WSMAN2005, d.WSMV))
    assert parse_fault(answer).subcode == "n:FilteringNotSupported"
    assert answer.header.relates_to == parse_envelope(d.convert(data, d.WSMAN2005, d.WSMV)).header.message_id


def test_a_wsmv_only_listener_does_not_understand_2005_headers() -> None:
    only = WSManService(default_store(), MockConfig(password="pw"))
    only.dialects = frozenset({d.WSMV})
    status, body = only.handle(d.convert(_get(), d.WSMV, d.WSMAN2005), ADMIN)
    fault = parse_fault(parse_envelope(body))
    assert status == 500 and fault.code == "s:MustUnderstand"
    assert f"{{{d.NS_WSMAN_2005}}}ResourceURI" in fault.not_understood


def test_a_2003_r2_listener_does_not_understand_dsp0226_headers() -> None:
    old = WSManService(default_store(), MockConfig(password="pw"))
    old.dialects = frozenset({d.WSMAN2005})
    status, body = old.handle(_get(), ADMIN)
    assert status == 500 and NS_WSMAN.encode() in body  # only inside the s:NotUnderstood QNames
    fault = parse_fault(parse_envelope(body))
    assert fault.code == "s:MustUnderstand"
    assert etree.fromstring(body).nsmap["w"] == d.NS_WSMAN_2005, "answered in the 2005/06 dialect"
    assert f"{{{NS_WSMAN}}}ResourceURI" in fault.not_understood
    status, body = old.handle(d.convert(_get(), d.WSMV, d.WSMAN2005), ADMIN)
    assert status == 200

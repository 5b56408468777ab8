"""The dialect reaches the client, the inventory, the validator and the unauthenticated path."""

from __future__ import annotations

import pytest

from harness.cim.mof import default_store
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.targets.inventory import MOCK_CAPABILITIES, WINDOWS_CAPABILITIES, InventoryError, Target, target_from_entry
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import WSManService
from harness.validate.schema import WSManValidator
from harness.wire.wsman import dialect as d
from harness.wire.wsman import messages as msg
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import NS_WSMAN, RESOURCE_WMI_PREFIX

SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"


def _get_response() -> bytes:
    from lxml import etree

    item = etree.Element(f"{{{SERVICE}}}Win32_Service", nsmap={"p": SERVICE})
    etree.SubElement(item, f"{{{SERVICE}}}Name").text = "WinRM"
    return msg.build_get_response("uuid:1", item)


def _client(dialect: str | None) -> WSManClient:
    return WSManClient(Target(name="t", url="http://127.0.0.1:9/wsman"), dialect=dialect)


def test_the_client_speaks_its_target_dialect_unless_told_otherwise() -> None:
    assert _client(None).dialect == d.WSMV
    assert WSManClient(Target(name="t", url="http://127.0.0.1:9/wsman", dialect=d.WSMAN2005)).dialect == d.WSMAN2005
    with pytest.raises(d.DialectError):
        _client("wsman2011")


def test_the_client_reads_2005_answers_and_refuses_answers_in_the_other_dialect() -> None:
    client = _client(d.WSMAN2005)
    wire = d.convert(_get_response(), d.WSMV, d.WSMAN2005)
    assert d.detect(client._from_wire(wire)) == d.WSMV
    with pytest.raises(ProtocolViolation, match="answered in the wsmv dialect"):
        client._from_wire(_get_response())
    mixed = wire.replace(b"<s:Header>", b'<s:Header><m:Locale xmlns:m="' + NS_WSMAN.encode() + b'" xml:lang="en"/>')
    with pytest.raises(ProtocolViolation, match="mixes"):
        client._from_wire(mixed)
    plain = _get_response()
    assert _client(None)._from_wire(plain) is plain, "an MS-WSMV client passes answers through untouched"


def test_inventory_dialects_and_capabilities() -> None:
    assert target_from_entry({"name": "old", "url": "http://h/wsman", "dialect": "wsman2005"}).dialect == d.WSMAN2005
    with pytest.raises(InventoryError):
        target_from_entry({"name": "bad", "url": "http://h/wsman", "dialect": "soap11"})
    assert "wsman2005" in MOCK_CAPABILITIES and "wsman2005" not in WINDOWS_CAPABILITIES


def test_the_validator_checks_2005_elements() -> None:
    validator = WSManValidator()
    request = d.convert(msg.build_get_request(Header(action="", resource_uri=SERVICE, max_envelope_size=512000)),
                        d.WSMV, d.WSMAN2005)
    assert validator.validate(request) == []
    errors = validator.validate(request.replace(b">512000<", b">0<"))
    assert errors and "MaxEnvelopeSize" in errors[0]


def test_an_unauthenticated_2005_request_is_refused_in_2005() -> None:
    service = WSManService(default_store(), MockConfig(password="pw"))
    request = d.convert(msg.build_get_request(Header(action="", resource_uri=SERVICE)), d.WSMV, d.WSMAN2005)
    status, body = service.handle_identify_only(request)
    assert status == 500 and d.WSMAN_URI_PREFIX_2005.encode() + b"fault" in body

"""fixtures/schemas/subscription.xsd (MS-WSMV 2.2.4.41 SubscriptionType): the items our subscription
manager hands out validate, malformed ones do not, with libxml2 and with xmlschema."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from harness.flows.subscription_manager import CollectorSubscription, SubscriptionManagerServer
from harness.validate import default_validator
from harness.validate.schema import schemas_dir
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import FILTER_WQL, Action

ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
CREATED = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Environment'"
M = ev.NS_SUBSCRIPTION
S = "http://www.w3.org/2003/05/soap-envelope"


@pytest.fixture(scope="module")
def libxml2_schema() -> etree.XMLSchema:
    """wsman-all.xsd compiled by libxml2 (what harness.validate.schema tries first)."""
    return etree.XMLSchema(etree.parse(str(schemas_dir() / "wsman-all.xsd")))


def _served_items() -> tuple[list[Any], bytes]:
    server = SubscriptionManagerServer()
    server.add(CollectorSubscription(ALL, ev.SubscribeRequest(ev.Delivery(ev.DELIVERY_PULL),
                                                              filter_dialect=FILTER_WQL, filter_text=CREATED)))
    push = ev.Delivery(ev.DELIVERY_PUSH, notify_to=EndpointReference("http://collector.example/sink"),
                       heartbeats=60.0)
    server.add(CollectorSubscription(ALL, ev.SubscribeRequest(push, expires="PT1H", filter_dialect=FILTER_WQL,
                                                              filter_text=CREATED, send_bookmarks=True,
                                                              bookmark=ev.BOOKMARK_EARLIEST)))
    request = msg.build_enumerate_request(Header(Action.ENUMERATE, resource_uri=ev.RESOURCE_SUBSCRIPTION_MANAGER),
                                          msg.EnumerateRequest(optimize=True, max_elements=10))
    status, body = server.answer(request)
    assert status == 200
    items = msg.parse_enumerate_response(parse_envelope(body)).items
    assert len(items) == 2
    return list(items), body


def _xmlschema_errors(root: Any) -> list[str]:
    schema = default_validator().schema  # the pure-Python processor (xmlschema) over the same files
    return [str(e.reason) for e in schema.iter_errors(etree.ElementTree(root))]


def test_items_served_by_our_subscription_manager_validate(libxml2_schema: etree.XMLSchema) -> None:
    items, response = _served_items()
    for item in items:
        assert item.tag == f"{{{M}}}Subscription"
        copy = etree.fromstring(etree.tostring(item))
        assert libxml2_schema.validate(copy), libxml2_schema.error_log
        assert _xmlschema_errors(copy) == []
        assert default_validator().validate(etree.tostring(item)) == []
    assert default_validator().validate(response) == []  # the whole EnumerateResponse, items checked


def _item(version: str | None = "uuid:7D4A7D0C-1B1B-4A0C-9E7E-0E9B7C2C4F11", envelope: str | None = None,
          extra: str = "", envelope_first: bool = False) -> bytes:
    if envelope is None:
        envelope = f'<s:Envelope xmlns:s="{S}"><s:Header/><s:Body/></s:Envelope>'
    version_el = "" if version is None else f"<m:Version>{version}</m:Version>"
    inner = envelope + version_el if envelope_first else version_el + envelope
    return f'<m:Subscription xmlns:m="{M}">{inner}{extra}</m:Subscription>'.encode()


def test_hand_made_minimal_item_validates(libxml2_schema: etree.XMLSchema) -> None:
    root = etree.fromstring(_item())
    assert libxml2_schema.validate(root) and _xmlschema_errors(root) == []


@pytest.mark.parametrize("data", [
    _item(version=None),                                            # Version is required
    _item(envelope=""),                                             # the envelope is required
    _item(envelope_first=True),                                     # sequence: Version, then Envelope
    _item(envelope=f'<m:Envelope><s:Body xmlns:s="{S}"/></m:Envelope>'),  # not the SOAP envelope
    _item(envelope=f'<s:Envelope xmlns:s="{S}"><s:Header/></s:Envelope>'),  # SOAP Envelope without Body
    _item(extra="<m:Version>uuid:2</m:Version>"),                   # one Version only
    _item(version="<m:Bad/>"),                                      # Version is text
], ids=["no-version", "no-envelope", "wrong-order", "foreign-envelope", "no-body", "two-versions",
        "element-in-version"])
def test_malformed_items_do_not_validate(data: bytes, libxml2_schema: etree.XMLSchema) -> None:
    root = etree.fromstring(data)
    assert not libxml2_schema.validate(root)
    assert _xmlschema_errors(root)
    assert default_validator().validate(data)

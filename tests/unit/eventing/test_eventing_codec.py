"""Round trips and malformed input of the WS-Eventing codec (DSP0226 10)."""

from __future__ import annotations

import pytest
from lxml import etree

from harness.validate import default_validator
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import FILTER_WQL, NS_WSMAN, Action

ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
WQL = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'"
SINK = EndpointReference(address="http://sink.example:8080/events", resource_uri="urn:sink")


def roundtrip(data: bytes) -> ev.Envelope:
    assert default_validator().validate(data) == [], default_validator().validate(data)
    return parse_envelope(data)


def _event(text: str = "v") -> ev.DeliveredEvent:
    el = etree.Element("{urn:ev}Thing", nsmap={"q": "urn:ev"})
    el.text = text
    return ev.DeliveredEvent(Action.EVENT, el)


@pytest.mark.parametrize("mode", sorted(ev.DELIVERY_MODES))
def test_subscribe_round_trip_every_mode(mode: str) -> None:
    delivery = ev.Delivery(mode=mode, notify_to=None if mode == ev.DELIVERY_PULL else SINK, heartbeats=60.0,
                           connection_retry=ev.ConnectionRetry(3, 10.0))
    if mode == ev.DELIVERY_EVENTS:
        delivery.max_elements, delivery.max_time = 20, 30.0
    req = ev.SubscribeRequest(delivery=delivery, expires="PT600.000S", filter_dialect=FILTER_WQL, filter_text=WQL,
                              bookmark=ev.BOOKMARK_EARLIEST, send_bookmarks=True, end_to=SINK)
    got = ev.parse_subscribe_request(roundtrip(ev.build_subscribe_request(Header(Action.SUBSCRIBE, resource_uri=ALL),
                                                                          req)))
    assert got == req


def test_subscribe_with_datetime_expires() -> None:
    req = ev.SubscribeRequest(ev.Delivery(ev.DELIVERY_PULL), expires="2099-01-01T00:00:00Z", filter_text=WQL)
    got = ev.parse_subscribe_request(roundtrip(ev.build_subscribe_request(Header(Action.SUBSCRIBE), req)))
    assert got.expires == "2099-01-01T00:00:00Z"
    assert ev.expires_in(got.expires) > 0


def test_subscribe_response_round_trip() -> None:
    resp = ev.SubscribeResponse(ev.SubscriptionManager("http://h:5985/wsman", "uuid:1", ALL), "PT60.000S", "uuid:ctx")
    assert ev.parse_subscribe_response(roundtrip(ev.build_subscribe_response("uuid:req", resp))) == resp


@pytest.mark.parametrize(("build", "parse", "expires"), [
    (ev.build_renew_request, ev.parse_renew_request, "PT30.000S"),
    (lambda h, i, _e=None: ev.build_get_status_request(h, i), ev.parse_get_status_request, None),
    (lambda h, i, _e=None: ev.build_unsubscribe_request(h, i), ev.parse_unsubscribe_request, None),
])
def test_manager_requests_carry_the_identifier_header(build, parse, expires) -> None:  # type: ignore[no-untyped-def]
    data = build(Header("", resource_uri=ALL), "uuid:SUB", expires) if expires else build(Header(""), "uuid:SUB")
    got = parse(roundtrip(data))
    assert got.identifier == "uuid:SUB"
    assert got.expires == expires


def test_manager_request_without_identifier_is_malformed() -> None:
    data = ev.build_unsubscribe_request(Header(""), "uuid:X").replace(b"uuid:X</e:Identifier>", b"</e:Identifier>")
    with pytest.raises(WSManDecodeError):
        ev.parse_unsubscribe_request(parse_envelope(data))


def test_expires_responses_round_trip() -> None:
    assert ev.parse_renew_response(roundtrip(ev.build_renew_response("r", "PT5.000S"))).expires == "PT5.000S"
    assert ev.parse_get_status_response(roundtrip(ev.build_get_status_response("r", None))).expires is None
    ev.parse_unsubscribe_response(roundtrip(ev.build_unsubscribe_response("r")))


def test_subscription_end_round_trip() -> None:
    end = ev.SubscriptionEnd(ev.SubscriptionManager("http://h/wsman", "uuid:9"), ev.END_SOURCE_SHUTTING_DOWN, "bye")
    assert ev.parse_subscription_end(roundtrip(ev.build_subscription_end(Header(""), end))) == end


def test_single_push_event_with_ack_requested_and_bookmark() -> None:
    data = ev.build_event(Header(""), _event("1"), bookmark="bm-1", ack_requested=True, identifier="uuid:S")
    got = ev.parse_event_message(roundtrip(data))
    assert got.ack_requested and got.bookmark == "bm-1" and got.identifier == "uuid:S" and not got.batched
    assert [e.action for e in got.events] == [Action.EVENT]
    assert got.events[0].element.text == "1"


def test_batched_events_keep_order_and_actions() -> None:
    data = ev.build_events(Header(""), [_event("1"), ev.DeliveredEvent("urn:a2", _event("2").element)])
    got = ev.parse_event_message(roundtrip(data))
    assert got.batched and [e.action for e in got.events] == [Action.EVENT, "urn:a2"]
    assert [e.element.text for e in got.events] == ["1", "2"]


def test_event_pull_response_round_trip() -> None:
    data = ev.build_event_pull_response("r", "uuid:ctx", [_event("a"), _event("b")], bookmark="bm")
    got = ev.parse_event_pull_response(roundtrip(data))
    assert got.context == "uuid:ctx" and got.bookmark == "bm"
    assert [e.element.text for e in got.events] == ["a", "b"]


def test_heartbeat_dropped_events_and_ack() -> None:
    assert ev.parse_heartbeat(roundtrip(ev.build_heartbeat(Header(""), bookmark="b"))).bookmark == "b"
    dropped = ev.parse_dropped_events(roundtrip(ev.build_dropped_events(Header(""), ev.DroppedEvents("urn:x", 7))))
    assert dropped == ev.DroppedEvents("urn:x", 7)
    assert ev.parse_ack(roundtrip(ev.build_ack("uuid:EVT", to="http://h/wsman"))) == "uuid:EVT"


def test_validator_rejects_bad_eventing_content() -> None:
    data = ev.build_heartbeat(Header("")).replace(b"<s:Body/>",
                                                  b"<s:Body><w:DroppedEvents>x</w:DroppedEvents></s:Body>")
    assert default_validator().validate(data)
    bad = ev.build_subscribe_request(Header(""), ev.SubscribeRequest(ev.Delivery(ev.DELIVERY_PULL, heartbeats=1.0)))
    assert default_validator().validate(bad.replace(b"PT1.000S", b"soon"))


def _subscribe_bytes(body: str) -> bytes:
    head = ev.build_subscribe_request(Header(Action.SUBSCRIBE), ev.SubscribeRequest(ev.Delivery(ev.DELIVERY_PULL)))
    start, end = head.index(b"<s:Body>") + len(b"<s:Body>"), head.index(b"</s:Body>")
    return head[:start] + body.encode() + head[end:]


E = 'xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing"'


@pytest.mark.parametrize("body", [
    "",  # empty body
    f"<e:Subscribe {E}/>",  # no Delivery
    f'<e:Subscribe {E}><e:Delivery Mode="urn:nope"/></e:Subscribe>',
    f'<e:Subscribe {E}><e:Delivery Mode="{ev.DELIVERY_PUSH}"/></e:Subscribe>',  # push without NotifyTo
    f'<e:Subscribe {E}><e:Delivery Mode="{ev.DELIVERY_PULL}"/><e:Expires>tomorrow</e:Expires></e:Subscribe>',
    f'<e:Subscribe {E}><e:Delivery Mode="{ev.DELIVERY_PULL}"><w:Heartbeats xmlns:w="{NS_WSMAN}">-PT1S</w:Heartbeats>'
    f"</e:Delivery></e:Subscribe>",
    f'<e:Subscribe {E}><e:Delivery Mode="{ev.DELIVERY_PULL}"><w:MaxElements xmlns:w="{NS_WSMAN}">99999999999'
    f"</w:MaxElements></e:Delivery></e:Subscribe>",
    f'<e:Subscribe {E}><e:Delivery Mode="{ev.DELIVERY_PULL}"/><e:Delivery Mode="{ev.DELIVERY_PULL}"/></e:Subscribe>',
])
def test_malformed_subscribe_raises_decode_error_only(body: str) -> None:
    with pytest.raises(WSManDecodeError):
        ev.parse_subscribe_request(parse_envelope(_subscribe_bytes(body)))


@pytest.mark.parametrize("mutate", [
    lambda d: d.replace(b'Action="http://schemas.dmtf.org/wbem/wsman/1/wsman/Event"', b""),
    lambda d: d.replace(b"<w:Event ", b"<w:Other "),
])
def test_malformed_event_lists(mutate) -> None:  # type: ignore[no-untyped-def]
    data = mutate(ev.build_events(Header(""), [_event()]))
    with pytest.raises(WSManDecodeError):
        ev.parse_event_message(parse_envelope(data))


def test_wrong_action_and_non_events() -> None:
    with pytest.raises(WSManDecodeError):
        ev.parse_subscribe_response(parse_envelope(ev.build_renew_response("r", None)))
    with pytest.raises(WSManDecodeError):
        ev.parse_event_message(parse_envelope(ev.build_heartbeat(Header(""))))
    with pytest.raises(WSManDecodeError):
        ev.parse_subscribe_response(parse_envelope(
            ev.build_subscribe_response("r", ev.SubscribeResponse(ev.SubscriptionManager("a", "i")))
            .replace(b"<e:Identifier>i</e:Identifier>", b"")))


def test_builders_refuse_impossible_requests() -> None:
    with pytest.raises(ValueError):
        ev.build_subscribe_request(Header(""), ev.SubscribeRequest(ev.Delivery(ev.DELIVERY_PUSH)))
    with pytest.raises(ValueError):
        ev.build_subscribe_request(Header(""), ev.SubscribeRequest(ev.Delivery("urn:x", notify_to=SINK)))

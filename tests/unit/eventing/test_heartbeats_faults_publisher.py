"""Heartbeats, DroppedEvents, SubscriptionEnd (DSP0226 10.2.5, 10.9, 10.6) on a ManualClock, waiting
Pulls (DSP0226 10.2.9.4), the WS-Eventing fault catalogue (WS-Eventing 2004/08 4; DSP0226 14.6) and
publisher-initiated subscriptions (MS-WSMV 3.1.4.1.30, 2.2.4.41)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pywbem
from aiohttp import web
from lxml import etree

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.flows.subscription_manager import CollectorSubscription, SubscriptionManagerServer
from harness.targets.mock.answer_later import AnswerLater, WakeSignal, answer_when_ready
from harness.targets.mock.config import MockConfig
from harness.targets.mock.event_pusher import EventPusher, install_event_tasks
from harness.targets.mock.events import EventSource, EventSourceError, ManualClock
from harness.targets.mock.publisher import MockEventing, Publisher
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.transport.event_sink import EventSink
from harness.validate import default_validator
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import (
    ERROR_WSMAN_EVENTING_DELIVERY_MODE_REQUESTED_UNAVAILABLE,
    ERROR_WSMAN_EVENTING_INVALID_MESSAGE,
    ERROR_WSMAN_INVALID_BOOKMARK,
    FAULTS,
    FaultDetail,
    build_fault,
    make_fault,
    parse_fault,
)
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import FILTER_WQL, Action

NS = "root/cimv2"
ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
CREATED = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Environment'"
PULL = ev.Delivery(ev.DELIVERY_PULL)
USER = Principal("wmh")


def env_var(name: str) -> pywbem.CIMInstance:
    return pywbem.CIMInstance("Win32_Environment", {"Name": name, "UserName": "<SYSTEM>", "VariableValue": "1"})


# ---------------------------------------------------------------------------------- ManualClock
def test_manual_clock_moves_only_forward_and_notifies() -> None:
    clock = ManualClock(5.0)
    seen: list[float] = []
    remove = clock.add_listener(lambda: seen.append(clock()))
    assert clock() == 5.0
    clock.advance(2.5)
    assert clock() == 7.5 and seen == [7.5]
    remove()
    clock.advance(1)
    assert seen == [7.5]
    with pytest.raises(ValueError):
        clock.advance(-1)
    based = ManualClock(base=lambda: 100.0)
    based.advance(3)
    assert based() == 103.0


def test_source_wakes_on_clock_advance_and_reports_heartbeat_due() -> None:
    clock = ManualClock()
    source = EventSource(default_store(), clock=clock)
    woken: list[int] = []
    source.add_waker(lambda: woken.append(1))
    sub = source.subscribe(NS, ALL, CREATED, ev.Delivery(ev.DELIVERY_PULL, heartbeats=10))
    plain = source.subscribe(NS, ALL, CREATED, PULL)
    assert source.heartbeat_due(sub) == 10 and source.heartbeat_due(plain) is None
    clock.advance(11)
    assert woken and source.heartbeat_due(sub) == -1
    source.mark_activity(sub)
    assert source.heartbeat_due(sub) == 10
    source.close()


# ---------------------------------------------------------------------------------- faults
@pytest.mark.parametrize(("name", "subcode", "code"), [
    ("DeliveryModeRequestedUnavailable", "e:DeliveryModeRequestedUnavailable",
     ERROR_WSMAN_EVENTING_DELIVERY_MODE_REQUESTED_UNAVAILABLE),
    ("InvalidExpirationTime", "e:InvalidExpirationTime", 0x8033801F),
    ("UnsupportedExpirationType", "e:UnsupportedExpirationType", 0x80338020),
    ("EventingFilteringNotSupported", "e:FilteringNotSupported", 0x80338021),
    ("FilteringRequestedUnavailable", "e:FilteringRequestedUnavailable", 0x80338022),
    ("EventSourceUnableToProcess", "e:EventSourceUnableToProcess", 0x80338023),
    ("UnableToRenew", "e:UnableToRenew", 0x80338024),
    ("InvalidMessage", "e:InvalidMessage", ERROR_WSMAN_EVENTING_INVALID_MESSAGE),
    ("InvalidBookmark", "w:InvalidBookmark", ERROR_WSMAN_INVALID_BOOKMARK),
])
def test_eventing_fault_catalogue_round_trips(name: str, subcode: str, code: int) -> None:
    fault = make_fault(name)
    assert fault.subcode == subcode and fault.wsman_code == code
    expected_action = Action.FAULT_WSMAN if subcode.startswith("w:") else Action.FAULT_EVENTING
    assert fault.action == expected_action
    data = build_fault(fault, "uuid:1")
    assert default_validator().validate(data) == []
    back = parse_fault(parse_envelope(data))
    assert back.subcode == subcode and back.wsman_code == code and back.action == expected_action
    assert FAULTS[name].code == ("s:Receiver" if name in ("EventSourceUnableToProcess", "UnableToRenew")
                                 else "s:Sender")


def test_codes_are_the_windows_numbers() -> None:
    assert ERROR_WSMAN_EVENTING_DELIVERY_MODE_REQUESTED_UNAVAILABLE == 2150858782
    assert ERROR_WSMAN_EVENTING_INVALID_MESSAGE == 2150858789
    assert ERROR_WSMAN_INVALID_BOOKMARK == 2150858808


# ---------------------------------------------------------------------------------- codec
def subscribe_envelope(**kw) -> bytes:  # type: ignore[no-untyped-def]
    req = ev.SubscribeRequest(kw.pop("delivery", PULL), filter_dialect=FILTER_WQL, filter_text=CREATED, **kw)
    return ev.build_subscribe_request(Header(Action.SUBSCRIBE, resource_uri=ALL), req)


def test_subscription_item_round_trip() -> None:
    data = subscribe_envelope(expires="PT60S")
    item = ev.build_subscription_item("uuid:V1", data)
    assert item.tag == "{" + ev.NS_SUBSCRIPTION + "}Subscription"
    back = ev.parse_subscription_item(etree.fromstring(etree.tostring(item)))
    assert back.version == "uuid:V1"
    assert ev.parse_subscribe_request(back.envelope).filter_text == CREATED
    assert back.envelope.header.resource_uri == ALL
    with pytest.raises(WSManDecodeError):
        ev.parse_subscription_item(etree.fromstring(b'<m:Subscription xmlns:m="' + ev.NS_SUBSCRIPTION.encode()
                                                    + b'"><m:Version>x</m:Version></m:Subscription>'))
    with pytest.raises(ValueError):
        ev.build_subscription_item("v", b"<notsoap/>")


def test_pull_heartbeat_and_dropped_items_decode() -> None:
    hb = parse_envelope(ev.build_pull_heartbeat("uuid:1", "uuid:ctx"))
    page = ev.parse_event_pull_response(hb)
    assert page.heartbeat and page.events == [] and page.context == "uuid:ctx"
    item = ev.dropped_events_item(ev.DroppedEvents(Action.EVENT, 7))
    data = ev.build_event_pull_response("uuid:1", "uuid:ctx", [item])
    page = ev.parse_event_pull_response(parse_envelope(data))
    assert [(d.action, d.count) for d in page.dropped] == [(Action.EVENT, 7)] and page.events == []


def test_decode_errors_name_the_eventing_faults() -> None:
    with pytest.raises(WSManDecodeError) as info:
        ev.expires_in("tomorrow")
    assert info.value.fault == "UnsupportedExpirationType"
    data = subscribe_envelope().replace(ev.DELIVERY_PULL.encode(), b"urn:carrier-pigeon")
    with pytest.raises(WSManDecodeError) as info:
        ev.parse_subscribe_request(parse_envelope(data))
    assert info.value.fault == "DeliveryModeRequestedUnavailable"


# ---------------------------------------------------------------------------------- service
class Svc:
    def __init__(self, **config) -> None:  # type: ignore[no-untyped-def]
        self.clock = ManualClock(1000.0)
        self.service = WSManService(default_store(), MockConfig(password="pw", event_clock=self.clock, **config))

    def call(self, data: bytes) -> tuple[int, Envelope]:
        status, out = self.service.handle(data, USER)
        return status, parse_envelope(out)

    def subscribe(self, **kw) -> ev.SubscribeResponse:  # type: ignore[no-untyped-def]
        status, env = self.call(subscribe_envelope(**kw))
        assert status == 200, parse_fault(env)
        return ev.parse_subscribe_response(env)

    def pull_request(self, context: str, max_time: str | None = "PT5S") -> bytes:
        return msg.build_pull_request(Header(Action.PULL, resource_uri=ALL), msg.PullRequest(context, 5, max_time))


def test_empty_pull_asks_to_wait_until_max_time_then_times_out() -> None:
    s = Svc()
    resp = s.subscribe()
    assert resp.context
    request = s.pull_request(resp.context)
    assert s.service.handle_or_wait(request, USER, 0.0) == AnswerLater(5.0)
    assert s.service.handle_or_wait(request, USER, 4.0) == AnswerLater(1.0)
    result = s.service.handle_or_wait(request, USER, 5.0)
    assert isinstance(result, tuple)
    assert parse_fault(parse_envelope(result[1])).subcode_name == "TimedOut"
    status, env = s.call(request)  # plain handle never waits
    assert status == 500 and parse_fault(env).subcode_name == "TimedOut"
    s.service.store.create_instance(NS, env_var("W1"))
    result = s.service.handle_or_wait(request, USER, 1.0)
    assert isinstance(result, tuple) and result[0] == 200


def test_pull_wait_is_bounded_by_operation_timeout_and_max_timeout() -> None:
    s = Svc(max_timeout=3.0)
    resp = s.subscribe()
    assert resp.context
    assert s.service.handle_or_wait(s.pull_request(resp.context, "PT30S"), USER) == AnswerLater(3.0)
    header = Header(Action.PULL, resource_uri=ALL, operation_timeout=2.0)
    no_max_time = msg.build_pull_request(header, msg.PullRequest(resp.context, 5))
    assert s.service.handle_or_wait(no_max_time, USER) == AnswerLater(2.0)


def test_pull_mode_heartbeat_when_due() -> None:
    s = Svc()
    resp = s.subscribe(delivery=ev.Delivery(ev.DELIVERY_PULL, heartbeats=10))
    assert resp.context
    request = s.pull_request(resp.context)
    assert s.service.handle_or_wait(request, USER) == AnswerLater(5.0)
    s.clock.advance(7)
    assert s.service.handle_or_wait(request, USER) == AnswerLater(3.0), "waits at most until the heartbeat"
    s.clock.advance(3)
    result = s.service.handle_or_wait(request, USER)
    assert isinstance(result, tuple) and result[0] == 200
    env = parse_envelope(result[1])
    assert env.header.action == Action.HEARTBEAT and ev.parse_event_pull_response(env).heartbeat
    assert default_validator().validate(result[1]) == []
    assert s.service.handle_or_wait(request, USER) == AnswerLater(5.0), "the heartbeat restarted the interval"


def test_pull_reports_dropped_events_first() -> None:
    s = Svc()
    s.service.events.queue_size = 2
    resp = s.subscribe()
    assert resp.context
    for i in range(5):
        s.service.store.create_instance(NS, env_var(f"D{i}"))
    status, env = s.call(s.pull_request(resp.context))
    page = ev.parse_event_pull_response(env)
    assert status == 200 and [d.count for d in page.dropped] == [3] and len(page.events) == 2


@pytest.mark.parametrize(("kw", "subcode"), [
    ({"expires": "PT0S"}, "InvalidExpirationTime"),
    ({"expires": "next week"}, "UnsupportedExpirationType"),
    ({"bookmark": "wmh-bookmark:other:1"}, "InvalidBookmark"),
])
def test_subscribe_refusals_use_eventing_faults(kw, subcode: str) -> None:  # type: ignore[no-untyped-def]
    s = Svc()
    data = subscribe_envelope(**kw)
    status, env = s.call(data)
    fault = parse_fault(env)
    assert status == 500 and fault.subcode_name == subcode, fault
    if subcode == "InvalidBookmark":
        assert fault.detail == FaultDetail.INVALID


def test_subscribe_filter_dialect_and_renew_faults() -> None:
    s = Svc()
    data = subscribe_envelope().replace(FILTER_WQL.encode(), b"http://example.org/xpath")
    status, env = s.call(data)
    assert parse_fault(env).subcode == "e:FilteringRequestedUnavailable"
    status, env = s.call(ev.build_renew_request(Header(Action.EVENTING_RENEW, resource_uri=ALL), "uuid:gone", "PT9S"))
    assert status == 500 and parse_fault(env).subcode == "e:UnableToRenew"


def test_bookmark_older_than_the_log_is_expired() -> None:
    store = default_store()
    source = EventSource(store, log_size=2)
    first = source.subscribe(NS, ALL, CREATED, PULL)
    mark = source.bookmark(first)
    for i in range(4):
        store.create_instance(NS, env_var(f"L{i}"))
    with pytest.raises(EventSourceError) as info:
        source.subscribe(NS, ALL, CREATED, PULL, bookmark=mark)
    assert info.value.fault == "InvalidBookmark" and info.value.detail == FaultDetail.EXPIRED


# ---------------------------------------------------------------------------------- pusher on a ManualClock
@pytest.fixture
async def pushing() -> AsyncIterator[tuple[CimStore, EventSource, ManualClock]]:
    store = default_store()
    clock = ManualClock()
    source = EventSource(store, clock=clock)
    task = asyncio.get_running_loop().create_task(EventPusher(source, retry_delay=0.05).run())
    await asyncio.sleep(0)
    try:
        yield store, source, clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        source.close()


async def test_push_heartbeats_only_when_idle(pushing: tuple[CimStore, EventSource, ManualClock]) -> None:
    store, source, clock = pushing
    async with EventSink() as sink:
        source.subscribe(NS, ALL, CREATED, ev.Delivery(ev.DELIVERY_PUSH, notify_to=EndpointReference(sink.url),
                                                       heartbeats=5))
        clock.advance(4)
        store.create_instance(NS, env_var("H1"))
        await sink.wait_for(1, 5)
        clock.advance(4)
        await asyncio.sleep(0.1)
        assert sink.record.heartbeats == 0
        clock.advance(2)
        await sink.wait_heartbeats(1, 5)
        assert sink.record.kinds == ["event", "heartbeat"]


async def test_push_dropped_events_then_the_rest(pushing: tuple[CimStore, EventSource, ManualClock]) -> None:
    store, source, _ = pushing
    source.queue_size = 2
    async with EventSink() as sink:
        sink.acknowledge = False
        source.subscribe(NS, ALL, CREATED, ev.Delivery(ev.DELIVERY_PUSH_WITH_ACK,
                                                       notify_to=EndpointReference(sink.url)))
        for i in range(5):
            store.create_instance(NS, env_var(f"O{i}"))
        await sink.wait_refused(1, 5)
        sink.acknowledge = True
        [dropped] = await sink.wait_dropped(1, 5)
        events = await sink.wait_for(2, 5)
        assert dropped.count == 3 and len(events) == 2
        assert sink.record.kinds[0] == "dropped", "DroppedEvents comes before the next delivery (DSP0226 10.9)"


async def test_subscription_end_on_expiry_and_shutdown(pushing: tuple[CimStore, EventSource, ManualClock]) -> None:
    _, source, clock = pushing
    async with EventSink() as sink:
        end_to = EndpointReference(sink.url)
        expiring = source.subscribe(NS, ALL, CREATED, PULL, expires=30, end_to=end_to)
        staying = source.subscribe(NS, ALL, CREATED, PULL, expires=300, end_to=end_to)
        source.subscribe(NS, ALL, CREATED, PULL, expires=300)  # no EndTo: no SubscriptionEnd
        clock.advance(31)
        [first] = await sink.wait_ends(1, 5)
        assert first.manager.identifier == expiring.identifier and first.status == ev.END_SOURCE_CANCELLING
        assert source.shutdown() == 2
        ends = await sink.wait_ends(2, 5)
        assert ends[1].manager.identifier == staying.identifier and ends[1].status == ev.END_SOURCE_SHUTTING_DOWN
        await asyncio.sleep(0.1)
        assert len(sink.record.ends) == 2


# ---------------------------------------------------------------------------------- waiting Pull over the app
async def test_waiting_pull_is_woken_by_the_event_without_blocking() -> None:
    clock = ManualClock()
    config = MockConfig(password="pw", event_clock=clock)
    service = WSManService(default_store(), config)
    signal = WakeSignal()
    unfollow = signal.follow(service.wakeups)
    try:
        status, body = service.handle(subscribe_envelope(), USER)
        context = ev.parse_subscribe_response(parse_envelope(body)).context
        assert context
        request = msg.build_pull_request(Header(Action.PULL, resource_uri=ALL), msg.PullRequest(context, 5, "PT5S"))
        pending = asyncio.ensure_future(answer_when_ready(service, request, USER, signal))
        await asyncio.sleep(0.05)
        assert not pending.done()
        loop = asyncio.get_running_loop()
        created = loop.time()
        service.store.create_instance(NS, env_var("AW1"))
        status, body = await asyncio.wait_for(pending, 2.0)
        assert loop.time() - created < 0.5, "the event source wakes the Pull, no polling"
        assert status == 200 and len(ev.parse_event_pull_response(parse_envelope(body)).events) == 1
        short = msg.build_pull_request(Header(Action.PULL, resource_uri=ALL), msg.PullRequest(context, 5, "PT0.1S"))
        started = loop.time()
        status, body = await asyncio.wait_for(answer_when_ready(service, short, USER, signal), 2.0)
        assert status == 500 and parse_fault(parse_envelope(body)).subcode_name == "TimedOut"
        assert 0.1 <= loop.time() - started < 1.0
    finally:
        unfollow()


async def test_waiting_pull_answers_the_heartbeat_when_the_event_clock_moves() -> None:
    clock = ManualClock()
    service = WSManService(default_store(), MockConfig(password="pw", event_clock=clock))
    signal = WakeSignal()
    signal.follow(service.wakeups)
    _, body = service.handle(subscribe_envelope(delivery=ev.Delivery(ev.DELIVERY_PULL, heartbeats=10)), USER)
    context = ev.parse_subscribe_response(parse_envelope(body)).context
    assert context
    request = msg.build_pull_request(Header(Action.PULL, resource_uri=ALL), msg.PullRequest(context, 5, "PT30S"))
    pending = asyncio.ensure_future(answer_when_ready(service, request, USER, signal))
    await asyncio.sleep(0.05)
    assert not pending.done()
    clock.advance(10)
    status, body = await asyncio.wait_for(pending, 2.0)
    assert status == 200 and ev.parse_event_pull_response(parse_envelope(body)).heartbeat


# ---------------------------------------------------------------------------------- publisher-initiated
def manager_request(action: str, body: msg.EnumerateRequest | msg.PullRequest | str,
                    resource_uri: str = ev.RESOURCE_SUBSCRIPTION_MANAGER) -> bytes:
    header = Header(action, resource_uri=resource_uri)
    if isinstance(body, msg.EnumerateRequest):
        return msg.build_enumerate_request(header, body)
    if isinstance(body, msg.PullRequest):
        return msg.build_pull_request(header, body)
    return msg.build_release_request(header, body)


def test_subscription_manager_pages_items_and_refuses_others() -> None:
    server = SubscriptionManagerServer()
    versions = [server.add(CollectorSubscription(ALL, ev.SubscribeRequest(PULL, filter_dialect=FILTER_WQL,
                                                                          filter_text=CREATED))) for _ in range(3)]
    status, body = server.answer(manager_request(Action.ENUMERATE, msg.EnumerateRequest(optimize=True,
                                                                                        max_elements=2)))
    page = msg.parse_enumerate_response(parse_envelope(body))
    assert status == 200 and len(page.items) == 2 and page.context and not page.end_of_sequence
    status, body = server.answer(manager_request(Action.PULL, msg.PullRequest(page.context, 5)))
    rest = msg.parse_pull_response(parse_envelope(body))
    assert rest.end_of_sequence and len(rest.items) == 1
    got = [ev.parse_subscription_item(i).version for i in page.items + rest.items]
    assert got == versions
    assert server.record.enumerations == 1 and server.record.optimized == 1
    status, body = server.answer(manager_request(Action.PULL, msg.PullRequest(page.context, 5)))
    assert status == 500 and parse_fault(parse_envelope(body)).subcode_name == "InvalidEnumerationContext"
    status, body = server.answer(manager_request(Action.ENUMERATE, msg.EnumerateRequest(), resource_uri=ALL))
    assert parse_fault(parse_envelope(body)).subcode_name == "DestinationUnreachable"
    get = msg.build_get_request(Header(Action.GET, resource_uri=ev.RESOURCE_SUBSCRIPTION_MANAGER))
    status, body = server.answer(get)
    assert parse_fault(parse_envelope(body)).subcode_name == "ActionNotSupported"
    status, body = server.answer(b"<not-xml")
    assert status == 500 and server.record.malformed


async def test_publisher_follows_the_manager() -> None:
    clock = ManualClock()
    config = MockConfig(password="pw", event_clock=clock)
    service = WSManService(default_store(), config)
    publisher = Publisher(service, config)
    eventing = MockEventing(config)
    async with SubscriptionManagerServer() as manager, contextlib.AsyncExitStack() as stack:
        import aiohttp

        session = await stack.enter_async_context(aiohttp.ClientSession())
        good = manager.add(CollectorSubscription(ALL, ev.SubscribeRequest(PULL, filter_dialect=FILTER_WQL,
                                                                          filter_text=CREATED)))
        bad = manager.add(CollectorSubscription(ALL, ev.SubscribeRequest(PULL, filter_dialect=FILTER_WQL,
                                                                         filter_text="SELECT * FROM Win32_Service")))
        await publisher.step(session)
        assert publisher.active == {} and manager.record.enumerations == 0, "not pointed anywhere yet"
        eventing.point_publisher(manager.url, refresh=30)
        await publisher.step(session)
        assert list(publisher.active) == [good] and bad in publisher.refused
        identifier = publisher.active[good]
        assert service.events.get(identifier) is not None
        await publisher.step(session)
        assert manager.record.enumerations == 1, "no new enumeration before the refresh interval"
        manager.remove(good)
        eventing.advance(31)
        await publisher.step(session)
        assert manager.record.enumerations == 2 and publisher.active == {}
        assert service.events.get(identifier) is None
        again = manager.add(CollectorSubscription(ALL, ev.SubscribeRequest(PULL, filter_dialect=FILTER_WQL,
                                                                           filter_text=CREATED)))
        eventing.advance(31)
        await publisher.step(session)
        assert list(publisher.active) == [again]
        eventing.point_publisher(None)
        await publisher.step(session)
        assert publisher.active == {} and len(service.events) == 0


async def test_stopping_the_mock_ends_subscriptions_with_source_shutting_down() -> None:
    config = MockConfig(password="pw", event_clock=ManualClock())
    service = WSManService(default_store(), config)
    app = web.Application()
    install_event_tasks(app, service, config)
    runner = web.AppRunner(app)
    await runner.setup()
    async with EventSink() as sink:
        try:
            status, _ = service.handle(subscribe_envelope(end_to=EndpointReference(sink.url)), USER)
            assert status == 200
        finally:
            await runner.cleanup()
        [end] = await sink.wait_ends(1, 5)
        assert end.status == ev.END_SOURCE_SHUTTING_DOWN
        assert len(service.events) == 0

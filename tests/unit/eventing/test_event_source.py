"""The mock event source: filtering, ordering, bookmarks and expiry with a fake clock (DSP0226 10;
MS-WMOD 3.3), and the Subscribe / Pull / Renew / GetStatus / Unsubscribe handlers of the service."""

from __future__ import annotations

import pytest
import pywbem

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock.config import MockConfig
from harness.targets.mock.events import EventSource, EventSourceError, filetime
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.validate import default_validator
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.faults import parse_fault
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import FILTER_WQL, Action

NS = "root/cimv2"
PULL = ev.Delivery(ev.DELIVERY_PULL)
CREATED = "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'"
ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> CimStore:
    return default_store()


def env_var(name: str, value: str = "1") -> pywbem.CIMInstance:
    return pywbem.CIMInstance("Win32_Environment", {"Name": name, "UserName": "<SYSTEM>", "VariableValue": value})


def names(source: EventSource, sub, n: int = 100) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.instance["TargetInstance"]["Name"] for e in source.take(sub, n)]


def test_creation_events_are_filtered_and_ordered(store: CimStore) -> None:
    source = EventSource(store, clock=FakeClock())
    sub = source.subscribe(NS, ALL, CREATED, PULL)
    for i in range(5):
        store.create_instance(NS, env_var(f"V{i}"))
    path = store.path_of(NS, env_var("V0"))
    store.delete_instance(NS, path)  # a deletion is not a creation
    assert names(source, sub) == [f"V{i}" for i in range(5)]
    assert source.take(sub, 10) == []
    assert sub.within == 1.0


def test_where_on_target_instance_properties(store: CimStore) -> None:
    source = EventSource(store)
    sub = source.subscribe(NS, ALL, CREATED + " AND TargetInstance.VariableValue = 'yes'", PULL)
    store.create_instance(NS, env_var("A", "no"))
    store.create_instance(NS, env_var("B", "yes"))
    assert names(source, sub) == ["B"]


def test_modification_and_deletion_events_carry_previous_instance(store: CimStore) -> None:
    source = EventSource(store, wallclock=lambda: 0.0)
    mod = source.subscribe(NS, ALL, "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA "
                           "'Win32_Environment'", PULL)
    dele = source.subscribe(NS, ALL, "SELECT * FROM __InstanceDeletionEvent WHERE TargetInstance ISA "
                            "'Win32_Environment'", PULL)
    anyop = source.subscribe(NS, ALL, "SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA "
                             "'Win32_Environment'", PULL)
    path = store.create_instance(NS, env_var("M", "old"))
    store.modify_instance(NS, env_var("M", "new"), ["VariableValue"])
    store.delete_instance(NS, path)
    [m] = source.take(mod, 10)
    assert m.instance["PreviousInstance"]["VariableValue"] == "old"
    assert m.instance["TargetInstance"]["VariableValue"] == "new"
    assert m.instance["TIME_CREATED"] == filetime(0.0) == 116444736000000000
    [d] = source.take(dele, 10)
    assert d.instance["TargetInstance"]["Name"] == "M"
    assert [e.event_class for e in source.take(anyop, 10)] == [
        "__InstanceCreationEvent", "__InstanceModificationEvent", "__InstanceDeletionEvent"]


def test_other_namespaces_and_classes_do_not_match(store: CimStore) -> None:
    source = EventSource(store)
    sub = source.subscribe(NS, ALL, "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA "
                           "'Win32_Service'", PULL)
    store.create_instance(NS, env_var("X"))
    assert source.take(sub, 10) == []


@pytest.mark.parametrize("query", ["SELECT * FROM Win32_Environment", "ASSOCIATORS OF {Win32_Service.Name='x'}"])
def test_non_event_queries_are_refused(store: CimStore, query: str) -> None:
    with pytest.raises(EventSourceError) as info:
        EventSource(store).subscribe(NS, ALL, query, PULL)
    assert info.value.fault == "CannotProcessFilter"


def test_expiry_and_renew_with_a_fake_clock(store: CimStore) -> None:
    clock = FakeClock()
    source = EventSource(store, clock=clock)
    sub = source.subscribe(NS, ALL, CREATED, PULL, expires=60)
    assert source.remaining(sub) == 60
    clock.now += 59
    assert source.renew(sub.identifier, 120) == 120
    clock.now += 100
    assert source.get(sub.identifier) is sub
    assert sub.context is not None and source.by_context(sub.context) is sub
    clock.now += 21
    assert source.get(sub.identifier) is None
    assert source.by_context(sub.context) is None
    with pytest.raises(EventSourceError):
        source.renew(sub.identifier, 10)
    assert not source.unsubscribe(sub.identifier)


def test_expiry_is_bounded_and_must_be_positive(store: CimStore) -> None:
    source = EventSource(store)
    assert source.remaining(source.subscribe(NS, ALL, CREATED, PULL, expires=10**9)) == pytest.approx(7 * 86400,
                                                                                                    abs=5)
    with pytest.raises(EventSourceError):
        source.subscribe(NS, ALL, CREATED, PULL, expires=0)


def test_bookmark_resumes_after_the_last_taken_event(store: CimStore) -> None:
    source = EventSource(store)
    first = source.subscribe(NS, ALL, CREATED, PULL, send_bookmarks=True)
    for i in range(6):
        store.create_instance(NS, env_var(f"B{i}"))
    assert names(source, first, 2) == ["B0", "B1"]
    mark = source.bookmark(first)
    assert source.unsubscribe(first.identifier)
    again = source.subscribe(NS, ALL, CREATED, PULL, bookmark=mark)
    assert names(source, again) == ["B2", "B3", "B4", "B5"]
    earliest = source.subscribe(NS, ALL, CREATED, PULL, bookmark=ev.BOOKMARK_EARLIEST)
    assert names(source, earliest) == [f"B{i}" for i in range(6)]
    with pytest.raises(EventSourceError):
        source.subscribe(NS, ALL, CREATED, PULL, bookmark="wmh-bookmark:someone-else:3")


def test_queue_overflow_counts_dropped_events(store: CimStore) -> None:
    source = EventSource(store, queue_size=2)
    sub = source.subscribe(NS, ALL, CREATED, PULL)
    for i in range(4):
        store.create_instance(NS, env_var(f"Q{i}"))
    assert names(source, sub) == ["Q2", "Q3"]
    assert sub.dropped == 2


# ---------------------------------------------------------------------------------- service handlers
class Svc:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.service = WSManService(default_store(), MockConfig(password="pw"), clock=self.clock)

    def call(self, data: bytes) -> tuple[int, Envelope]:
        assert default_validator().validate(data) == []
        status, out = self.service.handle(data, Principal("wmh"))
        assert default_validator().validate(out) == [], default_validator().validate(out)
        return status, parse_envelope(out)

    def subscribe(self, **kw) -> ev.SubscribeResponse:  # type: ignore[no-untyped-def]
        req = ev.SubscribeRequest(kw.pop("delivery", PULL), filter_dialect=FILTER_WQL,
                                  filter_text=kw.pop("wql", CREATED), **kw)
        status, env = self.call(ev.build_subscribe_request(Header(Action.SUBSCRIBE, resource_uri=ALL), req))
        assert status == 200, parse_fault(env)
        return ev.parse_subscribe_response(env)

    def pull(self, context: str, n: int = 10) -> tuple[int, Envelope]:
        return self.call(msg.build_pull_request(Header(Action.PULL, resource_uri=ALL), msg.PullRequest(context, n)))


def test_service_subscribe_pull_renew_unsubscribe() -> None:
    s = Svc()
    resp = s.subscribe(expires="PT60S", send_bookmarks=True)
    assert resp.context and resp.expires == "PT60.000S"
    status, env = s.pull(resp.context)
    assert status == 500 and parse_fault(env).subcode_name == "TimedOut"
    s.service.store.create_instance(NS, env_var("SVC1"))
    status, env = s.pull(resp.context)
    page = ev.parse_event_pull_response(env)
    assert status == 200 and page.bookmark and page.context == resp.context
    assert [e.element.tag.rpartition("}")[2] for e in page.events] == ["__InstanceCreationEvent"]
    s.clock.now += 50
    status, env = s.call(ev.build_renew_request(Header(Action.EVENTING_RENEW, resource_uri=ALL),
                                                resp.manager.identifier, "PT100S"))
    assert ev.parse_renew_response(env).expires == "PT100.000S"
    s.clock.now += 60
    status, env = s.call(ev.build_get_status_request(Header(Action.EVENTING_GET_STATUS, resource_uri=ALL),
                                                     resp.manager.identifier))
    assert ev.parse_get_status_response(env).expires == "PT40.000S"
    status, env = s.call(ev.build_unsubscribe_request(Header(Action.UNSUBSCRIBE, resource_uri=ALL),
                                                      resp.manager.identifier))
    assert status == 200
    status, env = s.pull(resp.context)
    assert parse_fault(env).subcode_name == "InvalidEnumerationContext"
    status, env = s.call(ev.build_unsubscribe_request(Header(Action.UNSUBSCRIBE, resource_uri=ALL),
                                                      resp.manager.identifier))
    assert parse_fault(env).subcode_name == "DestinationUnreachable"


def test_service_pull_after_expiry_is_invalid_enumeration_context() -> None:
    s = Svc()
    resp = s.subscribe(expires="PT10S")
    assert resp.context
    s.clock.now += 11
    status, env = s.pull(resp.context)
    assert status == 500 and parse_fault(env).subcode_name == "InvalidEnumerationContext"


@pytest.mark.parametrize(("kw", "subcode"), [
    ({"delivery": ev.Delivery(ev.DELIVERY_PUSH, notify_to=EndpointReference("mailto:sink@example.org"))},
     "UnsupportedFeature"),
    ({"wql": "SELECT * FROM Win32_Environment"}, "CannotProcessFilter"),
    ({"wql": "SELECT FROM WHERE"}, "CannotProcessFilter"),
    ({"bookmark": "not-ours"}, "InvalidBookmark"),
])
def test_service_refusals(kw, subcode: str) -> None:  # type: ignore[no-untyped-def]
    s = Svc()
    req = ev.SubscribeRequest(kw.pop("delivery", PULL), filter_dialect=FILTER_WQL, filter_text=kw.pop("wql", CREATED),
                              **kw)
    status, env = s.call(ev.build_subscribe_request(Header(Action.SUBSCRIBE, resource_uri=ALL), req))
    assert status == 500 and parse_fault(env).subcode_name == subcode

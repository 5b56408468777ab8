"""Push delivery of the mock (EventPusher) into the harness EventSink (DSP0226 10.2.9.1-10.2.9.3,
10.2.3, 10.7), in one event loop, without the HTTP service in between."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pywbem

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock.event_pusher import EventPusher
from harness.targets.mock.events import EventSource
from harness.transport.event_sink import EventSink
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.header import EndpointReference

NS = "root/cimv2"
ALL = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
CREATED = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Environment'"


@pytest.fixture
async def running() -> AsyncIterator[tuple[CimStore, EventSource]]:
    store = default_store()
    source = EventSource(store)
    task = asyncio.get_running_loop().create_task(EventPusher(source, retry_delay=0.05).run())
    await asyncio.sleep(0)  # let the pusher register its waker
    try:
        yield store, source
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        source.close()


def create(store: CimStore, *names: str) -> None:
    for name in names:
        store.create_instance(NS, pywbem.CIMInstance("Win32_Environment", {"Name": name, "UserName": "<SYSTEM>"}))


def names(events: list[ev.DeliveredEvent]) -> list[str]:
    return [element_to_properties(e.element)["TargetInstance"]["Name"] for e in events]


async def test_push_mode_posts_each_event(running: tuple[CimStore, EventSource]) -> None:
    store, source = running
    async with EventSink() as sink:
        source.subscribe(NS, ALL, CREATED, ev.Delivery(ev.DELIVERY_PUSH, notify_to=EndpointReference(sink.url)),
                         send_bookmarks=True)
        create(store, "P1", "P2", "P3")
        assert names(await sink.wait_for(3, 5)) == ["P1", "P2", "P3"]
        assert not any(m.ack_requested for m in sink.record.messages)
        assert all(m.bookmark for m in sink.record.messages)


async def test_push_with_ack_holds_the_event_until_acknowledged(running: tuple[CimStore, EventSource]) -> None:
    store, source = running
    async with EventSink() as sink:
        sink.acknowledge = False
        sub = source.subscribe(NS, ALL, CREATED,
                               ev.Delivery(ev.DELIVERY_PUSH_WITH_ACK, notify_to=EndpointReference(sink.url)))
        create(store, "A1", "A2")
        await sink.wait_refused(3, 5)
        assert [e.instance["TargetInstance"]["Name"] for e in sub.queue] == ["A1", "A2"]
        sink.acknowledge = True
        assert names(await sink.wait_for(2, 5)) == ["A1", "A2"]


async def test_connection_retry_exhausted_ends_the_subscription(running: tuple[CimStore, EventSource]) -> None:
    store, source = running
    async with EventSink() as sink:
        dead = sink.url  # closed below: nobody listens there any more
    sub = source.subscribe(NS, ALL, CREATED, ev.Delivery(ev.DELIVERY_PUSH, notify_to=EndpointReference(dead),
                                                         connection_retry=ev.ConnectionRetry(1, 0.05)))
    create(store, "R1")
    for _ in range(100):
        if source.get(sub.identifier) is None:
            break
        await asyncio.sleep(0.05)
    assert source.get(sub.identifier) is None, "the subscription ends after Total + 1 failed attempts"

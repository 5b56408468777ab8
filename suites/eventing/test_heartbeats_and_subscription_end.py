"""Heartbeats (DSP0226 10.2.5) and SubscriptionEnd (DSP0226 10.6; WS-Eventing 2004/08 3.5) in push
and pull mode, driven by the mock's event clock (``wm_mock_eventing``), so no test sleeps for a
heartbeat interval. Real targets skip: their clock cannot be advanced.

A heartbeat is owed when nothing was delivered for the Heartbeats interval; while events flow,
none is sent. SubscriptionEnd goes to EndTo when the source ends a subscription: on expiry
(SourceCancelling) and after failed deliveries (DeliveryFailure).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.transport.event_sink import EventSink
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.header import EndpointReference

pytestmark = [pytest.mark.requires("wsman", "eventing", "create", "delete", "win32-environment")]

ALL_CLASSES = wmi_uri("*")
ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
WAIT = 10.0
HEARTBEAT = 10.0


def _query(prefix: str) -> str:
    return (f"SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
            f"AND TargetInstance.Name LIKE '{prefix}%'")


async def _create(wsman: WSManClient, name: str) -> None:
    await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": "1"},
                       class_name="Win32_Environment")


async def _delete(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(WSManFault):
            await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


async def _quiet(seconds: float = 0.3) -> None:
    """Give the target's delivery task a moment to act on a clock change (it must send nothing)."""
    await asyncio.sleep(seconds)


@pytest.mark.spec("DSP0226 10.2.5", "MS-WMOD 3.4")
@pytest.mark.requires("push-eventing")
async def test_push_heartbeat_when_idle_and_none_while_events_flow(wsman, wm_tap, wm_mock_eventing, unique_name):
    names = [f"{unique_name}_{i}" for i in range(3)]
    async with EventSink(tap=wm_tap) as sink:
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_PUSH,
                                    notify_to=EndpointReference(address=sink.url), heartbeats=HEARTBEAT, expires=3600)
        try:
            for i, name in enumerate(names):  # an event every 6 s of a 10 s heartbeat interval
                wm_mock_eventing.advance(6)
                await _create(wsman, name)
                await sink.wait_for(i + 1, WAIT)
            await _quiet()
            assert sink.record.heartbeats == 0, "no heartbeat while events flow (18 s, never 10 s idle)"
            wm_mock_eventing.advance(HEARTBEAT - 1)
            await _quiet()
            assert sink.record.heartbeats == 0, "no heartbeat before the interval has passed"
            wm_mock_eventing.advance(2)
            await sink.wait_heartbeats(1, WAIT)
            assert sink.record.kinds == ["event"] * 3 + ["heartbeat"]
            wm_mock_eventing.advance(HEARTBEAT + 1)
            await sink.wait_heartbeats(2, WAIT)
        finally:
            await wsman.unsubscribe(sub)
    await _delete(wsman, names)


@pytest.mark.spec("DSP0226 10.2.5", "DSP0226 10.2.9.4", "MS-WMOD 3.3")
async def test_pull_heartbeat_when_idle(wsman, wm_mock_eventing, unique_name):
    sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), heartbeats=HEARTBEAT, expires=3600)
    try:
        await _create(wsman, unique_name)
        page = await wsman.pull_events(sub, max_elements=5, max_time=2.0)
        assert len(page.events) == 1 and not page.heartbeat, "events are not heartbeats"
        pending = asyncio.ensure_future(wsman.pull_events(sub, max_elements=5, max_time=8.0))
        await _quiet()
        assert not pending.done(), "the empty Pull waits"
        wm_mock_eventing.advance(HEARTBEAT + 1)
        idle = await asyncio.wait_for(pending, WAIT)
        assert idle.heartbeat and idle.events == [], "after the interval without events the Pull is a heartbeat"
        with pytest.raises(WSManFault) as info:
            await wsman.pull_events(sub, max_elements=5, max_time=0.5)
        assert info.value.subcode_name == "TimedOut", "the heartbeat restarted the interval"
    finally:
        await wsman.unsubscribe(sub)
        await _delete(wsman, [unique_name])


@pytest.mark.spec("DSP0226 10.6", "DSP0226 10.2.9.4")
async def test_subscription_end_on_expiry(wsman, wm_tap, wm_mock_eventing, unique_name):
    async with EventSink(tap=wm_tap) as sink:
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), expires=60,
                                    end_to=EndpointReference(address=sink.url))
        wm_mock_eventing.advance(59)
        await _quiet()
        assert sink.record.ends == [], "no SubscriptionEnd before Expires"
        wm_mock_eventing.advance(2)
        [end] = await sink.wait_ends(1, WAIT)
        assert end.manager.identifier == sub.identifier
        assert end.status == ev.END_SOURCE_CANCELLING
        with pytest.raises(WSManFault) as info:
            await wsman.pull_events(sub, max_elements=1, max_time=0.5)
        assert info.value.subcode_name == "InvalidEnumerationContext", "the expired subscription is gone"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.spec("DSP0226 10.6", "DSP0226 10.2.3")
@pytest.mark.requires("push-eventing")
async def test_subscription_end_on_delivery_failure(wsman, wm_tap, wm_mock_eventing, unique_name):
    nowhere = f"http://127.0.0.1:{_closed_port()}/events"
    async with EventSink(tap=wm_tap) as sink:
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_PUSH,
                                    notify_to=EndpointReference(address=nowhere), expires=600,
                                    connection_retry=ev.ConnectionRetry(total=1, interval=0.1),
                                    end_to=EndpointReference(address=sink.url))
        try:
            await _create(wsman, unique_name)
            [end] = await sink.wait_ends(1, WAIT)
            assert end.manager.identifier == sub.identifier
            assert end.status == ev.END_DELIVERY_FAILURE, "ConnectionRetry exhausted: DeliveryFailure"
            with pytest.raises(WSManFault):
                await wsman.unsubscribe(sub)
        finally:
            await _delete(wsman, [unique_name])

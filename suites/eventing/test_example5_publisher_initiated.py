"""MS-WMOD 3.5 Example 5: publisher-initiated event subscriptions (MS-WSMV 3.1.4.1.30), step by step.

The harness is the collector: it hosts the subscription manager
(:class:`~harness.flows.subscription_manager.SubscriptionManagerServer`) and the event sink. The
target is the publisher: pointed at the manager (on Windows the "Configure target Subscription
Manager" policy; on the mock ``wm_mock_eventing.point_publisher``), it Enumerates the
SubscriptionManager/Subscription resource, honours the Subscribe envelope of each SubscriptionType
item (MS-WSMV 2.2.4.41) and pushes events, heartbeats and finally SubscriptionEnd to the sink.
Real targets skip: the harness cannot reconfigure their policy.
"""

from __future__ import annotations

import contextlib

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.flows.subscription_manager import CollectorSubscription, SubscriptionManagerServer
from harness.transport.event_sink import EventSink
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import FILTER_WQL

pytestmark = [pytest.mark.requires("wsman", "eventing", "push-eventing", "publisher-initiated", "create", "delete",
                                   "win32-environment")]

ALL_CLASSES = wmi_uri("*")
ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
WAIT = 10.0
HEARTBEAT = 10.0
REFRESH = 60.0


def _names(events: list[ev.DeliveredEvent]) -> list[str]:
    return [element_to_properties(e.element)["TargetInstance"]["Name"] for e in events]


async def _create(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": "1"},
                           class_name="Win32_Environment")


async def _delete(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(WSManFault):
            await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 3.5", "MS-WSMV 3.1.4.1.30", "MS-WSMV 2.2.4.41", "DSP0226 10.2.5", "DSP0226 10.6")
async def test_publisher_initiated_subscription_step_by_step(wsman, wm_tap, wm_mock_eventing, unique_name):
    names = [f"{unique_name}_{i}" for i in range(3)]
    wql = (f"SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
           f"AND TargetInstance.Name LIKE '{unique_name}%'")
    async with EventSink(tap=wm_tap) as sink, SubscriptionManagerServer(tap=wm_tap) as manager:
        # Prerequisite: the collector (the WM application) has an active subscription. Its Subscribe
        # names the sink as NotifyTo and EndTo, asks for heartbeats, and for every logged event
        # (bookmark "earliest", DSP0226 10.2.6) so that nothing created before the publisher has
        # registered it is missed.
        offered = CollectorSubscription(ALL_CLASSES, ev.SubscribeRequest(
            delivery=ev.Delivery(mode=ev.DELIVERY_PUSH, notify_to=EndpointReference(address=sink.url),
                                 heartbeats=HEARTBEAT),
            expires=ev.format_expires(3600), filter_dialect=FILTER_WQL, filter_text=wql,
            bookmark=ev.BOOKMARK_EARLIEST, end_to=EndpointReference(address=sink.url)))
        version = manager.add(offered)
        try:
            # Steps 1-4: the publisher Enumerates the SubscriptionManager/Subscription resource.
            wm_mock_eventing.point_publisher(manager.url, refresh=REFRESH)
            await manager.wait_enumerated(1, WAIT)
            assert manager.record.optimized >= 1, "the publisher SHOULD ask for an optimized enumeration"
            assert not manager.record.malformed
            # Steps 5-11: it registers the subscription and pushes every matching event, in order.
            await _create(wsman, names)
            assert _names(await sink.wait_for(len(names), WAIT)) == names, "each event once, in order"
            # Steps 12-13: with no event for the Heartbeats interval, a heartbeat.
            assert sink.record.heartbeats == 0
            wm_mock_eventing.advance(HEARTBEAT + 1)
            await sink.wait_heartbeats(1, WAIT)
            # Step 14: the collector withdraws the subscription; at its next refresh the publisher
            # ends it and says so with SubscriptionEnd (SourceCancelling, WS-Eventing 2004/08 3.5).
            assert manager.remove(version)
            wm_mock_eventing.advance(REFRESH + 1)
            [end] = await sink.wait_ends(1, WAIT)
            assert end.status == ev.END_SOURCE_CANCELLING
            assert manager.record.enumerations >= 2, "the publisher enumerated again at its refresh"
            late = f"{unique_name}_late"
            names.append(late)
            await _create(wsman, [late])
            with pytest.raises(TimeoutError):
                await sink.wait_for(len(names), 1.0)
            assert sink.record.kinds[-1] == "end", "nothing is delivered after SubscriptionEnd"
        finally:
            wm_mock_eventing.point_publisher(None)
            await _delete(wsman, names)


@pytest.mark.spec("MS-WMOD 3.5", "MS-WSMV 3.1.4.1.30", "DSP0226 10.6")
async def test_publisher_shutting_down_ends_its_subscriptions(wsman, wm_tap, wm_mock_eventing, unique_name):
    wql = (f"SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Environment' "
           f"AND TargetInstance.Name LIKE '{unique_name}%'")
    async with EventSink(tap=wm_tap) as sink, SubscriptionManagerServer(tap=wm_tap) as manager:
        manager.add(CollectorSubscription(ALL_CLASSES, ev.SubscribeRequest(
            delivery=ev.Delivery(mode=ev.DELIVERY_PUSH_WITH_ACK, notify_to=EndpointReference(address=sink.url)),
            filter_dialect=FILTER_WQL, filter_text=wql, bookmark=ev.BOOKMARK_EARLIEST,
            end_to=EndpointReference(address=sink.url))))
        try:
            wm_mock_eventing.point_publisher(manager.url, refresh=REFRESH)
            await manager.wait_enumerated(1, WAIT)
            await _create(wsman, [unique_name])
            assert _names(await sink.wait_for(1, WAIT)) == [unique_name]
            assert all(m.ack_requested for m in sink.record.messages), "the offered delivery mode is honoured"
            wm_mock_eventing.point_publisher(None)
            [end] = await sink.wait_ends(1, WAIT)
            assert end.status == ev.END_SOURCE_SHUTTING_DOWN
        finally:
            wm_mock_eventing.point_publisher(None)
            await _delete(wsman, [unique_name])

"""MS-WMOD 3.4 Example 4: push event subscriptions over WS-Man.

Subscribe (MS-WSMV 3.1.4.6; DSP0226 10.2) with NotifyTo = an event sink of the harness; the target
POSTs each event to it: Push (DSP0226 10.2.9.1), PushWithAck (10.2.9.2: the next event only after
the wsman:Ack of DSP0226 10.7) and batched Events (10.2.9.3). Unsubscribe (DSP0226 10.4) stops the
deliveries. The sink must be reachable from the target (WMH_EVENT_SINK_HOST).
"""

from __future__ import annotations

import contextlib

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.transport.event_sink import EventSink
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.header import EndpointReference

pytestmark = [pytest.mark.requires("wsman", "eventing", "push-eventing", "create", "delete", "win32-environment")]

ALL_CLASSES = wmi_uri("*")
ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
COUNT = 4
WAIT = 15.0


def _query(prefix: str) -> str:
    return (f"SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
            f"AND TargetInstance.Name LIKE '{prefix}%'")


def _names(events: list[ev.DeliveredEvent]) -> list[str]:
    out = []
    for event in events:
        target = element_to_properties(event.element).get("TargetInstance")
        assert isinstance(target, dict), "a pushed instance event carries TargetInstance"
        out.append(target["Name"])
    return out


async def _create(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": "1"},
                           class_name="Win32_Environment")


async def _delete(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(WSManFault):
            await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 3.4", "MS-WSMV 3.1.4.6", "DSP0226 10.2.9.1", "DSP0226 10.4")
async def test_push_delivers_every_event_to_the_sink_in_order(wsman, wm_tap, unique_name):
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    async with EventSink(tap=wm_tap) as sink:
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_PUSH,
                                    notify_to=EndpointReference(address=sink.url), expires=600)
        try:
            await _create(wsman, names)
            events = await sink.wait_for(COUNT, WAIT)
            assert _names(events) == names, "each event once, in order"
            assert not sink.record.malformed
        finally:
            await wsman.unsubscribe(sub)
        await _create(wsman, [f"{unique_name}_late"])
        names.append(f"{unique_name}_late")
        with pytest.raises(TimeoutError):
            await sink.wait_for(COUNT + 1, 1.0)
    await _delete(wsman, names)


@pytest.mark.spec("MS-WMOD 3.4", "DSP0226 10.2.9.2", "DSP0226 10.7")
async def test_push_with_ack_does_not_advance_until_acknowledged(wsman, wm_tap, unique_name):
    names = [f"{unique_name}_{i}" for i in range(2)]
    async with EventSink(tap=wm_tap) as sink:
        sink.acknowledge = False
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_PUSH_WITH_ACK,
                                    notify_to=EndpointReference(address=sink.url), expires=600)
        try:
            await _create(wsman, names)
            await sink.wait_refused(2, WAIT)
            assert sink.record.events == [], "nothing counts as delivered before the Ack"
            sink.acknowledge = True
            events = await sink.wait_for(2, WAIT)
            assert _names(events) == names, "the unacknowledged event is sent again first, none is skipped"
            assert all(m.ack_requested for m in sink.record.messages), "PushWithAck asks for wsman:Ack"
        finally:
            await wsman.unsubscribe(sub)
    await _delete(wsman, names)


@pytest.mark.spec("MS-WMOD 3.4", "DSP0226 10.2.9.3")
async def test_batched_events_mode_delivers_wsman_events(wsman, wm_tap, unique_name):
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    async with EventSink(tap=wm_tap) as sink:
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_EVENTS,
                                    notify_to=EndpointReference(address=sink.url), max_elements=3, expires=600)
        try:
            await _create(wsman, names)
            events = await sink.wait_for(COUNT, WAIT)
            assert _names(events) == names
            assert all(m.batched and 1 <= len(m.events) <= 3 for m in sink.record.messages), \
                "Events mode sends wsman:Events of at most MaxElements events"
        finally:
            await wsman.unsubscribe(sub)
    await _delete(wsman, names)


@pytest.mark.spec("MS-WMOD 3.4", "DSP0226 10.2.9.2", "DSP0226 10.7")
async def test_push_with_ack_resumes_after_a_sink_restart(wsman, wm_tap, unique_name):
    """Exactly once across a sink restart: the sink acknowledges two events, stops acknowledging,
    goes away and comes back on the same address; delivery resumes with the first unacknowledged
    event -- nothing lost, nothing delivered twice (DSP0226 10.2.9.2, 10.7)."""
    names = [f"{unique_name}_{i}" for i in range(4)]
    async with EventSink(tap=wm_tap) as first:
        port = int(first.url.rsplit(":", 1)[1].split("/", 1)[0])
        sub = await wsman.subscribe(ALL_CLASSES, _query(unique_name), mode=ev.DELIVERY_PUSH_WITH_ACK,
                                    notify_to=EndpointReference(address=first.url), expires=600)
        try:
            await _create(wsman, names[:2])
            assert _names(await first.wait_for(2, WAIT)) == names[:2]
            first.acknowledge = False
            await _create(wsman, names[2:])
            await first.wait_refused(1, WAIT)
            assert _names(first.record.events) == names[:2], "an unacknowledged event is not delivered"
        except BaseException:
            await wsman.unsubscribe(sub)
            raise
    try:
        async with EventSink(port=port, tap=wm_tap) as restarted:
            events = await restarted.wait_for(2, WAIT)
            assert _names(events) == names[2:], "delivery resumes with the first unacknowledged event, in order"
            with pytest.raises(TimeoutError):
                await restarted.wait_for(3, 1.0)
            assert _names(first.record.events + restarted.record.events) == names, "none lost, none twice"
    finally:
        await wsman.unsubscribe(sub)
        await _delete(wsman, names)

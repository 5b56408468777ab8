"""Extrinsic events (MS-WMOD 2.5.2.5 monitoring; WMI __ExtrinsicEvent classes) over a WS-Man pull
subscription (MS-WSMV 3.1.4.6; DSP0226 10.2.9.4): Win32_ProcessStartTrace / Win32_ProcessStopTrace
are raised by the process provider, not by a change the client makes to an instance it subscribed to."""

from __future__ import annotations

import contextlib

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import EventSubscription, Instance, WSManClient
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "eventing", "extrinsic-events", "invoke")]

ALL_CLASSES = wmi_uri("*")
PROCESS = wmi_uri("Win32_Process")
MAX_EMPTY_PULLS = 10


async def _events(wsman: WSManClient, sub: EventSubscription, count: int) -> list[Instance]:
    events: list[Instance] = []
    empty = 0
    while len(events) < count:
        try:
            page = await wsman.pull_events(sub, max_elements=count, max_time=2.0)
        except WSManFault as fault:
            assert fault.subcode_name == "TimedOut", fault
            empty += 1
            assert empty <= MAX_EMPTY_PULLS, f"only {len(events)} of {count} extrinsic events arrived"
            continue
        events.extend(page.events)
    return events


@pytest.mark.spec("MS-WMOD 2.5.2.5", "MS-WMOD 3.3", "MS-WSMV 3.1.4.6")
async def test_process_start_and_stop_traces_arrive_once_each(wsman, unique_name):
    image = f"{unique_name.lower()}.exe"
    start = await wsman.subscribe(
        ALL_CLASSES, f"SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = '{image}'", expires=120)
    stop = await wsman.subscribe(
        ALL_CLASSES, f"SELECT * FROM Win32_ProcessTrace WHERE ProcessName = '{image}'", expires=120)
    try:
        out = await wsman.invoke(PROCESS, "Create", None, {"CommandLine": f"C:\\Tools\\{image} /quiet"})
        assert out["ReturnValue"] == "0"
        pid = out["ProcessId"]
        out = await wsman.invoke(PROCESS, "Terminate", {"Handle": pid}, {"Reason": "7"})
        assert out["ReturnValue"] == "0"

        [started] = await _events(wsman, start, 1)
        assert started.class_name == "Win32_ProcessStartTrace"
        assert started.properties["ProcessID"] == pid and started.properties["ProcessName"] == image
        assert started.properties.get("TIME_CREATED"), "every event carries TIME_CREATED (__Event)"

        # Win32_ProcessTrace ISA-matches both subclasses, in the order they were raised
        both = await _events(wsman, stop, 2)
        assert [e.class_name for e in both] == ["Win32_ProcessStartTrace", "Win32_ProcessStopTrace"]
        assert both[1].properties["ProcessID"] == pid
        assert both[1].properties["ExitStatus"] == "7"
        with pytest.raises(WSManFault) as info:
            await wsman.pull_events(start, max_elements=5, max_time=1.0)
        assert info.value.subcode_name == "TimedOut", "the start trace was delivered exactly once"
    finally:
        for sub in (start, stop):
            with contextlib.suppress(WSManFault):
                await wsman.unsubscribe(sub)


@pytest.mark.spec("MS-WSMV 3.1.4.6", "DSP0226 10.2")
async def test_subscribing_to_a_class_that_is_not_an_event_class_is_refused(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.subscribe(ALL_CLASSES, "SELECT * FROM Win32_Service", expires=60)
    assert info.value.code == "s:Sender", info.value

"""MS-WMOD 3.3 Example 3: pull event subscriptions over WS-Man.

Subscribe (MS-WSMV 3.1.4.6; DSP0226 10.2) in Pull delivery mode (DSP0226 10.2.9.4) to intrinsic
instance events of Win32_Environment, cause them with WS-Transfer Create / Put / Delete (MS-WSMV
3.1.4.5, 3.1.4.2, 3.1.4.6 of the transfer set; DSP0226 7), pull them (DSP0226 8.4 on the
subscription's enumeration context), Renew (DSP0226 10.5), resume from a bookmark (DSP0226 10.2.6)
and Unsubscribe (DSP0226 10.4). Every query is narrowed to this run's unique names, so events of
other clients on a shared target never disturb the counts.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import EventSubscription, Instance, WSManClient
from harness.wire.wsman.eventing import expires_in
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "eventing")]

ALL_CLASSES = wmi_uri("*")
ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
COUNT = 6
#: Empty pulls (w:TimedOut) tolerated while waiting for events: a real target polls at WITHIN.
MAX_EMPTY_PULLS = 10


def _query(event_class: str, prefix: str) -> str:
    return (f"SELECT * FROM {event_class} WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
            f"AND TargetInstance.Name LIKE '{prefix}%'")


def _target_names(events: list[Instance]) -> list[str]:
    out = []
    for event in events:
        target = event.properties.get("TargetInstance")
        assert isinstance(target, dict), f"{event.class_name} must carry TargetInstance (embedded instance)"
        out.append(target["Name"])
    return out


async def _collect(wsman: WSManClient, sub: EventSubscription, count: int, *, page_size: int = 2) -> list[str]:
    """Pull until ``count`` events arrived; their TargetInstance names in delivery order."""
    return _target_names(await _collect_events(wsman, sub, count, page_size=page_size))


async def _collect_events(wsman: WSManClient, sub: EventSubscription, count: int, *,
                          page_size: int = 2) -> list[Instance]:
    """Pull until ``count`` events arrived; w:TimedOut means none yet (DSP0226 10.2.9.4)."""
    events: list[Instance] = []
    empty = 0
    while len(events) < count:
        try:
            page = await wsman.pull_events(sub, max_elements=page_size, max_time=2.0)
        except WSManFault as fault:
            assert fault.subcode_name == "TimedOut", fault
            empty += 1
            assert empty <= MAX_EMPTY_PULLS, f"only {len(events)} of {count} events arrived"
            continue
        assert 0 < len(page.events) <= page_size, "a Pull honours MaxElements and returns at least one event"
        events.extend(page.events)
    return events


async def _nothing_more(wsman: WSManClient, sub: EventSubscription) -> None:
    with pytest.raises(WSManFault) as info:
        await wsman.pull_events(sub, max_elements=5, max_time=1.0)
    assert info.value.subcode_name == "TimedOut", "an empty Pull on a live subscription times out"


async def _create(wsman: WSManClient, name: str, value: str = "1") -> None:
    await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": value},
                       class_name="Win32_Environment")


async def _delete_all(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(WSManFault):  # already gone
            await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 3.3", "MS-WSMV 3.1.4.6", "DSP0226 10.2", "DSP0226 10.2.9.4", "DSP0226 10.4")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_pull_subscription_delivers_each_creation_once_in_order(wsman, unique_name):
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    sub = await wsman.subscribe(ALL_CLASSES, _query("__InstanceCreationEvent", unique_name), expires=600)
    try:
        assert sub.identifier, "SubscribeResponse names the subscription (steps 4-6)"
        assert sub.context, "a Pull subscription returns an EnumerationContext (DSP0226 10.2.9.4)"
        for name in names:
            await _create(wsman, name)
        got = await _collect(wsman, sub, COUNT)
        assert got == names, "every creation exactly once, in order, none lost, none duplicated"
        await _nothing_more(wsman, sub)
    finally:
        await wsman.unsubscribe(sub)
        await _delete_all(wsman, names)


@pytest.mark.spec("MS-WMOD 3.3", "DSP0226 10.5", "DSP0226 10.3")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_renew_extends_expiry_and_delivery_continues(wsman, unique_name):
    names = [f"{unique_name}_{i}" for i in range(4)]
    sub = await wsman.subscribe(ALL_CLASSES, _query("__InstanceCreationEvent", unique_name), expires=60)
    try:
        await _create(wsman, names[0])
        await _create(wsman, names[1])
        assert await _collect(wsman, sub, 2) == names[:2]
        granted = await wsman.renew(sub, 900)
        assert granted is not None, "RenewResponse carries the new Expires"
        assert expires_in(granted) > 60, "Renew extends the subscription beyond the first grant"
        status = await wsman.get_status(sub)
        assert status is None or expires_in(status) > 60
        await _create(wsman, names[2])
        await _create(wsman, names[3])
        assert await _collect(wsman, sub, 2) == names[2:], "delivery continues across the Renew"
    finally:
        await wsman.unsubscribe(sub)
        await _delete_all(wsman, names)


@pytest.mark.spec("MS-WMOD 3.3", "DSP0226 10.4")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_unsubscribe_ends_the_subscription(wsman, unique_name):
    sub = await wsman.subscribe(ALL_CLASSES, _query("__InstanceCreationEvent", unique_name))
    await wsman.unsubscribe(sub)
    try:
        await _create(wsman, unique_name)
        with pytest.raises(WSManFault) as info:
            await wsman.pull_events(sub, max_elements=5, max_time=1.0)
        assert info.value.subcode_name == "InvalidEnumerationContext", info.value
        with pytest.raises(WSManFault):
            await wsman.unsubscribe(sub)
    finally:
        await _delete_all(wsman, [unique_name])


@pytest.mark.spec("MS-WMOD 3.3", "DSP0226 10.2.6")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_bookmark_resumes_after_a_client_restart(wsman, wm_target, wm_tap, unique_name):
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    query = _query("__InstanceCreationEvent", unique_name)
    sub = await wsman.subscribe(ALL_CLASSES, query, send_bookmarks=True)
    try:
        for name in names:
            await _create(wsman, name)
        page = await wsman.pull_events(sub, max_elements=2)
        first = _target_names(page.events)
        assert first == names[:2]
        assert page.bookmark, "SendBookmarks: every delivery carries a wsman:Bookmark (DSP0226 10.2.6)"
        bookmark = page.bookmark
    finally:
        await wsman.unsubscribe(sub)
    try:
        # "restart": a new client with no state but the bookmark subscribes again.
        async with WSManClient(wm_target, tap=wm_tap, validator=wsman.validator) as restarted:
            again = await restarted.subscribe(ALL_CLASSES, query, bookmark=bookmark, send_bookmarks=True)
            try:
                rest = await _collect(restarted, again, COUNT - 2)
                assert rest == names[2:], "exactly the events after the bookmark, in order"
                await _nothing_more(restarted, again)
            finally:
                await restarted.unsubscribe(again)
    finally:
        await _delete_all(wsman, names)


@pytest.mark.spec("MS-WMOD 3.3", "DSP0226 10.2.9.4")
@pytest.mark.requires("create", "put", "delete", "win32-environment")
async def test_modification_and_deletion_events(wsman, unique_name):
    mod = await wsman.subscribe(ALL_CLASSES, _query("__InstanceModificationEvent", unique_name))
    dele = await wsman.subscribe(ALL_CLASSES, _query("__InstanceDeletionEvent", unique_name))
    created = False
    try:
        await _create(wsman, unique_name, "before")
        created = True
        await wsman.put(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM}, {"VariableValue": "after"},
                        class_name="Win32_Environment")
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        created = False
        [modified] = await _collect_events(wsman, mod, 1)
        assert modified.class_name == "__InstanceModificationEvent"
        event = modified.properties
        assert event["TargetInstance"]["VariableValue"] == "after"
        assert event["PreviousInstance"]["VariableValue"] == "before", "modification events carry PreviousInstance"
        assert event.get("TIME_CREATED"), "intrinsic events carry TIME_CREATED"
        deleted = await _collect_events(wsman, dele, 1)
        assert _target_names(deleted) == [unique_name]
        assert [e.class_name for e in deleted] == ["__InstanceDeletionEvent"]
        await _nothing_more(wsman, mod)
        await _nothing_more(wsman, dele)
    finally:
        await wsman.unsubscribe(mod)
        await wsman.unsubscribe(dele)
        if created:
            await _delete_all(wsman, [unique_name])


@pytest.mark.spec("MS-WMOD 3.3", "DSP0226 10.2.9.4")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_pull_issued_before_the_event_waits_and_returns_it(wsman, wm_target, wm_tap, unique_name):
    """An empty Pull waits (up to MaxTime) for the next event instead of answering at once: a Pull
    sent before the Create returns the creation event (DSP0226 10.2.9.4)."""
    sub = await wsman.subscribe(ALL_CLASSES, _query("__InstanceCreationEvent", unique_name), expires=600)
    try:
        async with WSManClient(wm_target, tap=wm_tap, validator=wsman.validator) as puller:
            pending = asyncio.ensure_future(puller.pull_events(sub, max_elements=5, max_time=8.0))
            await asyncio.sleep(0.3)  # the Pull is on the wire and waiting
            assert not pending.done(), "an empty Pull must wait for MaxTime, not fail at once"
            await _create(wsman, unique_name)
            page = await asyncio.wait_for(pending, 15.0)
        assert _target_names(page.events) == [unique_name], "the waiting Pull returns the new event"
    finally:
        await wsman.unsubscribe(sub)
        await _delete_all(wsman, [unique_name])


@pytest.mark.spec("DSP0226 10.9", "MS-WMOD 2.10", "DSP0226 10.2.9.4")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_queue_overflow_is_reported_as_dropped_events(wsman, wm_mock_eventing, unique_name):
    """A burst larger than the subscription's buffer: the oldest events are lost, and the next Pull
    says so first with wsman:DroppedEvents and the exact count, then delivers the newest events in
    order (mock-only: the buffer of a real target cannot be shrunk from the harness)."""
    kept = 2
    names = [f"{unique_name}_{i}" for i in range(kept + 3)]
    sub = await wsman.subscribe(ALL_CLASSES, _query("__InstanceCreationEvent", unique_name), expires=600)
    wm_mock_eventing.limit_queue(kept)
    try:
        for name in names:
            await _create(wsman, name)
        page = await wsman.pull_events(sub, max_elements=10, max_time=2.0)
        assert page.dropped == [len(names) - kept], "DroppedEvents counts exactly the events lost"
        assert _target_names(page.events) == names[-kept:], "the newest events survive, in order"
        await _nothing_more(wsman, sub)
    finally:
        await wsman.unsubscribe(sub)
        await _delete_all(wsman, names)

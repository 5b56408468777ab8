"""MS-WMOD 3.3 Example 3 with the events read over WMI: intrinsic instance events caused through
WS-Man and received with IWbemServices::ExecNotificationQuery, semisynchronously
(MS-WMI 3.1.4.3.20, IEnumWbemClassObject::Next 3.1.4.4.2). Both protocols act on one CIM repository
(MS-WMOD 2.4), so what WS-Man creates, changes and deletes is announced to the WMI client. Every
query is narrowed to this run's unique names.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from harness.client.resources import wmi_uri
from harness.client.wmi import WmiClient, WmiEnumerator
from harness.client.wsman import WSManClient
from harness.wire.wmio import WmiInstance

pytestmark = [pytest.mark.requires("wsman", "wmi", "wmi-events")]

ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
COUNT = 4
#: A real target polls at WITHIN; waits are bounded by this many seconds per event.
EVENT_TIMEOUT = 10.0


def _query(event_class: str, prefix: str) -> str:
    return (f"SELECT * FROM {event_class} WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
            f"AND TargetInstance.Name LIKE '{prefix}%'")


async def _events(enum: WmiEnumerator, count: int) -> list[WmiInstance]:
    """Pull ``count`` events with IEnumWbemClassObject::Next (each wait bounded, WBEM_S_TIMEDOUT = none yet)."""
    out: list[WmiInstance] = []
    deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT * count
    while len(out) < count:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"only {len(out)} of {count} events arrived over WMI"
        got = await enum.next(count - len(out), timeout=min(2.0, remaining))
        assert all(isinstance(o, WmiInstance) for o in got)
        out += [o for o in got if isinstance(o, WmiInstance)]
    return out


def _target(event: WmiInstance, prop: str = "TargetInstance") -> dict[str, Any]:
    target = event.values.get(prop)
    assert isinstance(target, WmiInstance), f"{event.class_name} must carry {prop} (embedded instance)"
    assert target.class_name == "Win32_Environment"
    return dict(target.values)


async def _create(wsman: WSManClient, name: str, value: str = "1") -> None:
    await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": value},
                       class_name="Win32_Environment")


async def _delete_all(wsman: WSManClient, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.requirement("WMI-EVENT-1")
@pytest.mark.spec("MS-WMOD 3.3", "MS-WMOD 2.4", "MS-WMI 3.1.4.3.20", "MS-WMI 3.1.4.4.2")
async def test_creations_through_wsman_arrive_over_wmi_once_in_order(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    enum = await wmi.exec_notification_query(_query("__InstanceCreationEvent", unique_name))
    try:
        for name in names:
            await _create(wsman, name)
        events = await _events(enum, COUNT)
        assert [e.class_name for e in events] == ["__InstanceCreationEvent"] * COUNT
        assert [_target(e)["Name"] for e in events] == names
        assert all(isinstance(e.values.get("TIME_CREATED"), int) for e in events)
        assert await enum.next(1, timeout=1.0) == [], "no event without a change"
    finally:
        await enum.release()
        await _delete_all(wsman, names)


@pytest.mark.requirement("WMI-EVENT-1")
@pytest.mark.spec("MS-WMOD 3.3", "MS-WMOD 2.4", "MS-WMI 3.1.4.3.20", "MS-WSMV 3.1.4.2")
async def test_modification_and_deletion_events_over_wmi(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    mod = await wmi.exec_notification_query(_query("__InstanceModificationEvent", unique_name))
    dele = await wmi.exec_notification_query(_query("__InstanceDeletionEvent", unique_name))
    try:
        await _create(wsman, unique_name, "before")
        await wsman.put(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM}, {"VariableValue": "after"},
                        class_name="Win32_Environment")
        (changed,) = await _events(mod, 1)
        assert _target(changed)["VariableValue"] == "after"
        assert _target(changed, "PreviousInstance")["VariableValue"] == "before"
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        (deleted,) = await _events(dele, 1)
        assert _target(deleted)["Name"] == unique_name
    finally:
        await mod.release()
        await dele.release()
        await _delete_all(wsman, [unique_name])

"""MS-WMOD 3.4 Example 4 with the events pushed over WMI: IWbemServices::ExecNotificationQueryAsync
(MS-WMI 3.1.4.3.21) delivers each intrinsic event caused through WS-Man to the client's
IWbemObjectSink with Indicate (3.1.4.2.1) until CancelAsyncCall (3.1.4.3.2), which the sink learns
from SetStatus(WBEM_STATUS_COMPLETE, WBEM_E_CALL_CANCELLED) (3.1.4.2.2). ExecQueryAsync (3.1.4.3.19)
pushes a query result the same way, ending with SetStatus(WBEM_S_NO_ERROR).
"""

from __future__ import annotations

import contextlib

import pytest

from harness.client.resources import wmi_uri
from harness.client.wmi import WmiClient, WmiSink
from harness.client.wsman import WSManClient
from harness.wire.wmio import WmiInstance

pytestmark = [pytest.mark.requires("wsman", "wmi", "wmi-events")]

ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
COUNT = 4
EVENT_TIMEOUT = 10.0
WBEM_E_CALL_CANCELLED = 0x80041032


async def _pushed_names(sink: WmiSink, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        batch = await sink.next(EVENT_TIMEOUT)
        assert batch is not None, f"the call ended (0x{sink.status or 0:08x}) after {len(names)} of {count} events"
        for event in batch:
            assert isinstance(event, WmiInstance) and event.class_name == "__InstanceCreationEvent"
            target = event.values.get("TargetInstance")
            assert isinstance(target, WmiInstance), "an intrinsic event carries TargetInstance"
            names.append(str(target.values["Name"]))
    return names


@pytest.mark.requirement("WMI-EVENT-ASYNC-1")
@pytest.mark.spec("MS-WMOD 3.4", "MS-WMOD 2.4", "MS-WMI 3.1.4.3.21", "MS-WMI 3.1.4.2.1", "MS-WMI 3.1.4.3.2")
async def test_events_caused_through_wsman_are_pushed_to_the_wmi_sink_in_order(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    names = [f"{unique_name}_{i}" for i in range(COUNT)]
    sink = await wmi.exec_notification_query_async(
        f"SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment' "
        f"AND TargetInstance.Name LIKE '{unique_name}%'")
    try:
        for name in names:
            await wsman.create(ENVIRONMENT, {"Name": name, "UserName": SYSTEM, "VariableValue": "v"},
                               class_name="Win32_Environment")
        assert await _pushed_names(sink, COUNT) == names
        await wmi.cancel_async_call(sink)
        assert await sink.next(EVENT_TIMEOUT) is None
        assert sink.status == WBEM_E_CALL_CANCELLED
    finally:
        await sink.close()
        for name in names:
            with contextlib.suppress(Exception):
                await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.requirement("WMI-QUERY-ASYNC-1")
@pytest.mark.spec("MS-WMI 3.1.4.3.19", "MS-WMI 3.1.4.2.2", "MS-WMOD 2.4")
async def test_exec_query_async_pushes_the_result_then_completes(wsman: WSManClient, wmi: WmiClient) -> None:
    sink = await wmi.exec_query_async("SELECT * FROM Win32_Service")
    try:
        objects, status = await sink.collect(EVENT_TIMEOUT)
    finally:
        await sink.close()
    assert status == 0
    pushed = sorted(str(o.values["Name"]) for o in objects if isinstance(o, WmiInstance))
    listed = sorted(str(i.properties["Name"]) for i in (await wsman.enumerate_all(wmi_uri("Win32_Service"))).items)
    assert pushed == listed

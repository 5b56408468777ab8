"""MS-WMOD 3.1 Example 1: single request/response operations (Get, Put, Invoke) over WS-Man.

Post-conditions are checked by reading the target back, not by trusting the status.
"""

from __future__ import annotations

import pytest

from harness.client.resources import wmi_uri
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "get")]

SERVICE = wmi_uri("Win32_Service")
ENVIRONMENT = wmi_uri("Win32_Environment")
OS = wmi_uri("Win32_OperatingSystem")


@pytest.mark.spec("MS-WMOD 3.1", "MS-WMOD 2.5.2.4", "MS-WSMV 3.1.4.8")
async def test_get_returns_the_instance_named_by_the_selectors(wsman):
    instance = await wsman.get(SERVICE, {"Name": "WinRM"})
    assert instance.class_name == "Win32_Service"
    assert instance.properties["Name"].lower() == "winrm"
    assert instance.properties["State"] in {"Running", "Stopped", "Start Pending", "Stop Pending", "Paused"}
    assert "StartMode" in instance.properties


@pytest.mark.spec("MS-WMOD 3.1", "MS-WSMV 3.1.4.8")
async def test_get_of_a_singleton_without_selectors_on_a_keyed_class_is_a_selector_fault(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.get(SERVICE, {})
    assert info.value.subcode_name in {"InvalidSelectors", "DestinationUnreachable"}, info.value


@pytest.mark.spec("MS-WMOD 3.1", "MS-WSMV 3.1.4.8")
async def test_get_with_an_unknown_selector_value_is_a_fault(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.get(SERVICE, {"Name": "NoSuchService_WMH"})
    assert info.value.code == "s:Sender", "a missing instance is the sender's fault"


@pytest.mark.spec("MS-WMOD 3.1", "MS-WMOD 2.5.2.3", "MS-WSMV 3.1.4.9")
@pytest.mark.requires("put", "create", "delete", "win32-environment")
async def test_put_changes_only_the_named_properties(wsman, unique_name):
    selectors = {"Name": unique_name, "UserName": "<SYSTEM>"}
    await wsman.create(ENVIRONMENT, {"Name": unique_name, "UserName": "<SYSTEM>", "VariableValue": "before"},
                       class_name="Win32_Environment")
    try:
        before = await wsman.get(ENVIRONMENT, selectors)
        updated = await wsman.put(ENVIRONMENT, selectors, {"VariableValue": "after"}, class_name="Win32_Environment")
        assert updated.properties["VariableValue"] == "after", "PutResponse carries the new representation"
        after = await wsman.get(ENVIRONMENT, selectors)
        assert after.properties["VariableValue"] == "after"
        changed = {k for k in before.properties if before.properties[k] != after.properties.get(k)}
        assert changed == {"VariableValue"}, f"Put changed more than the named property: {sorted(changed)}"
    finally:
        await wsman.delete(ENVIRONMENT, selectors)


@pytest.mark.spec("MS-WMOD 3.1", "MS-WMOD 2.5.2.2", "MS-WSMV 3.1.4.12")
@pytest.mark.requires("invoke", "win32-service")
async def test_invoke_stop_and_start_service_changes_its_state(wsman):
    selectors = {"Name": "Spooler"}
    initial = (await wsman.get(SERVICE, selectors)).properties["State"]
    if initial == "Running":
        first, second, expected = "StopService", "StartService", ("Stopped", "Running")
    else:
        first, second, expected = "StartService", "StopService", ("Running", "Stopped")
    out = await wsman.invoke(SERVICE, first, selectors)
    assert out["ReturnValue"] == "0", f"{first} returned {out['ReturnValue']}"
    assert (await wsman.get(SERVICE, selectors)).properties["State"] == expected[0]
    out = await wsman.invoke(SERVICE, second, selectors)
    assert out["ReturnValue"] == "0", f"{second} returned {out['ReturnValue']}"
    assert (await wsman.get(SERVICE, selectors)).properties["State"] == expected[1]


@pytest.mark.spec("MS-WMOD 3.1", "MS-WSMV 3.1.4.12")
@pytest.mark.requires("invoke")
async def test_invoke_of_a_method_the_class_lacks_is_a_fault(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.invoke(SERVICE, "NoSuchMethodWMH", {"Name": "WinRM"})
    assert info.value.code in {"s:Sender", "s:Receiver"}


@pytest.mark.spec("MS-WSMV 3.1.4.8", "MS-WSMV 2.2.4.17")
@pytest.mark.requires("fragment")
async def test_fragment_get_returns_only_the_named_property(wsman):
    """Fragment-level Get (DSP0226 7.7; MS-WSMV 2.2.4.17 FragmentTransfer) returns the one property."""
    fragment = await wsman.get_fragment(OS, {}, "Caption")
    assert set(fragment) == {"Caption"}
    full = await wsman.get(OS, {})
    assert fragment["Caption"] == full.properties["Caption"]

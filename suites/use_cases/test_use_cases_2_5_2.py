"""MS-WMOD 2.5.2 use cases over WS-Man: create, invoke, set, query, delete, delete of a missing object."""

from __future__ import annotations

import pytest

from harness.client.resources import wmi_uri
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman")]

ENVIRONMENT = wmi_uri("Win32_Environment")
PROCESS = wmi_uri("Win32_Process")
ADAPTER_CONFIG = wmi_uri("Win32_NetworkAdapterConfiguration")
SYSTEM = "<SYSTEM>"


@pytest.mark.spec("MS-WMOD 2.5.2.1", "MS-WSMV 3.1.4.5")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_create_makes_an_object_with_the_supplied_values(wsman, unique_name):
    epr = await wsman.create(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "42"},
                             class_name="Win32_Environment")
    try:
        assert epr.selectors.get("Name") == unique_name, "ResourceCreated EPR names the new object"
        got = await wsman.get(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        assert got.properties["VariableValue"] == "42"
        assert got.properties["Name"] == unique_name
    finally:
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 2.5.2.1", "MS-WSMV 3.1.4.5")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_create_of_an_existing_object_is_an_already_exists_fault(wsman, unique_name):
    props = {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "1"}
    await wsman.create(ENVIRONMENT, props, class_name="Win32_Environment")
    try:
        with pytest.raises(WSManFault) as info:
            await wsman.create(ENVIRONMENT, props, class_name="Win32_Environment")
        assert info.value.subcode_name == "AlreadyExists", info.value
    finally:
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 2.5.2.2", "MS-WSMV 3.1.4.12")
@pytest.mark.requires("invoke")
async def test_invoke_static_create_and_terminate_a_process(wsman):
    out = await wsman.invoke(PROCESS, "Create", None, {"CommandLine": "notepad.exe"})
    assert out["ReturnValue"] == "0"
    pid = out["ProcessId"]
    assert pid and int(pid) > 0, "Create returns the new ProcessId"
    process = await wsman.get(PROCESS, {"Handle": pid})
    assert "notepad.exe" in process.properties["CommandLine"]
    out = await wsman.invoke(PROCESS, "Terminate", {"Handle": pid}, {"Reason": "0"})
    assert out["ReturnValue"] == "0"
    with pytest.raises(WSManFault):
        await wsman.get(PROCESS, {"Handle": pid})


@pytest.mark.spec("MS-WMOD 2.5.2.2")
@pytest.mark.requires("invoke")
async def test_invoke_on_a_nonexistent_object_is_a_fault(wsman):
    """Extension of 2.5.2.2: a reference to a nonexistent object is reported as a failure."""
    with pytest.raises(WSManFault):
        await wsman.invoke(wmi_uri("Win32_Service"), "StartService", {"Name": "NoSuchService_WMH"})


@pytest.mark.spec("MS-WMOD 2.5.2.3", "MS-WSMV 3.1.4.9")
@pytest.mark.requires("put")
async def test_set_on_a_nonexistent_object_is_a_fault(wsman, unique_name):
    with pytest.raises(WSManFault):
        await wsman.put(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM}, {"VariableValue": "x"},
                        class_name="Win32_Environment")


@pytest.mark.spec("MS-WMOD 2.5.2.4", "MS-WMOD 2.5.1.1", "MS-WSMV 3.1.4.10")
@pytest.mark.requires("enumerate", "wql")
async def test_query_asset_data_mac_and_ip_addresses(wsman):
    """Asset management (MS-WMOD 2.5.1.1): MAC and IP addresses of IP-enabled adapters."""
    result = await wsman.enumerate_all(
        ADAPTER_CONFIG,
        wql="SELECT Index, MACAddress, IPAddress FROM Win32_NetworkAdapterConfiguration WHERE IPEnabled = TRUE",
        max_elements=10,
    )
    assert result.items, "at least one IP-enabled adapter"
    for item in result.items:
        mac = item.properties["MACAddress"]
        assert mac and len(mac.split(":")) == 6, f"MACAddress {mac!r} is not six octets"
        ips = item.properties["IPAddress"]
        ips = ips if isinstance(ips, list) else [ips]
        assert all(ip for ip in ips)


@pytest.mark.spec("MS-WMOD 2.5.2.6", "MS-WSMV 3.1.4.6")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_delete_removes_the_object(wsman, unique_name):
    selectors = {"Name": unique_name, "UserName": SYSTEM}
    await wsman.create(ENVIRONMENT, {**selectors, "VariableValue": "gone soon"}, class_name="Win32_Environment")
    await wsman.delete(ENVIRONMENT, selectors)
    with pytest.raises(WSManFault):
        await wsman.get(ENVIRONMENT, selectors)
    remaining = await wsman.enumerate_all(
        ENVIRONMENT, wql=f"SELECT Name FROM Win32_Environment WHERE Name = '{unique_name}'", max_elements=10)
    assert not remaining.items, "the deleted variable is still enumerated"


@pytest.mark.spec("MS-WMOD 2.5.2.7", "MS-WSMV 3.1.4.6")
@pytest.mark.requires("delete", "win32-environment")
async def test_delete_of_a_missing_object_fails_and_changes_nothing(wsman, unique_name):
    before = await wsman.enumerate_all(ENVIRONMENT, max_elements=50)
    with pytest.raises(WSManFault) as info:
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
    fault = info.value
    assert fault.code == "s:Sender", f"a missing object is the sender's fault, got {fault.code}"
    after = await wsman.enumerate_all(ENVIRONMENT, max_elements=50)
    assert len(after.items) == len(before.items), "a failed delete changed the repository"

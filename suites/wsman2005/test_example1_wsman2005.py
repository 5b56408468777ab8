"""MS-WMOD 3.1 Example 1 in the Windows Server 2003 R2 dialect (MS-WSMAN, WS-Management 2005/06):
Get, Put of only the named properties, Invoke (MS-WSMAN 4.1.1, 4.1.3, 4.1.4).

The client writes the 2005/06 wsman namespace and the Windows Server 2003 R2 WMI resource URIs
(harness.wire.wsman.dialect); every test also checks that the target answered in that dialect.
Post-conditions are checked by reading the target back.
"""

from __future__ import annotations

import pytest
from lxml import etree

from harness.client.resources import wmi_uri
from harness.wire.wsman.dialect import NS_WSMAN_2005, RESOURCE_WMI_PREFIX_2005, WSMAN2005, detect
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.ns import NS_WSMAN

pytestmark = [pytest.mark.requires("wsman2005", "get")]

SERVICE = wmi_uri("Win32_Service")
ENVIRONMENT = wmi_uri("Win32_Environment")


def _assert_2005_on_the_wire(client) -> None:
    """Both directions of the last exchange are MS-WSMAN 2005/06, never DSP0226 1.x."""
    assert client.last_request is not None and client.last_response is not None
    for data in (client.last_request, client.last_response):
        assert detect(data) == WSMAN2005, data[:400]
        assert NS_WSMAN.encode() not in data, "a DSP0226 1.x namespace leaked into a 2005/06 message"


@pytest.mark.spec("MS-WMOD 3.1", "MS-WSMAN 4.1.1", "MS-WSMAN 3.1.4.2")
async def test_get_in_the_2005_dialect_returns_the_named_instance(wsman2005):
    instance = await wsman2005.get(SERVICE, {"Name": "WinRM"})
    assert instance.class_name == "Win32_Service"
    assert instance.properties["Name"].lower() == "winrm"
    _assert_2005_on_the_wire(wsman2005)
    request = etree.fromstring(wsman2005.last_request)
    uri = request.find(f".//{{{NS_WSMAN_2005}}}ResourceURI")
    assert uri is not None and uri.text.startswith(RESOURCE_WMI_PREFIX_2005), "MS-WSMAN 4.1.1 resource URI"
    body = etree.fromstring(wsman2005.last_response).find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert etree.QName(body[0]).namespace.startswith(RESOURCE_WMI_PREFIX_2005), "instance in the 2005/06 namespace"


@pytest.mark.spec("MS-WMOD 3.1", "MS-WSMAN 3.1.4.2")
async def test_get_of_a_missing_instance_is_a_fault_in_the_2005_dialect(wsman2005):
    with pytest.raises(WSManFault) as info:
        await wsman2005.get(SERVICE, {"Name": "NoSuchService_WMH"})
    assert info.value.code == "s:Sender"
    assert detect(wsman2005.last_response) in (WSMAN2005, None)
    assert NS_WSMAN.encode() not in wsman2005.last_response


@pytest.mark.spec("MS-WMOD 3.1", "MS-WMOD 2.5.2.3", "MS-WSMAN 4.1.3")
@pytest.mark.requires("put", "create", "delete", "win32-environment")
async def test_put_in_the_2005_dialect_changes_only_the_named_properties(wsman, wsman2005, unique_name):
    selectors = {"Name": unique_name, "UserName": "<SYSTEM>"}
    # Creation is not part of Example 1 (MS-WSMAN 1.3 <1>: no Create on 2003 R2): set up over MS-WSMV.
    await wsman.create(ENVIRONMENT, {"Name": unique_name, "UserName": "<SYSTEM>", "VariableValue": "before"},
                       class_name="Win32_Environment")
    try:
        before = await wsman2005.get(ENVIRONMENT, selectors)
        updated = await wsman2005.put(ENVIRONMENT, selectors, {"VariableValue": "after"},
                                      class_name="Win32_Environment")
        _assert_2005_on_the_wire(wsman2005)
        assert updated.properties["VariableValue"] == "after"
        after = await wsman2005.get(ENVIRONMENT, selectors)
        changed = {k for k in before.properties if before.properties[k] != after.properties.get(k)}
        assert changed == {"VariableValue"}, f"Put changed more than the named property: {sorted(changed)}"
    finally:
        await wsman.delete(ENVIRONMENT, selectors)


@pytest.mark.spec("MS-WMOD 3.1", "MS-WMOD 2.5.2.2", "MS-WSMAN 4.1.4")
@pytest.mark.requires("invoke", "win32-service")
async def test_invoke_in_the_2005_dialect_runs_the_method(wsman2005):
    selectors = {"Name": "Spooler"}
    initial = (await wsman2005.get(SERVICE, selectors)).properties["State"]
    first, second = ("StopService", "StartService") if initial == "Running" else ("StartService", "StopService")
    expected = "Stopped" if first == "StopService" else "Running"
    out = await wsman2005.invoke(SERVICE, first, selectors)
    _assert_2005_on_the_wire(wsman2005)
    action = etree.fromstring(wsman2005.last_request).find(
        ".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}Action")
    assert action is not None and action.text == RESOURCE_WMI_PREFIX_2005 + "root/cimv2/Win32_Service/" + first
    assert out["ReturnValue"] == "0", f"{first} returned {out['ReturnValue']}"
    assert (await wsman2005.get(SERVICE, selectors)).properties["State"] == expected
    out = await wsman2005.invoke(SERVICE, second, selectors)
    assert out["ReturnValue"] == "0", f"{second} returned {out['ReturnValue']}"
    assert (await wsman2005.get(SERVICE, selectors)).properties["State"] == initial

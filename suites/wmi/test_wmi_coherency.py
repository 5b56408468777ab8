"""Cross-protocol coherency (MS-WMOD 2.4): WS-Man and WMI over DCOM expose one CIM repository, so a
change made through one protocol is what the other one reads. WMI side: IWbemServices PutInstance
(MS-WMI 3.1.4.3.12), GetObject (3.1.4.3.4), DeleteInstance (3.1.4.3.14), ExecQuery (3.1.4.3.18);
WS-Man side: Transfer Get / Put / Create (MS-WSMV 3.1.4.1, 3.1.4.2, 3.1.4.5).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import pywbem

from harness.client.resources import wmi_uri
from harness.client.wmi import WmiClient, WmiError
from harness.client.wsman import WSManClient
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "wmi")]

ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
WBEM_E_NOT_FOUND = 0x80041002


def _path(name: str) -> str:
    return f'Win32_Environment.Name="{name}",UserName="{SYSTEM}"'


def _instance(name: str, value: str) -> pywbem.CIMInstance:
    return pywbem.CIMInstance("Win32_Environment", properties={
        "Name": name, "UserName": SYSTEM, "VariableValue": value})


async def _cleanup(wsman: WSManClient, name: str) -> None:
    with contextlib.suppress(Exception):
        await wsman.delete(ENVIRONMENT, {"Name": name, "UserName": SYSTEM})


@pytest.mark.requirement("WMI-COHERENCY-1")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WMI 3.1.4.3.12", "MS-WSMV 3.1.4.1")
async def test_wmi_put_instance_is_seen_by_wsman_get(wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    try:
        await wmi.put_instance(_instance(unique_name, "from-wmi"))
        got = await wsman.get(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        assert got.properties["VariableValue"] == "from-wmi"
        await wmi.put_instance(_instance(unique_name, "changed-by-wmi"))
        again = await wsman.get(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        assert again.properties["VariableValue"] == "changed-by-wmi"
    finally:
        await _cleanup(wsman, unique_name)


@pytest.mark.requirement("WMI-COHERENCY-2")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WSMV 3.1.4.2", "MS-WMI 3.1.4.3.4", "MS-WMI 3.1.4.3.18")
async def test_wsman_put_and_create_are_seen_by_wmi(wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    try:
        await wsman.create(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "v1"},
                           class_name="Win32_Environment")
        first = await wmi.get_object(_path(unique_name))
        assert isinstance(first, pywbem.CIMInstance) and first["VariableValue"] == "v1"
        await wsman.put(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM}, {"VariableValue": "v2"},
                        class_name="Win32_Environment")
        second = await wmi.get_object(_path(unique_name))
        assert isinstance(second, pywbem.CIMInstance) and second["VariableValue"] == "v2"
        found = await wmi.exec_query(f"SELECT * FROM Win32_Environment WHERE Name = '{unique_name}'")
        assert [i["VariableValue"] for i in found] == ["v2"]
    finally:
        await _cleanup(wsman, unique_name)


@pytest.mark.requirement("WMI-COHERENCY-3")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WMOD 2.5.2.7", "MS-WMI 3.1.4.3.14")
async def test_delete_through_one_protocol_is_gone_for_the_other(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    try:
        await wmi.put_instance(_instance(unique_name, "x"))
        await wmi.delete_instance(_path(unique_name))
        with pytest.raises(WSManFault):
            await wsman.get(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        await wsman.create(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "y"},
                           class_name="Win32_Environment")
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})
        with pytest.raises(WmiError) as err:
            await wmi.get_object(_path(unique_name))
        assert err.value.hresult == WBEM_E_NOT_FOUND
    finally:
        await _cleanup(wsman, unique_name)


@pytest.mark.requirement("WMI-GETOBJECT-1")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WMI 3.1.4.3.4", "MS-WSMV 3.1.4.1")
async def test_services_read_the_same_through_both_protocols(wsman: WSManClient, wmi: WmiClient) -> None:
    over_wmi = await wmi.get_object('Win32_Service.Name="WinRM"')
    over_wsman = await wsman.get(wmi_uri("Win32_Service"), {"Name": "WinRM"})
    assert isinstance(over_wmi, pywbem.CIMInstance)
    for prop in ("Name", "State", "StartMode", "DisplayName"):
        assert str(over_wmi[prop]) == over_wsman.properties[prop], prop


WRITERS = 8


@pytest.mark.requirement("WMI-COHERENCY-4")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WMOD 2.8", "MS-WMI 3.1.4.3.12", "MS-WSMV 3.1.4.2")
async def test_concurrent_writes_through_both_protocols_leave_exactly_one_written_value(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    """Writers on WS-Man Put and WMI PutInstance race on one instance; afterwards the property holds
    exactly one of the written values, whole (no torn or merged value), and both protocols read it."""
    selectors = {"Name": unique_name, "UserName": SYSTEM}
    # long, distinct values: a torn write would mix two of them
    values = [f"writer-{i:02d}-" + chr(ord("A") + i) * 3000 for i in range(WRITERS)]
    try:
        await wsman.create(ENVIRONMENT, {**selectors, "VariableValue": "initial"}, class_name="Win32_Environment")

        async def write(i: int) -> None:
            if i % 2:
                await wmi.put_instance(_instance(unique_name, values[i]))
            else:
                await wsman.put(ENVIRONMENT, selectors, {"VariableValue": values[i]}, class_name="Win32_Environment")

        await asyncio.gather(*(write(i) for i in range(WRITERS)))
        through_wsman = (await wsman.get(ENVIRONMENT, selectors)).properties["VariableValue"]
        through_wmi = await wmi.get_object(_path(unique_name))
        assert isinstance(through_wmi, pywbem.CIMInstance)
        assert through_wsman in values, "the property holds a value nobody wrote (torn or merged write)"
        assert through_wmi["VariableValue"] == through_wsman, "the two protocols read different states"
    finally:
        await _cleanup(wsman, unique_name)


@pytest.mark.requirement("WMI-COHERENCY-5")
@pytest.mark.requires("psrp")
@pytest.mark.spec("MS-WMOD 2.4", "MS-WMI 3.1.4.3.12", "MS-PSRP 3.1.5.3.3")
async def test_a_wmi_change_is_seen_through_psrp_and_a_psrp_change_through_wmi(
        wsman: WSManClient, wmi: WmiClient, unique_name: str) -> None:
    from harness.client.psrp import PsrpRunspacePool

    pool = PsrpRunspacePool(wsman)
    await pool.open()
    try:
        await wmi.put_instance(_instance(unique_name, "set-by-wmi"))
        query = pool.powershell().add_command(
            "Get-CimInstance", ClassName="Win32_Environment", Filter=f"Name = '{unique_name}'")
        [seen] = await query.invoke()
        assert seen.get("VariableValue") == "set-by-wmi", "PSRP reads what WMI wrote (one CIM store)"

        stop = pool.powershell().add_command("Stop-Service", Name="Spooler")
        await stop.invoke()
        try:
            service = await wmi.get_object('Win32_Service.Name="Spooler"')
            assert isinstance(service, pywbem.CIMInstance) and service["State"] == "Stopped"
        finally:
            await pool.powershell().add_command("Start-Service", Name="Spooler").invoke()
        service = await wmi.get_object('Win32_Service.Name="Spooler"')
        assert isinstance(service, pywbem.CIMInstance) and service["State"] == "Running"
    finally:
        await _cleanup(wsman, unique_name)
        with contextlib.suppress(WSManFault):
            await pool.close()

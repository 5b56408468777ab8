"""Our WMI client against the mock WMI server over DCOM on ephemeral loopback ports (MS-WMI 3.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pywbem

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.client.wmi import WmiClient, WmiError
from harness.targets.mock.wmi_server import WmiServer
from harness.wire.dcom.pdu import AuthLevel
from harness.wire.wmi.constants import (
    WBEM_E_ACCESS_DENIED,
    WBEM_E_INVALID_CLASS,
    WBEM_E_INVALID_NAMESPACE,
    WBEM_E_INVALID_QUERY,
    WBEM_E_NOT_FOUND,
)
from harness.wire.wmio import WmiInstance

PASSWORD = "Pa55-word!"


@pytest.fixture
def store() -> CimStore:
    return default_store()


@pytest.fixture
async def server(store: CimStore, start_wmi_server: Any) -> WmiServer:
    return await start_wmi_server(store, PASSWORD)


async def _client(server: WmiServer, user: str = "admin", level: int = AuthLevel.PKT_PRIVACY) -> WmiClient:
    return await WmiClient.connect("127.0.0.1", server.epm_port, user, PASSWORD, auth_level=level, timeout=10)


@pytest.mark.parametrize("level", [AuthLevel.CONNECT, AuthLevel.PKT_INTEGRITY, AuthLevel.PKT_PRIVACY])
async def test_query_at_every_auth_level(server: WmiServer, store: CimStore, level: int) -> None:
    async with await _client(server, level=level) as wmi:
        got = await wmi.exec_query("SELECT * FROM Win32_Service")
    want = store.exec_query("root/cimv2", "SELECT * FROM Win32_Service")
    assert [i["Name"] for i in got] == [i["Name"] for i in want]
    assert set(got[0].properties) == set(want[0].properties)


async def test_get_object_instance_and_class(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        inst = await wmi.get_object('Win32_Service.Name="WinRM"')
        cls = await wmi.get_object("Win32_Service")
        with pytest.raises(WmiError) as missing:
            await wmi.get_object('Win32_Service.Name="NoSuchService"')
        with pytest.raises(WmiError) as bad_class:
            await wmi.get_object("No_Such_Class")
    assert isinstance(inst, pywbem.CIMInstance) and inst["Name"] == "WinRM"
    expected = store.get_instance("root/cimv2", store.resolve_path("root/cimv2", 'Win32_Service.Name="WinRM"'))
    assert inst["State"] == expected["State"]
    assert isinstance(cls, pywbem.CIMClass) and "Name" in cls.properties
    assert missing.value.hresult == WBEM_E_NOT_FOUND
    assert bad_class.value.hresult == WBEM_E_INVALID_CLASS


async def test_enumerator_paging_and_reset(server: WmiServer) -> None:
    async with await _client(server) as wmi:
        enum = await wmi.exec_query_enum("SELECT Name FROM Win32_Service")
        first = await enum.next(2)
        rest = await enum.all(batch=3)
        await enum.reset()
        again = await enum.next(2)
        await enum.release()
    assert len(first) == 2 and len(rest) > 0 and enum.done is False
    assert [o.values for o in again if isinstance(o, WmiInstance)] == \
        [o.values for o in first if isinstance(o, WmiInstance)]


async def test_invalid_query_and_namespace(server: WmiServer) -> None:
    async with await _client(server) as wmi:
        with pytest.raises(WmiError) as err:
            await wmi.exec_query("SELEC nothing")
    assert err.value.hresult == WBEM_E_INVALID_QUERY
    with pytest.raises(WmiError) as ns_err:
        await WmiClient.connect("127.0.0.1", server.epm_port, "admin", PASSWORD, namespace="root/nowhere")
    assert ns_err.value.hresult == WBEM_E_INVALID_NAMESPACE


async def test_wrong_password_is_refused(server: WmiServer) -> None:
    with pytest.raises(WmiError):
        await WmiClient.connect("127.0.0.1", server.epm_port, "admin", "wrong", timeout=5)


async def test_put_delete_instance_round_trip(server: WmiServer, store: CimStore) -> None:
    inst = pywbem.CIMInstance("Win32_Environment", properties={
        "Name": "WMH_DCOM", "UserName": "<SYSTEM>", "VariableValue": "one"})
    async with await _client(server) as wmi:
        await wmi.put_instance(inst)
        path = store.resolve_path("root/cimv2", 'Win32_Environment.Name="WMH_DCOM",UserName="<SYSTEM>"')
        assert store.get_instance("root/cimv2", path)["VariableValue"] == "one"
        inst["VariableValue"] = "two"
        await wmi.put_instance(inst)
        assert store.get_instance("root/cimv2", path)["VariableValue"] == "two"
        await wmi.delete_instance(path)
        with pytest.raises(WmiError) as gone:
            await wmi.delete_instance(path)
    assert gone.value.hresult == WBEM_E_NOT_FOUND


async def test_read_only_user_cannot_write(server: WmiServer) -> None:
    inst = pywbem.CIMInstance("Win32_Environment", properties={
        "Name": "WMH_RO", "UserName": "<SYSTEM>", "VariableValue": "x"})
    async with await _client(server, "reader") as wmi:
        assert await wmi.exec_query("SELECT * FROM Win32_Service")
        with pytest.raises(WmiError) as err:
            await wmi.put_instance(inst)
    assert err.value.hresult == WBEM_E_ACCESS_DENIED


async def test_notification_query_pull(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        events = await wmi.exec_notification_query(
            "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'")
        assert await events.next(1, timeout=0.05) == []
        store.create_instance("root/cimv2", pywbem.CIMInstance("Win32_Environment", properties={
            "Name": "WMH_EVT", "UserName": "<SYSTEM>", "VariableValue": "v"}))
        got = await asyncio.wait_for(events.next(1, timeout=5), 10)
        await events.release()
    assert len(got) == 1 and isinstance(got[0], WmiInstance)
    assert got[0].class_name == "__InstanceCreationEvent"
    target = got[0].values["TargetInstance"]
    assert isinstance(target, WmiInstance) and target.values["Name"] == "WMH_EVT"


async def test_exec_method(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        out = await wmi.exec_method('Win32_Service.Name="Spooler"', "StopService")
    assert "ReturnValue" in out


async def test_objects_of_a_closed_connection_are_released(server: WmiServer) -> None:
    """Without ping-based garbage collection the mock frees a connection's objects when it closes."""
    wmi = await _client(server)
    await wmi.exec_notification_query("SELECT * FROM __InstanceDeletionEvent WHERE TargetInstance ISA 'CIM_Service'")
    await wmi.exec_query_enum("SELECT * FROM Win32_Service")
    assert len(server.runtime.exports) >= 3
    await wmi._orpc.close()
    for _ in range(100):
        if not server.runtime.exports:
            break
        await asyncio.sleep(0.02)
    assert server.runtime.exports == {}


async def test_object_paths_with_namespace_and_malformed(server: WmiServer) -> None:
    from harness.wire.wmi.constants import WBEM_E_INVALID_OBJECT_PATH

    async with await _client(server) as wmi:
        full = await wmi.get_object('\\\\.\\root\\cimv2:Win32_Service.Name="WinRM"')
        assert isinstance(full, pywbem.CIMInstance) and full["Name"] == "WinRM"
        with pytest.raises(WmiError) as other_ns:
            await wmi.get_object('root\\interop:Win32_Service.Name="WinRM"')
        with pytest.raises(WmiError) as malformed:
            await wmi.get_object('Win32_Service.Name="unterminated')
    assert other_ns.value.hresult == WBEM_E_INVALID_NAMESPACE
    assert malformed.value.hresult == WBEM_E_INVALID_OBJECT_PATH


async def test_exec_query_async_delivers_to_the_sink(server: WmiServer, store: CimStore) -> None:
    """ExecQueryAsync: Indicate with the result, then SetStatus(WBEM_STATUS_COMPLETE, WBEM_S_NO_ERROR)."""
    async with await _client(server) as wmi:
        sink = await wmi.exec_query_async("SELECT * FROM Win32_Service")
        try:
            objs, status = await sink.collect(timeout=10)
        finally:
            await sink.close()
    want = store.exec_query("root/cimv2", "SELECT * FROM Win32_Service")
    assert status == 0
    assert [o.values["Name"] for o in objs if isinstance(o, WmiInstance)] == [str(i["Name"]) for i in want]


async def test_exec_notification_query_async_push_and_cancel(server: WmiServer, store: CimStore) -> None:
    """ExecNotificationQueryAsync pushes each event with Indicate; CancelAsyncCall ends it with
    SetStatus(WBEM_E_CALL_CANCELLED)."""
    from harness.wire.wmi.constants import WBEM_E_CALL_CANCELLED

    async with await _client(server) as wmi:
        sink = await wmi.exec_notification_query_async(
            "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Environment'")
        try:
            for i in range(3):
                store.create_instance("root/cimv2", pywbem.CIMInstance("Win32_Environment", properties={
                    "Name": f"WMH_PUSH_{i}", "UserName": "<SYSTEM>", "VariableValue": "v"}))
            got: list[str] = []
            while len(got) < 3:
                batch = await sink.next(timeout=5)
                assert batch is not None
                for event in batch:
                    assert isinstance(event, WmiInstance) and event.class_name == "__InstanceCreationEvent"
                    target = event.values["TargetInstance"]
                    assert isinstance(target, WmiInstance)
                    got.append(str(target.values["Name"]))
            assert got == [f"WMH_PUSH_{i}" for i in range(3)]
            await wmi.cancel_async_call(sink)
            assert await sink.next(timeout=5) is None and sink.status == WBEM_E_CALL_CANCELLED
            with pytest.raises(WmiError):
                await wmi.cancel_async_call(sink)
        finally:
            await sink.close()
    assert len(server.async_calls) == 0


@pytest.mark.parametrize("level", [AuthLevel.PKT_INTEGRITY, AuthLevel.PKT_PRIVACY])
async def test_large_request_and_response_are_fragmented(server: WmiServer, store: CimStore, level: int) -> None:
    """A 40 kB PutInstance goes out in several protected request fragments; the GetObject answer comes
    back in several response fragments (C706 12.4.2; every fragment signed/sealed, MS-RPCE 3.3.1.5.2.2)."""
    value = "x" * 20_000 + "é" * 10_000
    async with await _client(server, level=level) as wmi:
        await wmi.put_instance(pywbem.CIMInstance("Win32_Environment", properties={
            "Name": "WMH_BIG", "UserName": "<SYSTEM>", "VariableValue": value}))
        back = await wmi.get_object('Win32_Environment.Name="WMH_BIG",UserName="<SYSTEM>"')
    assert isinstance(back, pywbem.CIMInstance) and back["VariableValue"] == value


async def test_exec_method_with_in_and_out_parameters(server: WmiServer, store: CimStore) -> None:
    """ExecMethod (MS-WMI 3.1.4.3.22): __PARAMETERS in; ReturnValue and out parameters back."""
    async with await _client(server) as wmi:
        out = await wmi.exec_method("Win32_Process", "Create", {"CommandLine": "notepad.exe"})
        changed = await wmi.exec_method('Win32_Service.Name="Spooler"', "ChangeStartMode", {"StartMode": "Manual"})
    assert out["ReturnValue"] == 0 and isinstance(out["ProcessId"], int)
    procs = store.exec_query("root/cimv2", f"SELECT * FROM Win32_Process WHERE ProcessId = {out['ProcessId']}")
    assert len(procs) == 1
    assert changed["ReturnValue"] == 0
    spooler = store.get_instance("root/cimv2", store.resolve_path("root/cimv2", 'Win32_Service.Name="Spooler"'))
    assert spooler["StartMode"] == "Manual"

"""Smart enumeration over DCOM, mock server and client (MS-WMI 3.1.4.4, 3.1.4.6.1, 3.1.4.7.1,
3.2.4.2.8): IRemUnknown::RemQueryInterface for IWbemFetchSmartEnum on an IEnumWbemClassObject,
GetSmartEnum, IWbemWCOSmartEnum::Next with ObjectArray packets (2.2.14), compared with the plain
IEnumWbemClassObject::Next path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pywbem

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.client.wmi import WmiClient, WmiEnumerator, WmiError
from harness.targets.mock import wmi_server as wmi_server_mod
from harness.targets.mock.wmi_server import WmiServer
from harness.wire.wmi.constants import (
    IID_IENUM_WBEM_CLASS_OBJECT,
    IID_IWBEM_SERVICES,
    MAX_NEXT_COUNT,
    WBEM_E_ACCESS_DENIED,
    WBEM_E_INVALID_PARAMETER,
)
from harness.wire.wmi.datapacket import ObjectType
from harness.wire.wmi.smartenum import IID_IWBEM_FETCH_SMART_ENUM, IID_IWBEM_WCO_SMART_ENUM
from harness.wire.wmio import WmiInstance
from harness.wire.wmio.pywbem_bridge import to_pywbem_instance

PASSWORD = "Sm4rt-Enum!"
NS = "root/cimv2"
E_NOINTERFACE = 0x80004002


@pytest.fixture
def store() -> CimStore:
    return default_store()


@pytest.fixture
async def server(store: CimStore, start_wmi_server: Any) -> WmiServer:
    return await start_wmi_server(store, PASSWORD)


async def _client(server: WmiServer, user: str = "admin") -> WmiClient:
    return await WmiClient.connect("127.0.0.1", server.epm_port, user, PASSWORD, timeout=10)


async def test_win32_service_through_the_smart_enumerator_equals_plain_next(server: WmiServer,
                                                                           store: CimStore) -> None:
    query = "SELECT * FROM Win32_Service"
    async with await _client(server) as wmi:
        plain = await wmi.exec_query(query)
        smart = await wmi.exec_query(query, smart=True)
        enum = await wmi.exec_query_enum(query, smart=True)
        batches: list[list[ObjectType]] = []
        objects = []
        while not enum.done:
            objects += await enum.next(4, timeout=5)
            if enum.last_packet is not None:
                batches.append([e.kind for e in enum.last_packet.entries])
                enum.last_packet = None
        await enum.release()
    want = store.exec_query(NS, query)
    assert len(want) > 8
    assert smart == plain
    assert [i["Name"] for i in smart] == [i["Name"] for i in want]
    assert [to_pywbem_instance(o) for o in objects if isinstance(o, WmiInstance)] == plain
    assert enum.optimized is True and len(objects) == len(want)
    # MS-WMI 2.2.14: the class travels once, with the first instance; every later instance, in this
    # and in later Next calls of the same proxyGUID, is WBEMOBJECT_INSTANCE_NOCLASS
    flat = [k for batch in batches for k in batch]
    assert flat[0] == ObjectType.INSTANCE and set(flat[1:]) == {ObjectType.INSTANCE_NOCLASS}
    assert all(len(b) == 4 for b in batches[:-1])


async def test_enumerator_answers_query_interface_for_fetch_smart_enum(server: WmiServer) -> None:
    async with await _client(server) as wmi:
        enum = await wmi.exec_query_enum("SELECT * FROM Win32_Service")
        status, fetch, refs = await wmi.query_interface(enum.ipid, IID_IWBEM_FETCH_SMART_ENUM)
        assert status == 0 and fetch is not None and refs > 0
        exports = server.runtime.exports
        assert exports[fetch].iid == IID_IWBEM_FETCH_SMART_ENUM
        assert exports[fetch].oid == exports[enum.ipid].oid and exports[fetch].obj is exports[enum.ipid].obj
        status, other, _ = await wmi.query_interface(enum.ipid, IID_IWBEM_SERVICES)
        assert status == E_NOINTERFACE and other is None
        await wmi.release(fetch, refs)
        assert fetch not in server.runtime.exports and enum.ipid in server.runtime.exports
        await enum.next(1)
        await enum.release()


async def test_smart_and_plain_next_share_the_position_and_end_with_wbem_s_false(server: WmiServer,
                                                                                store: CimStore) -> None:
    names = [str(i["Name"]) for i in store.exec_query(NS, "SELECT * FROM Win32_Service")]
    async with await _client(server) as wmi:
        enum = await wmi.exec_query_enum("SELECT * FROM Win32_Service", smart=True)
        plain = WmiEnumerator(wmi, enum.ipid)
        first = await enum.next(3)
        second = await plain.next(2)
        rest = await enum.next(len(names))          # fewer than asked: WBEM_S_FALSE
        assert enum.done and not plain.done
        assert await enum.next(5) == []             # at the end: NULL pBuffer, puReturned 0, WBEM_S_FALSE
        smart_ipid = enum.smart_ipid
        assert smart_ipid is not None and server.runtime.exports[smart_ipid].iid == IID_IWBEM_WCO_SMART_ENUM
        await enum.release()
        assert smart_ipid not in server.runtime.exports
    got = [o.values["Name"] for o in first + second + rest if isinstance(o, WmiInstance)]
    assert got == names


async def test_count_above_the_limit_is_wbem_e_invalid_parameter(server: WmiServer) -> None:
    async with await _client(server) as wmi:
        enum = await wmi.exec_query_enum("SELECT * FROM Win32_Service", smart=True)
        with pytest.raises(WmiError) as info:
            await enum.next(MAX_NEXT_COUNT + 1)
        assert info.value.hresult == WBEM_E_INVALID_PARAMETER and enum.optimized
        assert len(await enum.next(2)) == 2          # nothing was consumed
        await enum.release()


async def test_event_enumerator_times_out_then_delivers(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        events = await wmi.exec_notification_query(
            "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'",
            smart=True)
        assert await events.next(1, timeout=0.05) == []        # WBEM_S_TIMEDOUT: not the end
        assert not events.done and events.optimized
        for n in range(2):
            store.create_instance(NS, pywbem.CIMInstance("Win32_Environment", properties={
                "Name": f"WMH_SMART_{n}", "UserName": "<SYSTEM>", "VariableValue": "v"}))
        got = await asyncio.wait_for(events.next(2, timeout=5), 10)
        await events.release()
    assert [o.class_name for o in got if isinstance(o, WmiInstance)] == ["__InstanceCreationEvent"] * 2
    targets = [o.values["TargetInstance"] for o in got if isinstance(o, WmiInstance)]
    assert [t.values["Name"] for t in targets if isinstance(t, WmiInstance)] == ["WMH_SMART_0", "WMH_SMART_1"]


async def test_get_smart_enum_serves_only_the_enumerators_principal(server: WmiServer) -> None:
    async with await _client(server) as admin, await _client(server, "reader") as reader:
        enum = await admin.exec_query_enum("SELECT * FROM Win32_Service")
        foreign = WmiEnumerator(reader, enum.ipid, smart=True)
        with pytest.raises(WmiError) as info:      # MS-WMI 3.1.4.6.1: WBEM_E_ACCESS_DENIED
            await foreign.next(1)
        assert info.value.hresult == WBEM_E_ACCESS_DENIED and foreign.smart_ipid is None
        own = await reader.exec_query_enum("SELECT * FROM Win32_Service", smart=True)
        assert len(await own.next(2)) == 2 and own.optimized
        await own.release()
        await enum.release()


async def test_client_falls_back_to_plain_next_without_fetch_smart_enum(server: WmiServer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """MS-WMI 3.2.4.2.8: an error obtaining IWbemFetchSmartEnum MUST be ignored; Next is used."""
    monkeypatch.setattr(wmi_server_mod.Enumerator, "interfaces", lambda self: [IID_IENUM_WBEM_CLASS_OBJECT])
    async with await _client(server) as wmi:
        enum = await wmi.exec_query_enum("SELECT * FROM Win32_Service", smart=True)
        got = await enum.all()
        await enum.release()
        plain = await wmi.exec_query("SELECT * FROM Win32_Service")
    assert enum.optimized is False and enum.smart_ipid is None and enum.last_packet is None
    assert [to_pywbem_instance(o) for o in got if isinstance(o, WmiInstance)] == plain

"""The mock's WMI over DCOM role enforces the namespace DACL, like its WS-Man role (MS-WMOD 2.9.3;
MS-WMI 3.1.4.1.4, 3.1.4.3, 5.2): WBEM_E_ACCESS_DENIED for each operation lacking its right."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
import pywbem

from harness.auth.users import LocalUser
from harness.cim.errors import CimError, CimStatus
from harness.cim.mof import default_store
from harness.cim.providers import namespace_sd
from harness.cim.store import CimStore
from harness.client.wmi import WmiClient, WmiError, _orpc
from harness.targets.mock import authorization as authz
from harness.targets.mock import wmi_access
from harness.targets.mock.wmi_server import WmiServer
from harness.wire.wmi.constants import WBEM_E_ACCESS_DENIED

PASSWORD = "Pa55-word!"
MACHINE = "WMH-DACL01"
NS = "root/cimv2"
ENV_PATH = 'Win32_Environment.Name="WMH_DACL",UserName="<SYSTEM>"'


def _env(value: str) -> pywbem.CIMInstance:
    return pywbem.CIMInstance("Win32_Environment", properties={
        "Name": "WMH_DACL", "UserName": "<SYSTEM>", "VariableValue": value})


@pytest.fixture
def store() -> CimStore:
    return default_store()


@pytest.fixture
async def server(store: CimStore, start_wmi_server: Any) -> WmiServer:
    return await start_wmi_server(store, PASSWORD, machine=MACHINE)


async def _client(server: WmiServer, user: str = "admin") -> WmiClient:
    return await WmiClient.connect("127.0.0.1", server.epm_port, user, PASSWORD, timeout=10)


def _set_sd(store: CimStore, data: bytes) -> None:
    """__SystemSecurity.SetSD on the store, as a WS-Man or WMI client would invoke it."""
    target = store.resolve_path(NS, "__SystemSecurity=@")
    rv, _ = store.invoke_method(NS, target, "SetSD", {"SD": [pywbem.Uint8(b) for b in data]})
    assert int(rv) == 0


def _with_first(store: CimStore, ace_type: int, mask: int, sid: str) -> bytes:
    changed = authz.prepend_ace(namespace_sd(store, NS)[1], ace_type, 0, mask, sid)
    _set_sd(store, changed)
    return changed


def _reader_sid() -> str:
    return authz.user_sid(MACHINE, "reader", administrator=False)


def _admin_sid() -> str:
    return authz.user_sid(MACHINE, "admin", administrator=True)


async def _denied(awaitable: Awaitable[object]) -> int:
    with pytest.raises(WmiError) as err:
        await awaitable
    return err.value.hresult


async def test_default_dacl_reader_reads_but_cannot_write(server: WmiServer) -> None:
    async with await _client(server, "reader") as wmi:
        assert await wmi.exec_query("SELECT * FROM Win32_Service")
        assert isinstance(await wmi.get_object('Win32_Service.Name="WinRM"'), pywbem.CIMInstance)
        assert await _denied(wmi.put_instance(_env("x"))) == WBEM_E_ACCESS_DENIED
        assert await _denied(wmi.delete_instance('Win32_Service.Name="WinRM"')) == WBEM_E_ACCESS_DENIED


async def test_removing_admin_write_denies_put_and_delete_but_get_works(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        await wmi.put_instance(_env("before"))
        _with_first(store, authz.ACE_DENIED, authz.WBEM_FULL_WRITE_REP | authz.WBEM_PARTIAL_WRITE_REP
                    | authz.WBEM_WRITE_PROVIDER, authz.ADMINISTRATORS)
        assert await _denied(wmi.put_instance(_env("after"))) == WBEM_E_ACCESS_DENIED
        assert await _denied(wmi.delete_instance(ENV_PATH)) == WBEM_E_ACCESS_DENIED
        got = await wmi.get_object(ENV_PATH)
        assert isinstance(got, pywbem.CIMInstance) and got["VariableValue"] == "before"


async def test_granting_the_reader_sid_partial_write_lets_its_put_through(server: WmiServer, store: CimStore) -> None:
    """The DCOM caller has the SID the HTTP side gives the same user (authorization.user_sid)."""
    assert wmi_access.caller_sids(MACHINE, LocalUser("reader", PASSWORD, read_only=True)) == authz.principal_sids(
        MACHINE, "reader", read_only=True)
    async with await _client(server, "reader") as wmi:
        _with_first(store, authz.ACE_ALLOWED, authz.WBEM_PARTIAL_WRITE_REP, _reader_sid())
        await wmi.put_instance(_env("by-reader"))
    path = store.resolve_path(NS, ENV_PATH)
    assert store.get_instance(NS, path)["VariableValue"] == "by-reader"


async def test_denied_enable_refuses_every_read_operation(server: WmiServer, store: CimStore) -> None:
    async with await _client(server, "reader") as wmi:
        _with_first(store, authz.ACE_DENIED, authz.WBEM_ENABLE, _reader_sid())
        assert await _denied(wmi.exec_query("SELECT * FROM Win32_Service")) == WBEM_E_ACCESS_DENIED
        assert await _denied(wmi.get_object('Win32_Service.Name="WinRM"')) == WBEM_E_ACCESS_DENIED
        assert await _denied(wmi.exec_notification_query(
            "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'")
        ) == WBEM_E_ACCESS_DENIED
        assert await _denied(wmi.exec_query_async("SELECT * FROM Win32_Service")) == WBEM_E_ACCESS_DENIED
        w = _orpc()
        w.bstr("Win32_Service")
        w.i32(0)
        w.interface_pointer(None)
        assert await _denied(wmi._enum_call(18, w, "CreateInstanceEnum")) == WBEM_E_ACCESS_DENIED
    async with await _client(server) as admin:   # the administrator is not affected
        assert await admin.exec_query("SELECT * FROM Win32_Service")


async def test_login_needs_remote_enable(server: WmiServer, store: CimStore) -> None:
    _with_first(store, authz.ACE_DENIED, authz.WBEM_REMOTE_ACCESS, _reader_sid())
    with pytest.raises(WmiError) as err:
        await _client(server, "reader")
    assert err.value.hresult == WBEM_E_ACCESS_DENIED and "NTLMLogin" in str(err.value)
    async with await _client(server) as admin:
        assert await admin.exec_query("SELECT * FROM Win32_Service")


async def test_exec_method_needs_method_execute(server: WmiServer, store: CimStore) -> None:
    async with await _client(server) as wmi:
        assert "ReturnValue" in await wmi.exec_method('Win32_Service.Name="Spooler"', "StopService")
        changed = _with_first(store, authz.ACE_DENIED, authz.WBEM_METHOD_EXECUTE, _admin_sid())
        assert await _denied(wmi.exec_method('Win32_Service.Name="Spooler"', "StopService")) == WBEM_E_ACCESS_DENIED
        out = await wmi.exec_method("__SystemSecurity=@", "GetSD")   # READ_CONTROL, not execute
        assert int(out["ReturnValue"]) == 0 and bytes(int(b) for b in out["SD"]) == changed


async def test_get_sd_needs_read_control(server: WmiServer) -> None:
    async with await _client(server, "reader") as wmi:
        assert await _denied(wmi.exec_method("__SystemSecurity=@", "GetSD")) == WBEM_E_ACCESS_DENIED


async def test_get_caller_access_rights_reports_the_callers_rights(server: WmiServer, store: CimStore) -> None:
    sd = wmi_access.namespace_descriptor(store, NS)
    for user, read_only in (("admin", False), ("reader", True)):
        async with await _client(server, user) as wmi:
            out = await wmi.exec_method("__SystemSecurity=@", "GetCallerAccessRights")
        want = authz.granted_rights(sd, authz.principal_sids(MACHINE, user, read_only=read_only))
        assert int(out["ReturnValue"]) == 0 and int(out["Rights"]) == want
    assert want & authz.WBEM_REMOTE_ACCESS and not want & authz.WBEM_FULL_WRITE_REP


def test_access_module_checks_and_anonymous_token(store: CimStore) -> None:
    admin = LocalUser("admin", PASSWORD)
    wmi_access.check(store, MACHINE, admin, NS, authz.READ_RIGHTS)
    wmi_access.check_write(store, MACHINE, admin, NS)
    wmi_access.check_method(store, MACHINE, admin, NS, "__SystemSecurity", "SetSD")
    assert wmi_access.caller_sids(MACHINE, None) == wmi_access.ANONYMOUS_SIDS
    with pytest.raises(CimError) as anon:
        wmi_access.check(store, MACHINE, None, NS, authz.READ_RIGHTS)
    assert anon.value.status is CimStatus.ACCESS_DENIED and "Remote Enable" in (anon.value.description or "")
    reader = LocalUser("reader", PASSWORD, read_only=True)
    with pytest.raises(CimError):
        wmi_access.check_method(store, MACHINE, reader, NS, "__SystemSecurity", "SetSD")   # no WRITE_DAC
    with pytest.raises(CimError):
        wmi_access.check_method(store, MACHINE, reader, NS, "Win32_Service", "StopService")  # provider check

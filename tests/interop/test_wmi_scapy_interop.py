"""A second third-party WMI client, aiowmi, unmodified, against ``wmh serve`` (WMI over DCOM) on loopback.

Why aiowmi and not scapy: scapy 2.8 ships a DCOM client (``scapy.layers.msrpce.msdcom.DCOM_Client``:
activation, OXID resolution, IRemUnknown) but no IWbemLevel1Login / IWbemServices /
IEnumWbemClassObject stubs (MS-WMI 2.2 appears in scapy only as interface names), so it cannot call
NTLMLogin or ExecQuery without us writing the WMI layer, which would no longer be a third-party client.
aiowmi (PyPI, asyncio) implements the whole stack itself: MS-RPCE binds with NTLM, MS-DCOM
RemoteCreateInstance of CLSID_WbemLevel1Login (MS-WMI 3.2.4.1), IWbemLevel1Login::NTLMLogin
(MS-WMI 3.1.4.1.4), IWbemServices::ExecQuery (3.1.4.3.18), IRemUnknown2 RemQueryInterface for the
smart enumerator and IEnumWbemClassObject::Next (3.1.4.4.2) with its own MS-WMIO decoder. It is not a
project dependency, so the module is skipped when it is not installed. aiowmi takes the endpoint
mapper port as a parameter, so ``wmh serve`` runs on a free port (``--epm-port``), not on 135.

aiowmi activates at PKT_PRIVACY, then binds the object exporter at max(authnHint, PKT_INTEGRITY) and
calls IWbemServices / IRemUnknown2 on the context it bound for IWbemLevel1Login: the IPID selects the
interface (observed Windows behaviour, which the mock follows).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
from _wire import MockServer

from harness.cim.mof import default_store

connection = pytest.importorskip("aiowmi.connection")
query_mod = pytest.importorskip("aiowmi.query")

NS = "root/cimv2"
TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def wmi_server(wmh_serve: Callable[..., MockServer]) -> tuple[MockServer, int]:
    epm_port = _free_port()
    return wmh_serve("--epm-port", str(epm_port)), epm_port


async def _query(server: MockServer, epm_port: int, wql: str, *, password: str | None = None,
                 namespace: str = NS) -> list[dict[str, Any]]:
    conn = connection.Connection(server.host, server.username, password or server.password, port=epm_port)
    await conn.connect()
    rows: list[dict[str, Any]] = []
    try:
        service = await conn.negotiate_ntlm()
        query = query_mod.Query(wql, namespace=namespace)
        async with query.context(conn, service) as qc:
            async for props in qc.results():
                rows.append({name: prop.value for name, prop in props.items()})
    finally:
        conn.close()
    return rows


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def test_exec_query_returns_every_service_as_in_the_store(wmi_server: tuple[MockServer, int]) -> None:
    """MS-WMI 3.1.4.3.18 ExecQuery + 3.1.4.4.2 Next, decoded by aiowmi's MS-WMIO reader."""
    server, epm_port = wmi_server
    rows = _run(_query(server, epm_port, "SELECT * FROM Win32_Service"))
    store = default_store()
    expected = store.exec_query(NS, "SELECT * FROM Win32_Service")
    assert [r["Name"] for r in rows] == [str(i["Name"]) for i in expected]
    by_name = {str(i["Name"]): i for i in expected}
    for row in rows:
        inst = by_name[row["Name"]]
        assert row["State"] == inst["State"]
        assert row["StartMode"] == inst["StartMode"]
        assert row["Started"] == inst["Started"]
    assert set(rows[0]) == {str(p) for p in store.get_class(NS, "Win32_Service").properties}


def test_where_clause_and_projection(wmi_server: tuple[MockServer, int]) -> None:
    """A WQL WHERE narrows the result; a projection returns the named properties (MS-WMI 2.2.1, 3.1.4.3.18)."""
    server, epm_port = wmi_server
    rows = _run(_query(server, epm_port, "SELECT Name, State FROM Win32_Service WHERE Name = 'WinRM'"))
    assert len(rows) == 1
    assert rows[0]["Name"] == "WinRM"
    store = default_store()
    winrm = store.get_instance(NS, store.resolve_path(NS, 'Win32_Service.Name="WinRM"'))
    assert rows[0]["State"] == winrm["State"]


def test_wrong_password_is_refused(wmi_server: tuple[MockServer, int]) -> None:
    """NTLMv2 with a wrong password fails the bind or the first call (MS-NLMP 3.2.5.1.2; MS-RPCE 3.3.1.5.2)."""
    server, epm_port = wmi_server
    exceptions = pytest.importorskip("aiowmi.exceptions")
    with pytest.raises(exceptions.RpcException):
        _run(_query(server, epm_port, "SELECT * FROM Win32_Service", password=server.password + "x"))

"""impacket's WMI client, unmodified, against ``wmh serve`` (WMI over DCOM) on loopback.

impacket's ``DCOMConnection`` always reaches the endpoint mapper on port 135 (its string binding is
``ncacn_ip_tcp:<target>`` without an endpoint), so the server's endpoint mapper must listen on
127.0.0.1:135, which ``wmh serve`` does by default (``--epm-port``). The session's ``wmh serve`` is
used when it holds port 135, else one is started for this module; when neither can (no privilege,
port taken by another process) the tests are skipped with the reason. The ORPC port is ephemeral and
reaches impacket through the OXID bindings of the activation reply (MS-DCOM 3.1.2.5.2.3.3).
impacket negotiates NTLM with PKT_PRIVACY for the activation and the WMI connection, so every
request and response is sealed (MS-RPCE 3.3.1.5.2.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from _wire import MockServer

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.client.wmi import WmiClient, WmiError

wmi = pytest.importorskip("impacket.dcerpc.v5.dcom.wmi")
dcomrt = pytest.importorskip("impacket.dcerpc.v5.dcomrt")
dtypes = pytest.importorskip("impacket.dcerpc.v5.dtypes")

EPM_PORT = 135


def _serves_wmi(server: MockServer) -> bool:
    """True when the WMI role on 127.0.0.1:135 is this server's (its credentials log on)."""
    async def probe() -> None:
        client = await WmiClient.connect(server.host, EPM_PORT, server.username, server.password, timeout=5)
        await client.close()

    try:
        asyncio.run(probe())
    except (WmiError, OSError, TimeoutError):
        return False
    return True


@pytest.fixture(scope="module")
def wmi_server(mock_server: MockServer, wmh_serve: Callable[..., MockServer]) -> MockServer:
    if _serves_wmi(mock_server):
        return mock_server
    own = wmh_serve("--epm-port", str(EPM_PORT))
    if _serves_wmi(own):
        return own
    pytest.skip(f"no wmh serve could listen on 127.0.0.1:{EPM_PORT} for impacket's endpoint mapper; "
                f"see {own.log_file}")


@pytest.fixture(scope="module")
def wmi_target(wmi_server: MockServer) -> Iterator[tuple[CimStore, MockServer]]:
    """The reference store (the server loads the same fixtures) and the server."""
    yield default_store(), wmi_server


@pytest.fixture
def services(wmi_target: tuple[CimStore, MockServer]) -> Iterator[object]:
    _store, server = wmi_target
    dcom = dcomrt.DCOMConnection(server.host, server.username, server.password, "", "", "", oxidResolver=True)
    try:
        iface = dcom.CoCreateInstanceEx(wmi.CLSID_WbemLevel1Login, wmi.IID_IWbemLevel1Login)
        login = wmi.IWbemLevel1Login(iface)
        svc = login.NTLMLogin("//./root/cimv2", dtypes.NULL, dtypes.NULL)
        login.RemRelease()
        yield svc
    finally:
        dcom.disconnect()


def test_exec_query_next_loop_property_names_match_store(wmi_target: tuple[CimStore, MockServer],
                                                         services: object) -> None:
    """MS-WMI 3.1.4.3.18 ExecQuery + 3.1.4.4.2 Next until WBEM_S_FALSE; MS-WMIO decoded by impacket."""
    store, _ = wmi_target
    enum = services.ExecQuery("SELECT * FROM Win32_Service")  # type: ignore[attr-defined]
    names: list[str] = []
    props: set[str] = set()
    while True:
        try:
            (obj,) = enum.Next(0xFFFFFFFF, 1)
        except Exception as exc:   # impacket raises on WBEM_S_FALSE at the end of the enumeration
            assert "WBEM_S_FALSE" in str(exc)
            break
        record = obj.getProperties()
        names.append(record["Name"]["value"])
        props |= set(record)
    enum.RemRelease()
    expected = store.exec_query("root/cimv2", "SELECT * FROM Win32_Service")
    assert names == [str(i["Name"]) for i in expected]
    assert props == {str(p) for p in store.get_class("root/cimv2", "Win32_Service").properties}


def test_get_object_instance_path(wmi_target: tuple[CimStore, MockServer], services: object) -> None:
    """MS-WMI 3.1.4.3.4 GetObject with an instance path."""
    store, _ = wmi_target
    obj, _ = services.GetObject('Win32_Service.Name="WinRM"')  # type: ignore[attr-defined]
    record = obj.getProperties()
    path = store.resolve_path("root/cimv2", 'Win32_Service.Name="WinRM"')
    expected = store.get_instance("root/cimv2", path)
    assert record["Name"]["value"] == "WinRM"
    assert record["State"]["value"] == expected["State"]
    assert {k for k in record} == {str(p) for p in expected.properties}


def test_get_object_missing_instance_is_wbem_e_not_found(services: object) -> None:
    """MS-WMI 2.2.11: WBEM_E_NOT_FOUND (0x80041002) for a path that names no instance."""
    with pytest.raises(Exception) as err:
        services.GetObject('Win32_Service.Name="NoSuchService"')  # type: ignore[attr-defined]
    assert "WBEM_E_NOT_FOUND" in str(err.value) or "80041002" in str(err.value)

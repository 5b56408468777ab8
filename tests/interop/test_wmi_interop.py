"""impacket's WMI client, unmodified, against the mock WMI server over DCOM on loopback.

impacket's ``DCOMConnection`` always reaches the endpoint mapper on port 135 (its string binding is
``ncacn_ip_tcp:<target>`` without an endpoint), so the mock's endpoint mapper must listen on
127.0.0.1:135; the test is skipped with the reason when that port cannot be bound. The ORPC port is
ephemeral and reaches impacket through the OXID bindings of the activation reply (MS-DCOM 3.1.2.5.2.3.3).
impacket negotiates NTLM with PKT_PRIVACY for the activation and the WMI connection, so every
request and response is sealed (MS-RPCE 3.3.1.5.2.2).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

import pytest

from harness.auth.users import LocalUser, UserDatabase
from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock.wmi_server import WmiServer

wmi = pytest.importorskip("impacket.dcerpc.v5.dcom.wmi")
dcomrt = pytest.importorskip("impacket.dcerpc.v5.dcomrt")
dtypes = pytest.importorskip("impacket.dcerpc.v5.dtypes")

USER = "wmh"
STARTUP_TIMEOUT = 10.0


class _ServerThread:
    def __init__(self, store: CimStore, users: UserDatabase) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = WmiServer(store, users, epm_port=135)
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wmh-wmi-interop", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.close())
        self.loop.close()

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(STARTUP_TIMEOUT):
            raise RuntimeError("WMI server did not start")

    def stop(self) -> None:
        if self.error is None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def wmi_target() -> Iterator[tuple[CimStore, str]]:
    store = default_store()
    password = secrets.token_urlsafe(12)
    users = UserDatabase([LocalUser(USER, password)])
    runner = _ServerThread(store, users)
    runner.start()
    if runner.error is not None:
        runner.stop()
        pytest.skip(f"cannot listen on 127.0.0.1:135 for impacket's endpoint mapper: {runner.error}")
    try:
        yield store, password
    finally:
        runner.stop()
        users.close()


@pytest.fixture
def services(wmi_target: tuple[CimStore, str]) -> Iterator[object]:
    _store, password = wmi_target
    dcom = dcomrt.DCOMConnection("127.0.0.1", USER, password, "", "", "", oxidResolver=True)
    try:
        iface = dcom.CoCreateInstanceEx(wmi.CLSID_WbemLevel1Login, wmi.IID_IWbemLevel1Login)
        login = wmi.IWbemLevel1Login(iface)
        svc = login.NTLMLogin("//./root/cimv2", dtypes.NULL, dtypes.NULL)
        login.RemRelease()
        yield svc
    finally:
        dcom.disconnect()


def test_exec_query_next_loop_property_names_match_store(wmi_target: tuple[CimStore, str],
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


def test_get_object_instance_path(wmi_target: tuple[CimStore, str], services: object) -> None:
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

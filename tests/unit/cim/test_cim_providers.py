"""Method providers of the default store: services, processes, namespace security."""

from __future__ import annotations

import pytest
from pywbem import CIMInstanceName, Uint8

from harness.cim import CimStore, StoreChange
from harness.cim.security import DEFAULT_NAMESPACE_SDDL, SddlError, binary_to_sddl, sddl_to_binary

NS = "root/cimv2"


def svc(name: str) -> CIMInstanceName:
    return CIMInstanceName("Win32_Service", keybindings={"Name": name})


def state(store: CimStore, name: str) -> tuple[str, bool, int]:
    inst = store.get_instance(NS, svc(name))
    return inst["State"], inst["Started"], inst["ProcessId"]


def test_start_stop_service(store: CimStore) -> None:
    assert store.invoke_method(NS, svc("BITS"), "StartService", {}) == (0, {})
    st, started, pid = state(store, "BITS")
    assert (st, started) == ("Running", True) and pid > 0 and pid % 4 == 0
    assert store.invoke_method(NS, svc("BITS"), "StartService", {})[0] == 10
    assert store.invoke_method(NS, svc("BITS"), "StopService", {})[0] == 0
    assert state(store, "BITS") == ("Stopped", False, 0)
    assert store.invoke_method(NS, svc("BITS"), "StopService", {})[0] == 5


def test_stop_with_running_dependents_and_not_stoppable(store: CimStore) -> None:
    assert store.invoke_method(NS, svc("nsi"), "StopService", {})[0] == 3
    assert store.invoke_method(NS, svc("MpsSvc"), "StopService", {})[0] == 5
    assert store.invoke_method(NS, svc("RemoteRegistry"), "StartService", {})[0] == 14


def test_service_method_emits_modify_event(store: CimStore) -> None:
    seen: list[StoreChange] = []
    store.add_listener(seen.append)
    store.invoke_method(NS, svc("Spooler"), "StopService", {})
    assert [c.kind for c in seen] == ["modify"]
    assert seen[0].previous is not None and seen[0].previous["State"] == "Running"
    assert seen[0].current is not None and seen[0].current["State"] == "Stopped"


def test_change_start_mode_pause_resume(store: CimStore) -> None:
    assert store.invoke_method(NS, svc("Spooler"), "ChangeStartMode", {"StartMode": "Automatic"})[0] == 0
    assert store.get_instance(NS, svc("Spooler"))["StartMode"] == "Auto"
    assert store.invoke_method(NS, svc("Spooler"), "ChangeStartMode", {"StartMode": "Sometimes"})[0] == 21
    assert store.invoke_method(NS, svc("Spooler"), "PauseService", {})[0] == 5
    assert store.invoke_method(NS, svc("BITS"), "PauseService", {})[0] == 6
    assert store.invoke_method(NS, svc("Spooler"), "ResumeService", {})[0] == 6


def test_process_create_terminate(store: CimStore) -> None:
    rv, out = store.invoke_method(NS, "win32_process", "Create", {"CommandLine": '"C:\\Tools\\my app.exe" -x'})
    assert rv == 0
    pid = out["ProcessId"]
    proc = store.get_instance(NS, CIMInstanceName("Win32_Process", keybindings={"Handle": str(pid)}))
    assert proc["ProcessId"] == pid and proc["Name"] == "my app.exe"
    assert proc["CommandLine"] == '"C:\\Tools\\my app.exe" -x'
    assert store.invoke_method(NS, proc.path, "GetOwner", {}) == (0, {"User": "SYSTEM", "Domain": "NT AUTHORITY"})
    assert store.invoke_method(NS, proc.path, "Terminate", {"Reason": 0})[0] == 0
    assert all(p["ProcessId"] != pid for p in store.enumerate_instances(NS, "Win32_Process"))
    assert store.invoke_method(NS, "Win32_Process", "Create", {"CommandLine": "  "}) == (21, {})
    system = CIMInstanceName("Win32_Process", keybindings={"Handle": "4"})
    assert store.invoke_method(NS, system, "Terminate", {})[0] == 2


def test_environment_via_instance_operations(store: CimStore) -> None:
    rows = store.exec_query(NS, "SELECT * FROM Win32_Environment WHERE UserName = '<SYSTEM>' AND Name = 'OS'")
    assert rows[0]["VariableValue"] == "Windows_NT"


def test_get_set_sd_round_trip(store: CimStore) -> None:
    path = CIMInstanceName("__SystemSecurity", keybindings={})
    rv, out = store.invoke_method(NS, path, "GetSD", {})
    assert rv == 0 and all(isinstance(b, Uint8) for b in out["SD"])
    assert binary_to_sddl(bytes(out["SD"])) == DEFAULT_NAMESPACE_SDDL
    new = sddl_to_binary("O:SYG:SYD:P(A;;CCDCRP;;;WD)(D;OICI;WD;;;S-1-5-21-1-2-3-500)")
    assert store.invoke_method(NS, path, "SetSD", {"SD": list(new)}) == (0, {})
    assert bytes(store.invoke_method(NS, path, "GetSD", {})[1]["SD"]) == new
    # other namespaces keep their own descriptor
    assert bytes(store.invoke_method("root/interop", path, "GetSD", {})[1]["SD"]) != new
    assert store.invoke_method(NS, path, "SetSD", {"SD": [1, 2, 3]})[0] == 0x80041008


def test_sddl_binary_layout() -> None:
    data = sddl_to_binary("O:BAG:BAD:(A;CI;CCDCLCSWRPWPRCWD;;;BA)")
    assert data[0] == 1 and int.from_bytes(data[2:4], "little") == 0x8004
    owner = int.from_bytes(data[4:8], "little")
    assert data[owner : owner + 16] == bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0])
    dacl = int.from_bytes(data[16:20], "little")
    assert data[dacl] == 2 and int.from_bytes(data[dacl + 4 : dacl + 6], "little") == 1
    assert int.from_bytes(data[dacl + 12 : dacl + 16], "little") == 0x6003F
    assert binary_to_sddl(data) == "O:BAG:BAD:(A;CI;CCDCLCSWRPWPRCWD;;;BA)"


@pytest.mark.parametrize(
    "bad", ["O:XX", "D:(A;;CC;;;BA", "D:(Q;;CC;;;BA)", "D:(A;ZZ;CC;;;BA)", "S:(AU;;CC;;;BA)", "garbage"]
)
def test_bad_sddl(bad: str) -> None:
    with pytest.raises(SddlError):
        sddl_to_binary(bad)


def test_truncated_sd_bytes() -> None:
    data = sddl_to_binary(DEFAULT_NAMESPACE_SDDL)
    for cut in (0, 10, 19, 30, len(data) - 1):
        with pytest.raises(SddlError):
            binary_to_sddl(data[:cut])

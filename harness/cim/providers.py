"""Python method providers of the mock CIMOM (MS-WMOD 2.5.2.2 "Invoke a Method on a CIM Object").

Return codes are those documented for the Win32 provider methods:

* ``Win32_BaseService.StartService / StopService / PauseService / ResumeService / ChangeStartMode``:
  0 success, 3 dependent services running, 5 the service cannot accept control (e.g. stopping a
  stopped service), 6 service not active, 10 service already running, 14 service disabled,
  21 invalid parameter, 24 service already paused.
* ``Win32_Process.Create``: 0 success, 21 invalid parameter; ``Terminate``: 0 success, 2 access denied.
* ``__SystemSecurity.GetSD / SetSD``: 0 or a WBEM_E_* HRESULT (MS-WMI 2.2.11).

The security descriptor of each namespace is produced from SDDL as a real self-relative
SECURITY_DESCRIPTOR (:mod:`harness.cim.security`); SetSD validates the bytes and stores both forms.
"""

from __future__ import annotations

import datetime as _dt
import shlex
from typing import Any, TypeAlias

import pywbem

from harness.cim.errors import WBEM_HRESULT, CimError, CimStatus
from harness.cim.security import DEFAULT_NAMESPACE_SDDL, SddlError, binary_to_sddl, sddl_to_binary
from harness.cim.store import CimStore

HOST_NAME = "WMH-MOCK01"
OS_NAME = r"Microsoft Windows Server 2022 Datacenter|C:\Windows|\Device\Harddisk0\Partition2"

Target: TypeAlias = "pywbem.CIMInstanceName | str"
Result: TypeAlias = tuple[Any, dict[str, Any]]


def _instance(store: CimStore, namespace: str, target: Target) -> pywbem.CIMInstance:
    if isinstance(target, str):  # pragma: no cover - the store only passes class names to static methods
        raise CimError(CimStatus.INVALID_PARAMETER, "an instance method needs an instance path")
    return store.get_instance(namespace, target)


def _set(store: CimStore, namespace: str, inst: pywbem.CIMInstance, **values: Any) -> None:
    update = pywbem.CIMInstance(inst.classname, path=inst.path)
    for name, value in values.items():
        update.properties[name] = pywbem.CIMProperty(name, value, type=inst.properties[name].type)
    store.modify_instance(namespace, update, list(values))


# ---------------------------------------------------------------- services


def _running_dependents(store: CimStore, namespace: str, path: pywbem.CIMInstanceName) -> list[str]:
    dependents = store.associators(
        namespace, path, assoc_class="Win32_DependentService", role="Antecedent", result_role="Dependent"
    )
    return [str(d.properties["Name"].value) for d in dependents if d.properties["State"].value == "Running"]


def _next_pid(store: CimStore, namespace: str) -> int:
    """Windows process ids are multiples of 4; take the next one above every id in use."""
    pids = [int(p.properties["ProcessId"].value or 0) for p in store.enumerate_instances(namespace, "Win32_Process")]
    pids += [
        int(s.properties["ProcessId"].value or 0)
        for s in store.enumerate_instances(namespace, "Win32_Service")
        if "ProcessId" in s.properties
    ]
    return (max(pids, default=0) // 4 + 1) * 4


def start_service(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Service.StartService: 10 if running, 14 if disabled, else Running/Started (0)."""
    svc = _instance(store, namespace, target)
    state = svc.properties["State"].value
    if state == "Running" or state == "Paused":
        return 10, {}
    if svc.properties["StartMode"].value == "Disabled":
        return 14, {}
    values: dict[str, Any] = {
        "State": "Running",
        "Started": True,
        "Status": "OK",
        "ExitCode": pywbem.Uint32(0),
    }
    if "ProcessId" in svc.properties:
        values["ProcessId"] = pywbem.Uint32(_next_pid(store, namespace))
    if "AcceptStop" in svc.properties:
        values["AcceptStop"] = True
    _set(store, namespace, svc, **values)
    return 0, {}


def stop_service(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Service.StopService: 5 if not running (observed Windows behaviour: stopping a stopped
    service returns 5, "cannot accept control"), 3 if running services depend on it, 5 if the
    service does not accept stop, else Stopped (0)."""
    svc = _instance(store, namespace, target)
    if svc.properties["State"].value not in ("Running", "Paused"):
        return 5, {}
    if svc.path is not None and _running_dependents(store, namespace, svc.path):
        return 3, {}
    if "AcceptStop" in svc.properties and svc.properties["AcceptStop"].value is False:
        return 5, {}
    values: dict[str, Any] = {"State": "Stopped", "Started": False, "AcceptStop": False, "AcceptPause": False}
    if "ProcessId" in svc.properties:
        values["ProcessId"] = pywbem.Uint32(0)
    _set(store, namespace, svc, **values)
    return 0, {}


def pause_service(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Service.PauseService: 24 if paused, 6 if not active, 5 if it does not accept pause."""
    svc = _instance(store, namespace, target)
    state = svc.properties["State"].value
    if state == "Paused":
        return 24, {}
    if state != "Running":
        return 6, {}
    if not svc.properties["AcceptPause"].value:
        return 5, {}
    _set(store, namespace, svc, State="Paused")
    return 0, {}


def resume_service(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Service.ResumeService: 6 if not paused, else Running (0)."""
    svc = _instance(store, namespace, target)
    if svc.properties["State"].value != "Paused":
        return 6, {}
    _set(store, namespace, svc, State="Running")
    return 0, {}


_START_MODES = {
    "boot": "Boot",
    "system": "System",
    "automatic": "Auto",
    "manual": "Manual",
    "disabled": "Disabled",
}


def change_start_mode(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Service.ChangeStartMode(StartMode): the documented values are Boot, System, Automatic,
    Manual, Disabled (stored as the StartMode property spelling: "Auto"); 21 for anything else."""
    svc = _instance(store, namespace, target)
    mode = params.get("StartMode")
    if not isinstance(mode, str) or mode.lower() not in _START_MODES:
        return 21, {}
    _set(store, namespace, svc, StartMode=_START_MODES[mode.lower()])
    return 0, {}


# ---------------------------------------------------------------- processes


def _image_name(command_line: str) -> tuple[str, str]:
    """(executable path, image name) of a command line (first token; quotes honoured)."""
    try:
        first = shlex.split(command_line, posix=False)[0]
    except (ValueError, IndexError):
        first = command_line.split()[0] if command_line.split() else command_line
    path = first.strip('"')
    return path, path.replace("/", "\\").rsplit("\\", 1)[-1]


def create_process(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Process.Create (static): a new Win32_Process with a fresh ProcessId/Handle, ProcessId
    out-param, 0 on success and 21 if CommandLine is missing or empty."""
    command_line = params.get("CommandLine")
    if not isinstance(command_line, str) or not command_line.strip():
        return 21, {}
    pid = _next_pid(store, namespace)
    path, name = _image_name(command_line.strip())
    now = pywbem.CIMDateTime(_dt.datetime.now(_dt.UTC))
    inst = pywbem.CIMInstance("Win32_Process")
    values: dict[str, Any] = {
        "Handle": str(pid),
        "ProcessId": pywbem.Uint32(pid),
        "Name": name,
        "Caption": name,
        "Description": name,
        "CommandLine": command_line,
        "ExecutablePath": path,
        "ParentProcessId": pywbem.Uint32(2984),
        "SessionId": pywbem.Uint32(0),
        "ThreadCount": pywbem.Uint32(1),
        "HandleCount": pywbem.Uint32(0),
        "Priority": pywbem.Uint32(8),
        "CreationDate": now,
        "CSName": HOST_NAME,
        "OSName": OS_NAME,
        "WindowsVersion": "10.0.20348",
        "CreationClassName": "Win32_Process",
        "CSCreationClassName": "Win32_ComputerSystem",
        "OSCreationClassName": "Win32_OperatingSystem",
    }
    for key, value in values.items():
        inst.properties[key] = value
    store.create_instance(namespace, inst)
    store.raise_extrinsic(namespace, _process_trace("Win32_ProcessStartTrace", pid, name))
    return 0, {"ProcessId": pywbem.Uint32(pid)}


def _process_trace(classname: str, pid: int, name: str, exit_status: int | None = None) -> pywbem.CIMInstance:
    """The extrinsic Win32_ProcessStartTrace / Win32_ProcessStopTrace event of a process."""
    event = pywbem.CIMInstance(classname)
    event["ProcessID"] = pywbem.Uint32(pid)
    event["ProcessName"] = name
    event["ParentProcessID"] = pywbem.Uint32(2984)
    event["SessionID"] = pywbem.Uint32(0)
    if exit_status is not None:
        event["ExitStatus"] = pywbem.Uint32(exit_status)
    return event


def terminate_process(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Process.Terminate: deletes the process; 2 (access denied) for the System Idle Process and
    System (process ids 0 and 4, observed Windows behaviour)."""
    proc = _instance(store, namespace, target)
    if int(proc.properties["ProcessId"].value or 0) in (0, 4):
        return 2, {}
    assert proc.path is not None
    store.delete_instance(namespace, proc.path)
    reason = params.get("Reason")
    store.raise_extrinsic(namespace, _process_trace(
        "Win32_ProcessStopTrace", int(proc.properties["ProcessId"].value or 0),
        str(proc.properties["Name"].value or ""), int(reason) if isinstance(reason, int) else 0))
    return 0, {}


def get_owner(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """Win32_Process.GetOwner: processes of the mock run as SYSTEM in NT AUTHORITY."""
    _instance(store, namespace, target)
    return 0, {"User": "SYSTEM", "Domain": "NT AUTHORITY"}


# ---------------------------------------------------------------- namespace security

SD_STATE = "security_descriptor"


def _sd_key(store: CimStore, namespace: str) -> str:
    """One key per namespace however it is spelt (``root\\cimv2``, ``ROOT/CIMV2``): every protocol
    of the mock reads and writes the same security descriptor (MS-WMOD 2.4)."""
    return store.normalize_namespace(namespace).lower()


def namespace_sd(store: CimStore, namespace: str) -> tuple[str, bytes]:
    """(SDDL, self-relative bytes) of a namespace; the WMI default if never set."""
    state = store.provider_state.setdefault(_sd_key(store, namespace), {})
    if SD_STATE not in state:
        state[SD_STATE] = (DEFAULT_NAMESPACE_SDDL, sddl_to_binary(DEFAULT_NAMESPACE_SDDL))
    sddl, binary = state[SD_STATE]
    return str(sddl), bytes(binary)


def get_sd(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """__SystemSecurity.GetSD: the namespace security descriptor as uint8[] SD."""
    _, binary = namespace_sd(store, namespace)
    return 0, {"SD": [pywbem.Uint8(b) for b in binary]}


def set_sd(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """__SystemSecurity.SetSD: store a valid self-relative security descriptor; WBEM_E_INVALID_PARAMETER
    (0x80041008) if SD is missing or malformed."""
    sd = params.get("SD")
    if sd is None or any(b is None for b in sd):
        return WBEM_HRESULT[CimStatus.INVALID_PARAMETER], {}
    binary = bytes(int(b) for b in sd)
    try:
        sddl = binary_to_sddl(binary)
    except SddlError:
        return WBEM_HRESULT[CimStatus.INVALID_PARAMETER], {}
    store.provider_state.setdefault(_sd_key(store, namespace), {})[SD_STATE] = (sddl, binary)
    return 0, {}


def get_caller_access_rights(store: CimStore, namespace: str, target: Target, params: dict[str, Any]) -> Result:
    """__SystemSecurity.GetCallerAccessRights: the mock's caller is an administrator (full rights of
    the default DACL: CCDCLCSWRPWPRCWD)."""
    return 0, {"Rights": pywbem.Sint32(0x6003F)}


def install_system_instances(store: CimStore) -> None:
    """Create the ``__SystemSecurity=@`` singleton in every namespace that has the class (the WMI core
    serves it in every namespace; MOF cannot declare an instance without property values)."""
    for namespace in store.namespaces:
        if "__SystemSecurity".lower() not in (c.lower() for c in store.class_names(namespace)):
            continue
        if not store.enumerate_instances(namespace, "__SystemSecurity"):
            store.create_instance(namespace, pywbem.CIMInstance("__SystemSecurity"))


def register_providers(store: CimStore) -> None:
    """Register every provider of this module on ``store``."""
    for method, func in (
        ("StartService", start_service),
        ("StopService", stop_service),
        ("PauseService", pause_service),
        ("ResumeService", resume_service),
        ("ChangeStartMode", change_start_mode),
    ):
        store.register_method("Win32_Service", method, func)
    store.register_method("Win32_Process", "Create", create_process)
    store.register_method("Win32_Process", "Terminate", terminate_process)
    store.register_method("Win32_Process", "GetOwner", get_owner)
    store.register_method("__SystemSecurity", "GetSD", get_sd)
    store.register_method("__SystemSecurity", "SetSD", set_sd)
    store.register_method("__SystemSecurity", "GetCallerAccessRights", get_caller_access_rights)

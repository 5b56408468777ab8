"""A SAFE PowerShell-like engine for the mock's PSRP server (MS-PSRP 3.2; MS-WMOD 2.5.2.8, 3.6).

Nothing here ever starts a host process or real PowerShell: request data only selects commands of
an allow-list, implemented in Python over the shared CIM store (MS-WMOD 2.4) and the runspace state.
A command is a generator of steps -- :class:`Out` (an output object), :class:`Rec` (a record for one
of the other streams, MS-PSRP 2.2.2.20 - 2.2.2.26), :class:`Wait` (simulated time), :class:`HostCall`
(a PIPELINE_HOST_CALL, MS-PSRP 2.2.2.27, answered by the client's host response), :class:`ReadInput`
(the pipeline input, MS-PSRP 2.2.2.17/2.2.2.18) and :class:`DebugStop` (a breakpoint hit, MS-PSRDP
3.2.5) -- and :class:`PipelineRun` drives one pipeline with an injectable clock, so a long runner
(``Start-Sleep``) can be stopped at any point (MS-PSRP 3.2.5.3.x stop: PIPELINE_STATE Stopped).

Allow-listed commands: Get-CimInstance -ClassName X [-Filter WQL] [-Namespace N], Get-Service [-Name],
Start-Service / Stop-Service (Win32_Service method providers), Get-ChildItem Env:, Set-Item Env:NAME
-Value V, Write-Output / Write-Error / Write-Warning / Write-Verbose / Write-Debug / Write-Information /
Write-Host / Write-Progress, Start-Sleep -Seconds n, Read-Host [-AsSecureString], ForEach-Object,
Measure-Object, Get-Date, Set-PSBreakpoint -Line n, Get-PSBreakpoint, Remove-PSBreakpoint and the
variables $env:NAME, $input, $_, $PSVersionTable, $true/$false/$null. Any other name is the
CommandNotFoundException ErrorRecord "The term 'X' is not recognized ..." (observed Windows behaviour).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import pywbem

from harness.cim.errors import CimError
from harness.cim.store import CimStore
from harness.targets.mock.ps_engine_script import (
    Arg,
    ArrayExpr,
    Assign,
    Block,
    CommandCall,
    Expr,
    Interpolated,
    Literal,
    Pipeline,
    Script,
    ScriptSyntaxError,
    Stage,
    Statement,
    SubPipeline,
    Throw,
    Var,
    parse_script,
)
from harness.wire.psrp.clixml import PRIMITIVE_DICTIONARY_TYPE_NAMES, PSObject, ps_enum, ps_list
from harness.wire.psrp.enums import ErrorCategory, HostMethodId, ProgressRecordType
from harness.wire.psrp.messages import (
    Command,
    DebugRecord,
    ErrorRecordMessage,
    InformationRecord,
    Payload,
    ProgressRecord,
    VerboseRecord,
    WarningRecord,
)
from harness.wire.psrp.primitives import Int64, Version
from harness.wire.psrp.records import ErrorRecordInfo

#: Steps a pipeline may take in one poll (a runaway script cannot hang the service).
MAX_STEPS_PER_POLL: Final = 10_000
#: Pipeline input objects kept per pipeline.
MAX_INPUT: Final = 100_000
#: DebuggerResumeAction (System.Management.Automation; MS-PSRDP 2.2.3 argument values).
RESUME_CONTINUE: Final = 0
RESUME_STEP_INTO: Final = 1
RESUME_STEP_OUT: Final = 2
RESUME_STEP_OVER: Final = 3
RESUME_STOP: Final = 4
#: DebugModes.RemoteScript (System.Management.Automation; MS-PSRDP 2.2.2 Set-PSDebugMode argument): only then
#: do breakpoints stop a remote script.
DEBUG_MODE_REMOTE_SCRIPT: Final = 4

NOT_RECOGNIZED: Final = ("The term '{}' is not recognized as the name of a cmdlet, function, script file, or "
                         "operable program. Check the spelling of the name, or if a path was included, verify "
                         "that the path is correct and try again.")


# ---------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class Out:
    value: Any


@dataclass(frozen=True)
class Rec:
    payload: Payload


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class HostCall:
    method: HostMethodId
    parameters: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ReadInput:
    """All pipeline input (the program resumes once END_OF_PIPELINE_INPUT arrived)."""


@dataclass(frozen=True)
class DebugStop:
    line: int
    text: str


Step = Out | Rec | Wait | HostCall | ReadInput | DebugStop
Program = Generator[Step, Any, None]


class PsError(Exception):
    """An error that ends the statement (``statement``) or the whole pipeline (``throw``)."""

    def __init__(self, record: ErrorRecordInfo, *, terminating: bool = False) -> None:
        super().__init__(record.message)
        self.record = record
        self.terminating = terminating


def not_recognized(name: str) -> ErrorRecordInfo:
    """CommandNotFoundException (observed Windows behaviour)."""
    return ErrorRecordInfo(NOT_RECOGNIZED.format(name), "CommandNotFoundException", ErrorCategory.ObjectNotFound,
                           "System.Management.Automation.CommandNotFoundException", name,
                           reason="CommandNotFoundException", target_name=name, target_type="String")


def _error(message: str, error_id: str, category: int = ErrorCategory.NotSpecified,
           exception: str = "System.Management.Automation.RuntimeException", target: Any = None) -> ErrorRecordInfo:
    return ErrorRecordInfo(message, error_id, category, exception, target)


# ---------------------------------------------------------------------------------- runspace
@dataclass
class Debugger:
    """Runspace debugger state (MS-PSRDP 2.2.7 Debugger_State)."""

    mode: int = 0
    breakpoints: dict[int, int] = field(default_factory=dict)  # line -> breakpoint id
    next_id: int = 0
    stepping: bool = False
    step_mode: bool = False


@dataclass
class Runspace:
    """The state one RunspacePool's pipelines share: environment, variables, debugger."""

    store: CimStore | None
    machine: str = "WMH-MOCK"
    user: str = "wmh"
    env: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    debugger: Debugger = field(default_factory=Debugger)
    wallclock: Callable[[], float] = time.time
    #: Whether the runspace's user is a member of BUILTIN\\Administrators: a session opened by any
    #: other user (a Remote Management Users member the session configuration admits) runs with that
    #: user's rights, so commands that change the machine (Start-Service / Stop-Service) are refused
    #: (MS-WMOD 2.9.3).
    administrator: bool = True

    def __post_init__(self) -> None:
        for name, value in (("COMPUTERNAME", self.machine), ("USERNAME", self.user),
                            ("USERPROFILE", f"C:\\Users\\{self.user}"), ("SystemRoot", "C:\\Windows"),
                            ("PSModulePath", "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules")):
            self.env.setdefault(name, value)

    def env_get(self, name: str) -> str | None:
        for key, value in self.env.items():
            if key.lower() == name.lower():
                return value
        return None

    def env_set(self, name: str, value: str | None) -> None:
        """Set (None: remove) a variable; an existing one keeps the case of its name (observed Windows
        behaviour: environment names are case-insensitive)."""
        existing = next((key for key in self.env if key.lower() == name.lower()), None)
        if value is None:
            self.env.pop(existing or name, None)
        else:
            self.env[existing or name] = value


def ps_version_table() -> PSObject:
    """$PSVersionTable of Windows PowerShell 5.1 on Server 2022 (observed Windows behaviour)."""
    entries = [
        ("PSVersion", Version("5.1.20348.1")),
        ("PSEdition", "Desktop"),
        ("PSCompatibleVersions", ps_list([Version(v) for v in ("1.0", "2.0", "3.0", "4.0", "5.0", "5.1.20348.1")],
                                         ["System.Version[]", "System.Array", "System.Object"])),
        ("BuildVersion", Version("10.0.20348.1")),
        ("CLRVersion", Version("4.0.30319.42000")),
        ("WSManStackVersion", Version("3.0")),
        ("PSRemotingProtocolVersion", Version("2.3")),
        ("SerializationVersion", Version("1.1.0.1")),
    ]
    return PSObject(type_names=list(PRIMITIVE_DICTIONARY_TYPE_NAMES), container="DCT", entries=entries)


# ---------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class SecureText:
    """A SecureString inside the runspace (decrypted with the session key, MS-PSRP 2.2.5.1.24); only its
    Length is readable by scripts, and it leaves the server encrypted again."""

    text: str = field(repr=False)


def to_text(value: Any) -> str:
    """How PowerShell turns a value into a string (ToString of an object)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, SecureText):
        return "System.Security.SecureString"
    if isinstance(value, PSObject):
        if value.to_string is not None:
            return value.to_string
        if value.container in ("LST", "IE"):
            return " ".join(to_text(v) for v in value.items)
        return str(value.type_names[0]) if value.type_names else ""
    if isinstance(value, list):
        return " ".join(to_text(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.strftime("%A, %B %d, %Y %I:%M:%S %p").replace(" 0", " ")
    return str(value)


def _member(value: Any, name: str) -> Any:
    if isinstance(value, PSObject):
        for props in (value.extended_properties, value.adapted_properties):
            for key, v in props.items():
                if key.lower() == name.lower():
                    return v
        if value.container == "DCT":
            for key, v in value.entries:
                if isinstance(key, str) and key.lower() == name.lower():
                    return v
        if name.lower() == "count" and value.container in ("LST", "IE"):
            return len(value.items)
        return None
    if isinstance(value, SecureText) and name.lower() == "length":
        return len(value.text)
    if isinstance(value, str) and name.lower() == "length":
        return len(value)
    if isinstance(value, list) and name.lower() in ("count", "length"):
        return len(value)
    return None


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    try:
        text = str(value).strip()
        return float(text) if "." in text else int(text)
    except ValueError:
        raise PsError(_error(f"Cannot convert value \"{to_text(value)}\" to type \"System.Int32\". Error: \"Input "
                             "string was not in a correct format.\"", "InvalidCastFromStringToInteger",
                             ErrorCategory.InvalidArgument)) from None


def ps_number(value: int | float) -> int | float:
    """PowerShell's numeric widening: Int32, else Int64, else Double (MS-PSRP 2.2.5.1.11 - 2.2.5.1.13)."""
    if isinstance(value, float) or -2**31 <= value < 2**31:
        return value
    if -2**63 <= value < 2**63:
        return Int64(value)
    try:
        return float(value)
    except OverflowError:
        raise PsError(_error("The result of the arithmetic operation is too large.", "RuntimeException",
                             ErrorCategory.InvalidOperation, "System.OverflowException")) from None


def cim_value(value: Any) -> Any:
    """A pywbem CIM value as a PSRP value (MS-PSRP 2.2.5.1 primitive types)."""
    if isinstance(value, list):
        return ps_list([cim_value(v) for v in value])
    if isinstance(value, pywbem.CIMDateTime):
        return value.datetime if value.datetime is not None else str(value)
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value) if -2**31 <= value < 2**31 else str(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def cim_object(namespace: str, instance: pywbem.CIMInstance) -> PSObject:
    """A CimInstance as Get-CimInstance returns it (TN CimInstance#namespace/Class, properties adapted)."""
    props = {name: cim_value(p.value) for name, p in instance.properties.items()}
    key = next((str(v) for k, v in props.items() if k.lower() in ("name", "handle", "deviceid") and v), None)
    return PSObject(
        type_names=[f"Microsoft.Management.Infrastructure.CimInstance#{namespace}/{instance.classname}",
                    "Microsoft.Management.Infrastructure.CimInstance", "System.Object"],
        to_string=f"{instance.classname} (Name = \"{key}\")" if key else instance.classname,
        adapted_properties=props)


_SERVICE_STATUS: Final = {"Stopped": 1, "Start Pending": 2, "Stop Pending": 3, "Running": 4,
                          "Continue Pending": 5, "Pause Pending": 6, "Paused": 7}


def service_object(instance: pywbem.CIMInstance) -> PSObject:
    """A ServiceController as Get-Service returns it, from Win32_Service."""
    state = str(instance.properties["State"].value or "Stopped") if "State" in instance.properties else "Stopped"
    name = str(instance.properties["Name"].value)
    display = instance.properties["DisplayName"].value if "DisplayName" in instance.properties else name
    status = ps_enum("System.ServiceProcess.ServiceControllerStatus", _SERVICE_STATUS.get(state, 1), state)
    return PSObject(type_names=["System.ServiceProcess.ServiceController", "System.ComponentModel.Component",
                                "System.MarshalByRefObject", "System.Object"],
                    to_string="System.ServiceProcess.ServiceController",
                    adapted_properties={"Name": name, "DisplayName": display, "Status": status,
                                        "ServiceName": name, "MachineName": "."})


def env_entry(name: str, value: str) -> PSObject:
    """An environment entry as Get-ChildItem Env: returns it (System.Collections.DictionaryEntry)."""
    return PSObject(type_names=["System.Collections.DictionaryEntry", "System.ValueType", "System.Object"],
                    to_string="System.Collections.DictionaryEntry",
                    adapted_properties={"Key": name, "Value": value}, extended_properties={"Name": name})


# ---------------------------------------------------------------------------------- invocation
@dataclass
class Invocation:
    """One running pipeline's view of the runspace: variables in scope, the input source."""

    runspace: Runspace
    scope: dict[str, Any] = field(default_factory=dict)
    script_mode: bool = True

    def lookup(self, var: Var) -> Generator[Step, Any, Any]:
        name = var.name
        value: Any
        if name.startswith("env:"):
            value = self.runspace.env_get(name[4:])
        elif name in self.scope:
            value = self.scope[name]
        elif name == "input":
            got = yield ReadInput()
            value = ps_list(list(got or []))
        elif name == "psversiontable":
            value = ps_version_table()
        elif name in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[name]
        else:
            value = self.runspace.variables.get(name)
        for prop in var.props:
            value = _member(value, prop)
        return value

    def evaluate(self, expr: Expr) -> Generator[Step, Any, Any]:
        if isinstance(expr, Literal):
            return ps_number(expr.value) if isinstance(expr.value, int) and not isinstance(expr.value, bool) \
                else expr.value
        if isinstance(expr, Var):
            return (yield from self.lookup(expr))
        if isinstance(expr, Interpolated):
            parts = []
            for part in expr.parts:
                parts.append(part if isinstance(part, str) else to_text((yield from self.lookup(part))))
            return "".join(parts)
        if isinstance(expr, ArrayExpr):
            values = []
            for item in expr.items:
                values.append((yield from self.evaluate(item)))
            return values
        if isinstance(expr, Block):
            return expr
        if isinstance(expr, SubPipeline):
            sink: list[Any] = []
            yield from _collect(run_pipeline(self, expr.pipeline.stages), sink)
            value = sink[0] if len(sink) == 1 else sink if sink else None
            for prop in expr.props:
                value = [_member(v, prop) for v in value] if isinstance(value, list) else _member(value, prop)
            return value
        left = yield from self.evaluate(expr.left)
        right = yield from self.evaluate(expr.right)
        if expr.op == "+" and isinstance(left, str):
            return left + to_text(right)
        a, b = _number(left), _number(right)
        if expr.op == "+":
            return ps_number(a + b)
        if expr.op == "-":
            return ps_number(a - b)
        if expr.op == "*":
            return ps_number(a * b)
        if b == 0:
            raise PsError(_error("Attempted to divide by zero.", "RuntimeException",
                                 exception="System.DivideByZeroException"))
        result = a / b
        return ps_number(int(result)) if float(result).is_integer() else result


@dataclass
class Bound:
    """Arguments of one command call, bound by name (case-insensitive prefixes) and position."""

    named: dict[str, Any]
    positional: list[Any]

    def get(self, *names: str, position: int | None = None, default: Any = None) -> Any:
        for key, value in self.named.items():
            if any(n.lower().startswith(key.lower()) and len(key) >= 2 for n in names) or \
                    any(key.lower() == n.lower() for n in names):
                return value
        if position is not None and position < len(self.positional):
            return self.positional[position]
        return default

    def switch(self, name: str) -> bool:
        value = self.get(name)
        return value is True or (value is not None and value is not False and to_text(value).lower() != "false")


Cmdlet = Callable[[Invocation, Bound, list[Any] | None], Program]
_CMDLETS: dict[str, Cmdlet] = {}


def _cmdlet(*names: str) -> Callable[[Cmdlet], Cmdlet]:
    def register(fn: Cmdlet) -> Cmdlet:
        for n in names:
            _CMDLETS[n.lower()] = fn
        return fn
    return register


def _cim(inv: Invocation) -> CimStore:
    if inv.runspace.store is None:
        raise PsError(_error("The CIM server is not available.", "HRESULT 0x80338126",
                             ErrorCategory.ConnectionError))
    return inv.runspace.store


@_cmdlet("Get-CimInstance", "gcim")
def _get_cim_instance(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """Get-CimInstance -ClassName X [-Namespace N] [-Filter WQL-where] over the shared store (MS-WMOD 2.4)."""
    store = _cim(inv)
    classname = to_text(args.get("ClassName", position=0))
    namespace = store.normalize_namespace(to_text(args.get("Namespace", default="root/cimv2")).replace("\\", "/"))
    where = args.get("Filter")
    query = f"SELECT * FROM {classname}" + (f" WHERE {to_text(where)}" if where else "")
    try:
        instances = store.exec_query(namespace, query)
    except CimError as exc:
        raise PsError(_error(exc.description or exc.status.name, f"HRESULT 0x8004100{int(exc.status) % 10},"
                             "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
                             ErrorCategory.InvalidType if exc.status.name == "INVALID_CLASS"
                             else ErrorCategory.InvalidArgument,
                             "Microsoft.Management.Infrastructure.CimException", classname)) from None
    for instance in instances:
        yield Out(cim_object(namespace, instance))


def _services(inv: Invocation, names: Any) -> list[pywbem.CIMInstance]:
    store = _cim(inv)
    every = store.enumerate_instances("root/cimv2", "Win32_Service")
    if names is None:
        return every
    wanted = [to_text(n) for n in (names if isinstance(names, list) else [names])]
    out = []
    for name in wanted:
        found = [s for s in every if str(s.properties["Name"].value).lower() == name.lower()]
        if not found:
            raise PsError(_error(f"Cannot find any service with service name '{name}'.",
                                 "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                                 ErrorCategory.ObjectNotFound,
                                 "Microsoft.PowerShell.Commands.ServiceCommandException", name))
        out.extend(found)
    return out


@_cmdlet("Get-Service", "gsv")
def _get_service(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    for svc in _services(inv, args.get("Name", position=0)):
        yield Out(service_object(svc))


def _service_access_denied(svc: pywbem.CIMInstance, method: str, verb: str) -> ErrorRecordInfo:
    """The non-terminating error of Start-Service / Stop-Service run by a user the service control
    manager refuses (OpenService fails with ERROR_ACCESS_DENIED for a non-administrator; observed
    Windows behaviour, Windows PowerShell 5.1): "Service 'Display (Name)' cannot be stopped due to the
    following error: Cannot open Name service on computer '.'.", category OpenError (Start-Service)
    or CloseError (Stop-Service), FullyQualifiedErrorId CouldNotStartService / CouldNotStopService
    with the cmdlet's class, exception ServiceCommandException, target the ServiceController."""
    name = str(svc.properties["Name"].value)
    display = svc.properties["DisplayName"].value if "DisplayName" in svc.properties else None
    verb_class = "Start" if method == "StartService" else "Stop"
    category = ErrorCategory.OpenError if method == "StartService" else ErrorCategory.CloseError
    return _error(f"Service '{display or name} ({name})' cannot be {verb} due to the following error: "
                  f"Cannot open {name} service on computer '.'.",
                  f"CouldNot{verb_class}Service,Microsoft.PowerShell.Commands.{verb_class}ServiceCommand",
                  category, "Microsoft.PowerShell.Commands.ServiceCommandException", service_object(svc))


def _control_service(method: str, verb: str) -> Cmdlet:
    def run(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
        """Start-Service / Stop-Service through the Win32_Service method providers (MS-WMOD 2.4)."""
        store = _cim(inv)
        names = args.get("Name", position=0)
        if names is None and piped:
            names = [_member(p, "Name") if isinstance(p, PSObject) else p for p in piped]
        for svc in _services(inv, names):
            if not inv.runspace.administrator:
                yield Rec(ErrorRecordMessage(_service_access_denied(svc, method, verb).to_object()))
                continue
            path = store.path_of("root/cimv2", svc)
            code, _ = store.invoke_method("root/cimv2", path, method, {})
            if int(code) not in (0, 10 if method == "StartService" else 5):
                name = str(svc.properties["Name"].value)
                raise PsError(_error(f"Service '{name} ({name})' cannot be {verb} due to the following error: "
                                     f"Cannot {verb[:-2] if verb.endswith('ed') else verb} {name} service on "
                                     "computer '.'.", f"CouldNot{method}",
                                     ErrorCategory.OpenError,
                                     "Microsoft.PowerShell.Commands.ServiceCommandException", name))
            if args.switch("PassThru"):
                yield Out(service_object(store.get_instance("root/cimv2", path)))
    return run


_CMDLETS["start-service"] = _control_service("StartService", "started")
_CMDLETS["stop-service"] = _control_service("StopService", "stopped")


@_cmdlet("Get-ChildItem", "gci", "dir", "ls")
def _get_child_item(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    path = to_text(args.get("Path", "LiteralPath", position=0, default=""))
    if not path.lower().startswith("env:"):
        raise PsError(_error(f"Cannot find path '{path}' because it does not exist.",
                             "PathNotFound,Microsoft.PowerShell.Commands.GetChildItemCommand",
                             ErrorCategory.ObjectNotFound, "System.Management.Automation.ItemNotFoundException",
                             path))
    name = path[4:].lstrip("\\/")
    for key in sorted(inv.runspace.env, key=str.lower):
        if not name or key.lower() == name.lower():
            yield Out(env_entry(key, inv.runspace.env[key]))


@_cmdlet("Set-Item", "si")
def _set_item(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    path = to_text(args.get("Path", "LiteralPath", position=0, default=""))
    if not path.lower().startswith("env:") or len(path) <= 4:
        raise PsError(_error(f"Cannot find drive. A drive with the name '{path.partition(':')[0]}' does not "
                             "exist.", "DriveNotFound,Microsoft.PowerShell.Commands.SetItemCommand",
                             ErrorCategory.ObjectNotFound, "System.Management.Automation.DriveNotFoundException",
                             path))
    inv.runspace.env_set(path[4:].lstrip("\\/"), to_text(args.get("Value", position=1)))
    return
    yield  # pragma: no cover - a generator


@_cmdlet("Write-Output", "echo", "write")
def _write_output(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    values = args.get("InputObject", position=0)
    if values is None and piped is not None:
        for v in piped:
            yield Out(v)
        return
    for v in values if isinstance(values, list) else [values]:
        yield Out(v)


@_cmdlet("Write-Error")
def _write_error(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    message = to_text(args.get("Message", position=0))
    record = ErrorRecordInfo(message, to_text(args.get("ErrorId", default="Microsoft.PowerShell.Commands."
                                                                             "WriteErrorException")),
                             ErrorCategory.NotSpecified, "Microsoft.PowerShell.Commands.WriteErrorException")
    yield Rec(ErrorRecordMessage(record.to_object()))


def _preference(inv: Invocation, args: Bound, switch: str, variable: str) -> bool:
    if args.get(switch) is not None:
        return args.switch(switch)
    pref = inv.runspace.variables.get(variable.lower())
    return to_text(pref).lower() in ("continue", "inquire", "stop")


@_cmdlet("Write-Warning")
def _write_warning(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    yield Rec(WarningRecord(message=to_text(args.get("Message", position=0))))


@_cmdlet("Write-Verbose")
def _write_verbose(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """Only with -Verbose or $VerbosePreference Continue (PowerShell preference semantics)."""
    if _preference(inv, args, "Verbose", "VerbosePreference"):
        yield Rec(VerboseRecord(message=to_text(args.get("Message", position=0))))


@_cmdlet("Write-Debug")
def _write_debug(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """Only with -Debug or $DebugPreference Continue (PowerShell preference semantics)."""
    if _preference(inv, args, "Debug", "DebugPreference"):
        yield Rec(DebugRecord(message=to_text(args.get("Message", position=0))))


def _information(inv: Invocation, data: Any, source: str, tags: list[str]) -> InformationRecord:
    return InformationRecord(message_data=data, source=source,
                             time_generated=dt.datetime.fromtimestamp(inv.runspace.wallclock(), dt.UTC),
                             tags=tags, user=f"{inv.runspace.machine}\\{inv.runspace.user}",
                             computer=inv.runspace.machine, process_id=4242)


@_cmdlet("Write-Information")
def _write_information(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """MS-PSRP 2.2.2.26: the record reaches the information stream whatever $InformationPreference."""
    tags = args.get("Tags")
    tag_list = [to_text(t) for t in (tags if isinstance(tags, list) else [tags] if tags is not None else [])]
    yield Rec(_information(inv, args.get("MessageData", position=0), "Write-Information", tag_list))


@_cmdlet("Write-Host")
def _write_host(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """PowerShell 5: Write-Host writes an information record tagged PSHOST."""
    value = args.get("Object", position=0)
    text = to_text(value)
    yield Rec(_information(inv, text, "Write-Host", ["PSHOST"]))


@_cmdlet("Write-Progress")
def _write_progress(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    yield Rec(ProgressRecord(
        activity=to_text(args.get("Activity", position=0)),
        activity_id=int(_number(args.get("Id", default=0))),
        status_description=to_text(args.get("Status", position=1, default="Processing")),
        current_operation=None if args.get("CurrentOperation") is None else to_text(args.get("CurrentOperation")),
        percent_complete=int(_number(args.get("PercentComplete", default=-1))),
        record_type=ProgressRecordType.Completed if args.switch("Completed") else ProgressRecordType.Processing,
        seconds_remaining=int(_number(args.get("SecondsRemaining", default=-1)))))


@_cmdlet("Start-Sleep", "sleep")
def _start_sleep(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    ms = args.get("Milliseconds")
    seconds = _number(ms) / 1000 if ms is not None else _number(args.get("Seconds", position=0, default=0))
    yield Wait(max(0.0, float(seconds)))


@_cmdlet("Read-Host")
def _read_host(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """A PIPELINE_HOST_CALL (MS-PSRP 2.2.2.27, method ids 2.2.3.17): ReadLine, or ReadLineAsSecureString with
    -AsSecureString; a -Prompt is first written as ``"<prompt>: "`` with the void Write2 call (mock
    simplification of PowerShell's prompt). The answer is the PIPELINE_HOST_RESPONSE's result."""
    prompt = args.get("Prompt", position=0)
    if prompt is not None:
        yield HostCall(HostMethodId.Write2, (f"{to_text(prompt)}: ",))
    method = HostMethodId.ReadLineAsSecureString if args.switch("AsSecureString") else HostMethodId.ReadLine
    answer = yield HostCall(method)
    yield Out(answer)


def _script_block(value: Any) -> Block:
    if not isinstance(value, Block):
        raise PsError(_error("Cannot bind parameter 'Process'. Cannot convert the value to type "
                             "\"System.Management.Automation.ScriptBlock\".", "CannotConvertArgument",
                             ErrorCategory.InvalidArgument))
    return value


@_cmdlet("ForEach-Object", "foreach", "%")
def _foreach_object(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    block = args.get("Process", position=0)
    member = None if isinstance(block, Block) else block
    for item in piped or []:
        if member is not None:
            yield Out(_member(item, to_text(member)))
            continue
        child = Invocation(inv.runspace, {**inv.scope, "_": item, "psitem": item}, True)
        yield from run_statements(child, _script_block(block).statements, breakpoints=False)


@_cmdlet("Measure-Object", "measure")
def _measure_object(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    items = list(piped or [])
    prop = args.get("Property", position=0)
    values = [_member(i, to_text(prop)) if prop is not None else i for i in items]
    props: dict[str, Any] = {"Count": len(items), "Average": None, "Sum": None, "Maximum": None, "Minimum": None,
                             "Property": None if prop is None else to_text(prop)}
    numbers = [_number(v) for v in values] if any(args.switch(s) for s in ("Sum", "Average", "Maximum",
                                                                              "Minimum")) else []
    if args.switch("Sum"):
        props["Sum"] = float(sum(numbers))
    if args.switch("Average"):
        props["Average"] = float(sum(numbers) / len(numbers)) if numbers else None
    if args.switch("Maximum"):
        props["Maximum"] = float(max(numbers)) if numbers else None
    if args.switch("Minimum"):
        props["Minimum"] = float(min(numbers)) if numbers else None
    yield Out(PSObject(type_names=["Microsoft.PowerShell.Commands.GenericMeasureInfo",
                                   "Microsoft.PowerShell.Commands.MeasureInfo", "System.Object"],
                       to_string="Microsoft.PowerShell.Commands.GenericMeasureInfo", adapted_properties=props))


@_cmdlet("Get-Date", "date")
def _get_date(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    now = dt.datetime.fromtimestamp(inv.runspace.wallclock(), dt.UTC)
    fmt = args.get("Format")
    yield Out(now.strftime(_dotnet_format(to_text(fmt))) if fmt is not None else now)


def _dotnet_format(fmt: str) -> str:
    for dotnet, py in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")):
        fmt = fmt.replace(dotnet, py)
    return fmt


@_cmdlet("Set-PSBreakpoint", "sbp")
def _set_breakpoint(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """A line breakpoint for the scripts of this runspace (MS-PSRDP 1.3)."""
    lines = args.get("Line", position=1)
    debugger = inv.runspace.debugger
    for line in lines if isinstance(lines, list) else [lines]:
        number = int(_number(line))
        debugger.breakpoints[number] = debugger.next_id
        yield Out(_breakpoint_object(debugger.next_id, number))
        debugger.next_id += 1


def _breakpoint_object(bp_id: int, line: int) -> PSObject:
    return PSObject(type_names=["System.Management.Automation.LineBreakpoint",
                                "System.Management.Automation.Breakpoint", "System.Object"],
                    to_string=f"line {line}", adapted_properties={"Id": bp_id, "Line": line, "Enabled": True,
                                                                   "HitCount": 0})


@_cmdlet("Get-PSBreakpoint", "gbp")
def _get_breakpoint(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    for line, bp_id in sorted(inv.runspace.debugger.breakpoints.items()):
        yield Out(_breakpoint_object(bp_id, line))


@_cmdlet("Remove-PSBreakpoint", "rbp")
def _remove_breakpoint(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    wanted = args.get("Id", position=0)
    ids = {int(_number(i)) for i in (wanted if isinstance(wanted, list) else [wanted])} if wanted is not None \
        else set(inv.runspace.debugger.breakpoints.values())
    debugger = inv.runspace.debugger
    debugger.breakpoints = {line: i for line, i in debugger.breakpoints.items() if i not in ids}
    return
    yield  # pragma: no cover - a generator


@_cmdlet("Invoke-Expression", "iex")
def _invoke_expression(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """The text runs in THIS engine (parsed by the same subset parser), never in a real PowerShell."""
    text = args.get("Command", position=0)
    texts = [to_text(text)] if text is not None else [to_text(p) for p in piped or []]
    for one in texts:
        child = Invocation(inv.runspace, dict(inv.scope), True)
        yield from run_statements(child, _parsed(one).statements)


def format_value(value: Any) -> str:
    """Text of an output object as Out-String renders it (a list view for objects with properties)."""
    if isinstance(value, PSObject) and value.adapted_properties and value.container is None:
        width = max(len(k) for k in value.adapted_properties)
        return "\r\n".join(f"{k.ljust(width)} : {to_text(v)}" for k, v in value.adapted_properties.items())
    return to_text(value)


@_cmdlet("Out-String", "oss")
def _out_string(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """-Stream: one string per line; otherwise one string with every object and a final new line."""
    values = list(piped or [])
    if args.get("InputObject") is not None:
        values.append(args.get("InputObject"))
    if args.switch("Stream"):
        for value in values:
            for line in format_value(value).split("\r\n"):
                yield Out(line)
        return
    yield Out("".join(format_value(v) + "\r\n" for v in values))


@_cmdlet("Out-Null")
def _out_null(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    return
    yield  # pragma: no cover - a generator


@_cmdlet("New-Item", "ni")
def _new_item(inv: Invocation, args: Bound, piped: list[Any] | None) -> Program:
    """New-Item -Path env: -Name N -Value V [-Force] (the environment drive only)."""
    path = to_text(args.get("Path", position=0, default=""))
    name = args.get("Name")
    if path.lower().rstrip("\\/") != "env:" or name is None:
        raise PsError(_error(f"Cannot create the item at '{path}': only the Env: drive is available.",
                             "NotSupported,Microsoft.PowerShell.Commands.NewItemCommand",
                             ErrorCategory.NotImplemented, "System.NotSupportedException", path))
    if inv.runspace.env_get(to_text(name)) is not None and not args.switch("Force"):
        raise PsError(_error(f"The environment variable '{to_text(name)}' already exists.",
                             "ItemExists,Microsoft.PowerShell.Commands.NewItemCommand",
                             ErrorCategory.ResourceExists, "System.IO.IOException", to_text(name)))
    value = to_text(args.get("Value", default=""))
    inv.runspace.env_set(to_text(name), value)
    yield Out(env_entry(to_text(name), value))


# ---------------------------------------------------------------------------------- execution
_TAKES_INPUT: Final = frozenset({"foreach-object", "foreach", "%", "measure-object", "measure", "write-output",
                                 "echo", "write", "start-service", "stop-service", "out-string", "oss", "out-null",
                                 "invoke-expression", "iex"})


def _bind(inv: Invocation, call: CommandCall) -> Generator[Step, Any, Bound]:
    named: dict[str, Any] = {}
    positional: list[Any] = []
    for arg in call.args:
        value = True if arg.value is None else (yield from inv.evaluate(arg.value))
        if arg.name is None:
            positional.append(value)
        else:
            named[arg.name] = value
    return Bound(named, positional)


def _stage(inv: Invocation, stage: Stage, piped: list[Any] | None) -> Program:
    if isinstance(stage, Block):  # a script command (IsScript) inside a pipeline: $input is the piped input
        child = Invocation(inv.runspace, dict(inv.scope), True)
        if piped is not None:
            child.scope["input"] = ps_list(piped)
        yield from run_statements(child, stage.statements)
        return
    if not isinstance(stage, CommandCall):
        if piped is not None:
            raise PsError(_error("Expressions are only allowed as the first element of a pipeline.",
                                 "ExpressionsMustBeFirstInPipeline", ErrorCategory.ParserError,
                                 "System.Management.Automation.ParseException"))
        value = yield from inv.evaluate(stage)
        if isinstance(value, Block):
            value = value.text
        for v in (value.items if isinstance(value, PSObject) and value.container in ("LST", "IE")
                  else value if isinstance(value, list) else [value]):
            yield Out(v)
        return
    fn = _CMDLETS.get(call_name(stage.name))
    if fn is None:
        raise PsError(not_recognized(stage.name))
    args = yield from _bind(inv, stage)
    yield from fn(inv, args, piped)


def call_name(name: str) -> str:
    """Command name as looked up: module-qualified names (``Microsoft.PowerShell.Utility\\Write-Output``)
    resolve to the command itself."""
    return name.rsplit("\\", 1)[-1].lower()


def _collect(program: Program, sink: list[Any]) -> Program:
    """Run ``program`` with its output objects captured in ``sink`` (the left side of a pipe)."""
    try:
        step = next(program)
        while True:
            if isinstance(step, Out):
                sink.append(step.value)
                step = program.send(None)
            else:
                value = yield step
                step = program.send(value)
    except StopIteration:
        return


def run_pipeline(inv: Invocation, stages: Iterable[Stage], first_input: list[Any] | None = None,
                 input_from_client: bool = False) -> Program:
    """One pipeline: each stage's output objects are the next stage's input (collected per stage)."""
    items = list(stages)
    piped = first_input
    for index, stage in enumerate(items):
        if index == 0 and input_from_client and isinstance(stage, CommandCall) \
                and call_name(stage.name) in _TAKES_INPUT:
            got = yield ReadInput()
            piped = list(got or [])
        if index == len(items) - 1:
            yield from _stage(inv, stage, piped)
        else:
            sink: list[Any] = []
            yield from _collect(_stage(inv, stage, piped), sink)
            piped = sink


def run_statements(inv: Invocation, statements: Iterable[Statement], *, breakpoints: bool = True) -> Program:
    """Statements in order; a statement-terminating error is written to the error stream and the script
    goes on (PowerShell semantics); ``throw`` ends the whole pipeline. At a statement whose line has a
    breakpoint (or while stepping) the debugger stops (MS-PSRDP 3.2.5)."""
    debugger = inv.runspace.debugger
    for stmt in statements:
        if breakpoints and debugger.mode & DEBUG_MODE_REMOTE_SCRIPT and (
                stmt.line in debugger.breakpoints or debugger.stepping):
            action = yield DebugStop(stmt.line, stmt.text)
            debugger.stepping = action in (RESUME_STEP_INTO, RESUME_STEP_OVER)
            if action == RESUME_STOP:
                raise PsError(_error("The pipeline has been stopped.", "PipelineStopped",
                                     ErrorCategory.OperationStopped,
                                     "System.Management.Automation.PipelineStoppedException"), terminating=True)
        body = stmt.body
        try:
            if isinstance(body, Throw):
                value = None if body.value is None else (yield from inv.evaluate(body.value))
                text = to_text(value) if value is not None else "ScriptHalted"
                raise PsError(ErrorRecordInfo(text, text, ErrorCategory.OperationStopped,
                                              "System.Management.Automation.RuntimeException", value),
                              terminating=True)
            if isinstance(body, Assign):
                sink: list[Any] = []
                yield from _collect(run_pipeline(inv, body.value.stages), sink)
                value = sink[0] if len(sink) == 1 else ps_list(sink) if sink else None
                name = body.target.name
                if name.startswith("env:"):
                    inv.runspace.env_set(name[4:], None if value is None else to_text(value))
                elif name in ("_", "input", "psversiontable", "true", "false", "null"):
                    raise PsError(_error(f"Cannot overwrite variable {name} because it is read-only or constant.",
                                         "VariableNotWritable", ErrorCategory.WriteError,
                                         "System.Management.Automation.SessionStateUnauthorizedAccessException"))
                else:
                    inv.runspace.variables[name] = value
                continue
            yield from run_pipeline(inv, body.stages)
        except PsError as exc:
            if exc.terminating or not inv.script_mode:
                raise
            yield Rec(ErrorRecordMessage(exc.record.to_object()))


def _parsed(text: str) -> Script:
    try:
        return parse_script(text)
    except ScriptSyntaxError as exc:
        raise PsError(_error(f"At line:1 char:1 {exc.reason}", "ParseException", ErrorCategory.ParserError,
                             "System.Management.Automation.ParseException"), terminating=True) from None


def commands_program(runspace: Runspace, commands: list[Command], *, has_input: bool,
                     statements: list[list[Command]] | None = None) -> Program:
    """The program of a CREATE_PIPELINE (MS-PSRP 2.2.3.11): a script (IsScript) or a pipeline of commands
    with named/positional arguments (MS-PSRP 2.2.3.13); with ExtraCmds, every statement in turn (the input
    goes to the first)."""
    groups = [list(group) for group in statements if group] if statements else [commands]
    for index, group in enumerate(groups):
        yield from _statement_program(runspace, group, has_input=has_input and index == 0)


def _statement_program(runspace: Runspace, commands: list[Command], *, has_input: bool) -> Program:
    if len(commands) == 1 and commands[0].is_script:
        script = _parsed(commands[0].cmd)
        inv = Invocation(runspace, {"args": [a.value for a in commands[0].args]}, True)
        if has_input:
            first = script.statements[0] if script.statements else None
            if (first is not None and isinstance(first.body, Pipeline) and first.body.stages
                    and isinstance(first.body.stages[0], CommandCall)
                    and call_name(first.body.stages[0].name) in _TAKES_INPUT):
                got = yield ReadInput()
                inv.scope["input"] = ps_list(list(got or []))
        yield from run_statements(inv, script.statements)
        return
    inv = Invocation(runspace, {}, script_mode=False)
    stages: list[Stage] = []
    for command in commands:
        if command.is_script:
            stages.append(Block(tuple(_parsed(command.cmd).statements), command.cmd))
            continue
        stages.append(CommandCall(command.cmd, tuple(
            # a named parameter without a value is a switch (PowerShell.AddParameter(name))
            Arg(p.name, None if p.name is not None and (p.value is None or p.value is True) else Literal(p.value))
            for p in command.args)))
    yield from run_pipeline(inv, stages, input_from_client=has_input)


# ---------------------------------------------------------------------------------- driver
RUNNING: Final = "Running"
COMPLETED: Final = "Completed"
FAILED: Final = "Failed"
STOPPED: Final = "Stopped"


class PipelineRun:
    """One pipeline driven by :meth:`poll` with the service clock (compare cmd_engine.SimulatedProcess).

    Produced :class:`Out` / :class:`Rec` steps queue in :attr:`produced`; a :class:`HostCall` waiting for
    its answer is :attr:`host_call`; a breakpoint stop is :attr:`debug_stop`. ``state`` ends as
    Completed, Failed (with :attr:`error`) or Stopped.
    """

    def __init__(self, program: Program, now: float, *, has_input: bool) -> None:
        self._program = program
        self.state = RUNNING
        self.error: ErrorRecordInfo | None = None
        self.produced: list[Out | Rec | HostCall] = []
        self.host_call: HostCall | None = None
        self.debug_stop: DebugStop | None = None
        self.input: list[Any] = []
        self.input_ended = not has_input
        self._wake_at: float | None = None
        self._waiting_input = False
        self._send: Any = None
        self._throw: PsError | None = None
        self._ready = True
        self._started = False
        self.poll(now)

    @property
    def done(self) -> bool:
        return self.state != RUNNING

    def next_wake(self) -> float | None:
        return None if self.done else self._wake_at

    def add_input(self, value: Any, now: float) -> None:
        if len(self.input) < MAX_INPUT:
            self.input.append(value)
        self.poll(now)

    def end_input(self, now: float) -> None:
        self.input_ended = True
        self.poll(now)

    def answer(self, value: Any, now: float) -> None:
        """The client's host response to the pending host call."""
        if self.host_call is not None:
            self.host_call = None
            self._send, self._ready = value, True
        self.poll(now)

    def fail_call(self, record: ErrorRecordInfo, now: float) -> None:
        """The client answered the pending host call with an error (MS-PSRP 2.2.2.28 ``me``): the command
        that called the host fails with it (a statement-terminating error)."""
        if self.host_call is not None:
            self.host_call = None
            self._throw, self._ready = PsError(record), True
        self.poll(now)

    def resume(self, action: int, now: float) -> None:
        """The debugger's resume action (MS-PSRDP 2.2.3) for the pending stop."""
        if self.debug_stop is not None:
            self.debug_stop = None
            self._send, self._ready = action, True
        self.poll(now)

    def stop(self) -> None:
        """MS-PSRP 3.2.5.3.x: the pipeline is stopped at once; state Stopped."""
        if self.done:
            return
        self._program.close()
        self.state = STOPPED
        self.error = _error("The pipeline has been stopped.", "PipelineStopped", ErrorCategory.OperationStopped,
                            "System.Management.Automation.PipelineStoppedException")

    def poll(self, now: float) -> None:
        at = now
        for _ in range(MAX_STEPS_PER_POLL):
            if self.done:
                return
            if self._wake_at is not None:
                if now < self._wake_at:
                    return
                at, self._wake_at = self._wake_at, None
                self._send, self._ready = None, True
            if self._waiting_input:
                if not self.input_ended:
                    return
                self._waiting_input = False
                self._send, self._ready, self.input = list(self.input), True, []
            if not self._ready:
                return
            send, self._send, self._ready = self._send, None, False
            throw, self._throw = self._throw, None
            try:
                if throw is not None:
                    step = self._program.throw(throw)
                else:
                    step = self._program.send(send) if self._started else next(self._program)
                self._started = True
            except StopIteration:
                self.state = COMPLETED
                return
            except PsError as exc:
                self.state, self.error = FAILED, exc.record
                return
            if isinstance(step, Out | Rec):
                self.produced.append(step)
                self._ready = True
            elif isinstance(step, Wait):
                self._wake_at = at + step.seconds
            elif isinstance(step, ReadInput):
                self._waiting_input = True
            elif isinstance(step, HostCall):
                if step.method in _VOID_HOST_METHODS:
                    self.produced.append(step)
                    self._ready = True
                else:
                    self.produced.append(step)
                    self.host_call = step
            else:
                self.debug_stop = step

    def take(self) -> list[Out | Rec | HostCall]:
        out, self.produced = self.produced, []
        return out


_VOID_HOST_METHODS: Final = frozenset({HostMethodId.Write1, HostMethodId.Write2, HostMethodId.WriteLine1,
                                       HostMethodId.WriteLine2, HostMethodId.WriteLine3,
                                       HostMethodId.WriteErrorLine, HostMethodId.WriteDebugLine,
                                       HostMethodId.WriteProgress, HostMethodId.WriteVerboseLine,
                                       HostMethodId.WriteWarningLine})
"""Host methods without a return value: no PIPELINE_HOST_RESPONSE is awaited (MS-PSRP 3.2.5.4.x)."""


def start_pipeline(runspace: Runspace, commands: list[Command], now: float, *, has_input: bool,
                   statements: list[list[Command]] | None = None) -> PipelineRun:
    """A running pipeline for a CREATE_PIPELINE's commands (``statements``: its ExtraCmds, if any)."""
    return PipelineRun(commands_program(runspace, commands, has_input=has_input, statements=statements), now,
                       has_input=has_input)


def start_script(runspace: Runspace, script: str, now: float) -> PipelineRun:
    """A running pipeline for a script text (also what ``powershell -EncodedCommand`` runs)."""
    return start_pipeline(runspace, [Command(script, is_script=True)], now, has_input=False)


def is_allowed(name: str) -> bool:
    return call_name(name) in _CMDLETS


__all__ = ["COMPLETED", "FAILED", "RUNNING", "STOPPED", "DebugStop", "Debugger", "HostCall", "Invocation", "Out",
           "PipelineRun", "PsError", "ReadInput", "Rec", "Runspace", "Script", "SecureText", "Wait", "cim_object",
           "commands_program", "format_value", "is_allowed", "not_recognized", "ps_version_table", "run_statements",
           "service_object", "start_pipeline", "start_script", "to_text"]

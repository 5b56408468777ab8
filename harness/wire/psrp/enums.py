"""MS-PSRP 2.2.3 enumerations. Member names are the .NET names, which are also the ``<ToString>`` text."""

from __future__ import annotations

import enum
from typing import Final

from harness.wire.psrp.clixml import PSObject, ps_enum


class RunspacePoolState(enum.IntEnum):
    """MS-PSRP 2.2.3.4."""

    BeforeOpen = 0
    Opening = 1
    Opened = 2
    Closed = 3
    Closing = 4
    Broken = 5
    NegotiationSent = 6
    NegotiationSucceeded = 7
    Connecting = 8
    Disconnected = 9


class PSInvocationState(enum.IntEnum):
    """MS-PSRP 2.2.3.5."""

    NotStarted = 0
    Running = 1
    Stopping = 2
    Stopped = 3
    Completed = 4
    Failed = 5
    Disconnected = 6


class PSThreadOptions(enum.IntEnum):
    """MS-PSRP 2.2.3.6."""

    Default = 0
    UseNewThread = 1
    ReuseThread = 2
    UseCurrentThread = 3


class ApartmentState(enum.IntEnum):
    """MS-PSRP 2.2.3.7 (``System.Threading.ApartmentState``)."""

    STA = 0
    MTA = 1
    Unknown = 2


class RemoteStreamOptions(enum.IntFlag):
    """MS-PSRP 2.2.3.8 (flags)."""

    AddInvocationInfoToErrorRecord = 1
    AddInvocationInfoToWarningRecord = 2
    AddInvocationInfoToDebugRecord = 4
    AddInvocationInfoToVerboseRecord = 8
    AddInvocationInfo = 15


class ErrorCategory(enum.IntEnum):
    """MS-PSRP 2.2.3.9 (``System.Management.Automation.ErrorCategory``), first values."""

    NotSpecified = 0
    OpenError = 1
    CloseError = 2
    DeviceError = 3
    DeadlockDetected = 4
    InvalidArgument = 5
    InvalidData = 6
    InvalidOperation = 7
    InvalidResult = 8
    InvalidType = 9
    MetadataError = 10
    NotImplemented = 11
    NotInstalled = 12
    ObjectNotFound = 13
    OperationStopped = 14
    OperationTimeout = 15
    SyntaxError = 16
    ParserError = 17
    PermissionDenied = 18
    ResourceBusy = 19
    ResourceExists = 20
    ResourceUnavailable = 21
    ReadError = 22
    WriteError = 23
    FromStdErr = 24
    SecurityError = 25
    ProtocolError = 26
    ConnectionError = 27
    AuthenticationError = 28
    LimitsExceeded = 29
    QuotaExceeded = 30
    NotEnabled = 31


class PipelineResultTypes(enum.IntEnum):
    """MS-PSRP 2.2.3.31 (merge targets of a Command)."""

    # "None" cannot be a Python member name: value 0 is written as ToString "None" by dotnet_name().
    Output = 1
    Error = 2
    Warning = 3
    Verbose = 4
    Debug = 5
    Information = 6
    All = 7
    Null = 8


class ProgressRecordType(enum.IntEnum):
    """MS-PSRP 2.2.3.24."""

    Processing = 0
    Completed = 1


class CommandTypes(enum.IntFlag):
    """MS-PSRP 2.2.3.19 (flags)."""

    Alias = 1
    Function = 2
    Filter = 4
    Cmdlet = 8
    ExternalScript = 16
    Application = 32
    Script = 64
    Workflow = 128
    Configuration = 256
    All = 511


class HostMethodId(enum.IntEnum):
    """MS-PSRP 2.2.3.17 RemoteHostMethodId."""

    GetName = 1
    GetVersion = 2
    GetInstanceId = 3
    GetCurrentCulture = 4
    GetCurrentUICulture = 5
    SetShouldExit = 6
    EnterNestedPrompt = 7
    ExitNestedPrompt = 8
    NotifyBeginApplication = 9
    NotifyEndApplication = 10
    ReadLine = 11
    ReadLineAsSecureString = 12
    Write1 = 13
    Write2 = 14
    WriteLine1 = 15
    WriteLine2 = 16
    WriteLine3 = 17
    WriteErrorLine = 18
    WriteDebugLine = 19
    WriteProgress = 20
    WriteVerboseLine = 21
    WriteWarningLine = 22
    Prompt = 23
    PromptForCredential1 = 24
    PromptForCredential2 = 25
    PromptForChoice = 26
    GetForegroundColor = 27
    SetForegroundColor = 28
    GetBackgroundColor = 29
    SetBackgroundColor = 30
    GetCursorPosition = 31
    SetCursorPosition = 32
    GetWindowPosition = 33
    SetWindowPosition = 34
    GetCursorSize = 35
    SetCursorSize = 36
    GetBufferSize = 37
    SetBufferSize = 38
    GetWindowSize = 39
    SetWindowSize = 40
    GetWindowTitle = 41
    SetWindowTitle = 42
    GetMaxWindowSize = 43
    GetMaxPhysicalWindowSize = 44
    GetKeyAvailable = 45
    ReadKey = 46
    FlushInputBuffer = 47
    SetBufferContents1 = 48
    SetBufferContents2 = 49
    GetBufferContents = 50
    ScrollBufferContents = 51
    PushRunspace = 52
    PopRunspace = 53
    GetIsRunspacePushed = 54
    GetRunspace = 55
    PromptForChoiceMultipleSelection = 56


ENUM_TYPE_NAMES: Final[dict[type[enum.Enum], str]] = {
    PSThreadOptions: "System.Management.Automation.Runspaces.PSThreadOptions",
    ApartmentState: "System.Threading.ApartmentState",
    RemoteStreamOptions: "System.Management.Automation.RemoteStreamOptions",
    PipelineResultTypes: "System.Management.Automation.Runspaces.PipelineResultTypes",
    ProgressRecordType: "System.Management.Automation.ProgressRecordType",
    CommandTypes: "System.Management.Automation.CommandTypes",
    HostMethodId: "System.Management.Automation.Remoting.RemoteHostMethodId",
    RunspacePoolState: "System.Management.Automation.Runspaces.RunspacePoolState",
    PSInvocationState: "System.Management.Automation.PSInvocationState",
    ErrorCategory: "System.Management.Automation.ErrorCategory",
}
""".NET type names written in ``<TN>`` (MS-PSRP 2.2.3.x examples)."""


def dotnet_name(enum_type: type[enum.IntEnum] | type[enum.IntFlag], value: int) -> str:
    """``Enum.ToString()``: the member name, ``"None"`` for 0, or the comma-joined flag names of a flags enum
    (MS-PSRP 2.2.2.14 example: CommandTypes 15 is ``"Alias, Function, Filter, Cmdlet"``).

    Only declared members count as names: Python caches combined flag values as pseudo-members named
    ``"Alias|Function|..."``, which is not the .NET text.
    """
    for member in enum_type.__members__.values():
        if int(member) == value and member.name:
            return member.name
    if value == 0:
        return "None"
    if issubclass(enum_type, enum.IntFlag):
        single = [m for m in enum_type if m.value & (m.value - 1) == 0 and value & m.value]
        if sum(m.value for m in single) == value:
            return ", ".join(str(m.name) for m in single)
    return str(value)


def enum_object(enum_type: type[enum.IntEnum] | type[enum.IntFlag], value: int) -> PSObject:
    """The ``<Obj>`` of an enum value: TN (.NET type, System.Enum, System.ValueType, System.Object), ToString, I32."""
    return ps_enum(ENUM_TYPE_NAMES[enum_type], int(value), dotnet_name(enum_type, int(value)))

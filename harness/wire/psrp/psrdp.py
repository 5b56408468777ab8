"""MS-PSRDP (PowerShell Remote Debugging Protocol) carried over MS-PSRP.

MS-PSRDP defines no new PSRP message types; it reuses three PSRP mechanisms (MS-PSRDP 2.1):

* client -> server (MS-PSRDP 2.2.2 - 2.2.6): a CREATE_PIPELINE (MS-PSRP 2.2.2.10) whose single command
  (MS-PSRP 2.2.3.12) is ``Set-PSDebugMode``, ``Set-PSDebuggerAction``, ``Get-PSDebuggerStopArgs``,
  ``Set-PSDebuggerStepMode`` or ``Set-PSUnhandledBreakpointMode`` with one 32-bit argument (none for
  ``Get-PSDebuggerStopArgs``);
* REMOTE_DEBUGGER_STATE (MS-PSRDP 2.2.7): entries of the APPLICATION_PRIVATE_DATA dictionary (MS-PSRP 2.2.2.13);
  their presence tells the client that the server supports remote debugging (MS-PSRDP 1.7);
* REMOTE_DEBUGGER_BREAKPOINT_UPDATED_EVENT / REMOTE_DEBUGGER_STOP_EVENT (MS-PSRDP 2.2.8, 2.2.9): USER_EVENT
  messages (MS-PSRP 2.2.2.12) with the source identifiers below.

Names the spec leaves to "a higher layer" follow the PowerShell implementation (observed Windows behaviour): the
command parameter names (``Mode``, ``ResumeAction``, ``Enabled``, ``UnhandledBreakpointMode``), the private data
keys (``DebugMode``, ``DebugStop``, ``DebugBreakpointCount``, ``BreakAll``, ``UnhandledBreakpointMode``) and
``Set-PSDebuggerStepMode`` taking a Boolean ``Enabled`` although MS-PSRDP 2.2.5 says "32 bit argument".
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any, Final

from harness.wire.psrp.clixml import PRIMITIVE_DICTIONARY_TYPE_NAMES, PSObject, ps_list
from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.messages import (
    ApplicationPrivateData,
    Command,
    CommandParameter,
    CreatePipeline,
    PowerShell,
    UserEvent,
)

STOP_EVENT_SOURCE: Final = "PSInternalRemoteDebuggerStopEvent"
"""MS-PSRDP 2.2.9: USER_EVENT source identifier of REMOTE_DEBUGGER_STOP_EVENT."""
BREAKPOINT_UPDATED_EVENT_SOURCE: Final = "PSInternalRemoteDebuggerBreakpointUpdatedEvent"
"""MS-PSRDP 2.2.8: USER_EVENT source identifier of REMOTE_DEBUGGER_BREAKPOINT_UPDATED_EVENT."""


class DebuggerCommand(enum.Enum):
    """The client messages of MS-PSRDP 2.2.2 - 2.2.6 and their pipeline command names."""

    SET_PSDEBUGMODE = "Set-PSDebugMode"
    SET_PSDEBUGGERACTION = "Set-PSDebuggerAction"
    GET_PSDEBUGGERSTOPARGS = "Get-PSDebuggerStopArgs"
    SET_PSDEBUGGERSTEPMODE = "Set-PSDebuggerStepMode"
    SET_PSUNHANDLEDBREAKPOINTMODE = "Set-PSUnhandledBreakpointMode"


PARAMETER_NAMES: Final[dict[DebuggerCommand, str | None]] = {
    DebuggerCommand.SET_PSDEBUGMODE: "Mode",
    DebuggerCommand.SET_PSDEBUGGERACTION: "ResumeAction",
    DebuggerCommand.GET_PSDEBUGGERSTOPARGS: None,
    DebuggerCommand.SET_PSDEBUGGERSTEPMODE: "Enabled",
    DebuggerCommand.SET_PSUNHANDLEDBREAKPOINTMODE: "UnhandledBreakpointMode",
}
"""Parameter name of each command (PowerShell implementation; the spec only says "a single argument")."""

_BY_NAME: Final = {command.value.lower(): command for command in DebuggerCommand}


@dataclass(frozen=True)
class DebuggerRequest:
    """One decoded MS-PSRDP client message."""

    command: DebuggerCommand
    argument: int | bool | None = None


def build_debugger_request(request: DebuggerRequest, *, is_nested: bool = False) -> CreatePipeline:
    """The CREATE_PIPELINE carrying ``request`` (MS-PSRDP 2.1.1)."""
    parameter = PARAMETER_NAMES[request.command]
    if parameter is None and request.argument is not None:
        raise PsrpEncodeError(f"{request.command.value} takes no argument")
    if parameter is not None and request.argument is None:
        raise PsrpEncodeError(f"{request.command.value} needs its {parameter} argument")
    args = [] if parameter is None else [CommandParameter(parameter, request.argument)]
    return CreatePipeline(
        PowerShell([Command(request.command.value, args=args)], is_nested=is_nested), is_nested=is_nested
    )


def parse_debugger_request(request: CreatePipeline) -> DebuggerRequest | None:
    """The MS-PSRDP message in a CREATE_PIPELINE, ``None`` for an ordinary pipeline.

    Raises :class:`PsrpDecodeError` when the command is a PSRDP command with a wrong argument list.
    """
    commands = request.power_shell.commands
    if len(commands) != 1 or request.power_shell.extra_cmds:
        return None
    command = _BY_NAME.get(commands[0].cmd.lower())
    if command is None or commands[0].is_script:
        return None
    args = commands[0].args
    parameter = PARAMETER_NAMES[command]
    if parameter is None:
        if args:
            raise PsrpDecodeError(f"{command.value} takes no argument (MS-PSRDP 2.2.4)")
        return DebuggerRequest(command)
    if len(args) != 1 or (args[0].name is not None and args[0].name.lower() != parameter.lower()):
        raise PsrpDecodeError(f"{command.value} takes exactly one {parameter} argument")
    value = args[0].value
    if command is DebuggerCommand.SET_PSDEBUGGERSTEPMODE and type(value) is bool:
        return DebuggerRequest(command, value)
    if isinstance(value, PSObject) and type(value.value) is int:  # an enum object
        value = value.value
    if type(value) is not int:
        raise PsrpDecodeError(f"{command.value} argument must be a 32-bit integer, got {type(value).__name__}")
    return DebuggerRequest(command, value)


@dataclass(frozen=True)
class DebuggerState:
    """Debugger_State (MS-PSRDP 2.2.7) as PowerShell puts it in APPLICATION_PRIVATE_DATA."""

    debug_mode: int
    in_breakpoint: bool = False
    breakpoint_count: int = 0
    break_all: bool = False
    unhandled_breakpoint_mode: int = 0


_STATE_KEYS: Final = (
    ("debug_mode", "DebugMode", int),
    ("in_breakpoint", "DebugStop", bool),
    ("breakpoint_count", "DebugBreakpointCount", int),
    ("break_all", "BreakAll", bool),
    ("unhandled_breakpoint_mode", "UnhandledBreakpointMode", int),
)


def private_data_with_debugger_state(
    state: DebuggerState, other: dict[str, Any] | None = None
) -> ApplicationPrivateData:
    """REMOTE_DEBUGGER_STATE: an APPLICATION_PRIVATE_DATA whose dictionary holds the debugger state entries
    (MS-PSRDP 2.2.7) after ``other`` entries (e.g. ``PSVersionTable``)."""
    entries: list[tuple[Any, Any]] = list((other or {}).items())
    entries += [(key, getattr(state, attr)) for attr, key, _ in _STATE_KEYS]
    return ApplicationPrivateData(
        PSObject(type_names=list(PRIMITIVE_DICTIONARY_TYPE_NAMES), container="DCT", entries=entries)
    )


def debugger_state_from_private_data(payload: ApplicationPrivateData) -> DebuggerState | None:
    """The Debugger_State in APPLICATION_PRIVATE_DATA, or ``None`` when the server does not support remote
    debugging (no ``DebugMode`` entry, MS-PSRDP 1.7). Raises :class:`PsrpDecodeError` on mistyped entries."""
    data = payload.data
    if not isinstance(data, PSObject) or data.container != "DCT":
        return None
    entries = {key: value for key, value in data.entries if isinstance(key, str)}
    if "DebugMode" not in entries:
        return None
    values: dict[str, Any] = {}
    for attr, key, kind in _STATE_KEYS:
        if key not in entries:
            continue
        value = entries[key]
        if type(value) is not kind:
            raise PsrpDecodeError(f"Debugger_State {key} must be {kind.__name__}, got {type(value).__name__}")
        values[attr] = value
    return DebuggerState(**values)


def _event(
    source: str,
    payload: Any,
    event_identifier: int,
    runspace_id: uuid.UUID,
    computer_name: str | None,
    time_generated: dt.datetime | None,
) -> UserEvent:
    return UserEvent(
        event_identifier=event_identifier,
        source_identifier=source,
        time_generated=time_generated or dt.datetime.now(dt.UTC),
        sender=None,
        source_args=ps_list([payload]),
        message_data=None,
        computer_name=computer_name,
        runspace_id=runspace_id,
    )


def debugger_stop_event(
    stop_context: Any,
    *,
    event_identifier: int,
    runspace_id: uuid.UUID,
    computer_name: str | None = None,
    time_generated: dt.datetime | None = None,
) -> UserEvent:
    """REMOTE_DEBUGGER_STOP_EVENT (MS-PSRDP 2.2.9): the Debugger_Stop_Context is the single SourceArgs item."""
    return _event(STOP_EVENT_SOURCE, stop_context, event_identifier, runspace_id, computer_name, time_generated)


def breakpoint_updated_event(
    breakpoint_info: Any,
    *,
    event_identifier: int,
    runspace_id: uuid.UUID,
    computer_name: str | None = None,
    time_generated: dt.datetime | None = None,
) -> UserEvent:
    """REMOTE_DEBUGGER_BREAKPOINT_UPDATED_EVENT (MS-PSRDP 2.2.8)."""
    return _event(
        BREAKPOINT_UPDATED_EVENT_SOURCE, breakpoint_info, event_identifier, runspace_id, computer_name, time_generated
    )


class DebuggerEventKind(enum.Enum):
    STOP = STOP_EVENT_SOURCE
    BREAKPOINT_UPDATED = BREAKPOINT_UPDATED_EVENT_SOURCE


def classify_user_event(event: UserEvent) -> tuple[DebuggerEventKind, Any] | None:
    """``(kind, payload)`` for an MS-PSRDP event (payload: the first SourceArgs item), ``None`` otherwise."""
    try:
        kind = DebuggerEventKind(event.source_identifier)
    except ValueError:
        return None
    args = event.source_args
    if not isinstance(args, PSObject) or args.container not in ("LST", "IE") or len(args.items) != 1:
        raise PsrpDecodeError(f"{kind.value} must carry exactly one SourceArgs item")
    return kind, args.items[0]

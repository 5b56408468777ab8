"""MS-PSRDP over MS-PSRP: client debugger commands as pipelines, debugger state in private data, debugger events."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from harness.wire.psrp.clixml import PSObject, ps_dict
from harness.wire.psrp.enums import ApartmentState
from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.messages import (
    ApplicationPrivateData,
    Command,
    CommandParameter,
    CreatePipeline,
    Destination,
    MessageType,
    PowerShell,
    UserEvent,
    build_message,
    unpack_message,
)
from harness.wire.psrp.psrdp import (
    BREAKPOINT_UPDATED_EVENT_SOURCE,
    STOP_EVENT_SOURCE,
    DebuggerCommand,
    DebuggerEventKind,
    DebuggerRequest,
    DebuggerState,
    breakpoint_updated_event,
    build_debugger_request,
    classify_user_event,
    debugger_state_from_private_data,
    debugger_stop_event,
    parse_debugger_request,
    private_data_with_debugger_state,
)

RPID = uuid.UUID(int=1)


def test_source_identifiers() -> None:
    assert STOP_EVENT_SOURCE == "PSInternalRemoteDebuggerStopEvent"
    assert BREAKPOINT_UPDATED_EVENT_SOURCE == "PSInternalRemoteDebuggerBreakpointUpdatedEvent"


@pytest.mark.parametrize(
    "request_",
    [
        DebuggerRequest(DebuggerCommand.SET_PSDEBUGMODE, 6),
        DebuggerRequest(DebuggerCommand.SET_PSDEBUGGERACTION, 1),
        DebuggerRequest(DebuggerCommand.GET_PSDEBUGGERSTOPARGS),
        DebuggerRequest(DebuggerCommand.SET_PSDEBUGGERSTEPMODE, True),
        DebuggerRequest(DebuggerCommand.SET_PSUNHANDLEDBREAKPOINTMODE, 1),
    ],
    ids=lambda r: r.command.value,
)
def test_debugger_requests_travel_as_create_pipeline(request_: DebuggerRequest) -> None:
    pipeline = build_debugger_request(request_)
    data = build_message(Destination.SERVER, pipeline, RPID, uuid.UUID(int=2))
    message = unpack_message(data)
    assert message.message_type is MessageType.CREATE_PIPELINE
    decoded = message.payload()
    assert isinstance(decoded, CreatePipeline)
    assert decoded.power_shell.commands[0].cmd == request_.command.value
    assert parse_debugger_request(decoded) == request_


def test_ordinary_pipelines_are_not_debugger_requests() -> None:
    assert parse_debugger_request(CreatePipeline(PowerShell([Command("Get-Process")]))) is None
    assert parse_debugger_request(CreatePipeline(PowerShell([Command("Set-PSDebugMode", is_script=True)]))) is None
    two = PowerShell([Command("Set-PSDebugMode"), Command("Out-Null")])
    assert parse_debugger_request(CreatePipeline(two)) is None


def test_case_insensitive_names_and_enum_arguments() -> None:
    enum_arg = PSObject(type_names=["System.Management.Automation.DebugModes"], to_string="RemoteScript", value=4)
    pipeline = CreatePipeline(PowerShell([Command("set-psdebugmode", args=[CommandParameter("mode", enum_arg)])]))
    assert parse_debugger_request(pipeline) == DebuggerRequest(DebuggerCommand.SET_PSDEBUGMODE, 4)
    positional = CreatePipeline(PowerShell([Command("Set-PSDebuggerAction", args=[CommandParameter(None, 0)])]))
    assert parse_debugger_request(positional) == DebuggerRequest(DebuggerCommand.SET_PSDEBUGGERACTION, 0)


@pytest.mark.parametrize(
    "args",
    [[], [CommandParameter("Mode", "x")], [CommandParameter("Other", 1)], [CommandParameter("Mode", 1)] * 2],
)
def test_malformed_debugger_requests(args: list[CommandParameter]) -> None:
    with pytest.raises(PsrpDecodeError):
        parse_debugger_request(CreatePipeline(PowerShell([Command("Set-PSDebugMode", args=args)])))
    with pytest.raises(PsrpDecodeError):
        parse_debugger_request(
            CreatePipeline(PowerShell([Command("Get-PSDebuggerStopArgs", args=[CommandParameter("x", 1)])]))
        )


def test_build_rejects_wrong_arity() -> None:
    with pytest.raises(PsrpEncodeError):
        build_debugger_request(DebuggerRequest(DebuggerCommand.GET_PSDEBUGGERSTOPARGS, 1))
    with pytest.raises(PsrpEncodeError):
        build_debugger_request(DebuggerRequest(DebuggerCommand.SET_PSDEBUGMODE))


def test_debugger_state_in_private_data() -> None:
    state = DebuggerState(
        debug_mode=4, in_breakpoint=True, breakpoint_count=2, break_all=False, unhandled_breakpoint_mode=1
    )
    payload = private_data_with_debugger_state(state, {"PSVersionTable": ps_dict({"PSVersion": "5.1"})})
    decoded = unpack_message(build_message(Destination.CLIENT, payload, RPID)).payload()
    assert isinstance(decoded, ApplicationPrivateData)
    assert [k for k, _ in decoded.data.entries] == [
        "PSVersionTable",
        "DebugMode",
        "DebugStop",
        "DebugBreakpointCount",
        "BreakAll",
        "UnhandledBreakpointMode",
    ]
    assert debugger_state_from_private_data(decoded) == state
    assert debugger_state_from_private_data(ApplicationPrivateData()) is None
    wrong = ApplicationPrivateData(ps_dict({"DebugMode": "four"}))
    with pytest.raises(PsrpDecodeError):
        debugger_state_from_private_data(wrong)


def test_debugger_events() -> None:
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    stop_context = PSObject(
        type_names=["Deserialized.System.Management.Automation.DebuggerStopEventArgs"],
        adapted_properties={"ResumeAction": 0},
    )
    event = debugger_stop_event(stop_context, event_identifier=3, runspace_id=RPID, time_generated=when)
    decoded = unpack_message(build_message(Destination.CLIENT, event, RPID)).payload()
    assert isinstance(decoded, UserEvent)
    assert decoded.source_identifier == STOP_EVENT_SOURCE
    assert classify_user_event(decoded) == (DebuggerEventKind.STOP, stop_context)
    updated = breakpoint_updated_event("bp", event_identifier=4, runspace_id=RPID, time_generated=when)
    assert classify_user_event(updated) == (DebuggerEventKind.BREAKPOINT_UPDATED, "bp")
    other = UserEvent(1, "MyEvent", when, None, None, None, None, RPID)
    assert classify_user_event(other) is None
    broken = UserEvent(1, STOP_EVENT_SOURCE, when, None, None, None, None, RPID)
    with pytest.raises(PsrpDecodeError):
        classify_user_event(broken)


def test_nested_debugger_request() -> None:
    pipeline = build_debugger_request(DebuggerRequest(DebuggerCommand.GET_PSDEBUGGERSTOPARGS), is_nested=True)
    assert pipeline.is_nested and pipeline.power_shell.is_nested
    assert pipeline.apartment_state is ApartmentState.Unknown

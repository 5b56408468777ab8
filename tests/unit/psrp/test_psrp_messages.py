"""MS-PSRP 2.2.1 framing and 2.2.2.x payloads, cross-checked with pypsrp's Message/ComplexObject classes."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from typing import Any

import pytest
from pypsrp import complex_objects as pco
from pypsrp import messages as pm
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import PSObject, deserialize, ps_dict, serialize
from harness.wire.psrp.enums import (
    ApartmentState,
    CommandTypes,
    HostMethodId,
    PipelineResultTypes,
    ProgressRecordType,
    PSInvocationState,
    PSThreadOptions,
    RemoteStreamOptions,
    RunspacePoolState,
)
from harness.wire.psrp.errors import PsrpDecodeError
from harness.wire.psrp.messages import (
    PAYLOAD_TYPES,
    UTF8_BOM,
    ApplicationPrivateData,
    Command,
    CommandParameter,
    ConnectRunspacePool,
    CreatePipeline,
    DebugRecord,
    Destination,
    EncryptedSessionKey,
    EndOfPipelineInput,
    ErrorRecordMessage,
    GetAvailableRunspaces,
    GetCommandMetadata,
    InformationRecord,
    InitRunspacePool,
    Message,
    MessageType,
    PipelineHostCall,
    PipelineHostResponse,
    PipelineInput,
    PipelineOutput,
    PipelineStateMessage,
    PowerShell,
    ProgressRecord,
    PublicKey,
    PublicKeyRequest,
    ResetRunspaceState,
    RunspaceAvailability,
    RunspacePoolHostCall,
    RunspacePoolHostResponse,
    RunspacePoolInitData,
    RunspacePoolStateMessage,
    SessionCapability,
    SetMaxRunspaces,
    SetMinRunspaces,
    UserEvent,
    VerboseRecord,
    WarningRecord,
    build_message,
    pack_message,
    parse_payload,
    unpack_message,
)
from harness.wire.psrp.primitives import SecureString

RPID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
PID = uuid.UUID("fedcba98-7654-3210-0123-456789abcdef")


def test_every_message_type_matches_pypsrp() -> None:
    assert len(MessageType) == 31
    for member in MessageType:
        assert getattr(pm.MessageType, member.name) == member.value, member.name
    assert set(PAYLOAD_TYPES) == set(MessageType)
    assert Destination.CLIENT == pm.Destination.CLIENT == 1
    assert Destination.SERVER == pm.Destination.SERVER == 2


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (RunspacePoolState, pco.RunspacePoolState),
        (PSInvocationState, pco.PSInvocationState),
        (PSThreadOptions, pco.PSThreadOptions),
        (ApartmentState, pco.ApartmentState),
        (RemoteStreamOptions, pco.RemoteStreamOptions),
        (PipelineResultTypes, pco.PipelineResultTypes),
        (ProgressRecordType, pco.ProgressRecordType),
    ],
    ids=lambda t: t.__name__,
)
def test_enum_values_match_pypsrp(ours: Any, theirs: Any) -> None:
    """MS-PSRP 2.2.3.x numeric values, checked against pypsrp's independent constants (UPPER_SNAKE names)."""
    expected = {name.replace("_", ""): value for name, value in vars(theirs).items() if name.isupper()}
    expected.pop("NONE", None)  # PipelineResultTypes.None (0) has no Python member; dotnet_name() writes it
    assert {name.upper(): member.value for name, member in ours.__members__.items()} == expected


def test_host_method_ids_match_pypsrp() -> None:
    """MS-PSRP 2.2.3.17: every RemoteHostMethodId value and its .NET name, against pypsrp's table."""
    expected = dict(pco.HostMethodIdentifier(value=1)._string_map)
    assert expected[55] == "GetRunspce"  # pypsrp's typo of GetRunspace
    expected[55] = "GetRunspace"
    assert {member.value: member.name for member in HostMethodId} == expected


def test_header_layout() -> None:
    data = pack_message(Message(Destination.SERVER, MessageType.SESSION_CAPABILITY, RPID, PID, b"<S />"))
    assert data[:4] == struct.pack("<I", 2)
    assert data[4:8] == struct.pack("<I", 0x00010002)
    assert data[8:24] == RPID.bytes_le
    assert data[24:40] == PID.bytes_le
    assert data[40:43] == UTF8_BOM
    assert data[43:] == b"<S />"
    decoded = unpack_message(data)
    assert decoded == Message(Destination.SERVER, MessageType.SESSION_CAPABILITY, RPID, PID, b"<S />")
    assert unpack_message(data[:40] + data[43:]) == decoded  # BOM optional (pypsrp sends none)
    assert pack_message(Message(Destination.SERVER, MessageType.END_OF_PIPELINE_INPUT, RPID, PID, b"")) == data[:4] + (
        struct.pack("<I", 0x00041003) + data[8:40]
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02\x00\x00\x00" * 9,
        struct.pack("<II", 3, 0x00010002) + bytes(32),
        struct.pack("<II", 1, 0x00099999) + bytes(32),
    ],
)
def test_bad_headers(data: bytes) -> None:
    with pytest.raises(PsrpDecodeError):
        unpack_message(data)


def test_session_capability_bytes_equal_pypsrp() -> None:
    ours = build_message(Destination.SERVER, SessionCapability("2.3", "2.0", "1.1.0.1"), RPID, bom=False)
    theirs = pm.Message(2, str(RPID), None, pm.SessionCapability("2.3", "2.0", "1.1.0.1"), Serializer()).pack()
    assert ours == theirs


SAMPLES: list[Any] = [
    SessionCapability("2.3", "2.0", "1.1.0.1", time_zone=b"\x00\x01"),
    InitRunspacePool(
        1,
        5,
        PSThreadOptions.ReuseThread,
        ApartmentState.MTA,
        application_arguments=ps_dict({"PSVersionTable": ps_dict({"PSVersion": "5.1"})}),
    ),
    PublicKey("AQID"),
    EncryptedSessionKey("BAUG"),
    PublicKeyRequest(),
    ConnectRunspacePool(),
    ConnectRunspacePool(1, 3),
    RunspacePoolInitData(2, 4),
    ResetRunspaceState(9),
    SetMaxRunspaces(10, 3),
    SetMinRunspaces(2, 4),
    RunspaceAvailability(True, 3),
    RunspaceAvailability(7, 5),
    RunspacePoolStateMessage(RunspacePoolState.Opened),
    RunspacePoolStateMessage(
        RunspacePoolState.Broken,
        PSObject(type_names=["System.Management.Automation.ErrorRecord"], extended_properties={"Message": "boom"}),
    ),
    CreatePipeline(
        PowerShell(
            [
                Command("Get-Item", args=[CommandParameter("Path", "C:\\"), CommandParameter(None, 1)]),
                Command(
                    "Select-Object",
                    use_local_scope=True,
                    merge_my_result=PipelineResultTypes.Error,
                    merge_to_result=PipelineResultTypes.Output,
                    merge_error=PipelineResultTypes.Output,
                    merge_warning=0,
                    merge_verbose=0,
                    merge_debug=0,
                    merge_information=0,
                ),
            ],
            history="Get-Item C:\\",
        ),
        no_input=False,
        remote_stream_options=RemoteStreamOptions.AddInvocationInfo,
        add_to_history=True,
    ),
    GetAvailableRunspaces(11),
    UserEvent(1, "src", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None, None, "data", "host", RPID),
    ApplicationPrivateData(),
    GetCommandMetadata(["Get-*"], CommandTypes.Cmdlet | CommandTypes.Function, None, None),
    RunspacePoolHostCall(1, HostMethodId.ReadLine, []),
    PipelineHostCall(2, HostMethodId.WriteLine2, [3, "text"]),
    PipelineHostResponse(2, HostMethodId.ReadLine, "typed"),
    RunspacePoolHostResponse(1, HostMethodId.GetName, None, PSObject(extended_properties={"m": "failed"})),
    PipelineInput("an input"),
    ErrorRecordMessage(
        PSObject(
            type_names=["System.Management.Automation.ErrorRecord", "System.Object"],
            to_string="boom",
            extended_properties={"FullyQualifiedErrorId": "X"},
        )
    ),
    EndOfPipelineInput(),
    PipelineOutput(PSObject(type_names=["X"], adapted_properties={"a": 1})),
    PipelineStateMessage(PSInvocationState.Completed),
    PipelineStateMessage(PSInvocationState.Failed, PSObject(extended_properties={"e": "x"})),
    DebugRecord("dbg"),
    VerboseRecord("verbose", extra_properties={"InvocationInfo_Line": "x"}),
    WarningRecord("warn"),
    ProgressRecord("act", 1, "status", None, -1, 50, ProgressRecordType.Processing, 10),
    InformationRecord("hello", "src", dt.datetime(2024, 1, 1), ["PSHOST"], "user", "pc", 1, 2, 3),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_payload_round_trip(payload: Any) -> None:
    data = build_message(Destination.SERVER, payload, RPID, PID)
    message = unpack_message(data)
    assert message.message_type is payload.MESSAGE_TYPE
    assert message.payload() == payload


def test_every_message_type_has_a_sample() -> None:
    assert {p.MESSAGE_TYPE for p in SAMPLES} == set(MessageType)


PYPSRP_READABLE = [
    p
    for p in SAMPLES
    if p.MESSAGE_TYPE
    not in (
        # pypsrp cannot read these back (its metadata is stricter than the spec examples):
        MessageType.INIT_RUNSPACEPOOL,  # pypsrp's HostInfo cannot be deserialized (read-only properties)
        MessageType.CREATE_PIPELINE,  # same HostInfo limitation
        MessageType.CONNECT_RUNSPACEPOOL,  # pypsrp only packs it; <S /> cannot be unpacked
        MessageType.END_OF_PIPELINE_INPUT,  # pypsrp only packs it
        # the samples carry ad-hoc error objects; pypsrp needs full ErrorRecords (test_psrp_records.py):
        MessageType.ERROR_RECORD,
        MessageType.RUNSPACEPOOL_STATE,
        MessageType.PIPELINE_STATE,
        MessageType.USER_EVENT,  # wants PSEventArgs.Sender etc. with typed metadata
        MessageType.DEBUG_RECORD,
        MessageType.VERBOSE_RECORD,
        MessageType.WARNING_RECORD,
        MessageType.RUNSPACEPOOL_HOST_RESPONSE,  # pypsrp insists on "mr", which 2.2.2.16 leaves out for void methods
    )
]


@pytest.mark.parametrize("payload", PYPSRP_READABLE, ids=lambda p: type(p).__name__)
def test_pypsrp_unpacks_our_messages(payload: Any) -> None:
    message = pm.Message.unpack(build_message(Destination.CLIENT, payload, RPID, PID), Serializer())
    assert message.message_type == payload.MESSAGE_TYPE
    assert message.destination == 1
    assert message.rpid == RPID and message.pid == PID
    data: Any = message.data
    if isinstance(payload, SessionCapability):
        assert (data.protocol_version, data.ps_version, data.serialization_version) == ("2.3", "2.0", "1.1.0.1")
        assert data.time_zone == b"\x00\x01"
    elif isinstance(payload, InitRunspacePool):
        assert (data.min_runspaces, data.max_runspaces) == (1, 5)
        assert data.thread_options.value == 2 and data.apartment_state.value == 1
        assert data.application_arguments == {"PSVersionTable": {"PSVersion": "5.1"}}
    elif isinstance(payload, CreatePipeline):
        assert data.no_input is False and data.add_to_history is True
        commands = data.pipeline.commands
        assert [c.cmd for c in commands] == ["Get-Item", "Select-Object"]
        assert [(a.name, a.value) for a in commands[0].args] == [("Path", "C:\\"), (None, 1)]
        assert commands[1].merge_my_result.value == 2 and commands[1].use_local_scope is True
        assert data.pipeline.history == "Get-Item C:\\"
    elif isinstance(payload, (RunspacePoolHostCall, PipelineHostCall)):
        assert data.ci == payload.call_id and data.mi.value == payload.method_id
        assert data.mp == payload.parameters
    elif isinstance(payload, PipelineHostResponse):
        assert (data.ci, data.mi.value, data.mr) == (2, 11, "typed")
    elif isinstance(payload, (PipelineInput, PipelineOutput)):
        pass
    elif isinstance(payload, ProgressRecord):
        assert (data.activity, data.percent_complete, data.progress_type.value) == ("act", 50, 0)
    elif isinstance(payload, InformationRecord):
        assert (data.message_data, data.tags, data.pid, data.managed_thread_id) == ("hello", ["PSHOST"], 1, 3)
    elif isinstance(payload, RunspaceAvailability):
        assert (data.response, data.ci) == (payload.response, payload.call_id)
    elif isinstance(payload, (SetMaxRunspaces, SetMinRunspaces)):
        assert data.ci == payload.call_id
    elif isinstance(payload, PublicKey):
        assert data.public_key == "AQID"
    elif isinstance(payload, EncryptedSessionKey):
        assert data.session_key == "BAUG"


def _pypsrp_pack(obj: Any) -> bytes:
    return pm.Message(2, str(RPID), str(PID), obj, Serializer()).pack()


def test_we_parse_pypsrp_init_runspacepool() -> None:
    theirs = pm.InitRunspacePool(
        1, 2, pco.PSThreadOptions(value=1), pco.ApartmentState(value=0), pco.HostInfo(), {"k": "v"}
    )
    payload = unpack_message(_pypsrp_pack(theirs)).payload()
    assert isinstance(payload, InitRunspacePool)
    assert (payload.min_runspaces, payload.max_runspaces) == (1, 2)
    assert payload.thread_options is PSThreadOptions.UseNewThread
    assert payload.apartment_state is ApartmentState.STA
    assert payload.host_info.get("_isHostNull") is True
    assert payload.application_arguments.as_dict() == {"k": "v"}


def test_we_parse_pypsrp_create_pipeline() -> None:
    command = pco.Command(cmd="Get-Service", is_script=False, use_local_scope=None)
    command.args.append(pco.CommandParameter(name="Name", value="winrm"))
    pipeline = pco.Pipeline(is_nested=False, cmds=[command], history=None, redirect_err_to_out=False)
    theirs = pm.CreatePipeline(
        True, pco.ApartmentState(value=2), pco.RemoteStreamOptions(value=0), False, pco.HostInfo(), pipeline, False
    )
    payload = unpack_message(_pypsrp_pack(theirs)).payload()
    assert isinstance(payload, CreatePipeline)
    assert payload.no_input is True
    assert payload.apartment_state is ApartmentState.Unknown
    assert [c.cmd for c in payload.power_shell.commands] == ["Get-Service"]
    assert payload.power_shell.commands[0].args == [CommandParameter("Name", "winrm")]
    assert payload.power_shell.commands[0].merge_error == 0  # protocol 2.3 sends every merge property


def test_we_parse_pypsrp_misc_messages() -> None:
    assert unpack_message(_pypsrp_pack(pm.SetMaxRunspaces(4, 7))).payload() == SetMaxRunspaces(4, 7)
    assert unpack_message(_pypsrp_pack(pm.GetAvailableRunspaces(3))).payload() == GetAvailableRunspaces(3)
    assert unpack_message(_pypsrp_pack(pm.ResetRunspaceState(5))).payload() == ResetRunspaceState(5)
    assert unpack_message(_pypsrp_pack(pm.PublicKeyRequest())).payload() == PublicKeyRequest()
    assert unpack_message(_pypsrp_pack(pm.ConnectRunspacePool())).payload() == ConnectRunspacePool()
    assert unpack_message(_pypsrp_pack(pm.ConnectRunspacePool(1, 2))).payload() == ConnectRunspacePool(1, 2)
    assert unpack_message(_pypsrp_pack(pm.PublicKey("abc="))).payload() == PublicKey("abc=")
    end = pm.EndOfPipelineInput()
    assert unpack_message(_pypsrp_pack(end)).payload() == EndOfPipelineInput()


@pytest.mark.parametrize(
    ("message_type", "xml"),
    [
        (MessageType.SESSION_CAPABILITY, "<S>x</S>"),
        (MessageType.SESSION_CAPABILITY, '<Obj RefId="0"><MS><S N="protocolversion">2.3</S></MS></Obj>'),
        (
            MessageType.SET_MAX_RUNSPACES,
            '<Obj RefId="0"><MS><I32 N="MaxRunspaces">1</I32><I32 N="CI">1</I32></MS></Obj>',
        ),
        (MessageType.RUNSPACEPOOL_STATE, '<Obj RefId="0"><MS><I32 N="RunspaceState">42</I32></MS></Obj>'),
        (MessageType.PUBLIC_KEY_REQUEST, "<S>x</S>"),
        (MessageType.END_OF_PIPELINE_INPUT, "<S />"),
        (MessageType.CREATE_PIPELINE, '<Obj RefId="0"><MS><B N="NoInput">true</B></MS></Obj>'),
        (MessageType.INIT_RUNSPACEPOOL, "<Obj RefId='0'><MS><I32 N='MinRunspaces'>1</I32></MS></Obj>"),
    ],
)
def test_bad_payloads(message_type: MessageType, xml: str) -> None:
    with pytest.raises(PsrpDecodeError):
        parse_payload(message_type, xml.encode())


def test_secure_string_inside_payload_round_trips() -> None:
    value = PSObject(extended_properties={"Password": SecureString(b"\x01" * 16)})
    assert deserialize(serialize(value)) == value

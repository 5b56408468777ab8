"""The mock's PSRP server (harness.targets.mock.psrp_shells) driven sans-IO through WSManService.handle:
creationXml, fragments sized to MaxEnvelopeSize, signals, ownership, Connect, malformed PSRP data."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import pytest

from harness.cim.mof import default_store
from harness.client.psrp import build_connect_pool_request, build_create_pool_request
from harness.targets.mock.answer_later import AnswerLater, WakeSignal, answer_when_ready
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.validate import default_validator
from harness.wire.psrp.enums import PSInvocationState, RunspacePoolState
from harness.wire.psrp.fragments import Defragmenter, Fragmenter, unpack_fragments
from harness.wire.psrp.messages import Command, CreatePipeline, MessageType, PowerShell, pack_message, unpack_message
from harness.wire.psrp.state import PipelineStateChanged, Role, RunspacePool
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import RESOURCE_POWERSHELL, RESOURCE_SHELL_CMD

USER = Principal("wmh")


class Wire:
    """A minimal sans-IO PSRP client of the service (the codec's client-role state machine)."""

    def __init__(self, service: WSManService, principal: Principal = USER, max_envelope: int = 153_600) -> None:
        self.service = service
        self.principal = principal
        self.max_envelope = max_envelope
        self.pool = RunspacePool(Role.CLIENT)
        self.fragmenter = Fragmenter.for_envelope(max_envelope)
        self.defrags: dict[str | None, Defragmenter] = {}
        self.shell_id = str(self.pool.rpid).upper()
        self.responses: list[bytes] = []
        self.events: list[Any] = []

    def header(self, action: str = "") -> Header:
        return Header(action=action, resource_uri=RESOURCE_POWERSHELL, selectors=sh.shell_selectors(self.shell_id),
                      max_envelope_size=self.max_envelope, operation_timeout=1.0)

    def call(self, data: bytes) -> Envelope:
        assert default_validator().validate(data) == []
        status, body = self.service.handle(data, self.principal)
        self.responses.append(body)
        assert default_validator().validate(body) == []
        env = parse_envelope(body)
        if is_fault(env):
            raise parse_fault(env)
        assert status == 200
        return env

    def packed(self) -> bytes:
        return b"".join(self.fragmenter.fragment_many(pack_message(m) for m in self.pool.take_outgoing()))

    def open(self) -> None:
        self.pool.open()
        create = Header(action="", resource_uri=RESOURCE_POWERSHELL, max_envelope_size=self.max_envelope)
        self.call(build_create_pool_request(create, self.pool.rpid, self.packed()))
        while self.pool.state is not RunspacePoolState.Opened:
            self.receive(None)

    def receive(self, command_id: str | None) -> sh.ReceiveResult:
        env = self.call(sh.build_receive_request(self.header(), sh.ReceiveRequest(["stdout"], command_id)))
        result = sh.parse_receive_response(env)
        defrag = self.defrags.setdefault(command_id, Defragmenter())
        for raw in defrag.feed(result.data("stdout")):
            self.events.extend(self.pool.receive(unpack_message(raw)))
        return result

    def run(self, script: str) -> tuple[str, Any]:
        self.events = []
        pipeline = self.pool.create_pipeline(CreatePipeline(PowerShell([Command(script, is_script=True)])))
        fragment = self.packed()
        cid = sh.parse_command_response(self.call(sh.build_command_request(
            self.header(), sh.CommandRequest("", [base64.b64encode(fragment).decode()], str(pipeline.pid).upper()))))
        return cid, pipeline


@pytest.fixture
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"))


def test_open_then_a_pipeline_with_output_fragmented_to_max_envelope_size(service: WSManService) -> None:
    wire = Wire(service, max_envelope=12_000)
    wire.open()
    big = "x" * 40_000
    cid, pipeline = wire.run(f"Write-Output '{big}'; Write-Output 'tail'")
    outputs: list[Any] = []
    for _ in range(20):
        result = wire.receive(cid)
        assert len(wire.responses[-1]) <= 12_000, "every ReceiveResponse fits MaxEnvelopeSize"
        fragments = unpack_fragments(result.data("stdout"))
        assert fragments, "each response carries whole fragments"
        if result.state is not None and result.state.done:
            break
    outputs = [e.payload.data for e in wire.events if getattr(e, "message_type", None) is MessageType.PIPELINE_OUTPUT]
    assert outputs == [big, "tail"]
    assert pipeline.state is PSInvocationState.Completed
    assert any(isinstance(e, PipelineStateChanged) and e.new is PSInvocationState.Completed for e in wire.events)


@pytest.mark.parametrize("code", ["powershell/signal/crtl_c", "powershell/signal/ctrl_c",
                                  "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"])
def test_ctrl_c_signal_spellings_stop_the_pipeline(service: WSManService, code: str) -> None:
    wire = Wire(service)
    wire.open()
    cid, pipeline = wire.run("Start-Sleep -Seconds 3600")
    pipeline.stop()
    wire.call(sh.build_signal_request(wire.header(), sh.SignalRequest(code, cid)))
    result = wire.receive(cid)
    assert result.state is not None and result.state.done
    assert pipeline.state is PSInvocationState.Stopped


def test_the_shell_belongs_to_its_creator(service: WSManService) -> None:
    wire = Wire(service)
    wire.open()
    other = Wire(service, Principal("someone-else"))
    other.shell_id = wire.shell_id
    with pytest.raises(WSManFault) as info:
        other.receive(None)
    assert info.value.subcode_name == "InvalidSelectors"


def test_remote_shell_access_off_refuses_a_runspace_pool(service: WSManService) -> None:
    """winrm/config/winrs AllowRemoteShellAccess=false stops PowerShell remoting too (observed Windows behaviour)."""
    service.config.allow_remote_shell_access = False
    with pytest.raises(WSManFault) as info:
        Wire(service).open()
    assert info.value.subcode_name == "InternalError"
    assert service.psrp.sessions == {}
    service.config.allow_remote_shell_access = True
    Wire(service).open()
    assert len(service.psrp.sessions) == 1


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"\x00" * 30).decode(), ""])
def test_bad_creation_xml_is_a_fault_and_no_shell(service: WSManService, text: str) -> None:
    wire = Wire(service)
    data = build_create_pool_request(Header(action="", resource_uri=RESOURCE_POWERSHELL), uuid.uuid4(), b"")
    data = data.replace(b"</pwsh:creationXml>", text.encode() + b"</pwsh:creationXml>")
    with pytest.raises(WSManFault) as info:
        wire.call(data)
    assert info.value.subcode_name == "InvalidParameter"
    assert service.psrp.sessions == {}


def test_unknown_command_and_connect_of_a_connected_pool_are_faults(service: WSManService) -> None:
    wire = Wire(service)
    wire.open()
    with pytest.raises(WSManFault) as info:
        wire.receive(str(uuid.uuid4()).upper())
    assert info.value.subcode_name == "InvalidParameter"
    fresh = RunspacePool(Role.CLIENT, wire.pool.rpid)
    fresh.connect()
    packed = b"".join(Fragmenter().fragment_many(pack_message(m) for m in fresh.take_outgoing()))
    with pytest.raises(WSManFault) as info:
        wire.call(build_connect_pool_request(wire.header(), packed))
    assert info.value.subcode_name == "InternalError"


def test_disconnect_connect_answers_init_data_in_connect_response_xml(service: WSManService) -> None:
    wire = Wire(service)
    wire.open()
    wire.call(sh.build_disconnect_request(wire.header(), sh.DisconnectRequest()))
    fresh = RunspacePool(Role.CLIENT, wire.pool.rpid)
    fresh.connect()
    packed = b"".join(Fragmenter().fragment_many(pack_message(m) for m in fresh.take_outgoing()))
    env = wire.call(build_connect_pool_request(wire.header(), packed))
    [content] = sh.parse_connect_response(env)
    messages = [unpack_message(m) for m in Defragmenter().feed(base64.b64decode(content.text or ""))]
    assert [m.message_type for m in messages] == [MessageType.SESSION_CAPABILITY, MessageType.RUNSPACEPOOL_INIT_DATA,
                                                  MessageType.APPLICATION_PRIVATE_DATA]
    for m in messages:
        fresh.receive(m)
    assert fresh.state is RunspacePoolState.Opened
    wire.call(msg.build_delete_request(wire.header()))
    assert service.psrp.sessions == {}


def test_powershell_encoded_command_in_a_cmd_shell_runs_in_the_safe_engine(service: WSManService) -> None:
    """pywinrm's run_ps: ``powershell -encodedcommand <base64 UTF-16LE>`` through the cmd resource."""
    env = parse_envelope(service.handle(sh.build_create_shell_request(
        Header(action="", resource_uri=RESOURCE_SHELL_CMD), sh.ShellSpec()), USER)[1])
    shell_id = sh.parse_create_shell_response(env).shell_id
    header = Header(action="", resource_uri=RESOURCE_SHELL_CMD, selectors=sh.shell_selectors(shell_id))
    script = ("$env:WMH_E = 'enc'; $env:WMH_E; Write-Error 'bad thing'; "
              "Get-Service -Name BITS | ForEach-Object { $_.Status }")
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    env = parse_envelope(service.handle(sh.build_command_request(
        header, sh.CommandRequest("powershell", ["-NoProfile", "-encodedcommand", encoded])), USER)[1])
    cid = sh.parse_command_response(env)
    env = parse_envelope(service.handle(sh.build_receive_request(header, sh.ReceiveRequest(["stdout", "stderr"], cid)),
                                        USER)[1])
    result = sh.parse_receive_response(env)
    assert result.data("stdout") == b"enc\r\nStopped\r\n"
    assert result.data("stderr").startswith(b"#< CLIXML\r\n<Objs")
    assert b"bad thing" in result.data("stderr")
    assert result.state is not None and result.state.exit_code == 0


class ManualTime:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_an_empty_pipeline_receive_answers_later_until_start_sleep_ends() -> None:
    """MS-PSRP 3.1.5.3.7 / MS-WSMV 3.1.4.14: nothing queued -> answer later, re-asked when the
    pipeline's Start-Sleep ends (its simulated clock), and woken when pipeline messages are queued."""
    clock = ManualTime()
    service = WSManService(default_store(), MockConfig(password="pw"), clock=clock)
    woken: list[int] = []
    service.wakeups.add(lambda: woken.append(1))
    wire = Wire(service)
    wire.open()
    cid, _ = wire.run("Start-Sleep -Seconds 2; Write-Output 'late'")
    header = Header(action="", resource_uri=RESOURCE_POWERSHELL, selectors=sh.shell_selectors(wire.shell_id),
                    operation_timeout=5.0)
    data = sh.build_receive_request(header, sh.ReceiveRequest(["stdout"], cid))
    pool_data = sh.build_receive_request(header, sh.ReceiveRequest(["stdout"]))
    before = len(woken)
    assert service.handle_or_wait(data, USER, 0.0) == AnswerLater(2.0)
    assert service.handle_or_wait(pool_data, USER, 0.0) == AnswerLater(2.0), "pool messages come from pipelines too"
    clock.now += 0.5
    assert service.handle_or_wait(data, USER, 4.0) == AnswerLater(1.0), "at most the OperationTimeout"
    assert len(woken) == before, "an empty re-ask wakes nobody (no busy loop)"
    clock.now += 1.5
    result = service.handle_or_wait(data, USER, 2.0)
    assert isinstance(result, tuple) and result[0] == 200
    assert len(woken) > before, "queued pipeline output wakes the other waiting Receives"


async def test_a_stop_signal_wakes_a_waiting_pipeline_receive() -> None:
    service = WSManService(default_store(), MockConfig(password="pw"))
    signal = WakeSignal()
    signal.follow(service.wakeups)
    wire = Wire(service)
    wire.open()
    cid, pipeline = wire.run("Start-Sleep -Seconds 3600")
    header = Header(action="", resource_uri=RESOURCE_POWERSHELL, selectors=sh.shell_selectors(wire.shell_id),
                    operation_timeout=30.0)
    pending = asyncio.ensure_future(answer_when_ready(
        service, sh.build_receive_request(header, sh.ReceiveRequest(["stdout"], cid)), USER, signal))
    await asyncio.sleep(0.1)
    assert not pending.done()
    loop = asyncio.get_running_loop()
    start = loop.time()
    pipeline.stop()
    wire.call(sh.build_signal_request(wire.header(), sh.SignalRequest("powershell/signal/crtl_c", cid)))
    status, body = await asyncio.wait_for(pending, 2.0)
    assert loop.time() - start < 0.05, "woken by the Signal, not by a poll"
    state = sh.parse_receive_response(parse_envelope(body)).state
    assert status == 200 and state is not None and state.done

"""Async PowerShell Remoting client (MS-PSRP 3.1) over WinRS (MS-WSMV 3.1.4.x) and the sans-IO codec.

:class:`PsrpRunspacePool` opens a RunspacePool (Create with ``creationXml``, MS-PSRP 3.1.5.3.1), keeps the
client-role state machine of :mod:`harness.wire.psrp.state` and records every RunspacePool state it
passes (MS-PSRP 2.2.3.4); :class:`PsrpPowerShell` is one pipeline (CREATE_PIPELINE in ``rsp:Arguments``,
input on ``stdin``, host responses on ``pr``, Receive until PIPELINE_STATE, ``powershell/signal/crtl_c``
to stop; MS-PSRP 3.1.5.3.3 - 3.1.5.3.9). Messages are fragmented (MS-PSRP 2.2.4) to fit MaxEnvelopeSize.
Everything goes through ``WSManClient.exchange`` (XSD-validated when the client has a validator).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from harness.client.shell import RECEIVE_TIMED_OUT
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.wire.psrp import keyexchange
from harness.wire.psrp.enums import HostMethodId, PSInvocationState, RunspacePoolState
from harness.wire.psrp.errors import PsrpDecodeError, PsrpStateError
from harness.wire.psrp.fragments import Defragmenter, Fragmenter
from harness.wire.psrp.messages import (
    Command,
    CommandParameter,
    CreatePipeline,
    DebugRecord,
    EncryptedSessionKey,
    ErrorRecordMessage,
    InformationRecord,
    Message,
    MessageType,
    PipelineHostCall,
    PipelineHostResponse,
    PipelineOutput,
    PowerShell,
    ProgressRecord,
    UserEvent,
    VerboseRecord,
    WarningRecord,
    pack_message,
    unpack_message,
)
from harness.wire.psrp.psrdp import DebuggerEventKind, DebuggerRequest, build_debugger_request, classify_user_event
from harness.wire.psrp.records import ErrorRecordInfo
from harness.wire.psrp.state import (
    Event,
    PayloadReceived,
    Pipeline,
    PipelineStateChanged,
    PoolStateChanged,
    Role,
    RunspacePool,
)
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import build_envelope
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.header import Header, Option
from harness.wire.wsman.ns import RESOURCE_POWERSHELL, Action, ShellAction

NS_PWSH: Final = "http://schemas.microsoft.com/powershell"
#: MS-PSRP 3.1.5.3.9 signal code (the spec's spelling).
SIGNAL_PS_CTRL_C: Final = "powershell/signal/crtl_c"
PROTOCOL_VERSION: Final = "2.3"

HostHandler = Callable[[HostMethodId, list[Any]], Any | Awaitable[Any]]
"""Answers a host call (MS-PSRP 2.2.3.17 method id, parameters) with its return value."""

VOID_HOST_METHODS: Final = frozenset({HostMethodId.Write1, HostMethodId.Write2, HostMethodId.WriteLine1,
                                      HostMethodId.WriteLine2, HostMethodId.WriteLine3, HostMethodId.WriteErrorLine,
                                      HostMethodId.WriteDebugLine, HostMethodId.WriteProgress,
                                      HostMethodId.WriteVerboseLine, HostMethodId.WriteWarningLine,
                                      HostMethodId.SetShouldExit})


class PsrpError(ProtocolViolation):
    """The target broke MS-PSRP (bad fragments, illegal state change...)."""


def _is_timeout(fault: WSManFault) -> bool:
    return fault.wsman_code == RECEIVE_TIMED_OUT or fault.subcode_name == "TimedOut"


@dataclass
class PsrpPowerShell:
    """One pipeline; ``add_command`` / ``add_script``, then ``invoke`` (or ``start`` + ``receive``)."""

    pool: PsrpRunspacePool
    commands: list[Command] = field(default_factory=list)
    pid: uuid.UUID = field(default_factory=uuid.uuid4)
    pipeline: Pipeline | None = None
    command_id: str | None = None
    state: PSInvocationState = PSInvocationState.NotStarted
    states: list[PSInvocationState] = field(default_factory=lambda: [PSInvocationState.NotStarted])
    output: list[Any] = field(default_factory=list)
    errors: list[ErrorRecordInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verbose: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)
    information: list[InformationRecord] = field(default_factory=list)
    progress: list[ProgressRecord] = field(default_factory=list)
    host_calls: list[PipelineHostCall] = field(default_factory=list)
    error_record: ErrorRecordInfo | None = None
    receives: int = 0
    defrag: Defragmenter = field(default_factory=Defragmenter)
    #: A ready-made CREATE_PIPELINE (e.g. an MS-PSRDP debugger message) instead of :attr:`commands`.
    request: CreatePipeline | None = None

    # ------------------------------------------------------------------ building
    def add_command(self, name: str, *positional: Any, **named: Any) -> PsrpPowerShell:
        """A command (MS-PSRP 2.2.3.12) with positional and named arguments (2.2.3.13); ``True`` is a switch."""
        args = [CommandParameter(None, v) for v in positional] + [CommandParameter(k, v) for k, v in named.items()]
        self.commands.append(Command(name, args=args))
        return self

    def add_script(self, script: str) -> PsrpPowerShell:
        """A script command (IsScript true, MS-PSRP 2.2.3.12)."""
        self.commands.append(Command(script, is_script=True))
        return self

    @property
    def had_errors(self) -> bool:
        return bool(self.errors) or self.state is PSInvocationState.Failed

    # ------------------------------------------------------------------ running
    async def start(self, *, has_input: bool = False) -> str:
        """CREATE_PIPELINE: the first fragment in ``rsp:Arguments`` of Command, the rest with Send
        (MS-PSRP 3.1.5.3.3); returns the CommandId."""
        pool = self.pool
        request = self.request or CreatePipeline(PowerShell(list(self.commands)), no_input=not has_input)
        self.pipeline = pool.pool.create_pipeline(request, self.pid)
        pool.powershells[self.pid] = self
        self._state(PSInvocationState.Running)
        packed = [pack_message(m) for m in pool.pool.take_outgoing()]
        fragments = [f for m in packed for f in pool.fragmenter.fragment(m)]
        header = pool.header(ShellAction.COMMAND)
        req = sh.CommandRequest("", [base64.b64encode(fragments[0]).decode("ascii")], str(self.pid).upper())
        env = await pool.client.exchange(sh.build_command_request(header, req))
        self.command_id = WSManClient._decode(sh.parse_command_response, env)
        for fragment in fragments[1:]:
            await pool.send_fragments([fragment], command_id=self.command_id)
        return self.command_id or ""

    def _state(self, new: PSInvocationState) -> None:
        if new is not self.state:
            self.state = new
            self.states.append(new)

    async def send_input(self, *values: Any, end: bool = False) -> None:
        """PIPELINE_INPUT for each value (MS-PSRP 2.2.2.17), then END_OF_PIPELINE_INPUT if ``end``."""
        assert self.pipeline is not None
        for value in values:
            self.pipeline.send_input(value)
        if end:
            self.pipeline.end_input()
        await self.pool.flush(command_id=self.command_id)

    async def receive(self) -> bool:
        """One Receive of this pipeline's messages; True once the pipeline is in a final state."""
        pool = self.pool
        self.receives += 1
        try:
            result = await pool.receive(self.command_id)
        except WSManFault as fault:
            if _is_timeout(fault):
                return False
            raise
        data = result.data("stdout")
        await pool.process(self.defrag, data)
        return self.state in (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)

    async def wait(self, *, max_receives: int = 1000) -> list[Any]:
        """Receive until PIPELINE_STATE is final (MS-PSRP 2.2.2.21); then the WinRS terminate signal."""
        for _ in range(max_receives):
            if await self.receive():
                await self.release()
                return self.output
        raise PsrpError(f"pipeline {self.pid} did not finish in {max_receives} Receives")

    async def invoke(self, input: Sequence[Any] | None = None) -> list[Any]:
        """Start, send ``input`` (closed with END_OF_PIPELINE_INPUT), collect every stream until the end."""
        await self.start(has_input=input is not None)
        if input is not None:
            await self.send_input(*input, end=True)
        return await self.wait()

    async def stop(self) -> None:
        """Signal ``powershell/signal/crtl_c`` (MS-PSRP 3.1.5.3.9); PIPELINE_STATE Stopped follows."""
        assert self.pipeline is not None
        self._apply(self.pipeline.stop())
        header = self.pool.header(ShellAction.SIGNAL)
        env = await self.pool.client.exchange(
            sh.build_signal_request(header, sh.SignalRequest(SIGNAL_PS_CTRL_C, self.command_id)))
        WSManClient._decode(sh.parse_signal_response, env)

    async def release(self) -> None:
        """The WinRS terminate signal that frees the command on the server (MS-WSMV 3.1.4.12)."""
        header = self.pool.header(ShellAction.SIGNAL)
        with contextlib.suppress(WSManFault):  # already released
            env = await self.pool.client.exchange(
                sh.build_signal_request(header, sh.SignalRequest(sh.SIGNAL_TERMINATE, self.command_id)))
            WSManClient._decode(sh.parse_signal_response, env)

    def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, PipelineStateChanged):
                self._state(event.new)
                if event.error_record is not None:
                    try:
                        self.error_record = ErrorRecordInfo.from_object(event.error_record)
                    except PsrpDecodeError:
                        self.error_record = None

    async def _on_payload(self, event: PayloadReceived) -> None:
        payload = event.payload
        if isinstance(payload, PipelineOutput):
            self.output.append(self.pool.decrypt(payload.data))
        elif isinstance(payload, ErrorRecordMessage):
            self.errors.append(ErrorRecordInfo.from_object(payload.data))
        elif isinstance(payload, WarningRecord):
            self.warnings.append(payload.message)
        elif isinstance(payload, VerboseRecord):
            self.verbose.append(payload.message)
        elif isinstance(payload, DebugRecord):
            self.debug.append(payload.message)
        elif isinstance(payload, InformationRecord):
            self.information.append(payload)
        elif isinstance(payload, ProgressRecord):
            self.progress.append(payload)
        elif isinstance(payload, PipelineHostCall):
            self.host_calls.append(payload)
            await self._answer(payload)

    async def _answer(self, call: PipelineHostCall) -> None:
        """PIPELINE_HOST_RESPONSE on the ``pr`` stream (MS-PSRP 3.1.5.3.5), void methods get none."""
        if call.method_id in VOID_HOST_METHODS or self.pipeline is None:
            return
        handler = self.pool.host_handler
        result: Any = None
        if handler is not None:
            try:
                result = handler(call.method_id, list(call.parameters))
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:  # the host failed: answered with "me" (MS-PSRP 2.2.2.28)
                record = ErrorRecordInfo(str(exc) or type(exc).__name__, "HostCallFailed",
                                         exception_type="System.Management.Automation.Host.HostException")
                self.pipeline.host_response(PipelineHostResponse(call.call_id, call.method_id, None,
                                                                 record.to_object()))
                await self.pool.flush(command_id=self.command_id, stream="pr")
                return
        if call.method_id is HostMethodId.ReadLineAsSecureString and isinstance(result, str):
            # MS-PSRP 3.1.4.5: the client starts the key exchange when it needs the session key.
            key = self.pool.session_key or await self.pool.exchange_keys()
            result = keyexchange.encrypt_secure_string(result, key)
        self.pipeline.host_response(PipelineHostResponse(call.call_id, call.method_id, result))
        await self.pool.flush(command_id=self.command_id, stream="pr")


class PsrpRunspacePool:
    """One remote RunspacePool (MS-PSRP 3.1). ``await pool.open()`` ... ``await pool.close()``."""

    def __init__(self, client: WSManClient, *, configuration: str = RESOURCE_POWERSHELL, min_runspaces: int = 1,
                 max_runspaces: int = 1, host_handler: HostHandler | None = None,
                 operation_timeout: float = 5.0) -> None:
        self.client = client
        self.resource_uri = configuration
        self.pool = RunspacePool(Role.CLIENT, min_runspaces=min_runspaces, max_runspaces=max_runspaces)
        self.host_handler = host_handler
        self.operation_timeout = operation_timeout
        self.shell_id: str | None = None
        self.states: list[RunspacePoolState] = [RunspacePoolState.BeforeOpen]
        self.fragmenter = Fragmenter.for_envelope(client.max_envelope_size)
        self.defrag = Defragmenter()
        self.powershells: dict[uuid.UUID, PsrpPowerShell] = {}
        self.session_key: bytes | None = None
        self.user_events: list[UserEvent] = []
        self.private_data: Any = None
        self._exchange_key: rsa.RSAPrivateKey | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def state(self) -> RunspacePoolState:
        return self.pool.state

    def header(self, action: str) -> Header:
        selectors = sh.shell_selectors(self.shell_id) if self.shell_id and action != Action.CREATE else None
        header = self.client.header(action, self.resource_uri, selectors)
        header.operation_timeout = self.operation_timeout
        return header

    def powershell(self) -> PsrpPowerShell:
        return PsrpPowerShell(self)

    def _apply(self, events: list[Event]) -> list[PayloadReceived]:
        payloads = []
        for event in events:
            if isinstance(event, PoolStateChanged):
                self.states.append(event.new)
            elif isinstance(event, PipelineStateChanged):
                ps = self.powershells.get(event.pid)
                if ps is not None:
                    ps._apply([event])
            elif isinstance(event, PayloadReceived):
                payloads.append(event)
        return payloads

    def decrypt(self, value: Any) -> Any:
        """A SecureString output is decrypted with the session key (MS-PSRP 2.2.5.1.24)."""
        from harness.wire.psrp.primitives import SecureString

        if isinstance(value, SecureString) and self.session_key is not None:
            return keyexchange.decrypt_secure_string(value, self.session_key)
        return value

    async def process(self, defrag: Defragmenter, data: bytes) -> None:
        """Defragment and decode received stream bytes and run them through the state machine."""
        try:
            messages = [unpack_message(raw) for raw in defrag.feed(data)]
        except PsrpDecodeError as exc:
            raise PsrpError(f"malformed PSRP data from the target: {exc}") from None
        for message in messages:
            await self._process(message)

    async def _process(self, message: Message) -> None:
        try:
            events = self.pool.receive(message)
        except (PsrpStateError, PsrpDecodeError) as exc:
            raise PsrpError(f"{message.message_type.name}: {exc}") from None
        for event in self._apply(events):
            payload = event.payload
            if event.message_type is MessageType.APPLICATION_PRIVATE_DATA:
                self.private_data = payload
            elif isinstance(payload, EncryptedSessionKey):
                if self._exchange_key is None:
                    raise PsrpError("ENCRYPTED_SESSION_KEY without a PUBLIC_KEY")
                self.session_key = keyexchange.decrypt_session_key(payload.encrypted_session_key,
                                                                   self._exchange_key)
            elif isinstance(payload, UserEvent):
                self.user_events.append(payload)
            elif event.message_type is MessageType.PUBLIC_KEY_REQUEST and self._exchange_key is None:
                await self._send_public_key()
            elif event.pid.int:
                ps = self.powershells.get(event.pid)
                if ps is not None:
                    await ps._on_payload(event)

    async def send_fragments(self, fragments: list[bytes], *, command_id: str | None = None,
                             stream: str = "stdin") -> None:
        for fragment in fragments:
            env = await self.client.exchange(sh.build_send_request(
                self.header(ShellAction.SEND), [sh.StreamData(stream, fragment, command_id)]))
            WSManClient._decode(sh.parse_send_response, env)

    async def flush(self, *, command_id: str | None = None, stream: str = "stdin") -> None:
        """Send every queued message (MS-PSRP 3.1.5.3.5)."""
        packed = [pack_message(m) for m in self.pool.take_outgoing()]
        if packed:
            await self.send_fragments(self.fragmenter.fragment_many(packed), command_id=command_id, stream=stream)

    async def receive(self, command_id: str | None = None) -> sh.ReceiveResult:
        env = await self.client.exchange(sh.build_receive_request(
            self.header(ShellAction.RECEIVE), sh.ReceiveRequest(["stdout"], command_id)))
        result: sh.ReceiveResult = WSManClient._decode(sh.parse_receive_response, env)
        return result

    async def receive_pool(self) -> bool:
        """One Receive of the RunspacePool's own messages; False on w:TimedOut."""
        try:
            result = await self.receive(None)
        except WSManFault as fault:
            if _is_timeout(fault):
                return False
            raise
        await self.process(self.defrag, result.data("stdout"))
        return True

    # ------------------------------------------------------------------ lifecycle
    async def open(self, *, max_receives: int = 50) -> None:
        """Create with creationXml (SESSION_CAPABILITY + INIT_RUNSPACEPOOL), then Receive until Opened
        (MS-PSRP 3.1.4.1, 3.1.5.3.1)."""
        self._apply(self.pool.open())
        packed = [pack_message(m) for m in self.pool.take_outgoing()]
        data = b"".join(self.fragmenter.fragment_many(packed))
        env = await self.client.exchange(build_create_pool_request(self.header(Action.CREATE), self.pool.rpid, data))
        created: sh.ShellCreated = WSManClient._decode(sh.parse_create_shell_response, env)
        self.shell_id = created.shell_id
        for _ in range(max_receives):
            if self.pool.state in (RunspacePoolState.Opened, RunspacePoolState.Broken, RunspacePoolState.Closed):
                break
            await self.receive_pool()
        if self.pool.state is not RunspacePoolState.Opened:
            raise PsrpError(f"the RunspacePool did not open (state {self.pool.state.name})")

    async def _send_public_key(self) -> None:
        self._exchange_key = keyexchange.generate_exchange_key()
        self.pool.send_public_key(keyexchange.encode_public_key(self._exchange_key.public_key()))
        await self.flush()

    async def exchange_keys(self, *, max_receives: int = 20) -> bytes:
        """PUBLIC_KEY, then Receive the ENCRYPTED_SESSION_KEY (MS-PSRP 3.1.4.5); returns the session key."""
        if self.session_key is not None:
            return self.session_key
        if self._exchange_key is None:
            await self._send_public_key()
        for _ in range(max_receives):
            if self.session_key is not None:
                return self.session_key
            await self.receive_pool()
        raise PsrpError("no ENCRYPTED_SESSION_KEY arrived")

    async def debugger(self, request: DebuggerRequest) -> PsrpPowerShell:
        """Run one MS-PSRDP client message (a CREATE_PIPELINE, MS-PSRDP 2.2.2 - 2.2.6) to its end."""
        ps = PsrpPowerShell(self, request=build_debugger_request(request))
        await ps.invoke()
        return ps

    def debugger_events(self) -> list[tuple[DebuggerEventKind, Any]]:
        """The MS-PSRDP events (stop, breakpoint updated) among the USER_EVENTs received so far."""
        out = []
        for event in self.user_events:
            classified = classify_user_event(event)
            if classified is not None:
                out.append(classified)
        return out

    async def attach(self, shell_id: str) -> None:
        """Connect as a new client to a disconnected RunspacePool (MS-PSRP 3.1.5.3.14): SESSION_CAPABILITY +
        CONNECT_RUNSPACEPOOL in connectXml; RUNSPACEPOOL_INIT_DATA arrives in connectResponseXml."""
        self.shell_id = shell_id.upper()
        self.pool.rpid = uuid.UUID(shell_id)
        self._apply(self.pool.connect())
        packed = [pack_message(m) for m in self.pool.take_outgoing()]
        data = b"".join(self.fragmenter.fragment_many(packed))
        env = await self.client.exchange(build_connect_pool_request(self.header(ShellAction.CONNECT), data))
        content = WSManClient._decode(sh.parse_connect_response, env)
        answer = next((c for c in content if c.tag == f"{{{NS_PWSH}}}connectResponseXml"), None)
        if answer is None:
            raise PsrpError("ConnectResponse without connectResponseXml (MS-PSRP 3.1.5.3.14)")
        try:
            raw = base64.b64decode((answer.text or "").strip(), validate=True)
        except ValueError:
            raise PsrpError("connectResponseXml is not base64") from None
        await self.process(self.defrag, raw)
        if self.pool.state is not RunspacePoolState.Opened:
            raise PsrpError(f"the RunspacePool did not connect (state {self.pool.state.name})")

    def adopt(self, command_id: str) -> PsrpPowerShell:
        """A running pipeline of the pool this client attached to (its CommandId is the pipeline id)."""
        pid = uuid.UUID(command_id)
        pipeline = Pipeline(self.pool, pid, state=PSInvocationState.Running)
        self.pool.pipelines[pid] = pipeline
        ps = PsrpPowerShell(self, pid=pid, pipeline=pipeline, command_id=command_id.upper(),
                            state=PSInvocationState.Running, states=[PSInvocationState.Running])
        self.powershells[pid] = ps
        return ps

    async def disconnect(self, *, idle_timeout: float | None = None) -> None:
        """WinRS Disconnect (MS-PSRP 3.1.5.3.16): pool and running pipelines become Disconnected."""
        env = await self.client.exchange(sh.build_disconnect_request(
            self.header(ShellAction.DISCONNECT), sh.DisconnectRequest(idle_timeout)))
        WSManClient._decode(sh.parse_disconnect_response, env)
        self._apply(self.pool.disconnect())

    async def reconnect(self) -> None:
        """WinRS Reconnect (MS-PSRP 3.1.5.3.18): the same client resumes; pipelines are Running again."""
        env = await self.client.exchange(sh.build_reconnect_request(self.header(ShellAction.RECONNECT)))
        WSManClient._decode(sh.parse_reconnect_response, env)
        events: list[Event] = []
        # No PSRP message is exchanged: Disconnected -> Connecting -> Opened (MS-PSRP 3.1.5.3.18).
        self.pool._set_state(RunspacePoolState.Connecting, events)
        self.pool._set_state(RunspacePoolState.Opened, events)
        for pipeline in self.pool.pipelines.values():
            if pipeline.state is PSInvocationState.Disconnected:
                events.extend(pipeline.reconnect())
        self._apply(events)

    async def close(self) -> None:
        """Delete the shell (MS-PSRP 3.1.5.3.11): the pool is Closed."""
        if self.pool.state in (RunspacePoolState.Opened, RunspacePoolState.Disconnected):
            self._apply(self.pool.close())
        if self.shell_id is not None:
            env = await self.client.exchange(msg.build_delete_request(self.header(Action.DELETE)))
            WSManClient._decode(msg.parse_delete_response, env)
            self.shell_id = None
        self._apply(self.pool.closed())

    async def __aenter__(self) -> PsrpRunspacePool:
        if self.shell_id is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.shell_id is not None:
            with contextlib.suppress(WSManFault):  # already gone
                await self.close()


def build_create_pool_request(header: Header, rpid: uuid.UUID, data: bytes) -> bytes:
    """wxf:Create of a PowerShell shell (MS-PSRP 3.1.5.3.1): rsp:Shell with ShellId = RPID, streams
    ``stdin pr`` / ``stdout``, ``creationXml`` (base64 fragments) and the MustComply protocolversion option."""
    spec = sh.ShellSpec(shell_id=str(rpid).upper(), input_streams=["stdin", "pr"], output_streams=["stdout"])
    shell_el = sh.shell_element(spec)
    creation = etree.SubElement(shell_el, f"{{{NS_PWSH}}}creationXml", nsmap={"pwsh": NS_PWSH})
    creation.text = base64.b64encode(data).decode("ascii")
    header.action = Action.CREATE
    header.resource_uri = header.resource_uri or RESOURCE_POWERSHELL
    header.options = [*header.options, Option("protocolversion", PROTOCOL_VERSION, must_comply=True)]
    return build_envelope(header, [shell_el])


def build_connect_pool_request(header: Header, data: bytes) -> bytes:
    """rsp:Connect with ``connectXml`` (MS-PSRP 3.1.5.3.14)."""
    content = etree.Element(f"{{{NS_PWSH}}}connectXml", nsmap={"pwsh": NS_PWSH})
    content.text = base64.b64encode(data).decode("ascii")
    header.options = [*header.options, Option("protocolversion", PROTOCOL_VERSION, must_comply=True)]
    return sh.build_connect_request(header, [content])


__all__ = ["NS_PWSH", "SIGNAL_PS_CTRL_C", "HostHandler", "PsrpError", "PsrpPowerShell", "PsrpRunspacePool",
           "build_connect_pool_request", "build_create_pool_request"]

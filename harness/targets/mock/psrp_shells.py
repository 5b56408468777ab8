"""The mock's PowerShell Remoting server: MS-PSRP over WinRS (MS-PSRP 3.2.5, 3.1.5; MS-WMOD 2.5.2.8, 3.6).

The shell resource ``http://schemas.microsoft.com/powershell/Microsoft.PowerShell`` (MS-PSRP 3.1.5.1):

* Create carries ``creationXml`` (base64 fragments of SESSION_CAPABILITY + INIT_RUNSPACEPOOL) inside
  ``rsp:Shell`` (MS-PSRP 3.1.5.3.1); the ShellId is the RunspacePool id;
* Receive without a CommandId carries the RunspacePool's messages on ``stdout`` (MS-PSRP 3.1.5.3.7);
* Command carries the first fragments of CREATE_PIPELINE in ``rsp:Arguments``, the CommandId is the
  pipeline id (MS-PSRP 3.1.5.3.3); Receive with the CommandId carries that pipeline's messages;
* Send on ``stdin`` carries PIPELINE_INPUT / END_OF_PIPELINE_INPUT / other client messages and on ``pr``
  the host responses (MS-PSRP 3.1.5.3.5);
* Signal ``powershell/signal/crtl_c`` stops a pipeline (MS-PSRP 3.1.5.3.9; the spec spells "crtl",
  pypsrp writes ``ctrl``; both are accepted), ``terminate`` releases it;
* Delete closes the RunspacePool (MS-PSRP 3.1.5.3.11); Disconnect / Reconnect / Connect (``connectXml``
  with SESSION_CAPABILITY + CONNECT_RUNSPACEPOOL, answered in ``connectResponseXml``; MS-PSRP 3.1.5.3.14 -
  3.1.5.3.18) keep the pipelines running and their output buffered.

The PSRP side uses the server-role state machines of :mod:`harness.wire.psrp.state`; commands run in the
SAFE engine of :mod:`harness.targets.mock.ps_engine` (never a host process). Responses are fragmented
(MS-PSRP 2.2.4) to fit the client's MaxEnvelopeSize.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from harness.targets.mock import authorization as authz
from harness.targets.mock import root_sddl
from harness.targets.mock.plugins import find_plugin, require_plugin_shell
from harness.targets.mock.ps_engine import (
    COMPLETED,
    FAILED,
    Out,
    PipelineRun,
    Rec,
    Runspace,
    SecureText,
    ps_version_table,
    start_pipeline,
)
from harness.targets.mock.ps_engine import HostCall as EngineHostCall
from harness.targets.mock.ps_engine_cmd import install_powershell_command
from harness.targets.mock.shells import (
    CONNECTED,
    DISCONNECTED,
    ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL,
    ERROR_WSMAN_QUOTA_MAX_SHELLS,
    find_owned_shell,
    receive_budget,
    receive_timed_out,
    refuse_when_shells_disabled,
    required_shell_id,
    seconds_until,
)
from harness.wire.psrp import keyexchange
from harness.wire.psrp.clixml import PSObject, ps_list
from harness.wire.psrp.enums import HostMethodId, PSInvocationState, RunspacePoolState
from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError, PsrpStateError
from harness.wire.psrp.fragments import FRAGMENT_HEADER_SIZE, Defragmenter, Fragmenter
from harness.wire.psrp.messages import (
    MessageType,
    PipelineHostCall,
    PipelineHostResponse,
    PipelineInput,
    PublicKey,
    pack_message,
    unpack_message,
)
from harness.wire.psrp.primitives import SecureString
from harness.wire.psrp.psrdp import (
    DebuggerCommand,
    DebuggerState,
    debugger_stop_event,
    parse_debugger_request,
    private_data_with_debugger_state,
)
from harness.wire.psrp.records import ErrorRecordInfo
from harness.wire.psrp.state import (
    Event,
    PayloadReceived,
    Pipeline,
    PipelineCreated,
    Role,
    RunspacePool,
)
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import Envelope
from harness.wire.wsman.faults import WSManFault, make_fault
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import RESOURCE_POWERSHELL, Action, ShellAction

if TYPE_CHECKING:
    from harness.targets.mock.config import MockConfig
    from harness.targets.mock.wsman_service import Principal, WSManService

NS_PWSH: Final = "http://schemas.microsoft.com/powershell"
CREATION_XML: Final = f"{{{NS_PWSH}}}creationXml"
CONNECT_XML: Final = f"{{{NS_PWSH}}}connectXml"
CONNECT_RESPONSE_XML: Final = f"{{{NS_PWSH}}}connectResponseXml"
#: MS-PSRP 3.1.5.3.9 (sic "crtl"); pypsrp writes "ctrl". Compared case-insensitively, by suffix.
PS_SIGNAL_SUFFIXES: Final = ("powershell/signal/crtl_c", "powershell/signal/ctrl_c")
#: Largest PSRP message the server reassembles from a client (MS-PSRP 2.2.4; a bound, not a spec value).
MAX_CLIENT_MESSAGE: Final = 16 << 20
#: Pipelines a pool remembers (finished ones are forgotten first).
MAX_PIPELINE_RECORDS: Final = 256
#: Queued outgoing fragments per pipeline / pool before the engine pauses (back pressure, BufferMode Block).
MAX_QUEUED_BYTES: Final = 4 << 20


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise make_fault("InvalidParameter", f"{what} is not valid base64.") from None


@dataclass
class _Outbox:
    """Messages for one Receive target (the pool, or one pipeline): packed, fragmented lazily."""

    messages: list[bytes] = field(default_factory=list)
    fragments: list[bytes] = field(default_factory=list)

    def size(self) -> int:
        return sum(map(len, self.messages)) + sum(map(len, self.fragments))

    def take(self, fragmenter: Fragmenter, budget: int) -> list[bytes]:
        """Whole fragments of at most ``budget`` bytes in total (at least one fragment if any)."""
        fragmenter.max_size = max(budget, FRAGMENT_HEADER_SIZE + 1)
        for message in self.messages:
            self.fragments.extend(fragmenter.fragment(message))
        self.messages.clear()
        out: list[bytes] = []
        used = 0
        while self.fragments and (not out or used + len(self.fragments[0]) <= budget):
            chunk = self.fragments.pop(0)
            used += len(chunk)
            out.append(chunk)
        return out


@dataclass
class PsrpPipeline:
    command_id: str
    pipeline: Pipeline | None = None
    run: PipelineRun | None = None
    outbox: _Outbox = field(default_factory=_Outbox)
    defrag: Defragmenter = field(default_factory=lambda: Defragmenter(max_message_size=MAX_CLIENT_MESSAGE))
    finished: bool = False
    next_call_id: int = 1
    pending_call: int | None = None
    secure_call: bool = False
    debugger_request: bool = False
    announced_stop: bool = False


@dataclass
class PsrpSession:
    """One PowerShell shell = one RunspacePool (MS-PSRP 3.2.1)."""

    shell_id: str
    owner: str
    spec: sh.ShellSpec
    pool: RunspacePool
    runspace: Runspace
    created: float
    last_activity: float
    idle_timeout: float
    state: str = CONNECTED
    outbox: _Outbox = field(default_factory=_Outbox)
    defrag: Defragmenter = field(default_factory=lambda: Defragmenter(max_message_size=MAX_CLIENT_MESSAGE))
    fragmenter: Fragmenter = field(default_factory=Fragmenter)
    pipelines: dict[str, PsrpPipeline] = field(default_factory=dict)
    session_key: bytes | None = None
    event_id: int = 0


class PsrpHost:
    """Every RunspacePool of the mock (MS-PSRP 3.2)."""

    def __init__(self, service: WSManService, config: MockConfig, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.config = config
        self.clock = clock
        self.wallclock = wallclock
        self.sessions: dict[str, PsrpSession] = {}

    # ------------------------------------------------------------------ plumbing
    def _changed(self) -> None:
        """A waiting Receive may get another answer now (harness.targets.mock.answer_later)."""
        self.service.wakeups.notify()

    def reap(self) -> None:
        """Idle (or disconnected past their IdleTimeOut) pools are deleted (MS-WSMV 3.1.4.15)."""
        now = self.clock()
        for sid, s in list(self.sessions.items()):
            if now - s.last_activity >= s.idle_timeout:
                for p in s.pipelines.values():
                    if p.run is not None:
                        p.run.stop()
                del self.sessions[sid]
                self._changed()

    def get(self, owner: str, shell_id: str | None, *, connected: bool = True) -> PsrpSession:
        self.reap()
        return find_owned_shell(self.sessions, owner, shell_id, self.clock(), connected=connected)

    def _feed(self, session: PsrpSession, defrag: Defragmenter, data: bytes) -> list[Event]:
        """Defragment, decode and run the messages through the server state machine."""
        events: list[Event] = []
        try:
            for raw in defrag.feed(data):
                message = unpack_message(raw)
                if session.pool.state is RunspacePoolState.BeforeOpen and message.rpid != session.pool.rpid:
                    session.pool.rpid = message.rpid
                events.extend(session.pool.receive(message))
        except (PsrpDecodeError, PsrpStateError) as exc:
            raise make_fault("InvalidParameter", f"The PSRP data is not valid: {exc}") from None
        return events

    def _flush_pool(self, session: PsrpSession) -> None:
        """Queue the pool's outgoing messages for the Receive of the pool or of their pipeline, and wake
        the waiting Receives (pipeline output and state changes, MS-PSRP 3.1.5.3.7)."""
        outgoing = session.pool.take_outgoing()
        if outgoing:
            self._changed()
        for message in outgoing:
            packed = pack_message(message)
            target = session.outbox
            if message.pid.int:
                pipe = self._pipeline_by_pid(session, message.pid)
                if pipe is not None:
                    target = pipe.outbox
            target.messages.append(packed)

    @staticmethod
    def _pipeline_by_pid(session: PsrpSession, pid: uuid.UUID) -> PsrpPipeline | None:
        return session.pipelines.get(str(pid).upper())

    def _private_data(self, session: PsrpSession) -> Any:
        """APPLICATION_PRIVATE_DATA (MS-PSRP 2.2.2.13) with PSVersionTable and the debugger state
        (MS-PSRDP 2.2.7: its presence announces remote debugging support)."""
        debugger = session.runspace.debugger
        state = DebuggerState(debug_mode=debugger.mode, in_breakpoint=False,
                              breakpoint_count=len(debugger.breakpoints))
        return private_data_with_debugger_state(state, {"PSVersionTable": ps_version_table()})

    # ------------------------------------------------------------------ Create / Delete
    def create(self, owner: str, env: Envelope, *, administrator: bool = True) -> PsrpSession:
        """MS-PSRP 3.1.5.3.1: the RunspacePool opens from the creationXml messages; ``administrator``:
        whether the owner is a member of BUILTIN\\Administrators (what the session may change)."""
        refuse_when_shells_disabled(self.config)
        self.reap()
        spec = sh.parse_create_shell_request(env)
        payload = env.payload
        creation = payload.find(CREATION_XML) if payload is not None else None
        if creation is None:
            raise make_fault("InvalidParameter",
                             "A PowerShell shell needs the creationXml element (MS-PSRP 3.1.5.3.1).")
        mine = sum(1 for s in self.sessions.values() if s.owner.lower() == owner.lower())
        if mine >= self.config.max_shells_per_user:
            raise make_fault("QuotaLimit", "The maximum number of concurrent shells for this user has been exceeded.",
                             wsman_code=ERROR_WSMAN_QUOTA_MAX_SHELLS)
        shell_id = (spec.shell_id or str(uuid.uuid4())).upper()
        if shell_id in self.sessions:
            raise make_fault("AlreadyExists", f"A shell with ShellId {shell_id} already exists.")
        now = self.clock()
        idle = spec.idle_timeout if spec.idle_timeout is not None else self.config.shell_idle_timeout
        env_vars = dict(spec.environment)
        runspace = Runspace(self.service.store, self.config.machine, owner, env_vars, wallclock=self.wallclock,
                            administrator=administrator)
        pool = RunspacePool(Role.SERVER, uuid.UUID(shell_id) if _is_uuid(shell_id) else None)
        session = PsrpSession(shell_id, owner, spec, pool, runspace, now, now, idle)
        events = self._feed(session, session.defrag, _b64(creation.text, "creationXml"))
        self._on_events(session, events)
        if pool.state is not RunspacePoolState.Opened:
            raise make_fault("InvalidParameter", "creationXml must carry SESSION_CAPABILITY and INIT_RUNSPACEPOOL.")
        self.sessions[shell_id] = session
        return session

    def delete(self, owner: str, shell_id: str | None) -> None:
        session = self.get(owner, shell_id, connected=False)
        for p in session.pipelines.values():
            if p.run is not None:
                p.run.stop()
        session.pool.closed()
        del self.sessions[session.shell_id]
        self._changed()

    # ------------------------------------------------------------------ events -> engine
    def _on_events(self, session: PsrpSession, events: list[Event], pipe: PsrpPipeline | None = None) -> None:
        now = self.clock()
        for event in events:
            if isinstance(event, PayloadReceived):
                kind = event.message_type
                if kind is MessageType.INIT_RUNSPACEPOOL:
                    private = self._private_data(session)
                    session.pool.application_private_data = private.data
                    session.pool.accept_open(private)
                elif kind is MessageType.PUBLIC_KEY:
                    assert isinstance(event.payload, PublicKey)
                    key = keyexchange.generate_session_key()
                    try:
                        public = keyexchange.decode_public_key(event.payload.public_key)
                        encrypted = keyexchange.encrypt_session_key(key, public)
                    except (PsrpDecodeError, PsrpEncodeError) as exc:
                        raise make_fault("InvalidParameter", f"PUBLIC_KEY: {exc}") from None
                    session.session_key = key
                    session.pool.send_encrypted_session_key(encrypted)
                elif kind in (MessageType.PIPELINE_INPUT, MessageType.END_OF_PIPELINE_INPUT,
                              MessageType.PIPELINE_HOST_RESPONSE):
                    target = self._pipeline_by_pid(session, event.pid)
                    if target is None or target.run is None:
                        continue
                    if isinstance(event.payload, PipelineInput):
                        target.run.add_input(event.payload.data, now)
                    elif isinstance(event.payload, PipelineHostResponse):
                        target.pending_call = None
                        if event.payload.error is not None:
                            target.run.fail_call(_host_error(event.payload.error), now)
                        else:
                            target.run.answer(self._host_result(session, event.payload), now)
                    else:
                        target.run.end_input(now)
            elif isinstance(event, PipelineCreated):
                self._start(session, event, pipe)
        self._flush_pool(session)

    def _host_result(self, session: PsrpSession, response: PipelineHostResponse) -> Any:
        """The host response's value; a SecureString is decrypted with the session key (MS-PSRP 2.2.5.1.24)."""
        result = response.result
        if isinstance(result, SecureString):
            if session.session_key is None:
                raise make_fault("InvalidParameter", "A SecureString arrived before the session key exchange.")
            try:
                return SecureText(keyexchange.decrypt_secure_string(result, session.session_key))
            except PsrpDecodeError as exc:
                raise make_fault("InvalidParameter", f"SecureString: {exc}") from None
        return result

    def _start(self, session: PsrpSession, created: PipelineCreated, pipe: PsrpPipeline | None) -> None:
        command_id = str(created.pipeline.pid).upper()
        if pipe is None:
            pipe = PsrpPipeline(command_id)
        session.pipelines[command_id] = pipe
        pipe.pipeline = created.pipeline
        try:
            request = parse_debugger_request(created.request)
        except PsrpDecodeError as exc:
            raise make_fault("InvalidParameter", f"MS-PSRDP request: {exc}") from None
        if request is not None:
            pipe.debugger_request = True
            self._debugger(session, pipe, request.command, request.argument)
            return
        shell = created.request.power_shell
        pipe.run = start_pipeline(session.runspace, shell.commands, self.clock(),
                                  has_input=not created.request.no_input, statements=shell.extra_cmds or None)
        self._pump(session, pipe)

    def _debugger(self, session: PsrpSession, pipe: PsrpPipeline, command: DebuggerCommand,
                  argument: int | bool | None) -> None:
        """MS-PSRDP 3.2.5.x: the debugger messages run at once and complete their pipeline."""
        assert pipe.pipeline is not None
        debugger = session.runspace.debugger
        if command is DebuggerCommand.SET_PSDEBUGMODE:
            debugger.mode = int(argument or 0)
        elif command is DebuggerCommand.SET_PSDEBUGGERSTEPMODE:
            debugger.step_mode = bool(argument)
        elif command is DebuggerCommand.SET_PSDEBUGGERACTION:
            for other in session.pipelines.values():
                if other.run is not None and other.run.debug_stop is not None:
                    other.announced_stop = False
                    other.run.resume(int(argument or 0), self.clock())
                    self._pump(session, other)
                    break
        elif command is DebuggerCommand.GET_PSDEBUGGERSTOPARGS:
            stop = next((o.run.debug_stop for o in session.pipelines.values()
                         if o.run is not None and o.run.debug_stop is not None), None)
            if stop is not None:
                pipe.pipeline.output(_stop_args(stop.line, stop.text))
        pipe.pipeline.finish(PSInvocationState.Completed)
        pipe.finished = True
        self._flush_pool(session)

    def _pump(self, session: PsrpSession, pipe: PsrpPipeline) -> None:
        """Advance the engine and turn what it produced into PSRP messages (MS-PSRP 2.2.2.19 - 2.2.2.27)."""
        run, pipeline = pipe.run, pipe.pipeline
        if run is None or pipeline is None or pipe.finished or session.state != CONNECTED:
            return
        if pipe.outbox.size() < MAX_QUEUED_BYTES:
            run.poll(self.clock())
        for item in run.take():
            if isinstance(item, Out):
                pipeline.output(self._outgoing_value(session, item.value))
            elif isinstance(item, Rec):
                pipeline.write(item.payload)  # type: ignore[arg-type]
            else:
                self._host_call(session, pipe, item)
        if run.debug_stop is not None and not pipe.announced_stop:
            session.event_id += 1
            session.pool.user_event(debugger_stop_event(
                _stop_args(run.debug_stop.line, run.debug_stop.text), event_identifier=session.event_id,
                runspace_id=session.pool.rpid, computer_name=self.config.machine,
                time_generated=dt.datetime.fromtimestamp(self.wallclock(), dt.UTC)))
            pipe.announced_stop = True
        elif run.debug_stop is None:
            pipe.announced_stop = False
        if run.done:
            state = {COMPLETED: PSInvocationState.Completed, FAILED: PSInvocationState.Failed}.get(
                run.state, PSInvocationState.Stopped)
            record = run.error.to_object() if run.error is not None else None
            if pipeline.state is PSInvocationState.Running or pipeline.state is PSInvocationState.Stopping:
                pipeline.finish(state, record)
            pipe.finished = True
        self._flush_pool(session)

    def _host_call(self, session: PsrpSession, pipe: PsrpPipeline, call: EngineHostCall) -> None:
        assert pipe.pipeline is not None
        call_id = pipe.next_call_id
        pipe.next_call_id += 1
        if call.method is HostMethodId.ReadLineAsSecureString and session.session_key is None:
            # MS-PSRP 3.2.5.4.x: the server asks for the client's public key first.
            session.pool.request_public_key()
        pipe.pipeline.host_call(PipelineHostCall(call_id, call.method, list(call.parameters)))
        if pipe.run is not None and pipe.run.host_call is call:
            pipe.pending_call = call_id

    def _outgoing_value(self, session: PsrpSession, value: Any) -> Any:
        if isinstance(value, SecureText):
            if session.session_key is None:
                return "System.Security.SecureString"
            return keyexchange.encrypt_secure_string(value.text, session.session_key)
        return value

    # ------------------------------------------------------------------ WinRS operations
    def command(self, session: PsrpSession, env: Envelope) -> str:
        """MS-PSRP 3.1.5.3.3: CREATE_PIPELINE fragments in rsp:Arguments; the CommandId is the pipeline id."""
        payload = env.payload
        if payload is None or payload.tag != sh.RSP_COMMAND_LINE:
            raise make_fault("InvalidParameter", "Command needs rsp:CommandLine.")
        data = b"".join(_b64(a.text, "rsp:Arguments") for a in payload.findall(sh.RSP_ARGUMENTS))
        given = (payload.get("CommandId") or "").strip().upper()
        running = sum(1 for p in session.pipelines.values() if not p.finished)
        if running >= self.config.max_processes_per_shell:
            # Mock choice: the WinRS per-shell command quota also bounds the pipelines of a pool.
            raise make_fault("QuotaLimit", f"This shell is allowed a maximum of {self.config.max_processes_per_shell} "
                                           "running pipelines, which has been exceeded.",
                             wsman_code=ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL)
        self._forget_finished(session)
        pipe = PsrpPipeline(given)
        events = self._feed(session, pipe.defrag, data)
        created = next((e for e in events if isinstance(e, PipelineCreated)), None)
        if created is not None:
            pipe.command_id = str(created.pipeline.pid).upper()
        elif not given:
            raise make_fault("InvalidParameter", "An incomplete CREATE_PIPELINE needs a CommandId.")
        else:
            session.pipelines[given] = pipe
        if given and created is not None and given != pipe.command_id:
            raise make_fault("InvalidParameter", "The CommandId must be the pipeline id of CREATE_PIPELINE.")
        self._on_events(session, events, pipe)
        return pipe.command_id

    @staticmethod
    def _forget_finished(session: PsrpSession) -> None:
        """Finished and fully received pipelines beyond :data:`MAX_PIPELINE_RECORDS` are forgotten, oldest first
        (a client that never sends the terminate signal cannot grow the server without bound)."""
        done = [cid for cid, p in session.pipelines.items() if p.finished and p.outbox.size() == 0]
        for cid in done[: max(0, len(session.pipelines) - MAX_PIPELINE_RECORDS)]:
            del session.pipelines[cid]

    def send(self, session: PsrpSession, streams: list[sh.StreamData]) -> None:
        """MS-PSRP 3.1.5.3.5: client messages on stdin (pool or pipeline) and pr (host responses)."""
        for s in streams:
            if s.name.lower() not in ("stdin", "pr"):
                raise make_fault("InvalidParameter", f"The shell has no input stream {s.name}.")
            pipe = None
            if s.command_id:
                pipe = session.pipelines.get(s.command_id.upper())
                if pipe is None:
                    raise make_fault("InvalidParameter", f"The command {s.command_id} was not found.")
            defrag = pipe.defrag if pipe is not None else session.defrag
            events = self._feed(session, defrag, s.data)
            self._on_events(session, events, pipe)
            if pipe is not None:
                self._pump(session, pipe)
            for other in session.pipelines.values():
                self._pump(session, other)

    def signal(self, session: PsrpSession, req: sh.SignalRequest) -> None:
        """MS-PSRP 3.1.5.3.9: crtl_c stops the pipeline (PIPELINE_STATE Stopped); terminate releases it."""
        pipe = session.pipelines.get((req.command_id or "").upper())
        if pipe is None:
            raise make_fault("InvalidParameter", f"The command {req.command_id} was not found.")
        code = req.code.strip().lower()
        if code.endswith(PS_SIGNAL_SUFFIXES) or sh.signal_name(req.code) == sh.SIGNAL_CTRL_C:
            if pipe.run is not None and not pipe.run.done and pipe.pipeline is not None:
                pipe.pipeline.stop()
                pipe.run.stop()
                self._pump(session, pipe)
        elif sh.signal_name(req.code) == sh.SIGNAL_TERMINATE:
            if pipe.run is not None:
                pipe.run.stop()
            session.pipelines.pop(pipe.command_id, None)
            self._changed()
        else:
            raise make_fault("InvalidParameter", f"The signal code {req.code} is not supported by this shell.")

    def receive(self, session: PsrpSession, req: sh.ReceiveRequest, budget: int) -> sh.ReceiveResult | None:
        """MS-PSRP 3.1.5.3.7: the pool's or a pipeline's messages on stdout; None when nothing is ready."""
        if req.command_id:
            pipe = session.pipelines.get(req.command_id.upper())
            if pipe is None:
                raise make_fault("InvalidParameter", f"The command {req.command_id} was not found.")
            self._pump(session, pipe)
            chunks = pipe.outbox.take(session.fragmenter, budget)
            if not chunks and not (pipe.finished and pipe.outbox.size() == 0):
                return None
            result = sh.ReceiveResult([sh.StreamData("stdout", c, pipe.command_id) for c in chunks])
            if pipe.finished and pipe.outbox.size() == 0:
                result.state = sh.CommandState(pipe.command_id, sh.STATE_DONE, 0)
            else:
                result.state = sh.CommandState(pipe.command_id, sh.STATE_RUNNING)
            return result
        for pipe in session.pipelines.values():
            self._pump(session, pipe)
        chunks = session.outbox.take(session.fragmenter, budget)
        if not chunks:
            return None
        return sh.ReceiveResult([sh.StreamData("stdout", c) for c in chunks])

    def next_output(self, session: PsrpSession, command_id: str | None) -> float | None:
        """Seconds until a pipeline the Receive reads (``command_id``, else any: the pool's messages
        come from them too) produces something by itself -- a ``Start-Sleep`` ends -- or None when
        only a client message can change it (MS-PSRP 3.1.5.3.7)."""
        if command_id:
            pipe = session.pipelines.get(command_id.upper())
            pipes = [] if pipe is None else [pipe]
        else:
            pipes = list(session.pipelines.values())
        now = self.clock()
        waits = [seconds_until(p.run.next_wake(), now) for p in pipes if p.run is not None and not p.finished]
        known = [w for w in waits if w is not None]
        return min(known) if known else None

    # ------------------------------------------------------------------ disconnect / reconnect / connect
    def disconnect(self, session: PsrpSession, req: sh.DisconnectRequest) -> None:
        """MS-PSRP 3.1.5.3.16: the pool and its pipelines are Disconnected; pipelines keep running."""
        if session.state == DISCONNECTED:
            return
        for pipe in session.pipelines.values():
            self._pump(session, pipe)
        try:
            session.pool.disconnect()
        except PsrpStateError as exc:
            raise make_fault("InvalidParameter", f"The RunspacePool cannot be disconnected: {exc}") from None
        session.state = DISCONNECTED
        if req.idle_timeout is not None:
            session.idle_timeout = req.idle_timeout
        session.last_activity = self.clock()
        self._changed()

    def _reattach(self, session: PsrpSession, pool: RunspacePool) -> None:
        for pipe in session.pipelines.values():
            if pipe.pipeline is None:
                continue
            pipe.pipeline.pool = pool
            pool.pipelines[pipe.pipeline.pid] = pipe.pipeline
            if pipe.pipeline.state is PSInvocationState.Disconnected:
                pipe.pipeline.reconnect()
        session.pool = pool
        session.state = CONNECTED
        session.last_activity = self.clock()
        for pipe in session.pipelines.values():
            self._pump(session, pipe)

    def reconnect(self, session: PsrpSession) -> None:
        """MS-PSRP 3.1.5.3.18: the same client resumes; buffered output is delivered by the next Receives.
        Mock simplification: the shell's Reconnect also reattaches its pipelines (the spec has the client send
        one more Reconnect per command)."""
        if session.state == CONNECTED:
            return
        pool = session.pool
        events: list[Event] = []
        # The WinRS Reconnect has no PSRP message: Disconnected -> Connecting -> Opened on the server.
        try:
            pool._set_state(RunspacePoolState.Connecting, events)
            pool._set_state(RunspacePoolState.Opened, events)
        except PsrpStateError as exc:
            raise make_fault("InvalidParameter", f"The RunspacePool cannot be reconnected: {exc}") from None
        self._reattach(session, pool)

    def connect(self, session: PsrpSession, env: Envelope) -> bytes:
        """MS-PSRP 3.1.5.3.14: a (new) client attaches with SESSION_CAPABILITY + CONNECT_RUNSPACEPOOL;
        the answer (RUNSPACEPOOL_INIT_DATA + APPLICATION_PRIVATE_DATA) is in connectResponseXml."""
        if session.state == CONNECTED:
            raise make_fault("InternalError", f"The shell {session.shell_id} is already connected.")
        payload = env.payload
        content = payload.find(CONNECT_XML) if payload is not None else None
        if content is None:
            raise make_fault("InvalidParameter", "Connect of a PowerShell shell needs connectXml.")
        fresh = RunspacePool(Role.SERVER, session.pool.rpid, min_runspaces=session.pool.min_runspaces,
                             max_runspaces=session.pool.max_runspaces)
        fresh.application_private_data = self._private_data(session).data
        old_pool = session.pool
        session.pool = fresh
        try:
            self._feed(session, Defragmenter(max_message_size=MAX_CLIENT_MESSAGE), _b64(content.text, "connectXml"))
        except WSManFault:
            session.pool = old_pool
            raise
        if fresh.state is not RunspacePoolState.Opened:
            session.pool = old_pool
            raise make_fault("InvalidParameter", "connectXml must carry SESSION_CAPABILITY and CONNECT_RUNSPACEPOOL.")
        answer = Fragmenter(first_object_id=session.fragmenter.next_object_id)
        chunks = answer.fragment_many(pack_message(m) for m in fresh.take_outgoing())
        session.fragmenter.next_object_id = answer.next_object_id
        self._reattach(session, fresh)
        return b"".join(chunks)

    def report(self, session: PsrpSession) -> sh.ShellSpec:
        now = self.clock()
        return sh.ShellSpec(shell_id=session.shell_id, name=session.spec.name, resource_uri=RESOURCE_POWERSHELL,
                            owner=session.owner, input_streams=["stdin", "pr"], output_streams=["stdout"],
                            idle_timeout=session.idle_timeout, state=session.state,
                            shell_run_time=max(0.0, now - session.created),
                            shell_inactivity=max(0.0, now - session.last_activity))


def _stop_args(line: int, text: str) -> PSObject:
    """Debugger_Stop_Context (MS-PSRDP 2.2.9): DebuggerStopEventArgs with the invocation position."""
    invocation = PSObject(type_names=["System.Management.Automation.InvocationInfo", "System.Object"],
                          adapted_properties={"ScriptLineNumber": line, "Line": text, "OffsetInLine": 1})
    return PSObject(type_names=["System.Management.Automation.DebuggerStopEventArgs", "System.EventArgs",
                                "System.Object"],
                    adapted_properties={"InvocationInfo": invocation, "Breakpoints": ps_list([]),
                                        "ResumeAction": 0})


def _host_error(value: Any) -> ErrorRecordInfo:
    """The ErrorRecord of a failed host call (MS-PSRP 2.2.2.28 ``me``), or a generic one if unreadable."""
    try:
        return ErrorRecordInfo.from_object(value)
    except PsrpDecodeError:
        return ErrorRecordInfo("The host call failed on the client.", "HostCallFailed",
                               exception_type="System.Management.Automation.Remoting.PSRemotingDataStructureException")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# ====================================================================================== handlers
class PsrpHandlers:
    """The WS-Man side for the PowerShell resource URI; other resource URIs go to the previous handler."""

    def __init__(self, service: WSManService, host: PsrpHost) -> None:
        self.service = service
        self.host = host

    def install(self, handlers: dict[str, Callable[[Envelope, Principal], bytes]]) -> None:
        for action, mine in ((Action.CREATE, self.create), (Action.DELETE, self.delete),
                             (ShellAction.COMMAND, self.command), (ShellAction.SEND, self.send),
                             (ShellAction.RECEIVE, self.receive), (ShellAction.SIGNAL, self.signal),
                             (ShellAction.DISCONNECT, self.disconnect), (ShellAction.RECONNECT, self.reconnect),
                             (ShellAction.CONNECT, self.connect)):
            previous = handlers.get(action)
            handlers[action] = self._route(mine, previous)

    @staticmethod
    def _route(mine: Callable[[Envelope, Principal], bytes],
               previous: Callable[[Envelope, Principal], bytes] | None) -> Callable[[Envelope, Principal], bytes]:
        def handler(env: Envelope, principal: Principal) -> bytes:
            if is_powershell(env) or previous is None:
                return mine(env, principal)
            return previous(env, principal)
        return handler

    def _session(self, env: Envelope, principal: Principal, *, connected: bool = True) -> PsrpSession:
        return self.host.get(principal.name, required_shell_id(env), connected=connected)

    def create(self, env: Envelope, principal: Principal) -> bytes:
        """Shell Create of a PowerShell session configuration (MS-PSRP 3.1.5.3.1): the caller's SIDs
        must hold Execute under the Security SDDL of the configuration's WinRM plug-in (MS-WSMV
        3.1.4.1.34.1; MS-WMOD 2.9.3; harness.targets.mock.plugins), or under RootSDDL for a
        configuration without a plug-in entry; else w:AccessDenied (DSP0226 14.6.1). The session then
        runs with the caller's own rights (Runspace.administrator)."""
        sids = self.service.sids_of(principal)
        uri = env.header.resource_uri or RESOURCE_POWERSHELL
        try:
            plugin = find_plugin(self.service.config.plugins, uri)
            if plugin is not None:
                require_plugin_shell(plugin, uri, sids)
            else:
                root_sddl.require_shell(self.service.config.root_sddl, sids)
        except authz.AccessDenied as exc:
            raise make_fault("AccessDenied", exc.reason) from None
        session = self.host.create(principal.name, env, administrator=authz.ADMINISTRATORS in sids)
        epr = EndpointReference(address=env.header.to or "", resource_uri=RESOURCE_POWERSHELL,
                                selectors=sh.shell_selectors(session.shell_id))
        return sh.build_create_shell_response(env.header.message_id, epr, self.host.report(session))

    def delete(self, env: Envelope, principal: Principal) -> bytes:
        self.host.delete(principal.name, sh.shell_id_of(env.header.selectors))
        return msg.build_delete_response(env.header.message_id)

    def command(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal)
        return sh.build_command_response(env.header.message_id, self.host.command(session, env))

    def send(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal)
        self.host.send(session, sh.parse_send_request(env))
        return sh.build_send_response(env.header.message_id)

    def receive(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal)
        req = sh.parse_receive_request(env)
        result = self.host.receive(session, req, receive_budget(env, self.service.config, FRAGMENT_HEADER_SIZE + 64))
        if result is None:
            raise receive_timed_out(env, self.service.config, self.host.next_output(session, req.command_id))
        return sh.build_receive_response(env.header.message_id, result)

    def signal(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal)
        self.host.signal(session, sh.parse_signal_request(env))
        return sh.build_signal_response(env.header.message_id)

    def disconnect(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal)
        self.host.disconnect(session, sh.parse_disconnect_request(env))
        return sh.build_disconnect_response(env.header.message_id)

    def reconnect(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal, connected=False)
        sh.parse_reconnect_request(env)
        self.host.reconnect(session)
        return sh.build_reconnect_response(env.header.message_id)

    def connect(self, env: Envelope, principal: Principal) -> bytes:
        session = self._session(env, principal, connected=False)
        data = self.host.connect(session, env)
        el = etree.Element(CONNECT_RESPONSE_XML, nsmap={"pwsh": NS_PWSH})
        el.text = base64.b64encode(data).decode("ascii")
        return sh.build_connect_response(env.header.message_id, [el])


def is_powershell(env: Envelope) -> bool:
    """The request addresses a PowerShell shell (MS-PSRP 3.1.5.1: any ``.../powershell/<configuration>``)."""
    uri = (env.header.resource_uri or "").rstrip("/").lower()
    return uri == RESOURCE_POWERSHELL.lower() or uri.startswith("http://schemas.microsoft.com/powershell/")


def install_psrp_handlers(service: WSManService, clock: Callable[[], float] | None = None) -> PsrpHost:
    """Create the PSRP host, route the PowerShell resource URI to it, and let the cmd engine run
    ``powershell -EncodedCommand`` through the same safe engine; returns the host."""
    install_powershell_command()
    host = PsrpHost(service, service.config, clock or time.monotonic)
    PsrpHandlers(service, host).install(service._handlers)
    return host


__all__ = ["NS_PWSH", "PS_SIGNAL_SUFFIXES", "PsrpHandlers", "PsrpHost", "PsrpPipeline", "PsrpSession",
           "install_psrp_handlers", "is_powershell"]

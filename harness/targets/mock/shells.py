"""The mock's WinRS shell host and its WS-Man handlers (MS-WSMV 3.1.4.5 Create and 3.1.4.6 Delete of
``.../windows/shell/cmd``, 3.1.4.11 Command - 3.1.4.17 Connect; MS-WMOD 3.6), sans-IO.

Shells belong to the user who created them (another user's ShellId is "not found"). Quotas follow
the WinRS configuration (``winrm/config/winrs``): MaxShellsPerUser and MaxProcessesPerShell. A shell
no request touched for its IdleTimeOut is deleted with its commands (MS-WMOD 2.10.1: a broken
connection tears the state down); a disconnected shell keeps running and buffering output until
its (possibly new) idle time-out (MS-WSMV 3.1.4.15). Commands run in the SAFE simulated cmd of
:mod:`harness.targets.mock.cmd_engine` -- request data never reaches a host process.

Receive with nothing ready and the command still running is answered with w:TimedOut
(MS-WSMV 3.1.4.14; observed Windows behaviour: after OperationTimeout, WSManFault Code 2150858793).
The sans-IO handler asks to answer later (:mod:`harness.targets.mock.answer_later`): the HTTP
layer's driver waits until the host notifies a change (Send, Signal, Delete, Disconnect, buffer
room) or the simulated program's next output is due, and asks again, at most OperationTimeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

from harness.cim.store import CimStore
from harness.targets.mock import authorization as authz
from harness.targets.mock import root_sddl
from harness.targets.mock.answer_later import FALLBACK_POLL, answer_later
from harness.targets.mock.cmd_engine import CmdContext, CodePageError, SimulatedProcess, codec_for
from harness.targets.mock.config import MockConfig
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import Envelope
from harness.wire.wsman.faults import FaultDetail, WSManFault, make_fault
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.ns import RESOURCE_SHELL_CMD, Action, ShellAction

if TYPE_CHECKING:
    from harness.targets.mock.wsman_service import Principal, WSManService

#: ERROR_WSMAN_QUOTA_MAX_SHELLS (wsmerror.h 0x803381A5): Windows answers a Create beyond
#: MaxShellsPerUser with s:Sender w:QuotaLimit carrying this code (observed Windows behaviour).
ERROR_WSMAN_QUOTA_MAX_SHELLS: Final = 2150859173
#: ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ (wsmerror.h 0x803381E9): the mock reports a Command
#: beyond MaxProcessesPerShell with it (the per-shell command quota code of Windows).
ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL: Final = 2150859241
#: Windows defaults of ``winrm/config/winrs`` (observed Windows behaviour, Server 2022).
DEFAULT_IDLE_TIMEOUT: Final = 7200.0
DEFAULT_CODEPAGE: Final = 437
#: Commands a shell keeps after they finished (oldest finished ones are forgotten first).
MAX_COMMAND_RECORDS: Final = 256
#: Room kept for the envelope when packing stream data into a ReceiveResponse (DSP0226 6.2).
RECEIVE_OVERHEAD: Final = 4096
CONNECTED: Final = "Connected"
DISCONNECTED: Final = "Disconnected"


def refuse_when_shells_disabled(config: MockConfig) -> None:
    """``winrm/config/winrs`` AllowRemoteShellAccess=false: new Remote Shell connections MUST be
    rejected with wsman:InternalError (MS-WSMV 2.2.4.42); the message is Windows' (observed Windows
    behaviour). The mock applies it to PowerShell shells too, as the Group Policy setting does."""
    if not config.allow_remote_shell_access:
        raise make_fault("InternalError", "The WS-Management service cannot process the request. The service is "
                                          "configured to not accept any remote shell requests.")

@dataclass
class ShellCommand:
    command_id: str
    process: SimulatedProcess
    terminated: bool = False


@dataclass
class Shell:
    """One WinRS shell (MS-WSMV 2.2.4.37)."""

    shell_id: str
    owner: str
    spec: sh.ShellSpec
    codepage: int
    created: float
    last_activity: float
    idle_timeout: float
    state: str = CONNECTED
    buffer_mode: str = "Block"
    commands: dict[str, ShellCommand] = field(default_factory=dict)

    def running(self) -> int:
        return sum(1 for c in self.commands.values() if not c.process.done)


def shell_not_found(shell_id: str) -> WSManFault:
    """Unknown shell: w:InvalidSelectors, Code 2150858843 (observed Windows behaviour; the
    catalogue's template carries the detail and the code)."""
    return make_fault(
        "InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation.")


class OwnedShell(Protocol):
    """What :func:`find_owned_shell` needs of a shell record (WinRS shell or PowerShell RunspacePool)."""

    shell_id: str
    owner: str
    state: str
    last_activity: float


_S = TypeVar("_S", bound=OwnedShell)


def find_owned_shell(shells: Mapping[str, _S], owner: str, shell_id: str | None, now: float, *,
                     connected: bool = True) -> _S:
    """The caller's shell from ``shells`` (keyed by upper-case ShellId), touched at ``now``.

    Another user's shell is "not found" (:func:`shell_not_found`); with ``connected`` a disconnected
    shell answers w:InternalError (MS-WSMV 3.1.4.16: operations need a connected shell; mock choice of fault).
    """
    shell = shells.get((shell_id or "").upper())
    if shell is None or shell.owner.lower() != owner.lower():
        raise shell_not_found(shell_id or "")
    if connected and shell.state != CONNECTED:
        raise make_fault("InternalError", f"The shell {shell.shell_id} is disconnected; reconnect first.")
    shell.last_activity = now
    return shell


def required_shell_id(env: Envelope) -> str:
    """The ShellId selector of a shell operation (MS-WSMV 3.1.4.11 - 3.1.4.17); w:InvalidSelectors
    with the InsufficientSelectors detail when it is missing."""
    sid = sh.shell_id_of(env.header.selectors)
    if sid is None:
        raise make_fault("InvalidSelectors", "The request needs the ShellId selector.",
                         detail=FaultDetail.INSUFFICIENT_SELECTORS)
    return sid


def receive_budget(env: Envelope, config: MockConfig, minimum: int) -> int:
    """Raw stream bytes one ReceiveResponse may carry (at least ``minimum``): the smaller of the
    client's MaxEnvelopeSize and the service's, less :data:`RECEIVE_OVERHEAD`, times 3/4 for base64
    (DSP0226 6.2; MS-WSMV 3.1.4.14)."""
    requested = env.header.max_envelope_size
    limit = min(requested, config.max_envelope_size) if requested else config.max_envelope_size
    return max(minimum, (limit - RECEIVE_OVERHEAD) * 3 // 4)


def receive_timed_out(env: Envelope, config: MockConfig, recheck: float | None = None) -> WSManFault:
    """Nothing to send yet: ask to answer later (:func:`~harness.targets.mock.answer_later.answer_later`)
    for the request's OperationTimeout (else the service's MaxTimeout; capped by MaxTimeout) and return
    the w:TimedOut fault to raise, the answer when the wait ends empty (MS-WSMV 3.1.4.14). ``recheck``:
    seconds until the command produces output by itself (its simulated clock), if it will."""
    timeout = env.header.operation_timeout
    budget = timeout if timeout is not None else config.max_timeout
    answer_later(min(budget, config.max_timeout), recheck=recheck)
    return make_fault("TimedOut")


def seconds_until(wake_at: float | None, now: float) -> float | None:
    """Seconds from ``now`` to a simulated program's wake time; None stays None (only input, a
    Signal or buffer room -- all notified -- can move it). A wake time already past means the
    program could not go on when it was polled (its buffer is full) or the clock moved since:
    re-ask after the bounded :data:`~harness.targets.mock.answer_later.FALLBACK_POLL`, never spin."""
    if wake_at is None:
        return None
    return wake_at - now if wake_at > now else FALLBACK_POLL


class ShellHost:
    """Every shell of the mock, with quotas and the idle reaper (MS-WMOD 2.10.1)."""

    def __init__(self, store: CimStore | None, config: MockConfig,
                 clock: Callable[[], float] = time.monotonic, *,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.shells: dict[str, Shell] = {}
        #: Called when a waiting Receive may get another answer now (the service's Wakeups.notify).
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ limits from the config
    @property
    def max_shells_per_user(self) -> int:
        return self.config.max_shells_per_user

    @property
    def max_processes_per_shell(self) -> int:
        return self.config.max_processes_per_shell

    @property
    def default_idle_timeout(self) -> float:
        return self.config.shell_idle_timeout

    # ------------------------------------------------------------------ lifecycle
    def reap(self) -> list[str]:
        """Delete every shell idle (or disconnected) longer than its IdleTimeOut, or past its
        Lifetime (MS-WMOD 2.10.1; MS-WSMV 2.2.4.37 IdleTimeOut / Lifetime). Returns their ids."""
        now = self.clock()
        gone = []
        for sid, s in list(self.shells.items()):
            expired = now - s.last_activity >= s.idle_timeout
            if s.spec.lifetime is not None and now - s.created >= s.spec.lifetime:
                expired = True
            if expired:
                for c in s.commands.values():
                    c.process.signal(sh.SIGNAL_TERMINATE)
                del self.shells[sid]
                gone.append(sid)
        if gone:
            self._changed()
        return gone

    def create(self, owner: str, spec: sh.ShellSpec, options: sh.ShellOptions) -> Shell:
        """MS-WSMV 3.1.4.5: a new shell, within MaxShellsPerUser, when remote shells are allowed."""
        refuse_when_shells_disabled(self.config)
        self.reap()
        mine = sum(1 for s in self.shells.values() if s.owner.lower() == owner.lower())
        if mine >= self.max_shells_per_user:
            raise make_fault(
                "QuotaLimit",
                "The WS-Management service cannot process the request. The maximum number of concurrent shells "
                "for this user has been exceeded. Close existing shells or raise the quota for this user.",
                wsman_code=ERROR_WSMAN_QUOTA_MAX_SHELLS,
                message=f"The WS-Management service cannot process the request. This user is allowed a maximum "
                        f"number of {self.max_shells_per_user} concurrent shells, which has been exceeded. Close "
                        f"existing shells or raise the quota for this user.")
        codepage = options.codepage if options.codepage is not None else DEFAULT_CODEPAGE
        try:
            codec_for(codepage)
        except CodePageError as exc:
            raise make_fault("InvalidOptions", f"The WINRS_CODEPAGE option is not valid: {exc}",
                             detail=FaultDetail.INVALID_VALUE) from None
        if not set(spec.input_streams) <= {"stdin", "pr"} or not spec.output_streams:
            raise make_fault("InvalidParameter", "A cmd shell offers the input stream stdin and the output streams "
                                                 "stdout and stderr.")
        shell_id = (spec.shell_id or str(uuid.uuid4())).upper()
        if shell_id in self.shells:
            raise make_fault("AlreadyExists", f"A shell with ShellId {shell_id} already exists.")
        now = self.clock()
        idle = spec.idle_timeout if spec.idle_timeout is not None else self.default_idle_timeout
        shell = Shell(shell_id, owner, spec, codepage, now, now, min(idle, self.config.max_timeout * 10_000))
        self.shells[shell_id] = shell
        return shell

    def get(self, owner: str, shell_id: str | None, *, connected: bool = True) -> Shell:
        """The caller's shell, touched (its idle clock restarts); w:InvalidSelectors if unknown."""
        self.reap()
        return find_owned_shell(self.shells, owner, shell_id, self.clock(), connected=connected)

    def delete(self, owner: str, shell_id: str | None) -> None:
        """MS-WSMV 3.1.4.6: the shell and its commands are gone."""
        shell = self.get(owner, shell_id, connected=False)
        for c in shell.commands.values():
            c.process.signal(sh.SIGNAL_TERMINATE)
        del self.shells[shell.shell_id]
        self._changed()

    # ------------------------------------------------------------------ commands
    def command(self, shell: Shell, req: sh.CommandRequest) -> str:
        """MS-WSMV 3.1.4.11: start a command line in a new simulated ``cmd /c``."""
        if shell.running() >= self.max_processes_per_shell:
            raise make_fault("QuotaLimit",
                             f"The WS-Management service cannot process the request. This shell is allowed a maximum "
                             f"of {self.max_processes_per_shell} processes, which has been exceeded.",
                             wsman_code=ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL)
        command_id = (req.command_id or str(uuid.uuid4())).upper()
        if command_id in shell.commands:
            raise make_fault("AlreadyExists", f"A command with CommandId {command_id} already exists.")
        env = dict(shell.spec.environment)
        env.setdefault("COMPUTERNAME", self.config.machine)
        env.setdefault("USERNAME", shell.owner)
        env.setdefault("USERPROFILE", f"C:\\Users\\{shell.owner}")
        cwd = shell.spec.working_directory or f"C:\\Users\\{shell.owner}"
        ctx = CmdContext(env, cwd, self.config.machine, shell.owner, self.store)
        process = SimulatedProcess(req.command_line, ctx, shell.codepage, self.clock())
        shell.commands[command_id] = ShellCommand(command_id, process)
        self._forget_old(shell)
        return command_id

    @staticmethod
    def _forget_old(shell: Shell) -> None:
        finished = [c for c in shell.commands.values() if c.process.done]
        for c in finished[: max(0, len(shell.commands) - MAX_COMMAND_RECORDS)]:
            del shell.commands[c.command_id]

    def _command(self, shell: Shell, command_id: str | None) -> ShellCommand:
        c = shell.commands.get((command_id or "").upper())
        if c is None:
            # Mock choice (Windows' exact fault not recorded): the CommandId names nothing.
            raise make_fault("InvalidParameter", f"The command with CommandId {command_id} was not found in the "
                                                 f"shell {shell.shell_id}.")
        return c

    def send(self, shell: Shell, streams: list[sh.StreamData]) -> None:
        """MS-WSMV 3.1.4.13: input to a command's stdin; End closes it."""
        for s in streams:
            if s.name.lower() not in shell.spec.input_streams and s.name.lower() != "stdin":
                raise make_fault("InvalidParameter", f"The shell has no input stream {s.name}.")
            self._command(shell, s.command_id).process.write_stdin(s.data, s.end, self.clock())
        self._changed()

    def signal(self, shell: Shell, req: sh.SignalRequest) -> None:
        """MS-WSMV 3.1.4.12: terminate / ctrl_c / ctrl_break a command."""
        name = sh.signal_name(req.code)
        if name not in (sh.SIGNAL_TERMINATE, sh.SIGNAL_CTRL_C, sh.SIGNAL_CTRL_BREAK):
            raise make_fault("InvalidParameter", f"The signal code {req.code} is not supported by the cmd shell.")
        c = self._command(shell, req.command_id)
        c.process.poll(self.clock())
        c.process.signal(name)
        if name == sh.SIGNAL_TERMINATE:
            c.terminated = True
            for buf in c.process.output.values():
                buf.clear()
        self._changed()

    def receive(self, shell: Shell, req: sh.ReceiveRequest, budget: int) -> sh.ReceiveResult | None:
        """MS-WSMV 3.1.4.14: buffered output of the wanted streams and the command state; None when
        the command is still running and nothing is buffered (the caller answers w:TimedOut)."""
        c = self._command(shell, req.command_id)
        p = c.process
        p.poll(self.clock())
        wanted = [n for n in req.streams if n in shell.spec.output_streams or n in p.output]
        blocked = not p.drop and any(len(b) >= p.buffer_limit for b in p.output.values())
        chunks = list(p.take(wanted, max(budget, 1)))
        p.poll(self.clock())  # room was made: a blocked program may go on
        drained = p.buffered(wanted) == 0
        if not chunks and not p.done:
            return None
        if chunks and blocked:
            self._changed()  # room made for a blocked program: another Receive may get output now
        result = sh.ReceiveResult([sh.StreamData(n, d, c.command_id) for n, d in chunks])
        if p.done and drained:
            for n in wanted:
                result.streams.append(sh.StreamData(n, b"", c.command_id, end=True))
            result.state = sh.CommandState(c.command_id, sh.STATE_DONE, p.exit_code)
        else:
            result.state = sh.CommandState(c.command_id, sh.STATE_RUNNING)
        return result

    # ------------------------------------------------------------------ disconnect / reconnect
    def disconnect(self, shell: Shell, req: sh.DisconnectRequest) -> None:
        """MS-WSMV 3.1.4.15: the shell keeps running and buffers output; IdleTimeOut overrides the
        Create value; BufferMode Drop lets old output go instead of blocking the commands."""
        shell.state = DISCONNECTED
        if req.idle_timeout is not None:
            shell.idle_timeout = req.idle_timeout
        if req.buffer_mode is not None:
            shell.buffer_mode = req.buffer_mode
        for c in shell.commands.values():
            c.process.drop = shell.buffer_mode == "Drop"
        shell.last_activity = self.clock()
        self._changed()  # a Receive waiting on the shell now answers that it is disconnected

    def reconnect(self, shell: Shell) -> None:
        """MS-WSMV 3.1.4.16: back to connected; buffered output is delivered by the next Receive.
        A Reconnect of a connected shell is ignored."""
        shell.state = CONNECTED
        for c in shell.commands.values():
            c.process.drop = False
        shell.last_activity = self.clock()

    def next_output(self, shell: Shell, command_id: str | None) -> float | None:
        """Seconds until the command produces output (or ends) by itself, or the shell's Lifetime
        ends (MS-WSMV 2.2.4.37); None when only input or a Signal can change it."""
        now = self.clock()
        c = shell.commands.get((command_id or "").upper())
        times = [] if c is None else [seconds_until(c.process.next_wake(), now)]
        if shell.spec.lifetime is not None:
            times.append(max(0.0, shell.created + shell.spec.lifetime - now))
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def connect(self, shell: Shell) -> None:
        """MS-WSMV 3.1.4.17: w:InternalError when the shell is already connected."""
        if shell.state == CONNECTED:
            raise make_fault("InternalError", f"The shell {shell.shell_id} is already connected.")
        self.reconnect(shell)

    def report(self, shell: Shell) -> sh.ShellSpec:
        """The rsp:Shell Windows returns in CreateResponse (MS-WSMV 2.2.4.37)."""
        now = self.clock()
        return sh.ShellSpec(shell_id=shell.shell_id, name=shell.spec.name, resource_uri=RESOURCE_SHELL_CMD,
                            owner=shell.owner, input_streams=shell.spec.input_streams,
                            output_streams=shell.spec.output_streams, idle_timeout=shell.idle_timeout,
                            buffer_mode=shell.buffer_mode, state=shell.state,
                            shell_run_time=max(0.0, now - shell.created),
                            shell_inactivity=max(0.0, now - shell.last_activity))


# ====================================================================================== handlers
class ShellHandlers:
    """The WS-Man side: decode, check, call the host, encode (registered in WSManService)."""

    def __init__(self, service: WSManService, host: ShellHost) -> None:
        self.service = service
        self.host = host

    def install(self, handlers: dict[str, Callable[[Envelope, Principal], bytes]]) -> None:
        """Route Create/Delete of the cmd resource here, and add the shell actions."""
        plain_create, plain_delete = handlers[Action.CREATE], handlers[Action.DELETE]

        def create(env: Envelope, principal: Principal) -> bytes:
            return self.create(env, principal) if _is_shell(env) else plain_create(env, principal)

        def delete(env: Envelope, principal: Principal) -> bytes:
            return self.delete(env, principal) if _is_shell(env) else plain_delete(env, principal)

        handlers[Action.CREATE] = create
        handlers[Action.DELETE] = delete
        handlers[ShellAction.COMMAND] = self._shell_only(self.command)
        handlers[ShellAction.SEND] = self._shell_only(self.send)
        handlers[ShellAction.RECEIVE] = self._shell_only(self.receive)
        handlers[ShellAction.SIGNAL] = self._shell_only(self.signal)
        handlers[ShellAction.DISCONNECT] = self._shell_only(self.disconnect)
        handlers[ShellAction.RECONNECT] = self._shell_only(self.reconnect)
        handlers[ShellAction.CONNECT] = self._shell_only(self.connect)

    @staticmethod
    def _shell_only(fn: Callable[[Envelope, Principal], bytes]) -> Callable[[Envelope, Principal], bytes]:
        def handler(env: Envelope, principal: Principal) -> bytes:
            if not _is_shell(env):
                raise make_fault("ActionNotSupported",
                                 f"The action {env.header.action} is not supported by this resource.")
            return fn(env, principal)
        return handler

    def _shell(self, env: Envelope, principal: Principal, *, connected: bool = True) -> Shell:
        return self.host.get(principal.name, required_shell_id(env), connected=connected)

    def create(self, env: Envelope, principal: Principal) -> bytes:
        """Shell Create (MS-WSMV 3.1.4.5): the RootSDDL of the service must grant the caller GX
        (harness.targets.mock.root_sddl), else w:AccessDenied (DSP0226 14.6.1)."""
        try:
            root_sddl.require_shell(self.service.config.root_sddl, self.service.sids_of(principal))
        except authz.AccessDenied as exc:
            raise make_fault("AccessDenied", exc.reason) from None
        spec = sh.parse_create_shell_request(env)
        shell = self.host.create(principal.name, spec, sh.shell_options(env.header))
        epr = EndpointReference(address=env.header.to or "", resource_uri=RESOURCE_SHELL_CMD,
                                selectors=sh.shell_selectors(shell.shell_id))
        return sh.build_create_shell_response(env.header.message_id, epr, self.host.report(shell))

    def delete(self, env: Envelope, principal: Principal) -> bytes:
        sid = sh.shell_id_of(env.header.selectors)
        self.host.delete(principal.name, sid)
        return msg.build_delete_response(env.header.message_id)

    def command(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal)
        command_id = self.host.command(shell, sh.parse_command_request(env))
        return sh.build_command_response(env.header.message_id, command_id)

    def send(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal)
        self.host.send(shell, sh.parse_send_request(env))
        return sh.build_send_response(env.header.message_id)

    def receive(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal)
        req = sh.parse_receive_request(env)
        result = self.host.receive(shell, req, receive_budget(env, self.service.config, 1))
        if result is None:
            raise receive_timed_out(env, self.service.config, self.host.next_output(shell, req.command_id))
        return sh.build_receive_response(env.header.message_id, result)

    def signal(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal)
        self.host.signal(shell, sh.parse_signal_request(env))
        return sh.build_signal_response(env.header.message_id)

    def disconnect(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal)
        self.host.disconnect(shell, sh.parse_disconnect_request(env))
        return sh.build_disconnect_response(env.header.message_id)

    def reconnect(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal, connected=False)
        sh.parse_reconnect_request(env)
        self.host.reconnect(shell)
        return sh.build_reconnect_response(env.header.message_id)

    def connect(self, env: Envelope, principal: Principal) -> bytes:
        shell = self._shell(env, principal, connected=False)
        sh.parse_connect_request(env)
        self.host.connect(shell)
        return sh.build_connect_response(env.header.message_id)


def _is_shell(env: Envelope) -> bool:
    return (env.header.resource_uri or "").rstrip("/").lower() == RESOURCE_SHELL_CMD.lower()


def install_shell_handlers(service: WSManService, clock: Callable[[], float] | None = None) -> ShellHost:
    """Create the service's shell host and register its handlers; returns the host."""
    host = ShellHost(service.store, service.config, clock or time.monotonic, on_change=service.wakeups.notify)
    ShellHandlers(service, host).install(service._handlers)
    return host


__all__ = ["ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL", "ERROR_WSMAN_QUOTA_MAX_SHELLS", "OwnedShell", "Shell",
           "ShellCommand", "ShellHandlers", "ShellHost", "find_owned_shell", "install_shell_handlers",
           "receive_budget", "receive_timed_out", "refuse_when_shells_disabled", "required_shell_id", "seconds_until",
           "shell_not_found"]

"""Async WinRS client over :class:`~harness.client.wsman.WSManClient` (MS-WSMV 3.1.4.5 Create,
3.1.4.6 Delete, 3.1.4.11 Command - 3.1.4.17 Connect; MS-WMOD 3.6).

Every message goes through ``WSManClient.exchange`` and so is validated against the XSDs in both
directions when the client has a validator. A target's fault is raised as ``WSManFault``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from harness.client.wsman import DEFAULT_OPERATION_TIMEOUT, ProtocolViolation, WSManClient
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import Envelope
from harness.wire.wsman.faults import ERROR_WSMAN_OPERATION_TIMEDOUT, WSManFault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import RESOURCE_SHELL_CMD, Action

#: ERROR_WSMAN_OPERATION_TIMEDOUT: a Receive that found no output within OperationTimeout
#: (observed Windows behaviour; clients such as pywinrm and pypsrp retry on it).
RECEIVE_TIMED_OUT = ERROR_WSMAN_OPERATION_TIMEDOUT

_T = TypeVar("_T")


@dataclass
class CommandResult:
    """Everything a command wrote and how it ended (MS-WSMV 3.1.4.14)."""

    command_id: str
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    state: str = sh.STATE_PENDING
    receives: int = 0
    timeouts: int = 0

    @property
    def done(self) -> bool:
        return self.state == sh.STATE_DONE


@dataclass
class WinRSShell:
    """One remote cmd shell. ``await shell.create()`` then commands; ``await shell.delete()``."""

    client: WSManClient
    resource_uri: str = RESOURCE_SHELL_CMD
    spec: sh.ShellSpec = field(default_factory=sh.ShellSpec)
    options: sh.ShellOptions = field(default_factory=sh.ShellOptions)
    shell_id: str | None = None
    created: sh.ShellCreated | None = None
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT

    # ------------------------------------------------------------------ plumbing
    def _header(self, action: str) -> Header:
        if self.shell_id is None and action != Action.CREATE:
            raise ValueError("the shell is not created")
        selectors = sh.shell_selectors(self.shell_id) if self.shell_id and action != Action.CREATE else None
        header = self.client.header(action, self.resource_uri, selectors)
        header.operation_timeout = self.operation_timeout
        return header

    @staticmethod
    def _decode(parse: Callable[[Envelope], _T], env: Envelope) -> _T:
        return WSManClient._decode(parse, env)

    # ------------------------------------------------------------------ lifecycle
    async def create(self, *, environment: Mapping[str, str] | None = None, working_directory: str | None = None,
                     idle_timeout: float | None = None, codepage: int | None = None,
                     no_profile: bool | None = None) -> str:
        """Create the shell (MS-WSMV 3.1.4.5 with rsp:Shell, 2.2.4.37); returns its ShellId."""
        if environment is not None:
            self.spec.environment = dict(environment)
        if working_directory is not None:
            self.spec.working_directory = working_directory
        if idle_timeout is not None:
            self.spec.idle_timeout = idle_timeout
        if codepage is not None:
            self.options.codepage = codepage
        if no_profile is not None:
            self.options.no_profile = no_profile
        env = await self.client.exchange(sh.build_create_shell_request(self._header(Action.CREATE), self.spec,
                                                                      self.options))
        created: sh.ShellCreated = self._decode(sh.parse_create_shell_response, env)
        self.created = created
        self.shell_id = created.shell_id
        return created.shell_id

    async def delete(self) -> None:
        """Delete the shell (MS-WSMV 3.1.4.6)."""
        env = await self.client.exchange(msg.build_delete_request(self._header(Action.DELETE)))
        self._decode(msg.parse_delete_response, env)
        self.shell_id = None

    async def __aenter__(self) -> WinRSShell:
        if self.shell_id is None:
            await self.create()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.shell_id is not None:
            with contextlib.suppress(WSManFault):  # already reaped or deleted: nothing to clean up
                await self.delete()

    # ------------------------------------------------------------------ commands
    async def start(self, command: str, arguments: list[str] | None = None, *, command_id: str | None = None,
                    skip_cmd_shell: bool | None = None) -> str:
        """Command (MS-WSMV 3.1.4.11): returns the CommandId."""
        header = self._header("")
        opts = sh.ShellOptions(console_mode_stdin=True, skip_cmd_shell=skip_cmd_shell
                               if skip_cmd_shell is not None else False)
        req = sh.CommandRequest(command, list(arguments or []), command_id)
        env = await self.client.exchange(sh.build_command_request(header, req, opts))
        cid: str = self._decode(sh.parse_command_response, env)
        return cid

    async def send(self, command_id: str, data: bytes, *, end: bool = False, stream: str = "stdin") -> None:
        """Send (MS-WSMV 3.1.4.13) input to a command."""
        env = await self.client.exchange(sh.build_send_request(self._header(""),
                                                               [sh.StreamData(stream, data, command_id, end)]))
        self._decode(sh.parse_send_response, env)

    async def receive(self, command_id: str, streams: tuple[str, ...] = ("stdout", "stderr")) -> sh.ReceiveResult:
        """One Receive (MS-WSMV 3.1.4.14). w:TimedOut is raised as WSManFault."""
        env = await self.client.exchange(sh.build_receive_request(
            self._header(""), sh.ReceiveRequest(list(streams), command_id)))
        result: sh.ReceiveResult = self._decode(sh.parse_receive_response, env)
        return result

    async def collect(self, command_id: str, *, max_receives: int = 1000,
                      result: CommandResult | None = None) -> CommandResult:
        """Receive until CommandState Done (MS-WSMV 3.1.4.14), retrying on w:TimedOut as Windows
        clients do; bounded by ``max_receives``."""
        out = result or CommandResult(command_id)
        while out.receives < max_receives:
            out.receives += 1
            try:
                got = await self.receive(command_id)
            except WSManFault as fault:
                if fault.wsman_code == RECEIVE_TIMED_OUT or fault.subcode_name == "TimedOut":
                    out.timeouts += 1
                    continue
                raise
            out.stdout += got.data("stdout")
            out.stderr += got.data("stderr")
            if got.state is not None:
                out.state = got.state.state
                if got.state.done:
                    out.exit_code = got.state.exit_code
                    return out
        raise ProtocolViolation(f"command {command_id} did not reach CommandState Done in {max_receives} Receives")

    async def signal(self, command_id: str, code: str = sh.SIGNAL_TERMINATE) -> None:
        """Signal (MS-WSMV 3.1.4.12): ``terminate``, ``ctrl_c``, ``ctrl_break`` or a code URI."""
        env = await self.client.exchange(sh.build_signal_request(self._header(""),
                                                                 sh.SignalRequest(code, command_id)))
        self._decode(sh.parse_signal_response, env)

    async def run_command(self, command: str, arguments: list[str] | None = None, *,
                          stdin: bytes | None = None) -> CommandResult:
        """Command, optional input (closed with End), Receive until Done, then the final terminate
        Signal MS-WSMV 3.1.4.14 asks for."""
        cid = await self.start(command, arguments)
        if stdin is not None:
            await self.send(cid, stdin, end=True)
        result = await self.collect(cid)
        await self.signal(cid, sh.SIGNAL_TERMINATE)
        return result

    # ------------------------------------------------------------------ disconnect / reconnect
    async def disconnect(self, *, idle_timeout: float | None = None, buffer_mode: str | None = None) -> None:
        """Disconnect (MS-WSMV 3.1.4.15)."""
        env = await self.client.exchange(sh.build_disconnect_request(
            self._header(""), sh.DisconnectRequest(idle_timeout, buffer_mode)))
        self._decode(sh.parse_disconnect_response, env)

    async def reconnect(self) -> None:
        """Reconnect (MS-WSMV 3.1.4.16)."""
        env = await self.client.exchange(sh.build_reconnect_request(self._header("")))
        self._decode(sh.parse_reconnect_response, env)

    async def connect(self) -> None:
        """Connect (MS-WSMV 3.1.4.17)."""
        env = await self.client.exchange(sh.build_connect_request(self._header("")))
        self._decode(sh.parse_connect_response, env)


__all__ = ["RECEIVE_TIMED_OUT", "CommandResult", "WinRSShell"]

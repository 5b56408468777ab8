"""WinRS remote shell messages (MS-WSMV "Text-based Command Shell" scenario), sans-IO.

Every request has a ``build_*`` and a ``parse_*``, every response too. Body layouts:

* Create of ``.../windows/shell/cmd`` carries ``rsp:Shell`` (MS-WSMV 2.2.4.37; 3.1.4.5) and the
  WINRS_* options in ``wsman:OptionSet``; CreateResponse is ``wxf:ResourceCreated`` (whose EPR has
  the ``ShellId`` selector) followed by the created ``rsp:Shell`` (observed Windows behaviour).
* Command: ``rsp:CommandLine`` (Command, Arguments*; optional CommandId attribute) -> ``rsp:CommandResponse``
  (MS-WSMV 3.1.4.11).
* Signal: ``rsp:Signal CommandId=`` with ``rsp:Code`` -> ``rsp:SignalResponse`` (MS-WSMV 2.2.4.38; 3.1.4.12).
* Send: ``rsp:Send`` of base64 ``rsp:Stream Name= CommandId= End=`` -> ``rsp:SendResponse``
  (MS-WSMV 2.2.4.32; 3.1.4.13).
* Receive: ``rsp:Receive`` with ``rsp:DesiredStream`` -> ``rsp:ReceiveResponse`` of streams and
  ``rsp:CommandState State= `` with ``rsp:ExitCode`` (MS-WSMV 2.2.4.26; 3.1.4.14).
* Delete of the shell: wxf:Delete with the ShellId selector (MS-WSMV 3.1.4.6).
* Disconnect (``rsp:IdleTimeOut``, ``rsp:BufferMode``), Reconnect, Connect (MS-WSMV 3.1.4.15 - 3.1.4.17).

Malformed bodies raise :class:`~harness.wire.wsman.errors.WSManDecodeError` only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from lxml import etree

from harness.wire.xmlsafe import xs_boolean

from . import messages as msg
from ._xml import children as _children
from ._xml import expect_action as _expect
from ._xml import sub as _sub
from ._xml import text as _text
from ._xml import with_action as _with_action
from .duration import format_duration, parse_duration
from .envelope import Envelope, build_envelope
from .errors import WSManDecodeError
from .header import EndpointReference, Header, Option
from .ns import NS_SHELL, RESOURCE_SHELL_CMD, Action, ShellAction, qn

_Element = etree._Element

RSP_NSMAP: Final = {"rsp": NS_SHELL}
RSP_SHELL = qn(NS_SHELL, "Shell")
RSP_COMMAND_LINE = qn(NS_SHELL, "CommandLine")
RSP_COMMAND = qn(NS_SHELL, "Command")
RSP_ARGUMENTS = qn(NS_SHELL, "Arguments")
RSP_COMMAND_RESPONSE = qn(NS_SHELL, "CommandResponse")
RSP_COMMAND_ID = qn(NS_SHELL, "CommandId")
RSP_SEND = qn(NS_SHELL, "Send")
RSP_SEND_RESPONSE = qn(NS_SHELL, "SendResponse")
RSP_STREAM = qn(NS_SHELL, "Stream")
RSP_RECEIVE = qn(NS_SHELL, "Receive")
RSP_DESIRED_STREAM = qn(NS_SHELL, "DesiredStream")
RSP_RECEIVE_RESPONSE = qn(NS_SHELL, "ReceiveResponse")
RSP_COMMAND_STATE = qn(NS_SHELL, "CommandState")
RSP_EXIT_CODE = qn(NS_SHELL, "ExitCode")
RSP_SIGNAL = qn(NS_SHELL, "Signal")
RSP_SIGNAL_RESPONSE = qn(NS_SHELL, "SignalResponse")
RSP_CODE = qn(NS_SHELL, "Code")
RSP_DISCONNECT = qn(NS_SHELL, "Disconnect")
RSP_DISCONNECT_RESPONSE = qn(NS_SHELL, "DisconnectResponse")
RSP_RECONNECT = qn(NS_SHELL, "Reconnect")
RSP_RECONNECT_RESPONSE = qn(NS_SHELL, "ReconnectResponse")
RSP_CONNECT = qn(NS_SHELL, "Connect")
RSP_CONNECT_RESPONSE = qn(NS_SHELL, "ConnectResponse")
RSP_IDLE_TIMEOUT = qn(NS_SHELL, "IdleTimeOut")
RSP_BUFFER_MODE = qn(NS_SHELL, "BufferMode")
RSP_ENVIRONMENT = qn(NS_SHELL, "Environment")
RSP_VARIABLE = qn(NS_SHELL, "Variable")

#: The selector naming a shell in its EPR (MS-WSMV 3.1.4.11: ``<wsman:Selector Name="ShellId">``).
#: Observed Windows behaviour: the selector name is matched case-insensitively (``ShellID`` works too).
SHELL_ID_SELECTOR: Final = "ShellId"

#: WinRS options of wsman:OptionSet (MS-WSMV 3.1.4.5 shell Create, 3.1.4.11 Command).
OPTION_NOPROFILE: Final = "WINRS_NOPROFILE"
OPTION_CODEPAGE: Final = "WINRS_CODEPAGE"
OPTION_CONSOLEMODE_STDIN: Final = "WINRS_CONSOLEMODE_STDIN"
OPTION_SKIP_CMD_SHELL: Final = "WINRS_SKIP_CMD_SHELL"
OPTION_KEEPALIVE: Final = "WSMAN_CMDSHELL_OPTION_KEEPALIVE"
#: Options a WinRS shell understands (a MustComply on them can be honoured).
SHELL_OPTIONS: Final = frozenset({OPTION_NOPROFILE, OPTION_CODEPAGE, OPTION_CONSOLEMODE_STDIN,
                                  OPTION_SKIP_CMD_SHELL, OPTION_KEEPALIVE})

#: Signal codes (MS-WSMV 2.2.4.38), by short name.
SIGNAL_TERMINATE: Final = "terminate"
SIGNAL_CTRL_C: Final = "ctrl_c"
SIGNAL_CTRL_BREAK: Final = "ctrl_break"
_SIGNAL_URIS: Final = {
    ShellAction.SIGNAL_TERMINATE.lower(): SIGNAL_TERMINATE,
    ShellAction.SIGNAL_CTRL_C.lower(): SIGNAL_CTRL_C,
    ShellAction.SIGNAL_CTRL_BREAK.lower(): SIGNAL_CTRL_BREAK,
}
SIGNAL_URIS: Final = {
    SIGNAL_TERMINATE: ShellAction.SIGNAL_TERMINATE,
    SIGNAL_CTRL_C: ShellAction.SIGNAL_CTRL_C,
    SIGNAL_CTRL_BREAK: ShellAction.SIGNAL_CTRL_BREAK,
}

STATE_DONE: Final = ShellAction.COMMAND_STATE_DONE
STATE_RUNNING: Final = ShellAction.COMMAND_STATE_RUNNING
STATE_PENDING: Final = ShellAction.COMMAND_STATE_PENDING

#: Bounds on what a decoder accepts (an envelope is already size-limited; these stop silly shapes).
MAX_STREAMS = 64
MAX_ARGUMENTS = 1024
MAX_VARIABLES = 1024


def signal_name(code: str) -> str:
    """Short name of a signal code URI (``terminate``, ``ctrl_c``, ``ctrl_break``), compared
    case-insensitively (observed client behaviour: pypsrp writes ``signal/Terminate``, pywinrm
    ``signal/terminate``); an unknown code is returned unchanged."""
    return _SIGNAL_URIS.get(code.strip().lower(), code.strip())


def shell_selectors(shell_id: str) -> dict[str, str | EndpointReference]:
    """The SelectorSet that addresses a shell (MS-WSMV 3.1.4.11 - 3.1.4.17)."""
    return {SHELL_ID_SELECTOR: shell_id}


def shell_id_of(selectors: dict[str, str | EndpointReference]) -> str | None:
    """The ShellId selector value, matched case-insensitively; None when absent."""
    for name, value in selectors.items():
        if name.lower() == SHELL_ID_SELECTOR.lower() and isinstance(value, str):
            return value.strip()
    return None


# ================================================================================ data
@dataclass
class ShellSpec:
    """``rsp:Shell`` (MS-WSMV 2.2.4.37): what a client asks for in Create and what the server reports.

    Durations are seconds. ``environment`` keeps the order of ``rsp:Variable`` elements.
    """

    shell_id: str | None = None
    name: str | None = None
    resource_uri: str | None = None
    owner: str | None = None
    client_ip: str | None = None
    input_streams: list[str] = field(default_factory=lambda: ["stdin"])
    output_streams: list[str] = field(default_factory=lambda: ["stdout", "stderr"])
    working_directory: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    lifetime: float | None = None
    idle_timeout: float | None = None
    buffer_mode: str | None = None
    state: str | None = None
    shell_run_time: float | None = None
    shell_inactivity: float | None = None


@dataclass
class ShellOptions:
    """The WINRS_* options of a Create or Command (MS-WSMV 3.1.4.5, 3.1.4.11); None = not sent."""

    no_profile: bool | None = None
    codepage: int | None = None
    console_mode_stdin: bool | None = None
    skip_cmd_shell: bool | None = None


@dataclass
class ShellCreated:
    """A CreateResponse for a shell: the EPR (ShellId selector) and the reported ``rsp:Shell``."""

    epr: EndpointReference
    shell: ShellSpec | None

    @property
    def shell_id(self) -> str:
        sid = shell_id_of(self.epr.selectors)
        if sid is None and self.shell is not None:
            sid = self.shell.shell_id
        if not sid:
            raise WSManDecodeError("CreateResponse names no ShellId", fault="InvalidBody")
        return sid


@dataclass
class CommandRequest:
    """``rsp:CommandLine`` (MS-WSMV 3.1.4.11)."""

    command: str
    arguments: list[str] = field(default_factory=list)
    command_id: str | None = None

    @property
    def command_line(self) -> str:
        """What cmd.exe sees: the command and its arguments joined by spaces."""
        return " ".join([self.command, *self.arguments]).strip()


@dataclass
class StreamData:
    """One ``rsp:Stream`` of Send or ReceiveResponse (MS-WSMV 2.2.4.32; 3.1.4.14)."""

    name: str
    data: bytes
    command_id: str | None = None
    end: bool = False


@dataclass
class ReceiveRequest:
    """``rsp:Receive`` (MS-WSMV 2.2.4.26): the wanted streams and, for a command, its CommandId."""

    streams: list[str] = field(default_factory=lambda: ["stdout", "stderr"])
    command_id: str | None = None
    sequence_id: int | None = None


@dataclass
class CommandState:
    """``rsp:CommandState`` (MS-WSMV 3.1.4.14): state URI and, once Done, the exit code."""

    command_id: str | None
    state: str
    exit_code: int | None = None

    @property
    def done(self) -> bool:
        return self.state == STATE_DONE


@dataclass
class ReceiveResult:
    """``rsp:ReceiveResponse``: streams in order, then the command state."""

    streams: list[StreamData] = field(default_factory=list)
    state: CommandState | None = None

    def data(self, name: str) -> bytes:
        """All bytes of the named stream in this response."""
        return b"".join(s.data for s in self.streams if s.name == name)


@dataclass
class SignalRequest:
    """``rsp:Signal`` (MS-WSMV 2.2.4.38)."""

    code: str
    command_id: str | None = None


@dataclass
class DisconnectRequest:
    """``rsp:Disconnect`` (MS-WSMV 3.1.4.15): optional new idle time-out and buffer mode."""

    idle_timeout: float | None = None
    buffer_mode: str | None = None


# ================================================================================ helpers
def _bool(text: str, what: str) -> bool:
    value = xs_boolean(text, ignore_case=True)
    if value is not None:
        return value
    raise WSManDecodeError(f"{what} must be a boolean, got {text[:20]!r}", fault="InvalidParameter")


def _duration(el: _Element, what: str) -> float:
    try:
        value = parse_duration(_text(el))
    except WSManDecodeError as exc:
        raise WSManDecodeError(f"{what}: {exc.reason}", fault="InvalidParameter") from None
    if value < 0:
        raise WSManDecodeError(f"{what} must not be negative", fault="InvalidParameter")
    return value


def _payload(env: Envelope, action: str, tag: str | None) -> _Element | None:
    _expect(env, action)
    p = env.payload
    if tag is None:
        return p
    if p is None or p.tag != tag:
        got = "an empty body" if p is None else repr(p.tag)
        raise WSManDecodeError(f"{action.rsplit('/', 1)[-1]} needs {tag} in the body, got {got}",
                               fault="InvalidBody")
    return p


def _el(tag: str, text: str | None = None, **attrib: str) -> _Element:
    e = etree.Element(tag, nsmap=RSP_NSMAP)
    for k, v in attrib.items():
        e.set(k, v)
    if text is not None:
        e.text = text
    return e


# ================================================================================ options
def shell_options(header: Header) -> ShellOptions:
    """Read the WINRS_* options of a request header (MS-WSMV 3.1.4.5, 3.1.4.11)."""
    out = ShellOptions()
    for opt in header.options:
        name = opt.name.upper()
        value = (opt.value or "").strip()
        if name == OPTION_NOPROFILE:
            out.no_profile = _bool(value, name)
        elif name == OPTION_CODEPAGE:
            if not value.isdigit() or len(value) > 5:
                raise WSManDecodeError(f"{name} must be a code page number, got {value[:20]!r}",
                                       fault="InvalidOptions")
            out.codepage = int(value)
        elif name == OPTION_CONSOLEMODE_STDIN:
            out.console_mode_stdin = _bool(value, name)
        elif name == OPTION_SKIP_CMD_SHELL:
            out.skip_cmd_shell = _bool(value, name)
    return out


def option_list(options: ShellOptions) -> list[Option]:
    """The OptionSet entries for ``options`` as the Windows client writes them (``TRUE``/``FALSE``)."""
    out: list[Option] = []
    if options.no_profile is not None:
        out.append(Option(OPTION_NOPROFILE, "TRUE" if options.no_profile else "FALSE"))
    if options.codepage is not None:
        out.append(Option(OPTION_CODEPAGE, str(options.codepage)))
    if options.console_mode_stdin is not None:
        out.append(Option(OPTION_CONSOLEMODE_STDIN, "TRUE" if options.console_mode_stdin else "FALSE"))
    if options.skip_cmd_shell is not None:
        out.append(Option(OPTION_SKIP_CMD_SHELL, "TRUE" if options.skip_cmd_shell else "FALSE"))
    return out


# ================================================================================ rsp:Shell
def shell_element(spec: ShellSpec) -> _Element:
    """``rsp:Shell`` in the element order of MS-WSMV 2.2.4.37 (as Windows writes it)."""
    el = _el(RSP_SHELL)
    if spec.shell_id is not None:
        _sub(el, qn(NS_SHELL, "ShellId"), spec.shell_id)
    if spec.name is not None:
        _sub(el, qn(NS_SHELL, "Name"), spec.name)
    if spec.resource_uri is not None:
        _sub(el, qn(NS_SHELL, "ResourceUri"), spec.resource_uri)
    if spec.owner is not None:
        _sub(el, qn(NS_SHELL, "Owner"), spec.owner)
    if spec.client_ip is not None:
        _sub(el, qn(NS_SHELL, "ClientIP"), spec.client_ip)
    if spec.environment:
        env = _sub(el, RSP_ENVIRONMENT)
        for name, value in spec.environment.items():
            _sub(env, RSP_VARIABLE, value).set("Name", name)
    if spec.working_directory is not None:
        _sub(el, qn(NS_SHELL, "WorkingDirectory"), spec.working_directory)
    if spec.lifetime is not None:
        _sub(el, qn(NS_SHELL, "Lifetime"), format_duration(spec.lifetime))
    if spec.idle_timeout is not None:
        _sub(el, RSP_IDLE_TIMEOUT, format_duration(spec.idle_timeout))
    _sub(el, qn(NS_SHELL, "InputStreams"), " ".join(spec.input_streams))
    _sub(el, qn(NS_SHELL, "OutputStreams"), " ".join(spec.output_streams))
    if spec.buffer_mode is not None:
        _sub(el, RSP_BUFFER_MODE, spec.buffer_mode)
    if spec.state is not None:
        _sub(el, qn(NS_SHELL, "State"), spec.state)
    if spec.shell_run_time is not None:
        _sub(el, qn(NS_SHELL, "ShellRunTime"), format_duration(spec.shell_run_time))
    if spec.shell_inactivity is not None:
        _sub(el, qn(NS_SHELL, "ShellInactivity"), format_duration(spec.shell_inactivity))
    return el


def read_shell(el: _Element) -> ShellSpec:
    """Decode ``rsp:Shell`` in any child order (observed client behaviour: pywinrm and pypsrp
    differ; Windows accepts both). Unknown children (``##other``) are ignored."""
    if el.tag != RSP_SHELL:
        raise WSManDecodeError(f"expected rsp:Shell, got {el.tag!r}", fault="InvalidBody")
    spec = ShellSpec(shell_id=el.get("ShellId"))
    for child in _children(el):
        q = etree.QName(child)
        if q.namespace != NS_SHELL:
            continue
        local = q.localname
        if local == "ShellId":
            spec.shell_id = _text(child)
        elif local == "Name":
            spec.name = _text(child)
        elif local == "ResourceUri":
            spec.resource_uri = _text(child)
        elif local == "Owner":
            spec.owner = _text(child)
        elif local == "ClientIP":
            spec.client_ip = _text(child)
        elif local == "InputStreams":
            spec.input_streams = _text(child).split()
        elif local == "OutputStreams":
            spec.output_streams = _text(child).split()
        elif local == "WorkingDirectory":
            spec.working_directory = child.text or ""
        elif local == "Environment":
            variables = [v for v in _children(child) if v.tag == RSP_VARIABLE]
            if len(variables) > MAX_VARIABLES:
                raise WSManDecodeError(f"more than {MAX_VARIABLES} environment variables", fault="InvalidParameter")
            for var in variables:
                name = (var.get("Name") or "").strip()
                if not name:
                    raise WSManDecodeError("rsp:Variable without Name", fault="InvalidParameter")
                spec.environment[name] = var.text or ""
        elif local == "Lifetime":
            spec.lifetime = _duration(child, "Lifetime")
        elif local == "IdleTimeOut":
            spec.idle_timeout = _duration(child, "IdleTimeOut")
        elif local == "BufferMode":
            spec.buffer_mode = _text(child)
        elif local == "State":
            spec.state = _text(child)
        elif local == "ShellRunTime":
            spec.shell_run_time = _duration(child, "ShellRunTime")
        elif local == "ShellInactivity":
            spec.shell_inactivity = _duration(child, "ShellInactivity")
    return spec


# ================================================================================ Create / Delete
def _with_options(header: Header, options: ShellOptions | None) -> Header:
    """``header`` with the shell's wsman:OptionSet entries appended (a copy; the caller's is not changed)."""
    if options is None:
        return header
    return replace(header, options=[*header.options, *option_list(options)])


def build_create_shell_request(header: Header, spec: ShellSpec, options: ShellOptions | None = None) -> bytes:
    """wxf:Create of a cmd shell (MS-WSMV 3.1.4.5 with rsp:Shell, 2.2.4.37)."""
    header = _with_options(replace(header, resource_uri=header.resource_uri or RESOURCE_SHELL_CMD), options)
    return build_envelope(_with_action(header, Action.CREATE), [shell_element(spec)])


def parse_create_shell_request(env: Envelope) -> ShellSpec:
    p = _payload(env, Action.CREATE, RSP_SHELL)
    assert p is not None
    return read_shell(p)


def build_create_shell_response(relates_to: str | None, epr: EndpointReference, spec: ShellSpec) -> bytes:
    """CreateResponse: wxf:ResourceCreated (ShellId selector) then rsp:Shell (observed Windows
    behaviour; MS-WSMV 3.1.4.5)."""
    return msg.build_create_response(relates_to, epr, item=shell_element(spec))


def parse_create_shell_response(env: Envelope) -> ShellCreated:
    resp = msg.parse_create_response(env)
    shell = read_shell(resp.item) if resp.item is not None and resp.item.tag == RSP_SHELL else None
    created = ShellCreated(resp.epr, shell)
    _ = created.shell_id  # a response without a ShellId is malformed
    return created


# ================================================================================ Command
def build_command_request(header: Header, req: CommandRequest, options: ShellOptions | None = None) -> bytes:
    """rsp:CommandLine (MS-WSMV 3.1.4.11)."""
    el = _el(RSP_COMMAND_LINE)
    if req.command_id is not None:
        el.set("CommandId", req.command_id)
    _sub(el, RSP_COMMAND, req.command)
    for arg in req.arguments:
        _sub(el, RSP_ARGUMENTS, arg)
    return build_envelope(_with_action(_with_options(header, options), ShellAction.COMMAND), [el])


def parse_command_request(env: Envelope) -> CommandRequest:
    p = _payload(env, ShellAction.COMMAND, RSP_COMMAND_LINE)
    assert p is not None
    command: str | None = None
    args: list[str] = []
    for child in _children(p):
        if child.tag == RSP_COMMAND:
            command = child.text or ""
        elif child.tag == RSP_ARGUMENTS:
            args.append(child.text or "")
            if len(args) > MAX_ARGUMENTS:
                raise WSManDecodeError(f"more than {MAX_ARGUMENTS} arguments", fault="InvalidParameter")
    if command is None or not command.strip():
        raise WSManDecodeError("rsp:CommandLine without a Command", fault="InvalidParameter")
    cid = p.get("CommandId")
    return CommandRequest(command.strip(), args, cid.strip() if cid else None)


def build_command_response(relates_to: str | None, command_id: str, *, message_id: str | None = None) -> bytes:
    el = _el(RSP_COMMAND_RESPONSE)
    _sub(el, RSP_COMMAND_ID, command_id)
    return build_envelope(msg.response_header(ShellAction.COMMAND_RESPONSE, relates_to, message_id=message_id), [el])


def parse_command_response(env: Envelope) -> str:
    p = _payload(env, ShellAction.COMMAND_RESPONSE, RSP_COMMAND_RESPONSE)
    assert p is not None
    cid = p.find(RSP_COMMAND_ID)
    if cid is None or not _text(cid):
        raise WSManDecodeError("CommandResponse without CommandId", fault="InvalidBody")
    return _text(cid)


# ================================================================================ streams
def _stream_element(s: StreamData, *, with_end: bool) -> _Element:
    el = _el(RSP_STREAM, base64.b64encode(s.data).decode("ascii"), Name=s.name)
    if s.command_id is not None:
        el.set("CommandId", s.command_id)
    if with_end or s.end:
        el.set("End", "true" if s.end else "false")
    return el


def _read_stream(el: _Element) -> StreamData:
    name = (el.get("Name") or "").strip()
    if not name:
        raise WSManDecodeError("rsp:Stream without Name", fault="InvalidParameter")
    raw = "".join((el.text or "").split())
    try:
        data = base64.b64decode(raw, validate=True) if raw else b""
    except (binascii.Error, ValueError):
        raise WSManDecodeError(f"rsp:Stream {name} is not base64", fault="InvalidParameter") from None
    end_attr = el.get("End")
    cid = el.get("CommandId")
    return StreamData(name, data, cid.strip() if cid else None,
                      _bool(end_attr, "End") if end_attr is not None else False)


def build_send_request(header: Header, streams: Sequence[StreamData]) -> bytes:
    """rsp:Send (MS-WSMV 2.2.4.32; 3.1.4.13)."""
    el = _el(RSP_SEND)
    for s in streams:
        el.append(_stream_element(s, with_end=True))
    return build_envelope(_with_action(header, ShellAction.SEND), [el])


def parse_send_request(env: Envelope) -> list[StreamData]:
    p = _payload(env, ShellAction.SEND, RSP_SEND)
    assert p is not None
    streams = [c for c in _children(p) if c.tag == RSP_STREAM]
    if not streams:
        raise WSManDecodeError("rsp:Send without rsp:Stream", fault="InvalidParameter")
    if len(streams) > MAX_STREAMS:
        raise WSManDecodeError(f"more than {MAX_STREAMS} streams", fault="InvalidParameter")
    return [_read_stream(s) for s in streams]


def build_send_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    return build_envelope(msg.response_header(ShellAction.SEND_RESPONSE, relates_to, message_id=message_id),
                          [_el(RSP_SEND_RESPONSE)])


def parse_send_response(env: Envelope) -> None:
    _payload(env, ShellAction.SEND_RESPONSE, None)


# ================================================================================ Receive
def build_receive_request(header: Header, req: ReceiveRequest) -> bytes:
    """rsp:Receive (MS-WSMV 2.2.4.26; 3.1.4.14)."""
    el = _el(RSP_RECEIVE)
    if req.sequence_id is not None:
        el.set("SequenceId", str(req.sequence_id))
    ds = _sub(el, RSP_DESIRED_STREAM, " ".join(req.streams))
    if req.command_id is not None:
        ds.set("CommandId", req.command_id)
    return build_envelope(_with_action(header, ShellAction.RECEIVE), [el])


def parse_receive_request(env: Envelope) -> ReceiveRequest:
    p = _payload(env, ShellAction.RECEIVE, RSP_RECEIVE)
    assert p is not None
    ds = p.find(RSP_DESIRED_STREAM)
    if ds is None:
        raise WSManDecodeError("rsp:Receive without rsp:DesiredStream", fault="InvalidParameter")
    names = _text(ds).split()
    if not names or len(names) > MAX_STREAMS:
        raise WSManDecodeError("rsp:DesiredStream must name 1 to 64 streams", fault="InvalidParameter")
    seq_attr = p.get("SequenceId")
    seq: int | None = None
    if seq_attr is not None:
        if not seq_attr.strip().isdigit() or len(seq_attr.strip()) > 19:
            raise WSManDecodeError("SequenceId must be an xs:unsignedLong", fault="InvalidParameter")
        seq = int(seq_attr)
    elif env.header.sequence_id is not None:
        seq = env.header.sequence_id
    cid = ds.get("CommandId")
    return ReceiveRequest(names, cid.strip() if cid else None, seq)


def build_receive_response(relates_to: str | None, result: ReceiveResult, *, message_id: str | None = None) -> bytes:
    """rsp:ReceiveResponse: the streams, then rsp:CommandState (MS-WSMV 3.1.4.14)."""
    el = _el(RSP_RECEIVE_RESPONSE)
    for s in result.streams:
        el.append(_stream_element(s, with_end=False))
    if result.state is not None:
        cs = _sub(el, RSP_COMMAND_STATE)
        if result.state.command_id is not None:
            cs.set("CommandId", result.state.command_id)
        cs.set("State", result.state.state)
        if result.state.exit_code is not None:
            _sub(cs, RSP_EXIT_CODE, str(result.state.exit_code))
    return build_envelope(msg.response_header(ShellAction.RECEIVE_RESPONSE, relates_to, message_id=message_id), [el])


def parse_receive_response(env: Envelope) -> ReceiveResult:
    p = _payload(env, ShellAction.RECEIVE_RESPONSE, RSP_RECEIVE_RESPONSE)
    assert p is not None
    out = ReceiveResult()
    for child in _children(p):
        if child.tag == RSP_STREAM:
            out.streams.append(_read_stream(child))
            if len(out.streams) > 4 * MAX_STREAMS:
                raise WSManDecodeError("too many streams in ReceiveResponse", fault="InvalidBody")
        elif child.tag == RSP_COMMAND_STATE:
            state = (child.get("State") or "").strip()
            if not state:
                raise WSManDecodeError("rsp:CommandState without State", fault="InvalidBody")
            code_el = child.find(RSP_EXIT_CODE)
            code: int | None = None
            if code_el is not None:
                t = _text(code_el)
                if not t.lstrip("-").isdigit() or len(t) > 20:
                    raise WSManDecodeError(f"ExitCode must be an integer, got {t[:20]!r}", fault="InvalidBody")
                code = int(t)
            cid = child.get("CommandId")
            out.state = CommandState(cid.strip() if cid else None, state, code)
    return out


# ================================================================================ Signal
def build_signal_request(header: Header, req: SignalRequest) -> bytes:
    """rsp:Signal (MS-WSMV 2.2.4.38; 3.1.4.12). ``req.code`` may be a short name or a URI."""
    el = _el(RSP_SIGNAL)
    if req.command_id is not None:
        el.set("CommandId", req.command_id)
    _sub(el, RSP_CODE, SIGNAL_URIS.get(req.code, req.code))
    return build_envelope(_with_action(header, ShellAction.SIGNAL), [el])


def parse_signal_request(env: Envelope) -> SignalRequest:
    p = _payload(env, ShellAction.SIGNAL, RSP_SIGNAL)
    assert p is not None
    code = p.find(RSP_CODE)
    if code is None or not _text(code):
        raise WSManDecodeError("rsp:Signal without rsp:Code", fault="InvalidParameter")
    cid = p.get("CommandId")
    return SignalRequest(_text(code), cid.strip() if cid else None)


def build_signal_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    return build_envelope(msg.response_header(ShellAction.SIGNAL_RESPONSE, relates_to, message_id=message_id),
                          [_el(RSP_SIGNAL_RESPONSE)])


def parse_signal_response(env: Envelope) -> None:
    _payload(env, ShellAction.SIGNAL_RESPONSE, None)


# ================================================================================ Disconnect / Reconnect / Connect
def build_disconnect_request(header: Header, req: DisconnectRequest) -> bytes:
    """rsp:Disconnect (MS-WSMV 3.1.4.15)."""
    el = _el(RSP_DISCONNECT)
    if req.idle_timeout is not None:
        _sub(el, RSP_IDLE_TIMEOUT, format_duration(req.idle_timeout))
    if req.buffer_mode is not None:
        _sub(el, RSP_BUFFER_MODE, req.buffer_mode)
    return build_envelope(_with_action(header, ShellAction.DISCONNECT), [el])


def parse_disconnect_request(env: Envelope) -> DisconnectRequest:
    p = _payload(env, ShellAction.DISCONNECT, None)
    out = DisconnectRequest()
    if p is None:
        return out
    if p.tag != RSP_DISCONNECT:
        raise WSManDecodeError(f"Disconnect body holds {p.tag!r}", fault="InvalidBody")
    for child in _children(p):
        if child.tag == RSP_IDLE_TIMEOUT:
            out.idle_timeout = _duration(child, "IdleTimeOut")
        elif child.tag == RSP_BUFFER_MODE:
            mode = _text(child)
            if mode.lower() not in ("block", "drop"):
                raise WSManDecodeError(f"BufferMode must be Block or Drop, got {mode[:20]!r}",
                                       fault="InvalidParameter")
            out.buffer_mode = "Block" if mode.lower() == "block" else "Drop"
    return out


def _empty_response(action: str, relates_to: str | None, message_id: str | None) -> bytes:
    return build_envelope(msg.response_header(action, relates_to, message_id=message_id), [])


def build_disconnect_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    """DisconnectResponse (MS-WSMV 3.1.4.15): the output data type is None, so the s:Body is empty,
    as in the MS-WSMV 4.7.9 example (an ``rsp:DisconnectResponse`` body is still accepted on input)."""
    return _empty_response(ShellAction.DISCONNECT_RESPONSE, relates_to, message_id)


def parse_disconnect_response(env: Envelope) -> None:
    _payload(env, ShellAction.DISCONNECT_RESPONSE, None)


def build_reconnect_request(header: Header) -> bytes:
    """Reconnect (MS-WSMV 3.1.4.16): the input data type is None, so the s:Body is empty, as in the
    MS-WSMV 4.7.10 example (an ``rsp:Reconnect`` body is still accepted on input)."""
    return build_envelope(_with_action(header, ShellAction.RECONNECT), [])


def parse_reconnect_request(env: Envelope) -> None:
    p = _payload(env, ShellAction.RECONNECT, None)
    if p is not None and p.tag != RSP_RECONNECT:
        raise WSManDecodeError(f"Reconnect body holds {p.tag!r}", fault="InvalidBody")


def build_reconnect_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    """ReconnectResponse (MS-WSMV 3.1.4.16): empty s:Body, as in the MS-WSMV 4.7.10 example."""
    return _empty_response(ShellAction.RECONNECT_RESPONSE, relates_to, message_id)


def parse_reconnect_response(env: Envelope) -> None:
    _payload(env, ShellAction.RECONNECT_RESPONSE, None)


def build_connect_request(header: Header, content: Sequence[_Element] = ()) -> bytes:
    """rsp:Connect (MS-WSMV 3.1.4.17) with shell-specific open content."""
    el = _el(RSP_CONNECT)
    for c in content:
        el.append(c)
    return build_envelope(_with_action(header, ShellAction.CONNECT), [el])


def parse_connect_request(env: Envelope) -> list[_Element]:
    p = _payload(env, ShellAction.CONNECT, RSP_CONNECT)
    assert p is not None
    return _children(p)


def build_connect_response(relates_to: str | None, content: Sequence[_Element] = (), *,
                           message_id: str | None = None) -> bytes:
    el = _el(RSP_CONNECT_RESPONSE)
    for c in content:
        el.append(c)
    return build_envelope(msg.response_header(ShellAction.CONNECT_RESPONSE, relates_to, message_id=message_id), [el])


def parse_connect_response(env: Envelope) -> list[_Element]:
    p = _payload(env, ShellAction.CONNECT_RESPONSE, RSP_CONNECT_RESPONSE)
    assert p is not None
    return _children(p)


__all__ = [
    "OPTION_CODEPAGE", "OPTION_CONSOLEMODE_STDIN", "OPTION_NOPROFILE", "OPTION_SKIP_CMD_SHELL", "SHELL_ID_SELECTOR",
    "SHELL_OPTIONS", "SIGNAL_CTRL_BREAK", "SIGNAL_CTRL_C", "SIGNAL_TERMINATE", "STATE_DONE", "STATE_PENDING",
    "STATE_RUNNING", "CommandRequest", "CommandState", "DisconnectRequest", "ReceiveRequest", "ReceiveResult",
    "ShellCreated", "ShellOptions", "ShellSpec", "SignalRequest", "StreamData",
    "build_command_request", "build_command_response", "build_connect_request", "build_connect_response",
    "build_create_shell_request", "build_create_shell_response", "build_disconnect_request",
    "build_disconnect_response", "build_receive_request", "build_receive_response", "build_reconnect_request",
    "build_reconnect_response", "build_send_request", "build_send_response", "build_signal_request",
    "build_signal_response", "option_list", "parse_command_request", "parse_command_response",
    "parse_connect_request", "parse_connect_response", "parse_create_shell_request", "parse_create_shell_response",
    "parse_disconnect_request", "parse_disconnect_response", "parse_receive_request", "parse_receive_response",
    "parse_reconnect_request", "parse_reconnect_response", "parse_send_request", "parse_send_response",
    "parse_signal_request", "parse_signal_response", "read_shell", "shell_element", "shell_id_of", "shell_options",
    "shell_selectors", "signal_name",
]

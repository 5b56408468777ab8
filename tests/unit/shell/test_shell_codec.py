"""The WinRS codec (harness.wire.wsman.shell): round trips, XSD validity, malformed input."""

from __future__ import annotations

import pytest

from harness.validate import default_validator
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import RESOURCE_SHELL_CMD, Action, ShellAction


def _header(action: str = "") -> Header:
    return Header(action=action, resource_uri=RESOURCE_SHELL_CMD, selectors=sh.shell_selectors("ABC"))


def _valid(data: bytes) -> bytes:
    assert default_validator().validate(data) == []
    return data


def test_create_request_round_trip_and_options() -> None:
    spec = sh.ShellSpec(environment={"A": "1", "B": "two"}, working_directory="C:\\Temp", idle_timeout=90.0,
                        lifetime=600.0)
    data = _valid(sh.build_create_shell_request(Header(action=""), spec, sh.ShellOptions(
        no_profile=True, codepage=65001)))
    env = parse_envelope(data)
    assert env.header.action == Action.CREATE and env.header.resource_uri == RESOURCE_SHELL_CMD
    back = sh.parse_create_shell_request(env)
    assert back.environment == {"A": "1", "B": "two"}
    assert (back.working_directory, back.idle_timeout, back.lifetime) == ("C:\\Temp", 90.0, 600.0)
    assert back.input_streams == ["stdin"] and back.output_streams == ["stdout", "stderr"]
    opts = sh.shell_options(env.header)
    assert (opts.no_profile, opts.codepage) == (True, 65001)


def test_create_response_names_the_shell() -> None:
    epr = EndpointReference(address="http://h/wsman", resource_uri=RESOURCE_SHELL_CMD,
                            selectors=sh.shell_selectors("S-1"))
    data = _valid(sh.build_create_shell_response("uuid:1", epr, sh.ShellSpec(shell_id="S-1", owner="u",
                                                                            shell_run_time=0.0)))
    created = sh.parse_create_shell_response(parse_envelope(data))
    assert created.shell_id == "S-1" and created.shell is not None and created.shell.owner == "u"


def test_command_send_receive_signal_round_trips() -> None:
    data = _valid(sh.build_command_request(_header(), sh.CommandRequest("echo", ["a", "b"], "C1")))
    req = sh.parse_command_request(parse_envelope(data))
    assert (req.command_line, req.command_id) == ("echo a b", "C1")
    assert sh.parse_command_response(parse_envelope(_valid(sh.build_command_response("u", "C1")))) == "C1"
    data = _valid(sh.build_send_request(_header(), [sh.StreamData("stdin", b"\x00\xffdata", "C1", True)]))
    [s] = sh.parse_send_request(parse_envelope(data))
    assert (s.name, s.data, s.command_id, s.end) == ("stdin", b"\x00\xffdata", "C1", True)
    data = _valid(sh.build_receive_request(_header(), sh.ReceiveRequest(["stdout"], "C1", 4)))
    r = sh.parse_receive_request(parse_envelope(data))
    assert (r.streams, r.command_id, r.sequence_id) == (["stdout"], "C1", 4)
    result = sh.ReceiveResult([sh.StreamData("stdout", b"hi", "C1"), sh.StreamData("stdout", b"", "C1", True)],
                              sh.CommandState("C1", sh.STATE_DONE, 9009))
    back = sh.parse_receive_response(parse_envelope(_valid(sh.build_receive_response("u", result))))
    assert back.data("stdout") == b"hi" and back.state == sh.CommandState("C1", sh.STATE_DONE, 9009)
    assert back.streams[-1].end
    data = _valid(sh.build_signal_request(_header(), sh.SignalRequest(sh.SIGNAL_CTRL_C, "C1")))
    sig = sh.parse_signal_request(parse_envelope(data))
    assert sh.signal_name(sig.code) == sh.SIGNAL_CTRL_C
    _valid(sh.build_signal_response("u"))


def test_signal_codes_compare_case_insensitively() -> None:
    assert sh.signal_name("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate") == "terminate"
    assert sh.signal_name("urn:other") == "urn:other"


def test_disconnect_reconnect_connect() -> None:
    data = _valid(sh.build_disconnect_request(_header(), sh.DisconnectRequest(30.0, "Drop")))
    env = parse_envelope(data)
    assert env.header.action == ShellAction.DISCONNECT
    assert sh.parse_disconnect_request(env) == sh.DisconnectRequest(30.0, "Drop")
    sh.parse_reconnect_request(parse_envelope(_valid(sh.build_reconnect_request(_header()))))
    assert sh.parse_connect_request(parse_envelope(_valid(sh.build_connect_request(_header())))) == []
    for build in (sh.build_disconnect_response, sh.build_reconnect_response, sh.build_connect_response):
        _valid(build("u"))


def test_shell_id_selector_is_case_insensitive() -> None:
    assert sh.shell_id_of({"ShellID": " X "}) == "X"
    assert sh.shell_id_of({"Other": "X"}) is None


@pytest.mark.parametrize("body", [
    b"<rsp:Send xmlns:rsp='http://schemas.microsoft.com/wbem/wsman/1/windows/shell'/>",
    b"<rsp:Send xmlns:rsp='http://schemas.microsoft.com/wbem/wsman/1/windows/shell'>"
    b"<rsp:Stream Name='stdin'>!!notbase64</rsp:Stream></rsp:Send>",
    b"<rsp:Send xmlns:rsp='http://schemas.microsoft.com/wbem/wsman/1/windows/shell'>"
    b"<rsp:Stream Name='stdin' End='maybe'>YQ==</rsp:Stream></rsp:Send>",
    b"<rsp:Stream xmlns:rsp='http://schemas.microsoft.com/wbem/wsman/1/windows/shell' Name='x'/>",
])
def test_malformed_send_is_a_decode_error(body: bytes) -> None:
    data = sh.build_send_request(_header(), [sh.StreamData("stdin", b"a")])
    start, end = data.index(b"<s:Body>") + 8, data.index(b"</s:Body>")
    env = parse_envelope(data[:start] + body + data[end:])
    with pytest.raises(WSManDecodeError):
        sh.parse_send_request(env)


def test_pypsrp_style_end_attribute_is_accepted() -> None:
    data = sh.build_send_request(_header(), [sh.StreamData("stdin", b"a", "C", True)]).replace(
        b'End="true"', b'End="True"')
    assert default_validator().validate(data) == []
    assert sh.parse_send_request(parse_envelope(data))[0].end


def test_command_without_command_is_refused() -> None:
    data = sh.build_command_request(_header(), sh.CommandRequest("  "))
    with pytest.raises(WSManDecodeError):
        sh.parse_command_request(parse_envelope(data))


def test_builders_leave_the_callers_header_unchanged() -> None:
    """One header reused for several requests must not collect OptionSet entries or a ResourceURI."""
    header = Header(action="")
    options = sh.ShellOptions(no_profile=True, codepage=65001)
    first = sh.build_create_shell_request(header, sh.ShellSpec(), options)
    second = sh.build_create_shell_request(header, sh.ShellSpec(), options)
    assert first.count(b"WINRS_CODEPAGE") == second.count(b"WINRS_CODEPAGE") == 1
    assert header.options == [] and header.resource_uri is None and header.action == ""
    command_header = _header()
    sh.build_command_request(command_header, sh.CommandRequest("echo", []), options)
    assert command_header.options == []

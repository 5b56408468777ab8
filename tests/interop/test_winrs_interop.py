"""WinRS with unmodified third-party clients against a real ``wmh serve`` subprocess (MS-WSMV
3.1.4.5 Create of .../windows/shell/cmd, 3.1.4.11 - 3.1.4.14, 3.1.4.6 Delete; MS-WMOD 3.6):
pywinrm's ``Session.run_cmd`` and ``Protocol`` shell calls, pypsrp's ``WinRS`` and ``Process``.
pypsrp's traffic is also run through our XSDs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import winrm
from _wire import MockServer, assert_valid, capture_pypsrp, pypsrp_messages
from pypsrp.exceptions import WSManFaultError
from pypsrp.shell import CommandState, Process, SignalCode, WinRS
from pypsrp.wsman import WSMan
from winrm.exceptions import WSManFaultError as WinRMFaultError
from winrm.protocol import Protocol

pytestmark = pytest.mark.interop

INVALID_SELECTORS = 2150858843


def _protocol(server: MockServer) -> Protocol:
    return Protocol(server.endpoint, transport="basic", username=server.username, password=server.password,
                    operation_timeout_sec=5, read_timeout_sec=10)


@pytest.fixture
def psrp(mock_server: MockServer, caplog: pytest.LogCaptureFixture) -> Iterator[WSMan]:
    capture_pypsrp(caplog)
    client = WSMan(mock_server.host, port=mock_server.port, username=mock_server.username,
                   password=mock_server.password, ssl=False, path="wsman", auth="basic",
                   encryption="never", no_proxy=True, connection_timeout=5, read_timeout=10,
                   operation_timeout=5)
    try:
        yield client
    finally:
        client.close()


def test_pywinrm_session_run_cmd(mock_server: MockServer) -> None:
    session = winrm.Session(mock_server.endpoint, auth=(mock_server.username, mock_server.password),
                            transport="basic")
    response = session.run_cmd("echo", ["hello"])
    assert (response.status_code, response.std_out, response.std_err) == (0, b"hello\r\n", b"")


def test_pywinrm_protocol_shell_lifecycle(mock_server: MockServer) -> None:
    p = _protocol(mock_server)
    shell_id = p.open_shell(env_vars={"WMH_INTEROP": "from-pywinrm"}, working_directory="C:\\Users")
    try:
        cid = p.run_command(shell_id, "echo %WMH_INTEROP%& cd& wmh_unknown_cmd")
        out, err, code = p.get_command_output(shell_id, cid)
        p.cleanup_command(shell_id, cid)
        assert out == b"from-pywinrm\r\nC:\\Users\r\n"
        assert b"is not recognized" in err and code == 9009
        cid = p.run_command(shell_id, "findstr", ["/i", "KEEP"])
        p.send_command_input(shell_id, cid, b"keep me\r\ndrop me\r\n", end=True)
        out, err, code = p.get_command_output(shell_id, cid)
        p.cleanup_command(shell_id, cid)
        assert (out, code) == (b"keep me\r\n", 0)
        cid = p.run_command(shell_id, "ping -n 2 127.0.0.1")
        out, err, code = p.get_command_output(shell_id, cid)  # one w:TimedOut retry path at most
        p.cleanup_command(shell_id, cid)
        assert out.count(b"Reply from 127.0.0.1") == 2 and code == 0
    finally:
        p.close_shell(shell_id)
    with pytest.raises(WinRMFaultError) as info:
        p.run_command(shell_id, "echo", ["gone"])
    assert info.value.wsman_fault_code == INVALID_SELECTORS


def test_pypsrp_winrs_process(psrp: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    with WinRS(psrp, environment={"WMH_A": "1"}, working_directory="C:\\Windows", codepage=65001) as shell:
        proc = Process(shell, "cmd.exe", ["/c", "echo %WMH_A%& exit 3"])
        proc.invoke()
        assert (proc.rc, proc.stdout, proc.stderr) == (3, b"1\r\n", b"")
        proc = Process(shell, "more")
        proc.begin_invoke()
        proc.send(b"piped\r\n", end=True)
        proc.end_invoke()
        proc.signal(SignalCode.TERMINATE)
        assert (proc.rc, proc.stdout) == (0, b"piped\r\n")
        proc = Process(shell, "ping", ["-n", "30", "127.0.0.1"])
        proc.begin_invoke()
        proc.poll_invoke()
        assert proc.state == CommandState.RUNNING
        proc.signal(SignalCode.TERMINATE)
        before = proc.stdout
        proc.poll_invoke()
        assert proc.state == CommandState.DONE and proc.stdout == before
    assert_valid(pypsrp_messages(caplog))


def test_pypsrp_closed_shell_is_invalid_selectors(psrp: WSMan) -> None:
    shell = WinRS(psrp)
    shell.open()
    shell.close()  # the shell is deleted; pypsrp keeps its ShellId selector
    with pytest.raises(WSManFaultError) as info:
        Process(shell, "echo", ["x"]).invoke()
    assert info.value.code == INVALID_SELECTORS

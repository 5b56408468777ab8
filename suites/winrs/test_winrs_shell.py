"""WinRS remote shells (MS-WSMV 3.1.4.5 Create of .../windows/shell/cmd, 3.1.4.11 Command,
3.1.4.12 Signal, 3.1.4.13 Send, 3.1.4.14 Receive, 3.1.4.15/16 Disconnect/Reconnect, 3.1.4.6 Delete;
MS-WMOD 3.6). The same tests run against the mock and a real Windows host."""

from __future__ import annotations

import asyncio

import pytest

from harness.client.shell import RECEIVE_TIMED_OUT, CommandResult, WinRSShell
from harness.wire.wsman.faults import ERROR_WSMAN_UNEXPECTED_SELECTORS, WSManFault
from harness.wire.wsman.shell import SIGNAL_TERMINATE, STATE_DONE

pytestmark = [pytest.mark.requires("wsman", "winrs")]

NOT_RECOGNIZED = 9009
QUOTA_MAX_SHELLS = 2150859173


@pytest.mark.spec("MS-WSMV 3.1.4.5", "MS-WSMV 2.2.4.37", "MS-WMOD 3.6")
async def test_shell_environment_and_working_directory_reach_the_command(new_shell):
    shell = await new_shell(environment={"WMH_SUITE_VAR": "hello-from-create"}, working_directory="C:\\Windows")
    assert shell.created is not None and shell.created.epr.selectors, "CreateResponse must carry the ShellId EPR"
    result = await shell.run_command("echo %WMH_SUITE_VAR%& cd")
    lines = result.stdout.decode("ascii", "replace").splitlines()
    assert lines[0] == "hello-from-create", "rsp:Environment variables are in the command's environment"
    assert lines[1].lower() == "c:\\windows", "rsp:WorkingDirectory is the command's current directory"
    assert result.exit_code == 0


@pytest.mark.spec("MS-WSMV 3.1.4.11", "MS-WSMV 3.1.4.14")
async def test_stdout_stderr_and_exit_codes(new_shell):
    shell = await new_shell()
    ok = await shell.run_command("echo", ["out-text"])
    assert (ok.stdout, ok.stderr, ok.exit_code) == (b"out-text\r\n", b"", 0)
    unknown = await shell.run_command("wmh_no_such_command_xyz")
    assert unknown.stdout == b""
    assert b"is not recognized as an internal or external command" in unknown.stderr
    assert unknown.exit_code == NOT_RECOGNIZED
    nested = await shell.run_command("cmd /c exit 7")
    assert nested.exit_code == 7, "the exit code of the command is reported in rsp:ExitCode"
    bad = await shell.run_command("type")
    assert bad.exit_code == 1 and bad.stderr, "a failing built-in reports on stderr with exit code 1"


@pytest.mark.spec("MS-WSMV 3.1.4.13", "MS-WSMV 2.2.4.32")
async def test_stdin_is_piped_to_the_command(new_shell):
    shell = await new_shell()
    result = await shell.run_command("findstr", ["wmh"], stdin=b"first wmh line\r\nother\r\nsecond wmh\r\n")
    assert result.stdout.splitlines() == [b"first wmh line", b"second wmh"]
    assert result.exit_code == 0


@pytest.mark.spec("MS-WSMV 3.1.4.12", "MS-WSMV 2.2.4.38")
async def test_signal_terminate_stops_a_long_runner(new_shell):
    shell = await new_shell()
    cid = await shell.start("ping -n 30 127.0.0.1")
    first = CommandResult(cid)
    for _ in range(20):
        try:
            got = await shell.receive(cid)
        except WSManFault as fault:
            assert fault.wsman_code == RECEIVE_TIMED_OUT
            continue
        first.stdout += got.data("stdout")
        if first.stdout:
            assert got.state is not None and got.state.state != STATE_DONE, "ping -n 30 runs for ~30 s"
            break
    assert b"127.0.0.1" in first.stdout
    await shell.signal(cid, SIGNAL_TERMINATE)
    after = await shell.receive(cid)
    assert after.state is not None and after.state.state == STATE_DONE, "a terminated command is Done"
    assert after.data("stdout") == b"" and after.data("stderr") == b"", "no output after terminate"


@pytest.mark.spec("MS-WSMV 3.1.4.15", "MS-WSMV 3.1.4.16")
@pytest.mark.requires("winrs-disconnect")
async def test_disconnect_and_reconnect_lose_nothing(new_shell):
    shell = await new_shell()
    cid = await shell.start("more")
    await shell.send(cid, b"before disconnect\r\n")
    await shell.disconnect(idle_timeout=120.0, buffer_mode="Block")
    await shell.reconnect()
    await shell.send(cid, b"after reconnect\r\n", end=True)
    result = await shell.collect(cid)
    await shell.signal(cid, SIGNAL_TERMINATE)
    assert result.stdout.splitlines() == [b"before disconnect", b"after reconnect"], \
        "output produced around a disconnect is buffered and delivered after Reconnect"
    assert result.exit_code == 0


@pytest.mark.spec("MS-WSMV 3.1.4.11")
async def test_unknown_shell_id_is_invalid_selectors(wsman):
    shell = WinRSShell(wsman, shell_id="00000000-0000-0000-0000-0000000000AB")
    with pytest.raises(WSManFault) as info:
        await shell.start("echo", ["x"])
    assert info.value.subcode_name == "InvalidSelectors"
    assert info.value.wsman_code == ERROR_WSMAN_UNEXPECTED_SELECTORS


@pytest.mark.spec("MS-WMOD 2.10.1", "MS-WSMV 2.2.4.37")
@pytest.mark.requires("shell-idle-reaper")
async def test_abandoned_shell_is_reaped_after_its_idle_timeout(new_shell):
    shell = await new_shell(idle_timeout=1.0)
    await asyncio.sleep(1.3)
    with pytest.raises(WSManFault) as info:
        await shell.start("echo", ["still there?"])
    assert info.value.subcode_name == "InvalidSelectors", "the idle shell and its ShellId are gone"
    shell.shell_id = None


@pytest.mark.spec("MS-WSMV 3.1.4.5")
@pytest.mark.requires("winrs-quota")
async def test_max_shells_per_user_is_a_quota_fault(new_shell):
    with pytest.raises(WSManFault) as info:
        for _ in range(200):
            await new_shell()
    assert info.value.subcode_name == "QuotaLimit"
    assert info.value.wsman_code == QUOTA_MAX_SHELLS

"""The mock's safe PowerShell-like engine (harness.targets.mock.ps_engine): allow-listed commands over the
CIM store and the runspace, every stream, input, host calls, stop, failures, breakpoints; never a process."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from harness.cim.mof import default_store
from harness.targets.mock.ps_engine import (
    COMPLETED,
    DEBUG_MODE_REMOTE_SCRIPT,
    FAILED,
    RESUME_CONTINUE,
    RESUME_STEP_INTO,
    STOPPED,
    HostCall,
    Out,
    PipelineRun,
    Rec,
    Runspace,
    SecureText,
    start_pipeline,
    start_script,
)
from harness.wire.psrp.enums import HostMethodId
from harness.wire.psrp.messages import (
    Command,
    CommandParameter,
    DebugRecord,
    ErrorRecordMessage,
    InformationRecord,
    ProgressRecord,
    VerboseRecord,
    WarningRecord,
)
from harness.wire.psrp.records import ErrorRecordInfo


@pytest.fixture
def runspace() -> Runspace:
    return Runspace(default_store(), "WMH-TEST", "tester", wallclock=lambda: 1_700_000_000.0)


def outputs(run: PipelineRun) -> list[Any]:
    return [s.value for s in run.produced if isinstance(s, Out)]


def records(run: PipelineRun, kind: type) -> list[Any]:
    return [s.payload for s in run.produced if isinstance(s, Rec) and isinstance(s.payload, kind)]


def test_environment_reads_and_writes_stay_in_the_runspace(runspace: Runspace) -> None:
    run = start_script(runspace, "Set-Item Env:WMH_A -Value one; $env:WMH_A; $env:wmh_a = 'two'; $env:WMH_A", 0)
    assert run.state == COMPLETED and outputs(run) == ["one", "two"]
    listing = start_pipeline(runspace, [Command("Get-ChildItem", args=[CommandParameter("Path", "Env:WMH_A")])], 0,
                             has_input=False)
    [entry] = outputs(listing)
    assert (entry.get("Key"), entry.get("Value")) == ("WMH_A", "two")
    assert runspace.env_get("COMPUTERNAME") == "WMH-TEST"


def test_services_and_cim_instances_come_from_the_shared_store(runspace: Runspace) -> None:
    run = start_script(runspace, "Get-CimInstance -ClassName Win32_Service -Filter \"Name='Spooler'\"", 0)
    [spooler] = outputs(run)
    assert spooler.get("Name") == "Spooler" and "Win32_Service" in spooler.type_names[0]
    stop = start_script(runspace, "Stop-Service -Name Spooler; (Get-Service -Name Spooler).Status", 0)
    assert stop.state == COMPLETED, stop.error
    assert runspace.store is not None
    state = [i for i in runspace.store.enumerate_instances("root/cimv2", "Win32_Service") if i["Name"] == "Spooler"]
    assert state[0]["State"] == "Stopped", "Stop-Service goes through the Win32_Service provider"
    start = start_script(runspace, "Start-Service Spooler -PassThru | ForEach-Object { $_.Status }", 0)
    assert [s.to_string for s in outputs(start)] == ["Running"]
    missing = start_script(runspace, "Get-Service -Name NoSuchSvc; 'next'", 0)
    assert outputs(missing) == ["next"]
    [error] = records(missing, ErrorRecordMessage)
    assert "Cannot find any service with service name 'NoSuchSvc'" in str(error.data.to_string)


def test_every_stream(runspace: Runspace) -> None:
    run = start_script(runspace, "Write-Output o; Write-Error e; Write-Warning w; Write-Verbose v; "
                                 "Write-Verbose v2 -Verbose; Write-Debug d -Debug; Write-Information i; "
                                 "Write-Host h; Write-Progress -Activity a -PercentComplete 10", 0)
    assert outputs(run) == ["o"]
    assert [r.data.to_string for r in records(run, ErrorRecordMessage)] == ["e"]
    assert [r.message for r in records(run, WarningRecord)] == ["w"]
    assert [r.message for r in records(run, VerboseRecord)] == ["v2"], "Write-Verbose needs -Verbose"
    assert [r.message for r in records(run, DebugRecord)] == ["d"]
    assert [(r.message_data, r.tags) for r in records(run, InformationRecord)] == [("i", []), ("h", ["PSHOST"])]
    assert [(r.activity, r.percent_complete) for r in records(run, ProgressRecord)] == [("a", 10)]


def test_input_is_read_when_it_ends(runspace: Runspace) -> None:
    run = start_pipeline(runspace, [Command("$input | ForEach-Object { $_ + 1 }", is_script=True)], 0,
                         has_input=True)
    assert run.state == "Running" and not run.produced
    run.add_input(1, 0)
    run.add_input(41, 0)
    assert not run.produced, "the script waits for END_OF_PIPELINE_INPUT"
    run.end_input(0)
    assert run.state == COMPLETED and outputs(run) == [2, 42]
    measure = start_pipeline(runspace, [Command("Measure-Object", args=[CommandParameter("Sum", None)])], 0,
                             has_input=True)
    for v in (1, 2, 3):
        measure.add_input(v, 0)
    measure.end_input(0)
    [info] = outputs(measure)
    assert (info.get("Count"), info.get("Sum")) == (3, 6.0)


def test_sleep_follows_the_clock_and_can_be_stopped(runspace: Runspace) -> None:
    run = start_script(runspace, "'a'; Start-Sleep -Seconds 10; 'b'", 100.0)
    assert outputs(run) == ["a"]
    run.poll(109.9)
    assert outputs(run) == ["a"] and run.next_wake() == 110.0
    run.poll(110.0)
    assert run.state == COMPLETED and outputs(run) == ["a", "b"]
    long = start_script(runspace, "Start-Sleep 600; 'never'", 0)
    long.stop()
    long.poll(1000)
    assert long.state == STOPPED and outputs(long) == []
    assert long.error is not None and long.error.fully_qualified_error_id == "PipelineStopped"


def test_read_host_waits_for_the_host_response(runspace: Runspace) -> None:
    run = start_script(runspace, "$a = Read-Host -Prompt 'Name'; 'hello ' + $a; $s = Read-Host -AsSecureString; "
                                 "$s.Length", 0)
    write, read = [s for s in run.produced if isinstance(s, HostCall)]
    assert write.method is HostMethodId.Write2 and write.parameters == ("Name: ",)
    assert run.host_call is read and read.method is HostMethodId.ReadLine
    run.answer("world", 0)
    assert run.host_call is not None and run.host_call.method is HostMethodId.ReadLineAsSecureString
    run.answer(SecureText("12345"), 0)
    assert run.state == COMPLETED and outputs(run) == ["hello world", 5]


def test_throw_and_unknown_commands(runspace: Runspace) -> None:
    run = start_script(runspace, "'a'; Get-WmhNothing; 'b'; throw 'fatal'; 'c'", 0)
    assert run.state == FAILED and outputs(run) == ["a", "b"]
    assert run.error is not None and run.error.message == "fatal"
    [nf] = records(run, ErrorRecordMessage)
    info = ErrorRecordInfo.from_object(nf.data)
    assert info.fully_qualified_error_id == "CommandNotFoundException" and info.target_object == "Get-WmhNothing"
    cmd = start_pipeline(runspace, [Command("Get-WmhNothing")], 0, has_input=False)
    assert cmd.state == FAILED and cmd.error is not None and "not recognized" in cmd.error.message
    syntax = start_script(runspace, "Write-Output 'open", 0)
    assert syntax.state == FAILED and syntax.error is not None and syntax.error.category == 17


@pytest.mark.parametrize("script", [
    "Start-Process notepad.exe", "cmd.exe /c whoami", "Invoke-Expression 'calc'", "powershell -c 'x'",
    "New-Object System.Net.WebClient", "[System.Diagnostics.Process]::Start('calc')", "& calc.exe",
    "Remove-Item C:\\ -Recurse", "Get-Content /etc/passwd",
])
def test_nothing_outside_the_allow_list_runs(runspace: Runspace, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine tried to start a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(os, "execv", refuse)
    run = start_script(runspace, script, 0)
    errors = records(run, ErrorRecordMessage)
    assert run.state == FAILED or errors, "an unknown command is an error, never an action"
    assert outputs(run) == []


def test_breakpoints_stop_only_in_remote_script_debug_mode(runspace: Runspace) -> None:
    start_script(runspace, "Set-PSBreakpoint -Script x.ps1 -Line 2", 0)
    free = start_script(runspace, "'1'\n'2'\n'3'", 0)
    assert free.state == COMPLETED, "without DebugModes.RemoteScript a breakpoint is not hit"
    runspace.debugger.mode = DEBUG_MODE_REMOTE_SCRIPT
    run = start_script(runspace, "'1'\n'2'\n'3'", 0)
    assert run.debug_stop is not None and run.debug_stop.line == 2 and outputs(run) == ["1"]
    run.resume(RESUME_STEP_INTO, 0)
    assert run.debug_stop is not None and run.debug_stop.line == 3 and outputs(run) == ["1", "2"]
    run.resume(RESUME_CONTINUE, 0)
    assert run.state == COMPLETED and outputs(run) == ["1", "2", "3"]


def test_version_table_and_date(runspace: Runspace) -> None:
    run = start_script(runspace, "$PSVersionTable.PSVersion; $PSVersionTable.PSRemotingProtocolVersion; "
                                 "Get-Date -Format yyyy-MM-dd", 0)
    assert outputs(run) == ["5.1.20348.1", "2.3", "2023-11-14"]


def test_numbers_widen_like_powershell_and_stay_serializable(runspace: Runspace) -> None:
    from harness.wire.psrp.clixml import serialize
    from harness.wire.psrp.primitives import Int64

    run = start_script(runspace, "2147483647 + 1; 9223372036854775807 * 10; 7 / 2; 6 / 3", 0)
    values = outputs(run)
    assert values[0] == 2147483648 and isinstance(values[0], Int64)
    assert isinstance(values[1], float) and values[2:] == [3.5, 2]
    assert [serialize(v)[:4] for v in values] == ["<I64", "<Db>", "<Db>", "<I32"]
    long_word = start_script(runspace, "1" + "0" * 5000, 0)
    assert long_word.state == COMPLETED and records(long_word, ErrorRecordMessage), "not a number: a command name"


def test_statements_invoke_expression_and_out_string(runspace: Runspace) -> None:
    """pypsrp's Client.execute_ps shape: New-Item env: | Out-Null; Invoke-Expression <text> | Out-String -Stream."""
    set_env = [Command("New-Item", args=[CommandParameter("Path", "env:"), CommandParameter("Name", "WMH_S"),
                                         CommandParameter("Value", "v1"), CommandParameter("Force", True)]),
               Command("Out-Null")]
    run_text = [Command("Invoke-Expression", args=[CommandParameter("Command", "$env:WMH_S; Get-Service BITS")]),
                Command("Out-String", args=[CommandParameter("Stream", None)])]
    run = start_pipeline(runspace, [], 0, has_input=False, statements=[set_env, run_text])
    assert run.state == COMPLETED, run.error
    lines = outputs(run)
    assert lines[0] == "v1" and any(line.startswith("Name") and line.endswith(": BITS") for line in lines)
    whole = start_script(runspace, "Write-Output a b | Out-String", 0)
    assert outputs(whole) == ["a\r\n"]


def test_a_failed_host_call_fails_only_its_statement(runspace: Runspace) -> None:
    run = start_script(runspace, "Read-Host; 'next'", 0)
    assert run.host_call is not None
    run.fail_call(ErrorRecordInfo("no console", "HostCallFailed"), 0)
    assert run.state == COMPLETED and outputs(run) == ["next"]
    assert [r.data.to_string for r in records(run, ErrorRecordMessage)] == ["no console"]

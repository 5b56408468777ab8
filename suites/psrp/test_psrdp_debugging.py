"""PowerShell remote debugging (MS-PSRDP over MS-PSRP): the debugger state in APPLICATION_PRIVATE_DATA, a
line breakpoint in a running script, the REMOTE_DEBUGGER_STOP_EVENT and the step/continue commands."""

from __future__ import annotations

import pytest

from harness.wire.psrp.enums import PSInvocationState as PS
from harness.wire.psrp.psrdp import DebuggerCommand, DebuggerEventKind, DebuggerRequest
from harness.wire.psrp.psrdp import debugger_state_from_private_data as debugger_state

pytestmark = [pytest.mark.requires("wsman", "psrp", "psrdp")]

#: DebugModes.RemoteScript and DebuggerResumeAction values (System.Management.Automation).
REMOTE_SCRIPT = 4
CONTINUE, STEP_OVER = 0, 3
SCRIPT = "Write-Output 'line one'\nWrite-Output 'line two'\nWrite-Output 'line three'\n"


async def _stops(pool, count: int) -> list:
    for _ in range(20):
        stops = [payload for kind, payload in pool.debugger_events() if kind is DebuggerEventKind.STOP]
        if len(stops) >= count:
            return stops
        await pool.receive_pool()
    raise AssertionError(f"expected {count} debugger stop events, got {pool.debugger_events()}")


@pytest.mark.spec("MS-PSRDP 1.7", "MS-PSRDP 2.2.7")
async def test_the_debugger_state_announces_remote_debugging(new_pool):
    pool = await new_pool()
    state = debugger_state(pool.private_data)
    assert state is not None, "REMOTE_DEBUGGER_STATE entries in APPLICATION_PRIVATE_DATA (MS-PSRDP 1.7)"
    assert not state.in_breakpoint


@pytest.mark.spec("MS-PSRDP 2.2.2", "MS-PSRDP 2.2.3", "MS-PSRDP 2.2.9", "MS-PSRDP 3.2.5")
async def test_a_line_breakpoint_stops_the_script_and_step_over_moves_one_line(new_pool):
    pool = await new_pool()
    mode = await pool.debugger(DebuggerRequest(DebuggerCommand.SET_PSDEBUGMODE, REMOTE_SCRIPT))
    assert mode.state is PS.Completed
    bp = pool.powershell().add_command("Set-PSBreakpoint", Script="wmh-debug.ps1", Line=2)
    [breakpoint_info] = await bp.invoke()
    assert breakpoint_info.get("Line") == 2
    script = pool.powershell().add_script(SCRIPT)
    await script.start()
    for _ in range(5):
        await script.receive()
        if script.output:
            break
    [first] = await _stops(pool, 1)
    assert script.output == ["line one"], "the script runs up to the breakpoint line"
    assert first.get("InvocationInfo").get("ScriptLineNumber") == 2
    args = await pool.debugger(DebuggerRequest(DebuggerCommand.GET_PSDEBUGGERSTOPARGS))
    assert args.output[0].get("InvocationInfo").get("ScriptLineNumber") == 2
    await pool.debugger(DebuggerRequest(DebuggerCommand.SET_PSDEBUGGERACTION, STEP_OVER))
    stops = await _stops(pool, 2)
    assert stops[1].get("InvocationInfo").get("ScriptLineNumber") == 3, "stepping stops at the next line"
    await pool.debugger(DebuggerRequest(DebuggerCommand.SET_PSDEBUGGERACTION, CONTINUE))
    assert await script.wait() == ["line one", "line two", "line three"]
    assert script.state is PS.Completed
    remove = pool.powershell().add_command("Remove-PSBreakpoint", Id=breakpoint_info.get("Id"))
    await remove.invoke()
    assert remove.state is PS.Completed

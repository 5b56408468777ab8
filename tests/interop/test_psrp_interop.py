"""PowerShell Remoting with unmodified third-party clients against a real ``wmh serve`` subprocess
(MS-PSRP 3.1.5 over WinRS; MS-WMOD 2.5.2.8, 3.6): pypsrp's ``RunspacePool`` + ``PowerShell`` and
``Client.execute_ps``, and pywinrm's ``Session.run_ps`` (powershell -EncodedCommand through the
simulated cmd, decoded and run by the mock's safe engine). pypsrp's traffic is run through our XSDs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import winrm
from _wire import MockServer, assert_valid, capture_pypsrp, pypsrp_messages
from pypsrp.client import Client
from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

pytestmark = pytest.mark.interop


def _wsman(server: MockServer) -> WSMan:
    return WSMan(server.host, port=server.port, username=server.username, password=server.password, ssl=False,
                 path="wsman", auth="basic", encryption="never", no_proxy=True, connection_timeout=5,
                 read_timeout=10, operation_timeout=5)


@pytest.fixture
def wsman(mock_server: MockServer, caplog: pytest.LogCaptureFixture) -> Iterator[WSMan]:
    capture_pypsrp(caplog)
    client = _wsman(mock_server)
    try:
        yield client
    finally:
        client.close()


def test_pypsrp_runspace_pool_cmdlets_and_scripts(wsman: WSMan, caplog: pytest.LogCaptureFixture) -> None:
    with RunspacePool(wsman) as pool:
        assert pool.state == RunspacePoolState.OPENED
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Service").add_parameter("Name", "WinRM")
        output = ps.invoke()
        assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
        assert [o.adapted_properties["Name"] for o in output] == ["WinRM"]
        assert str(output[0].adapted_properties["Status"]) == "Running"

        ps = PowerShell(pool)
        ps.add_script("Write-Output 'out'; Write-Error 'err'; Write-Warning 'warn'; Write-Verbose 'verb' -Verbose; "
                      "Write-Debug 'dbg' -Debug; Write-Information 'info'; "
                      "Write-Progress -Activity 'act' -Status 'st' -PercentComplete 40")
        assert ps.invoke() == ["out"]
        # pypsrp's had_errors means "PIPELINE_STATE Failed"; a non-terminating error only fills the stream
        assert not ps.had_errors and ps.state == PSInvocationState.COMPLETED
        assert [str(e) for e in ps.streams.error] == ["err"]
        assert [w.message for w in ps.streams.warning] == ["warn"]
        assert [v.message for v in ps.streams.verbose] == ["verb"]
        assert [d.message for d in ps.streams.debug] == ["dbg"]
        assert [i.message_data for i in ps.streams.information] == ["info"]
        assert [(p.activity, p.percent_complete) for p in ps.streams.progress] == [("act", 40)]

        ps = PowerShell(pool)
        ps.add_script("$input | ForEach-Object { $_ * 10 }")
        assert ps.invoke(input=[1, 2, 3]) == [10, 20, 30]

        ps = PowerShell(pool)
        ps.add_cmdlet("Measure-Object").add_parameter("Sum")
        measured = ps.invoke(input=[4, 5])
        assert measured[0].adapted_properties["Sum"] == 9.0 and measured[0].adapted_properties["Count"] == 2

        ps = PowerShell(pool)
        ps.add_script("throw 'interop failure'")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED and ps.had_errors

        ps = PowerShell(pool)
        ps.add_cmdlet("Get-NoSuchThing")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED
    assert_valid(pypsrp_messages(caplog))


def test_pypsrp_stop_and_environment(wsman: WSMan) -> None:
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script("Start-Sleep -Seconds 60; 'never'")
        ps.begin_invoke()
        ps.poll_invoke()
        ps.stop()
        assert ps.state == PSInvocationState.STOPPED
        ps = PowerShell(pool)
        ps.add_script("Set-Item Env:WMH_PSRP -Value 'kept'; $env:WMH_PSRP")
        assert ps.invoke() == ["kept"]
        ps = PowerShell(pool)
        ps.add_script("$env:WMH_PSRP")
        assert ps.invoke() == ["kept"], "the runspace keeps its environment between pipelines"


class _AnsweringUI(PSHostUserInterface):
    """pypsrp's host UI answering ReadLine (MS-PSRP 2.2.3.17 method 11)."""

    def ReadLine(self, runspace: RunspacePool, pipeline: PowerShell | None) -> str:
        return "answer-from-pypsrp"


def test_pypsrp_host_answers_read_host_after_a_key_exchange(wsman: WSMan) -> None:
    host = PSHost(None, None, False, "wmh-interop", None, _AnsweringUI(), "1.0")
    with RunspacePool(wsman, host=host) as pool:
        pool.exchange_keys()  # PUBLIC_KEY -> ENCRYPTED_SESSION_KEY (MS-PSRP 3.1.4.5)
        ps = PowerShell(pool)
        ps.add_script("'got ' + (Read-Host)")
        assert ps.invoke() == ["got answer-from-pypsrp"]
        assert ps.state == PSInvocationState.COMPLETED


def test_pypsrp_client_execute_ps(mock_server: MockServer) -> None:
    """execute_ps sends ``New-Item env: ... | Out-Null`` statements (ExtraCmds), then
    ``Invoke-Expression -Command <script> | Out-String -Stream``; the mock runs the text in its own engine."""
    client = Client(mock_server.host, port=mock_server.port, username=mock_server.username,
                    password=mock_server.password, ssl=False, path="wsman", auth="basic", encryption="never",
                    no_proxy=True, connection_timeout=5, read_timeout=10, operation_timeout=5)
    try:
        output, streams, had_errors = client.execute_ps("$PSVersionTable.PSVersion; $env:WMH_EXEC; Write-Error 'x'",
                                                        environment={"WMH_EXEC": "from-execute-ps"})
        failed, _, failed_errors = client.execute_ps("throw 'execute_ps failure'")
    finally:
        client.close()
    assert output.splitlines() == ["5.1.20348.1", "from-execute-ps"]
    assert [str(e) for e in streams.error] == ["x"]
    assert not had_errors, "pypsrp's had_errors is the Failed pipeline state; Write-Error does not fail it"
    assert failed == "" and failed_errors


def test_pywinrm_run_ps_uses_the_safe_engine(mock_server: MockServer) -> None:
    session = winrm.Session(mock_server.endpoint, auth=(mock_server.username, mock_server.password),
                            transport="basic")
    ok = session.run_ps("$env:WMH_RUN_PS = 'from-run-ps'; $env:WMH_RUN_PS; Get-Service -Name WinRM | "
                        "ForEach-Object { $_.Name }")
    assert (ok.status_code, ok.std_out, ok.std_err) == (0, b"from-run-ps\r\nWinRM\r\n", b"")
    bad = session.run_ps("Write-Output 'before'; Invoke-WmhNothing; throw 'run_ps failure'")
    assert bad.status_code == 1 and bad.std_out == b"before\r\n"
    assert b"The term 'Invoke-WmhNothing' is not recognized" in bad.std_err
    assert b"run_ps failure" in bad.std_err

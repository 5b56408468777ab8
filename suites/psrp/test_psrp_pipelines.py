"""PowerShell Remoting over WinRS (MS-PSRP 3.1.5; MS-WMOD 2.5.2.8 and Example 6 in 3.6): RunspacePool
negotiation, pipelines and their states, every output stream, input, stop, failure, host calls, the
session key exchange, disconnect/reconnect, and what PSRP changes seen through WS-Man (MS-WMOD 2.4).
The same tests run against the mock and a real Windows host."""

from __future__ import annotations

import asyncio

import pytest

from harness.client.resources import wmi_uri
from harness.wire.psrp.enums import HostMethodId
from harness.wire.psrp.enums import PSInvocationState as PS
from harness.wire.psrp.enums import RunspacePoolState as RP
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "psrp")]

SERVICE = wmi_uri("Win32_Service")
#: A service a test may stop and start again (present on Windows and in the mock's store).
SERVICE_NAME = "W32Time"


@pytest.mark.spec("MS-WMOD 3.6", "MS-WMOD 2.5.2.8", "MS-PSRP 3.1.5.3.1", "MS-PSRP 3.1.5.3.3", "MS-PSRP 2.2.2.21")
async def test_example6_create_and_invoke_a_pipeline_step_by_step(new_pool):
    pool = await new_pool()
    # Prerequisite: the RunspacePool is opened, after the negotiation of MS-PSRP 3.1.4.1.
    assert pool.states == [RP.BeforeOpen, RP.Opening, RP.NegotiationSent, RP.NegotiationSucceeded, RP.Opened]
    assert pool.private_data is not None, "APPLICATION_PRIVATE_DATA precedes RUNSPACEPOOL_STATE(Opened)"
    ps = pool.powershell().add_command("Get-CimInstance", ClassName="Win32_Service", Filter="Name='WinRM'")
    assert ps.state is PS.NotStarted
    # Steps 2-4: wxf:Command with CREATE_PIPELINE; the pipeline is Running.
    command_id = await ps.start()
    assert command_id.upper() == str(ps.pid).upper(), "the CommandId is the pipeline id (MS-PSRP 3.1.5.3.3)"
    assert ps.state is PS.Running
    # Steps 5-6: wxf:Receive until the Completed PIPELINE_STATE.
    output = await ps.wait()
    assert ps.states == [PS.NotStarted, PS.Running, PS.Completed]
    assert len(output) == 1
    service = output[0]
    assert any(t.endswith("Win32_Service") for t in service.type_names), service.type_names
    assert service.get("Name") == "WinRM" and service.get("State") == "Running"
    await pool.close()
    assert pool.states[-2:] == [RP.Closing, RP.Closed]


@pytest.mark.spec("MS-PSRP 2.2.2.19", "MS-PSRP 2.2.2.20", "MS-PSRP 2.2.2.22", "MS-PSRP 2.2.2.23",
                  "MS-PSRP 2.2.2.24", "MS-PSRP 2.2.2.25", "MS-PSRP 2.2.2.26")
async def test_every_stream_reaches_the_client(new_pool):
    pool = await new_pool()
    ps = pool.powershell().add_script(
        "Write-Output 'out-1'; Write-Error 'err-1'; Write-Warning 'warn-1'; Write-Verbose 'verbose-1' -Verbose; "
        "Write-Debug 'debug-1' -Debug; Write-Information 'info-1' -Tags t1; "
        "Write-Progress -Activity 'act-1' -Status 'half' -PercentComplete 50; Write-Output 2")
    assert await ps.invoke() == ["out-1", 2]
    assert ps.state is PS.Completed, "a non-terminating error does not fail the pipeline"
    assert [e.message for e in ps.errors] == ["err-1"]
    assert ps.warnings == ["warn-1"] and ps.verbose == ["verbose-1"] and ps.debug == ["debug-1"]
    assert [(i.message_data, i.tags) for i in ps.information] == [("info-1", ["t1"])]
    assert [(p.activity, p.status_description, p.percent_complete) for p in ps.progress] == [("act-1", "half", 50)]


@pytest.mark.spec("MS-PSRP 2.2.2.17", "MS-PSRP 2.2.2.18", "MS-PSRP 3.1.5.3.5")
async def test_pipeline_input_is_piped_to_the_commands(new_pool):
    pool = await new_pool()
    ps = pool.powershell().add_script("$input | ForEach-Object { $_ * 3 }")
    assert await ps.invoke(input=[1, 2, 3]) == [3, 6, 9]
    measure = pool.powershell().add_command("Measure-Object", Sum=True)
    [info] = await measure.invoke(input=[10, 20, 12])
    assert (info.get("Count"), info.get("Sum")) == (3, 42.0)


@pytest.mark.spec("MS-PSRP 3.1.5.3.9", "MS-PSRP 2.2.2.21")
async def test_stop_ends_a_running_pipeline_as_stopped(new_pool):
    pool = await new_pool()
    ps = pool.powershell().add_script("Write-Output 'started'; Start-Sleep -Seconds 600; Write-Output 'never'")
    await ps.start()
    for _ in range(20):
        await ps.receive()
        if ps.output:
            break
    assert ps.output == ["started"]
    await ps.stop()
    await ps.wait()
    assert ps.states == [PS.NotStarted, PS.Running, PS.Stopping, PS.Stopped]
    assert ps.output == ["started"]
    assert ps.error_record is not None and "stopped" in ps.error_record.message.lower()


@pytest.mark.spec("MS-PSRP 2.2.2.21", "MS-PSRP 2.2.3.15")
async def test_a_terminating_error_fails_the_pipeline_with_its_error_record(new_pool):
    pool = await new_pool()
    ps = pool.powershell().add_script("Write-Output 'before'; throw 'wmh suite failure'; Write-Output 'after'")
    assert await ps.invoke() == ["before"]
    assert ps.states[-1] is PS.Failed
    assert ps.error_record is not None and ps.error_record.message == "wmh suite failure"
    unknown = pool.powershell().add_command("Invoke-WmhNoSuchCommand")
    await unknown.invoke()
    assert unknown.state is PS.Failed and unknown.error_record is not None
    assert unknown.error_record.fully_qualified_error_id == "CommandNotFoundException"
    assert "The term 'Invoke-WmhNoSuchCommand' is not recognized" in unknown.error_record.message
    ok = pool.powershell().add_script("Write-Output 'pool still usable'")
    assert await ok.invoke() == ["pool still usable"]


@pytest.mark.spec("MS-PSRP 2.2.2.27", "MS-PSRP 2.2.2.28", "MS-PSRP 3.1.5.3.5")
async def test_read_host_is_a_host_call_answered_by_the_client(new_pool):
    asked: list[HostMethodId] = []

    def host(method: HostMethodId, parameters: list[object]) -> object:
        asked.append(method)
        return "answer from the client host"

    pool = await new_pool(host_handler=host)
    ps = pool.powershell().add_script("$name = Read-Host; Write-Output ('got ' + $name)")
    assert await ps.invoke() == ["got answer from the client host"]
    assert asked == [HostMethodId.ReadLine]
    assert [c.method_id for c in ps.host_calls] == [HostMethodId.ReadLine]


@pytest.mark.spec("MS-PSRP 2.2.2.3", "MS-PSRP 2.2.2.4", "MS-PSRP 2.2.5.1.24", "MS-PSRP 3.1.4.5")
async def test_key_exchange_and_a_secure_string_host_response(new_pool):
    secret = "Wmh-S3cret!"
    pool = await new_pool(host_handler=lambda method, parameters: secret)
    key = await pool.exchange_keys()
    assert len(key) == 32, "an AES-256 session key"
    ps = pool.powershell().add_script("$s = Read-Host -AsSecureString; $s.Length; $s")
    length, echoed = await ps.invoke()
    assert [c.method_id for c in ps.host_calls] == [HostMethodId.ReadLineAsSecureString]
    assert length == len(secret), "the server decrypted the SecureString with the session key"
    assert echoed == secret, "a SecureString output comes back encrypted with the same session key"


@pytest.mark.spec("MS-PSRP 3.1.5.3.16", "MS-PSRP 3.1.5.3.18", "MS-WSMV 3.1.4.15", "MS-WSMV 3.1.4.16")
async def test_disconnect_and_reconnect_lose_nothing(new_pool):
    pool = await new_pool()
    ps = pool.powershell().add_script(
        "Write-Output 'one'; Start-Sleep -Seconds 1; Write-Output 'two'; Write-Warning 'while away'; 'three'")
    await ps.start()
    await pool.disconnect()
    assert pool.state is RP.Disconnected and ps.state is PS.Disconnected
    with pytest.raises(WSManFault):
        await pool.receive(ps.command_id)  # no Receive on a disconnected shell (MS-WSMV 3.1.4.16)
    await asyncio.sleep(1.2)
    await pool.reconnect()
    assert pool.states[-3:] == [RP.Disconnected, RP.Connecting, RP.Opened]
    assert await ps.wait() == ["one", "two", "three"]
    assert ps.warnings == ["while away"]
    assert ps.states == [PS.NotStarted, PS.Running, PS.Disconnected, PS.Running, PS.Completed]


@pytest.mark.spec("MS-WMOD 2.4", "MS-PSRP 3.1.5.3.3", "MS-WSMV 3.1.4.1")
async def test_stop_service_through_psrp_is_seen_through_wsman_get(new_pool, wsman):
    pool = await new_pool()
    before = await wsman.get(SERVICE, {"Name": SERVICE_NAME})
    assert before.properties["State"] == "Running"
    stop = pool.powershell().add_command("Stop-Service", Name=SERVICE_NAME)
    await stop.invoke()
    try:
        assert stop.state is PS.Completed and not stop.errors
        after = await wsman.get(SERVICE, {"Name": SERVICE_NAME})
        assert after.properties["State"] == "Stopped", "one CIM store behind PSRP and WS-Man (MS-WMOD 2.4)"
        status = pool.powershell().add_command("Get-Service", Name=SERVICE_NAME)
        [controller] = await status.invoke()
        assert str(controller.get("Status").to_string) == "Stopped"
    finally:
        start = pool.powershell().add_command("Start-Service", Name=SERVICE_NAME)
        await start.invoke()
    again = await wsman.get(SERVICE, {"Name": SERVICE_NAME})
    assert again.properties["State"] == "Running"


@pytest.mark.spec("MS-PSRP 3.2.1", "MS-PSRP 3.1.5.3.5")
async def test_the_runspace_keeps_its_environment_between_pipelines(new_pool):
    pool = await new_pool()
    first = pool.powershell().add_script("Set-Item Env:WMH_SUITE_PSRP -Value 'kept'; $env:WMH_SUITE_PSRP")
    assert await first.invoke() == ["kept"]
    second = pool.powershell().add_command("Get-ChildItem", Path="Env:WMH_SUITE_PSRP")
    [entry] = await second.invoke()
    assert (entry.get("Key"), entry.get("Value")) == ("WMH_SUITE_PSRP", "kept")
    other = await new_pool()
    third = other.powershell().add_script("$env:WMH_SUITE_PSRP")
    assert await third.invoke() == [None], "another RunspacePool has its own environment"


@pytest.mark.spec("MS-PSRP 3.1.5.3.14", "MS-PSRP 2.2.2.29", "MS-PSRP 2.2.2.30", "MS-WSMV 3.1.4.17")
async def test_a_new_client_connects_to_a_disconnected_pool_and_gets_the_buffered_output(new_pool, wsman):
    pool = await new_pool()
    ps = pool.powershell().add_script("Write-Output 'kept-1'; Start-Sleep -Seconds 1; Write-Output 'kept-2'")
    command_id = await ps.start()
    await pool.disconnect()
    assert pool.shell_id is not None
    other = await new_pool(open_pool=False)
    await other.attach(pool.shell_id)
    assert other.states == [RP.BeforeOpen, RP.Connecting, RP.Opened]
    pool.shell_id = None  # the shell now belongs to the new client
    adopted = other.adopt(command_id)
    await asyncio.sleep(1.1)
    assert await adopted.wait() == ["kept-1", "kept-2"], "output buffered while disconnected is not lost"
    fresh = other.powershell().add_script("'after connect'")
    assert await fresh.invoke() == ["after connect"]


@pytest.mark.spec("MS-PSRP 2.2.2.28", "MS-PSRP 3.1.4.5")
async def test_a_failing_host_answers_with_an_error_and_secure_input_starts_the_key_exchange(new_pool):
    def host(method: HostMethodId, parameters: list[object]) -> object:
        if method is HostMethodId.ReadLine:
            raise RuntimeError("no console here")
        return "typed-secret"

    pool = await new_pool(host_handler=host)
    failing = pool.powershell().add_script("Read-Host; Write-Output 'after the failed call'")
    assert await failing.invoke() == ["after the failed call"], "a failed host call ends only its statement"
    assert [e.message for e in failing.errors] == ["no console here"]
    assert pool.session_key is None
    secure = pool.powershell().add_script("(Read-Host -AsSecureString).Length")
    assert await secure.invoke() == [len("typed-secret")]
    assert pool.session_key is not None, "the client exchanged keys when the SecureString was asked for"

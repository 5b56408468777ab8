"""PowerShell session configurations are WinRM plug-ins with their own SDDL (MS-WSMV 3.1.4.1.34;
MS-WMOD 2.9.3): a Remote Management Users member may open a session of ``microsoft.powershell``
(the Windows default SDDL grants RM GA; observed Windows behaviour, Windows Server 2012 and later),
but inside it only has its own rights, so Stop-Service fails and the service keeps running. Once an
administrator removes RM from the plug-in's Security SDDL (``winrm/config/plugin`` Put, MS-WSMV 4.2.4),
the same user's shell Create is w:AccessDenied (DSP0226 14.6.1). The read-only user exists on the mock
only (``wm_mock_config``); real targets skip. The original SDDL is put back after the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from harness.client.psrp import PsrpRunspacePool
from harness.client.resources import wmi_uri
from harness.client.winrm_config import get_plugin, put_plugin_security
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.transport.tap import Tap
from harness.wire.psrp.enums import ErrorCategory
from harness.wire.psrp.enums import PSInvocationState as PS
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.ns import RESOURCE_POWERSHELL

SERVICE = wmi_uri("Win32_Service")
SERVICE_NAME = "W32Time"
PLUGIN = "microsoft.powershell"
RM_ACE = "(A;;GA;;;RM)"


@pytest.fixture
async def admin(wm_target: Target, wm_tap: Tap) -> AsyncIterator[WSManClient]:
    async with WSManClient(wm_target, tap=wm_tap) as client:
        yield client


@pytest.fixture
async def reader(wm_target: Target, wm_tap: Tap, read_only_user: tuple[str, str]) -> AsyncIterator[WSManClient]:
    name, password = read_only_user
    wm_tap.add_secret(password)
    async with WSManClient(dataclasses.replace(wm_target, username=name, password=password), tap=wm_tap) as client:
        yield client


@pytest.fixture
async def plugin_sddl(admin: WSManClient) -> AsyncIterator[str]:
    """The PowerShell plug-in's Security SDDL before the test; put back afterwards whatever happened."""
    original = (await get_plugin(admin, PLUGIN)).sddl_for(RESOURCE_POWERSHELL)
    assert original is not None, "microsoft.powershell has a Security element for its resource URI"
    try:
        yield original
    finally:
        restored = await put_plugin_security(admin, PLUGIN, RESOURCE_POWERSHELL, original)
        assert restored.sddl_for(RESOURCE_POWERSHELL) == original


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WSMV 3.1.4.1.34.1", "MS-PSRP 3.1.5.3.1", "MS-WMOD 2.4")
@pytest.mark.requires("wsman", "get", "psrp", "sddl")
async def test_an_rm_member_opens_powershell_but_cannot_stop_a_service(admin: WSManClient, reader: WSManClient,
                                                                       plugin_sddl: str) -> None:
    assert RM_ACE in plugin_sddl.upper(), "the default session configuration admits Remote Management Users"
    before = await admin.get(SERVICE, {"Name": SERVICE_NAME})
    assert before.properties["State"] == "Running"
    pool = PsrpRunspacePool(reader)
    await pool.open()
    try:
        status = pool.powershell().add_command("Get-Service", Name=SERVICE_NAME)
        [controller] = await status.invoke()
        assert str(controller.get("Status").to_string) == "Running"
        stop = pool.powershell().add_command("Stop-Service", Name=SERVICE_NAME)
        await stop.invoke()
        assert stop.state is PS.Completed, "a non-terminating error (observed Windows behaviour)"
        [error] = stop.errors
        assert error.fully_qualified_error_id == "CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand"
        assert error.category == ErrorCategory.CloseError
        assert error.message.endswith(f"({SERVICE_NAME})' cannot be stopped due to the following error: "
                                      f"Cannot open {SERVICE_NAME} service on computer '.'.")
    finally:
        await pool.close()
    after = await admin.get(SERVICE, {"Name": SERVICE_NAME})
    assert after.properties["State"] == "Running", "the service state is unchanged"


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WSMV 3.1.4.1.34.2", "MS-WSMV 4.2.4", "DSP0226 14.6.1")
@pytest.mark.requires("wsman", "put", "psrp", "sddl")
async def test_removing_rm_from_the_plugin_sddl_denies_the_rm_member(admin: WSManClient, reader: WSManClient,
                                                                     plugin_sddl: str) -> None:
    without_rm = plugin_sddl.replace(RM_ACE, "")
    assert without_rm != plugin_sddl
    changed = await put_plugin_security(admin, PLUGIN, RESOURCE_POWERSHELL, without_rm)
    assert changed.sddl_for(RESOURCE_POWERSHELL) == without_rm
    assert (await get_plugin(admin, PLUGIN)).sddl_for(RESOURCE_POWERSHELL) == without_rm
    pool = PsrpRunspacePool(reader)
    with pytest.raises(WSManFault) as denied:
        await pool.open()
    assert denied.value.subcode_name == "AccessDenied"
    ok = PsrpRunspacePool(admin)
    await ok.open()
    await ok.close()

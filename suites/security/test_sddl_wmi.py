"""The namespace security descriptor set over WS-Man also decides WMI over DCOM calls (MS-WMOD 2.4,
2.9.3; MS-WMI 3.1.4.3.12, 3.1.4.3.4, 5.2): one namespace, one DACL, whichever protocol asks.

The descriptor is changed with ``__SystemSecurity.SetSD`` over WS-Man (MS-WSMV 3.1.4.15) and always
restored, bytes for bytes (capability ``sddl``: the mock has it, a real target only when its
inventory entry opts in).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pywbem

from harness.client.resources import wmi_uri
from harness.client.wmi import WmiError
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock import authorization as authz
from harness.transport.tap import Tap
from harness.wire.wmi.constants import WBEM_E_ACCESS_DENIED

SECURITY = wmi_uri("__SystemSecurity")
#: Denies the Administrators group (the suites' user) every write right on the namespace, ahead of
#: every grant; Enable, Remote Enable and WRITE_DAC stay, so reads and the restoring SetSD still work.
DENY_ADMIN_WRITE = (authz.ACE_DENIED, 0, authz.WBEM_FULL_WRITE_REP | authz.WBEM_PARTIAL_WRITE_REP
                    | authz.WBEM_WRITE_PROVIDER, authz.ADMINISTRATORS)


async def _get_sd(client: WSManClient) -> bytes:
    out = await client.invoke(SECURITY, "GetSD")
    assert str(out["ReturnValue"]) == "0", f"GetSD returned {out['ReturnValue']}"
    sd = out["SD"]
    return bytes(int(b) for b in (sd if isinstance(sd, list) else [sd]))


async def _set_sd(client: WSManClient, data: bytes) -> None:
    out = await client.invoke(SECURITY, "SetSD", params={"SD": [str(b) for b in data]})
    assert str(out["ReturnValue"]) == "0", f"SetSD returned {out['ReturnValue']}"


@pytest.fixture
async def admin(wm_target: Target, wm_tap: Tap) -> AsyncIterator[WSManClient]:
    async with WSManClient(wm_target, tap=wm_tap) as client:
        yield client


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WMI 3.1.4.3.12", "MS-WMI 3.1.4.3.4", "MS-WMI 2.2.11")
@pytest.mark.requires("wsman", "invoke", "wmi", "win32-environment", "sddl")
async def test_write_denied_over_wsman_denies_wmi_put_instance_but_not_get_object(
        admin: WSManClient, wmi: Any, unique_name: str) -> None:
    original = await _get_sd(admin)
    path = f'Win32_Environment.Name="{unique_name}",UserName="<SYSTEM>"'

    def env(value: str) -> pywbem.CIMInstance:
        return pywbem.CIMInstance("Win32_Environment", properties={
            "Name": unique_name, "UserName": "<SYSTEM>", "VariableValue": value})

    await wmi.put_instance(env("before"))
    try:
        await _set_sd(admin, authz.prepend_ace(original, *DENY_ADMIN_WRITE))
        with pytest.raises(WmiError) as denied:
            await wmi.put_instance(env("after"))
        assert denied.value.hresult == WBEM_E_ACCESS_DENIED, denied.value
        got = await wmi.get_object(path)
        assert got["VariableValue"] == "before", "GetObject needs only Enable and Remote Enable"
        await _set_sd(admin, original)
        await wmi.put_instance(env("after"))
        assert (await wmi.get_object(path))["VariableValue"] == "after", "restoring the descriptor restores write"
    finally:
        await _set_sd(admin, original)
        assert await _get_sd(admin) == original
        with contextlib.suppress(Exception):
            await wmi.delete_instance(path)

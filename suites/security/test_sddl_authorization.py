"""Namespace security descriptors decide what a user may do (MS-WMOD 2.9.3; MS-WMI 5.2).

``__SystemSecurity.GetSD`` / ``SetSD`` are invoked over WS-Man on the resource
``.../wmi/root/cimv2/__SystemSecurity`` (MS-WSMV 3.1.4.15 custom actions on the WMI singleton).
Changing a namespace's security changes the target: the suites require the capability ``sddl``,
which the built-in mock has and a real target only has when its inventory entry lists it (opt-in).
Every test restores the original descriptor, bytes for bytes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock import authorization as authz
from harness.transport.tap import Tap
from harness.wire.wsman.faults import WSManFault

SECURITY = wmi_uri("__SystemSecurity")
ENVIRONMENT = wmi_uri("Win32_Environment")
#: Denies the Administrators group every write right on the namespace (Full Write, Partial Write,
#: Provider Write), ahead of every grant: write is refused, Enable / Remote Enable / WRITE_DAC stay.
DENY_ADMIN_WRITE = (authz.ACE_DENIED, 0, authz.WBEM_FULL_WRITE_REP | authz.WBEM_PARTIAL_WRITE_REP
                    | authz.WBEM_WRITE_PROVIDER, authz.ADMINISTRATORS)


async def get_sd(client: WSManClient) -> bytes:
    out = await client.invoke(SECURITY, "GetSD")
    assert str(out["ReturnValue"]) == "0", f"GetSD returned {out['ReturnValue']}"
    sd = out["SD"]
    return bytes(int(b) for b in (sd if isinstance(sd, list) else [sd]))


async def set_sd(client: WSManClient, data: bytes) -> None:
    out = await client.invoke(SECURITY, "SetSD", params={"SD": [str(b) for b in data]})
    assert str(out["ReturnValue"]) == "0", f"SetSD returned {out['ReturnValue']}"


def with_ace_first(sd: bytes, ace_type: int, flags: int, mask: int, sid: str) -> bytes:
    """``sd`` with one ACE evaluated before all others (MS-DTYP 2.4.5, 2.5.3.2)."""
    return authz.prepend_ace(sd, ace_type, flags, mask, sid)


@pytest.fixture
async def admin(wm_target: Target, wm_tap: Tap) -> AsyncIterator[WSManClient]:
    async with WSManClient(wm_target, tap=wm_tap) as client:
        yield client


@pytest.fixture
async def restored_sd(admin: WSManClient) -> AsyncIterator[bytes]:
    """The namespace's descriptor before the test; put back afterwards whatever happened."""
    original = await get_sd(admin)
    try:
        yield original
    finally:
        await set_sd(admin, original)
        assert await get_sd(admin) == original


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WSMV 3.1.4.15", "MS-DTYP 2.4.6")
@pytest.mark.requires("wsman", "invoke", "sddl")
async def test_get_sd_over_wsman_returns_a_self_relative_descriptor(admin: WSManClient) -> None:
    sd = authz.parse_security_descriptor(await get_sd(admin))
    assert sd.owner is not None and sd.dacl, "the namespace descriptor has an owner and a DACL"
    granted = authz.granted_rights(sd, {authz.ADMINISTRATORS, authz.AUTHENTICATED_USERS, authz.EVERYONE,
                                        authz.NETWORK})
    assert granted & authz.WRITE_DAC and granted & authz.WBEM_REMOTE_ACCESS, "administrators administer WMI"


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WMI 5.2", "DSP0226 14.6.1")
@pytest.mark.requires("wsman", "invoke", "put", "create", "delete", "win32-environment", "sddl")
async def test_set_sd_without_write_denies_put_but_get_still_works(admin: WSManClient, restored_sd: bytes,
                                                                    unique_name: str) -> None:
    selectors = {"Name": unique_name, "UserName": "<SYSTEM>"}
    await admin.create(ENVIRONMENT, {**selectors, "VariableValue": "before"}, class_name="Win32_Environment")
    try:
        await set_sd(admin, with_ace_first(restored_sd, *DENY_ADMIN_WRITE))
        with pytest.raises(WSManFault) as denied:
            await admin.put(ENVIRONMENT, selectors, {"VariableValue": "after"}, class_name="Win32_Environment")
        assert denied.value.subcode_name == "AccessDenied", denied.value
        assert (await admin.get(ENVIRONMENT, selectors)).properties["VariableValue"] == "before"
        await set_sd(admin, restored_sd)
        updated = await admin.put(ENVIRONMENT, selectors, {"VariableValue": "after"}, class_name="Win32_Environment")
        assert updated.properties["VariableValue"] == "after"
    finally:
        await set_sd(admin, restored_sd)
        await admin.delete(ENVIRONMENT, selectors)


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WMOD 2.4", "MS-WMI 3.1.4.3.22")
@pytest.mark.requires("wsman", "invoke", "wmi", "sddl")
async def test_descriptor_set_over_wsman_is_what_wmi_over_dcom_reads(admin: WSManClient, restored_sd: bytes,
                                                                       wmi: Any) -> None:
    changed = with_ace_first(restored_sd, authz.ACE_ALLOWED, 0, authz.WBEM_ENABLE, authz.user_sid(
        "WMH-SDDL-TEST", "nobody", administrator=False))
    await set_sd(admin, changed)
    out = await wmi.exec_method("__SystemSecurity=@", "GetSD")
    assert int(out["ReturnValue"]) == 0
    assert bytes(int(b) for b in out["SD"]) == changed
    assert await get_sd(admin) == changed


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WMI 5.2")
@pytest.mark.requires("wsman", "get", "put", "sddl")
async def test_granting_a_read_only_user_write_lets_its_put_through(wm_target: Target, wm_tap: Tap, admin: WSManClient,
                                                                     restored_sd: bytes, wm_mock_config: Any,
                                                                     read_only_user: tuple[str, str],
                                                                     unique_name: str) -> None:
    """The read-only flag of the mock is one case of namespace security: the user's own SID
    (harness.targets.mock.authorization.user_sid) granted Partial Write may write; removed, it may not."""
    name, password = read_only_user
    wm_tap.add_secret(password)
    reader = dataclasses.replace(wm_target, username=name, password=password)
    selectors = {"Name": unique_name, "UserName": "<SYSTEM>"}
    await admin.create(ENVIRONMENT, {**selectors, "VariableValue": "before"}, class_name="Win32_Environment")
    try:
        async with WSManClient(reader, tap=wm_tap) as client:
            with pytest.raises(WSManFault) as denied:
                await client.put(ENVIRONMENT, selectors, {"VariableValue": "x"}, class_name="Win32_Environment")
            assert denied.value.subcode_name == "AccessDenied"
            sid = authz.user_sid(wm_mock_config.machine, name, administrator=False)
            await set_sd(admin, with_ace_first(restored_sd, authz.ACE_ALLOWED, 0, authz.WBEM_PARTIAL_WRITE_REP, sid))
            updated = await client.put(ENVIRONMENT, selectors, {"VariableValue": "x"}, class_name="Win32_Environment")
            assert updated.properties["VariableValue"] == "x"
            with pytest.raises(WSManFault) as no_sd:
                await client.invoke(SECURITY, "GetSD")
            assert no_sd.value.subcode_name == "AccessDenied", "READ_CONTROL was not granted"
    finally:
        await admin.delete(ENVIRONMENT, selectors)

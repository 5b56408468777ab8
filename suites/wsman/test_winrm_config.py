"""The WinRM service configuration resources (``winrm get/set winrm/config``; MS-WSMV 3.1.4.1,
3.1.4.2, 3.1.4.8; DSP0226 7.3, 7.4, 8.2).

Get and the listener enumeration run against any target (the target's credentials must be an
administrator's, as ``winrm get winrm/config`` needs on Windows). Put changes the target's
configuration, so the Put checks run on the built-in mock only (``wm_mock_config``; real targets
skip) and restore what they change.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from harness.client.winrm_config import (
    NS_CONFIG,
    URI_CONFIG,
    URI_LISTENER,
    URI_SERVICE,
    URI_WINRS,
    enumerate_listeners,
    get_config,
    put_config,
)
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.transport.http_client import HttpTransport
from harness.transport.tap import Tap
from harness.wire.wsman import messages as msg
from harness.wire.wsman.faults import WSManFault

BOOLEAN = ("true", "false")


@pytest.fixture
def saved_config(wm_mock_config: Any) -> Iterator[Any]:
    """The mock's MockConfig, every setting (and its AuthPolicy) restored after the test."""
    saved = dataclasses.replace(wm_mock_config)
    saved_auth = dataclasses.replace(wm_mock_config.auth)
    try:
        yield wm_mock_config
    finally:
        for f in dataclasses.fields(saved_auth):
            setattr(wm_mock_config.auth, f.name, getattr(saved_auth, f.name))
        for name in ("max_envelope_size", "max_request_bytes", "max_timeout", "root_sddl", "max_shells_per_user",
                     "max_processes_per_shell", "shell_idle_timeout", "enumeration_expiry"):
            setattr(wm_mock_config, name, getattr(saved, name))


@pytest.fixture
def reader(wm_mock_config: Any, unique_name: str, wm_tap: Tap) -> Iterator[tuple[str, str]]:
    """A local user who is not an administrator (MS-WMOD 2.9.3), added to the mock for one test."""
    password = "Ro-" + secrets.token_urlsafe(12)
    wm_mock_config.read_only_users[unique_name] = password
    wm_tap.add_secret(password)
    try:
        yield unique_name, password
    finally:
        wm_mock_config.read_only_users.pop(unique_name, None)


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 7.3")
@pytest.mark.requires("wsman", "get")
async def test_get_config_tree(wsman: WSManClient) -> None:
    """``winrm get winrm/config``: Config in the cfg namespace, sizes in KiB, times in ms, then the
    Client, Service and Winrs groups (observed Windows behaviour)."""
    tree = await get_config(wsman, URI_CONFIG)
    assert (tree.name, tree.namespace) == ("Config", NS_CONFIG)
    assert int(tree.text("MaxEnvelopeSizekb")) >= 8
    assert int(tree.text("MaxTimeoutms")) > 0
    assert [n for n in tree.names() if n in ("Client", "Service", "Winrs")] == ["Client", "Service", "Winrs"]
    service = tree.group("Service")
    assert service.text("AllowUnencrypted") in BOOLEAN
    assert service.group("Auth").text("CbtHardeningLevel") in ("None", "Relaxed", "Strict")


@pytest.mark.spec("MS-WSMV 3.1.4.1", "DSP0226 7.3")
@pytest.mark.requires("wsman", "get")
async def test_get_reflects_the_live_settings(wsman: WSManClient, saved_config: Any) -> None:
    """The mock answers its own live settings (MaxEnvelopeSize, MaxTimeout, WinRS quotas, policy)."""
    saved_config.max_shells_per_user = 17
    saved_config.auth.allow_unencrypted = True
    tree = await get_config(wsman, URI_CONFIG)
    assert tree.text("MaxEnvelopeSizekb") == str(saved_config.max_envelope_size // 1024)
    assert tree.text("MaxTimeoutms") == str(round(saved_config.max_timeout * 1000))
    assert tree.group("Winrs").text("MaxShellsPerUser") == "17"
    assert tree.group("Service").text("AllowUnencrypted") == "true"
    assert tree.group("Service").text("RootSDDL") == saved_config.root_sddl


@pytest.mark.spec("MS-WSMV 3.1.4.8", "DSP0226 8.2", "DSP0226 8.4")
@pytest.mark.requires("wsman", "enumerate")
async def test_enumerate_listeners(wsman: WSManClient, wm_target: Target) -> None:
    """``winrm enumerate winrm/config/listener``: the listener the harness talks to is among them."""
    listeners = await enumerate_listeners(wsman)
    assert listeners
    scheme = "HTTPS" if wm_target.url.lower().startswith("https") else "HTTP"
    ours = [li for li in listeners if li.text("Transport") == scheme]
    assert ours, f"no {scheme} listener in {[li.values for li in listeners]}"
    assert all(li.namespace == URI_LISTENER for li in listeners)
    assert any(li.text("URLPrefix") == "wsman" and li.text("Enabled") == "true" for li in ours)
    # The selectors Address and Transport name the listener (DSP0226 7.3).
    got = await get_config(wsman, URI_LISTENER, {"Address": ours[0].text("Address"), "Transport": scheme})
    assert got.text("Port") == ours[0].text("Port")


@pytest.mark.spec("MS-WSMV 3.1.4.2", "DSP0226 7.4", "MS-WSMV 2.2.9.1")
@pytest.mark.requires("wsman", "get", "put")
async def test_put_allow_unencrypted_takes_effect(wsman: WSManClient, wm_target: Target, wm_tap: Tap,
                                                  saved_config: Any) -> None:
    """Put of Service/AllowUnencrypted: false refuses plain messages over HTTP (HTTP 500, observed
    Windows behaviour), true lets them in; Get answers the new value."""
    if wm_target.url.lower().startswith("https"):
        pytest.skip("not supported: the mock target listens on HTTPS, where TLS protects every message")
    plain = dataclasses.replace(wm_target, auth="ntlm", encryption="never")
    new = await put_config(wsman, URI_SERVICE, {"AllowUnencrypted": False})
    assert new.text("AllowUnencrypted") == "false"
    async with HttpTransport(plain.url, username=plain.username, password=plain.password, tap=wm_tap,
                             auth="ntlm", encryption="never") as transport:
        assert (await transport.post(msg.build_identify_request())).status == 500
    # Basic cannot be sealed over HTTP, so it is refused now: switch back over sealed NTLM.
    sealed = dataclasses.replace(wm_target, auth="ntlm", encryption="auto")
    async with WSManClient(sealed, tap=wm_tap) as admin:
        await put_config(admin, URI_SERVICE, {"AllowUnencrypted": True})
        assert (await get_config(admin, URI_SERVICE)).text("AllowUnencrypted") == "true"
    async with HttpTransport(plain.url, username=plain.username, password=plain.password, tap=wm_tap,
                             auth="ntlm", encryption="never") as transport:
        assert (await transport.post(msg.build_identify_request())).status == 200


@pytest.mark.spec("MS-WSMV 3.1.4.2", "MS-WSMV 3.1.4.5", "DSP0226 7.4")
@pytest.mark.requires("wsman", "put", "winrs", "winrs-quota")
async def test_put_max_shells_per_user_takes_effect(wsman: WSManClient, saved_config: Any) -> None:
    """Put of Winrs/MaxShellsPerUser=1: a second shell of the user is w:QuotaLimit (MS-WSMV 3.1.4.5)."""
    from harness.client.shell import WinRSShell

    tree = await put_config(wsman, URI_WINRS, {"MaxShellsPerUser": 1})
    assert tree.text("MaxShellsPerUser") == "1"
    first = WinRSShell(wsman)
    await first.create()
    try:
        with pytest.raises(WSManFault) as fault:
            await WinRSShell(wsman).create()
        assert fault.value.subcode.endswith("QuotaLimit")
    finally:
        await first.delete()


@pytest.mark.spec("MS-WSMV 3.1.4.2", "DSP0226 7.4", "DSP0226 14.6")
@pytest.mark.requires("wsman", "get", "put")
@pytest.mark.parametrize(("uri", "values", "subcode"), [
    (URI_SERVICE, {"AllowUnencrypted": "maybe"}, "SchemaValidationError"),
    (URI_WINRS, {"MaxShellsPerUser": "-5"}, "SchemaValidationError"),
    (URI_WINRS, {"NoSuchSetting": "1"}, "SchemaValidationError"),
    # MS-WSMV 2.2.4.42: 0..0x7FFFFFFF, 0 = unlimited; beyond it is out of range
    (URI_WINRS, {"MaxShellsPerUser": "2147483648"}, "InvalidParameter"),
])
async def test_put_bad_values_fault(wsman: WSManClient, saved_config: Any, uri: str, values: dict[str, str],
                                    subcode: str) -> None:
    """A non-boolean, a negative number or an unknown element is a schema violation, an out-of-range
    number an invalid parameter (closest DSP0226 14.6 faults); nothing changes."""
    before = await get_config(wsman, uri)
    with pytest.raises(WSManFault) as fault:
        await put_config(wsman, uri, values)
    assert fault.value.subcode.endswith(subcode)
    assert (await get_config(wsman, uri)).values == before.values


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WSMV 3.1.4.2", "DSP0226 14.6.1")
@pytest.mark.requires("wsman", "get", "put")
async def test_non_admin_is_refused(wm_target: Target, wm_tap: Tap, saved_config: Any,
                                    reader: tuple[str, str]) -> None:
    """A user outside Administrators may neither read nor change winrm/config: w:AccessDenied
    (observed Windows behaviour)."""
    name, password = reader
    user = dataclasses.replace(wm_target, auth="basic", username=name, password=password)
    before = saved_config.auth.allow_unencrypted
    async with WSManClient(user, tap=wm_tap) as client:
        with pytest.raises(WSManFault) as denied_get:
            await get_config(client, URI_SERVICE)
        assert denied_get.value.subcode.endswith("AccessDenied")
        with pytest.raises(WSManFault) as denied_put:
            await put_config(client, URI_SERVICE, {"AllowUnencrypted": not before})
        assert denied_put.value.subcode.endswith("AccessDenied")
    assert saved_config.auth.allow_unencrypted == before

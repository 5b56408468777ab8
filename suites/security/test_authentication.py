"""Authentication and message protection of the WS-Man listener (MS-WSMV 2.2.9.1; MS-WMOD 2.9.3, 4.1).

The checks that need a policy switched run on the built-in mock only (``listener_policy``); the
others run unchanged against a real Windows target with the target's credentials.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness.auth.encryption import is_encrypted
from harness.auth.policy import AuthPolicy
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.targets.inventory import Target
from harness.transport.http_client import HttpTransport, TransportError
from harness.transport.tap import Tap
from harness.wire.wsman import messages as msg
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.ns import RESOURCE_WMI_PREFIX

SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
WRONG_PASSWORD = "Wrong-Pa55word-for-wmh"


def _secrets_absent(tap: Tap, nodeid: str, *secrets: str | None) -> None:
    exchanges = tap.for_test(nodeid)
    assert exchanges, "the tap recorded nothing"
    for ex in exchanges:
        blob = repr(ex.headers).encode() + ex.body
        for secret in filter(None, secrets):
            assert secret.encode() not in blob and secret.encode("utf-16-le") not in blob


@pytest.mark.spec("MS-WSMV 2.2.9.1")
@pytest.mark.requires("wsman", "get")
@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_wrong_password_is_refused_with_401(wm_target: Target, wm_tap: Tap, auth: str,
                                                  request: pytest.FixtureRequest) -> None:
    if auth != wm_target.auth and not wm_target.supports(auth):
        pytest.skip(f"not supported: target does not offer {auth}")
    wm_tap.add_secret(WRONG_PASSWORD)
    wrong = dataclasses.replace(wm_target, auth=auth, password=WRONG_PASSWORD)
    async with WSManClient(wrong, tap=wm_tap) as client:
        with pytest.raises(ProtocolViolation, match="HTTP 401"):
            await client.get(SERVICE, {"Name": "WinRM"})
    statuses = [e.status for e in wm_tap.for_test(request.node.nodeid) if e.direction == "response"]
    assert statuses and statuses[-1] == 401
    _secrets_absent(wm_tap, request.node.nodeid, WRONG_PASSWORD, wm_target.password)


@pytest.mark.spec("MS-WSMV 2.2.9.1.1", "MS-NLMP 3.4")
@pytest.mark.requires("wsman", "get", "ntlm", "message-encryption")
async def test_ntlm_sealed_messages(wm_target: Target, wm_tap: Tap, request: pytest.FixtureRequest) -> None:
    sealed = dataclasses.replace(wm_target, auth="ntlm", encryption="always")
    async with WSManClient(sealed, tap=wm_tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    wire = [e for e in wm_tap.for_test(request.node.nodeid) if e.body]
    assert wire and all(is_encrypted(e.headers.get("Content-Type", "")) for e in wire if e.status != 401)
    _secrets_absent(wm_tap, request.node.nodeid, wm_target.password)


@pytest.mark.spec("MS-WSMV 2.2.9.1", "MS-WMOD 4.1")
@pytest.mark.requires("wsman", "identify")
async def test_unencrypted_traffic_refused_when_policy_forbids_it(wm_target: Target, wm_tap: Tap,
                                                                 listener_policy: AuthPolicy) -> None:
    """AllowUnencrypted false: plain NTLM messages are answered with HTTP 500 (observed Windows
    behaviour) and Basic, which cannot be sealed, is neither offered nor accepted over HTTP."""
    listener_policy.allow_unencrypted = False
    listener_policy.allow_basic = True
    if wm_target.url.startswith("https"):
        pytest.skip("not supported: the mock target listens on HTTPS, where TLS protects every message")
    async with HttpTransport(wm_target.url, username=wm_target.username, password=wm_target.password, tap=wm_tap,
                             auth="ntlm", encryption="never") as transport:
        reply = await transport.post(msg.build_identify_request())
        assert reply.status == 500
    async with WSManClient(dataclasses.replace(wm_target, auth="basic"), tap=wm_tap) as client:
        with pytest.raises(ProtocolViolation, match="HTTP 401"):
            await client.get(SERVICE, {"Name": "WinRM"})
    async with WSManClient(dataclasses.replace(wm_target, auth="ntlm", encryption="auto"), tap=wm_tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"


@pytest.mark.spec("MS-WMOD 2.9.3", "MS-WSMV 3.1.4.2")
@pytest.mark.requires("wsman", "get", "put")
@pytest.mark.parametrize("auth", ["basic", "ntlm"])
async def test_read_only_user_can_get_but_put_is_access_denied(wm_target: Target, wm_tap: Tap, auth: str,
                                                              read_only_user: tuple[str, str]) -> None:
    name, password = read_only_user
    wm_tap.add_secret(password)
    reader = dataclasses.replace(wm_target, auth=auth, username=name, password=password)
    async with WSManClient(reader, tap=wm_tap) as client:
        before = await client.get(SERVICE, {"Name": "WinRM"})
        with pytest.raises(WSManFault) as fault:
            await client.put(SERVICE, {"Name": "WinRM"}, {"StartMode": "Disabled"}, class_name="Win32_Service")
        assert fault.value.subcode.endswith("AccessDenied")
        after = await client.get(SERVICE, {"Name": "WinRM"})
        assert after.properties.get("StartMode") == before.properties.get("StartMode")


@pytest.mark.spec("MS-WSMV 2.2.9.1", "MS-WMOD 4.1")
@pytest.mark.requires("wsman", "get")
async def test_disallowed_authentication_methods_are_refused(wm_target: Target, wm_tap: Tap,
                                                            listener_policy: AuthPolicy) -> None:
    listener_policy.allow_basic = False
    async with WSManClient(dataclasses.replace(wm_target, auth="basic"), tap=wm_tap) as client:
        with pytest.raises(ProtocolViolation, match="HTTP 401"):
            await client.get(SERVICE, {"Name": "WinRM"})
    async with WSManClient(dataclasses.replace(wm_target, auth="ntlm"), tap=wm_tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    listener_policy.allow_basic = True
    listener_policy.allow_negotiate = False
    async with WSManClient(dataclasses.replace(wm_target, auth="ntlm"), tap=wm_tap) as client:
        with pytest.raises(TransportError, match="does not offer Negotiate"):
            await client.get(SERVICE, {"Name": "WinRM"})
    async with WSManClient(dataclasses.replace(wm_target, auth="basic"), tap=wm_tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"

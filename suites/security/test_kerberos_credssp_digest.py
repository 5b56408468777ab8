"""The other HTTP authentication schemes of a WinRM listener: Digest, CredSSP, Kerberos (MS-WSMV 2.2.4.34).

* Digest: the WinRM service never offers or accepts it (ServiceAuthType has no Digest switch,
  MS-WSMV 2.2.4.34; WSManAuthenticationFlags: Digest is a client-only option "but the service
  cannot"). A request with ``Authorization: Digest`` gets 401 listing only the offered schemes.
  Runs unchanged against a real target.
* CredSSP: offered and accepted only while ServiceAuthType CredSSP is true, false by default
  (MS-WSMV 3.1.4.1.29.2); mock only (``listener_policy``).
* Kerberos: the ``Kerberos`` scheme is offered only while the service has it switched on; mock only.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import aiohttp
import pytest

from harness.auth.headers import offered_schemes
from harness.auth.policy import AuthPolicy
from harness.auth.tls import client_ssl_context
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.transport.tap import Tap
from harness.wire.wsman import messages as msg
from harness.wire.wsman.ns import RESOURCE_WMI_PREFIX

SERVICE = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
#: The schemes a WinRM listener can offer (MS-WSMV 2.2.4.34 ServiceAuthType; Certificate is TLS-level).
WINRM_SCHEMES = {"basic", "negotiate", "kerberos", "credssp"}
DIGEST = ('Digest username="wmh", realm="WSMAN", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/wsman", '
          'qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"')


async def _challenges(target: Target, tap: Tap, authorization: str | None) -> tuple[int, dict[str, str]]:
    """Status and offered schemes (every ``WWW-Authenticate`` line) of an unauthenticated Identify."""
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    if authorization:
        headers["Authorization"] = authorization
    body = msg.build_identify_request()
    ssl_context = client_ssl_context(target.tls_verify) if urlsplit(target.url).scheme == "https" else None
    tap.record(protocol="wsman", direction="request", peer=target.url, headers=headers, body=body)
    timeout = aiohttp.ClientTimeout(total=target.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.post(target.url, data=body, headers=headers, ssl=ssl_context or True) as resp:
        data = await resp.read()
        values = list(resp.headers.getall("WWW-Authenticate", []))
        tap.record(protocol="wsman", direction="response", peer=target.url, headers=dict(resp.headers),
                   body=data, status=resp.status)
        return resp.status, offered_schemes(values)


@pytest.mark.spec("MS-WSMV 2.2.4.34", "MS-WSMV 2.2.9.1", "RFC 7235 3.1")
@pytest.mark.requires("wsman")
async def test_digest_is_refused_with_the_offered_schemes(wm_target: Target, wm_tap: Tap) -> None:
    """Observed Windows behaviour: Digest is answered like no credentials at all, 401 + offered schemes."""
    status, offered = await _challenges(wm_target, wm_tap, DIGEST)
    assert status == 401
    assert offered, "a 401 must name the schemes the listener accepts"
    assert "digest" not in offered
    assert set(offered) <= WINRM_SCHEMES, offered


@pytest.mark.spec("MS-WSMV 2.2.4.34", "MS-WSMV 3.1.4.1.29.2", "MS-CSSP 3.1.5")
@pytest.mark.requires("wsman", "get")
async def test_credssp_only_when_allowed(wm_target: Target, wm_tap: Tap, listener_policy: AuthPolicy) -> None:
    listener_policy.allow_credssp = False
    _, offered = await _challenges(wm_target, wm_tap, None)
    assert "credssp" not in offered
    listener_policy.allow_credssp = True
    _, offered = await _challenges(wm_target, wm_tap, None)
    assert "credssp" in offered
    credssp = dataclasses.replace(wm_target, auth="credssp", encryption="auto")
    async with WSManClient(credssp, tap=wm_tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"


@pytest.mark.spec("MS-WSMV 2.2.4.34", "RFC 4559 4")
@pytest.mark.requires("wsman")
async def test_kerberos_scheme_only_when_allowed(wm_target: Target, wm_tap: Tap,
                                                 listener_policy: AuthPolicy) -> None:
    listener_policy.allow_kerberos = False
    _, offered = await _challenges(wm_target, wm_tap, None)
    assert "kerberos" not in offered and "negotiate" in offered
    listener_policy.allow_kerberos = True
    _, offered = await _challenges(wm_target, wm_tap, None)
    assert "kerberos" in offered

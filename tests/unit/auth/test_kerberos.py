"""Kerberos in both roles against a real MIT KDC on loopback (RFC 4120, RFC 4121, RFC 4559, MS-WSMV 2.2.9.1).

The realm (tests/kdc/mit_realm.py) is built once for this module; its krb5.conf, keytab and credential
cache reach the client and the in-process mock only through a per-test ``monkeypatch`` of the
environment, so nothing leaks into other tests. Skipped when krb5kdc or python-gssapi is missing.
"""

from __future__ import annotations

from typing import Any

import pytest
import spnego
from _authkit import ADMIN_PASSWORD, serve

from harness.auth.acceptor import Acceptor, ConnectionAuth
from harness.auth.encryption import is_encrypted
from harness.auth.kerberos import (
    KERBEROS_PROTOCOL,
    SPNEGO_PROTOCOL,
    client_credentials,
    encryption_protocol,
    is_principal,
)
from harness.auth.policy import AuthPolicy
from harness.auth.users import LocalUser, UserDatabase
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.transport.http_client import HttpTransport, TransportError
from harness.transport.tap import Tap
from harness.wire.wsman import messages as msg

SERVICE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"


def config(**policy: object) -> MockConfig:
    cfg = MockConfig(password=ADMIN_PASSWORD)
    cfg.auth = AuthPolicy(**policy)  # type: ignore[arg-type]
    return cfg


def target(url: str, auth: str, user: str, password: str) -> Target:
    return Target(name="t", url=url, auth=auth, username=user, password=password, encryption="auto", timeout=10.0)


def assert_no_secret(tap: Tap, *secrets: str) -> None:
    for ex in tap.exchanges:
        blob = repr(ex.headers).encode() + ex.body
        for secret in secrets:
            assert secret.encode() not in blob and secret.encode("utf-16-le") not in blob


# --- no KDC needed ---------------------------------------------------------------------------------------

@pytest.mark.spec("RFC 4559 4", "MS-NLMP 3.3.1")
def test_principal_names_and_credentials() -> None:
    assert is_principal("wmh@WMH.TEST") and not is_principal("wmh") and not is_principal("DOM\\wmh")
    ntlm_only = client_credentials("wmh", "pw-1", kerberos=True)
    assert [type(c).__name__ for c in ntlm_only] == ["NTLMHash"] and ntlm_only[0].nt_hash
    assert [type(c).__name__ for c in client_credentials("wmh@WMH.TEST", "pw-1", kerberos=True)] == ["Password"]
    assert encryption_protocol("Kerberos") == KERBEROS_PROTOCOL and encryption_protocol("Negotiate") == SPNEGO_PROTOCOL


@pytest.mark.spec("MS-WSMV 2.2.4.34")
def test_kerberos_scheme_offered_only_when_enabled() -> None:
    assert "Kerberos" not in AuthPolicy().challenges(tls=False)
    assert AuthPolicy(allow_kerberos=True).challenges(tls=False) == ['Basic realm="WSMAN"', "Negotiate", "Kerberos"]
    outcome = Acceptor(AuthPolicy(), UserDatabase([LocalUser("wmh", "x")])).authenticate(
        ConnectionAuth(), "Kerberos YIIBxyz=")
    assert not outcome.ok and "not offered" in outcome.reason


# --- against the KDC -------------------------------------------------------------------------------------

@pytest.mark.spec("RFC 4121 4.2.6.2", "MS-WSMV 2.2.9.1.1")
async def test_kerberos_scheme_sealed_over_http(krb_env: Any) -> None:
    tap = Tap()
    async with serve(config(allow_basic=False, allow_unencrypted=False, allow_kerberos=True)) as url, \
            WSManClient(target(url, "kerberos", krb_env.principal, krb_env.password), tap=tap) as client:
        for _ in range(2):
            assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    requests = [e for e in tap.exchanges if e.direction == "request"]
    assert any(e.headers.get("Authorization", "").startswith("Kerberos ") for e in requests)
    sealed = [e for e in requests if e.body]
    assert len(sealed) == 2 and all(KERBEROS_PROTOCOL in e.headers["Content-Type"] for e in sealed)
    assert all(b"Envelope" not in e.body for e in sealed)
    assert_no_secret(tap, krb_env.password)


@pytest.mark.spec("RFC 4757 7.3", "MS-WSMV 2.2.9.1.1")
async def test_rc4_hmac_kerberos_session_sealed_over_http(rc4_env: Any) -> None:
    """An RC4-HMAC realm (older Windows domains): wrap tokens are RFC 1964 style (RFC 4757 7.3) and
    carry a pad byte, which must not reach the SOAP parser in either direction."""
    tap = Tap()
    async with serve(config(allow_basic=False, allow_unencrypted=False, allow_kerberos=True)) as url, \
            WSManClient(target(url, "kerberos", rc4_env.principal, rc4_env.password), tap=tap) as client:
        for _ in range(2):
            assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    sealed = [e for e in tap.exchanges if e.direction == "request" and e.body]
    assert len(sealed) == 2 and all(KERBEROS_PROTOCOL in e.headers["Content-Type"] for e in sealed)
    assert_no_secret(tap, rc4_env.password)


@pytest.mark.spec("RFC 4178", "RFC 4559 4")
async def test_kerberos_under_negotiate_when_the_scheme_is_not_offered(krb_env: Any) -> None:
    tap = Tap()
    async with serve(config(allow_unencrypted=False)) as url, \
            HttpTransport(url, username=krb_env.principal, password=krb_env.password, tap=tap,
                          auth="kerberos") as transport:
        reply = await transport.post(msg.build_identify_request())
        assert reply.status == 200 and b"IdentifyResponse" in reply.body
        assert transport.security_context.protocol == "kerberos"
    sealed = [e for e in tap.exchanges if e.direction == "request" and e.body]
    assert sealed and all(SPNEGO_PROTOCOL in e.headers["Content-Type"] for e in sealed)
    assert any(e.headers.get("Authorization", "").startswith("Negotiate ") for e in tap.exchanges)


@pytest.mark.spec("RFC 4178 3.1")
async def test_negotiate_prefers_kerberos_for_a_principal(krb_env: Any) -> None:
    async with serve(config(allow_unencrypted=False)) as url:
        async with HttpTransport(url, username=krb_env.principal, password=krb_env.password, tap=Tap(),
                                 auth="negotiate") as transport:
            assert (await transport.post(msg.build_identify_request())).status == 200
            assert transport.security_context.negotiated_protocol == "kerberos"
        async with HttpTransport(url, username="wmh", password=ADMIN_PASSWORD, tap=Tap(),
                                 auth="negotiate") as transport:
            assert (await transport.post(msg.build_identify_request())).status == 200
            assert transport.security_context.negotiated_protocol == "ntlm"


@pytest.mark.spec("RFC 4120 3.1.3")
async def test_wrong_kerberos_password(krb_env: Any) -> None:
    tap = Tap()
    async with serve(config(allow_kerberos=True)) as url, \
            HttpTransport(url, username=krb_env.principal, password="Not-The-Krb-Pw1", tap=tap,
                          auth="kerberos") as transport:
        with pytest.raises(TransportError, match="authentication"):
            await transport.post(msg.build_identify_request())
    assert_no_secret(tap, "Not-The-Krb-Pw1")


@pytest.mark.spec("RFC 4121 4.1")
def test_principal_without_local_account_is_refused(krb_env: Any) -> None:
    client = spnego.client(krb_env.principal, krb_env.password, hostname="localhost", service="HTTP",
                           protocol="kerberos", options=spnego.NegotiateOptions.wrapping_winrm)
    acceptor = Acceptor(AuthPolicy(allow_kerberos=True), UserDatabase([LocalUser("someone-else", "x")]))
    outcome = acceptor.authenticate(ConnectionAuth(), "Kerberos " + _b64(client.step()))
    assert not outcome.ok and "not a local user" in outcome.reason
    accepted = Acceptor(AuthPolicy(allow_kerberos=True), UserDatabase([LocalUser("wmh", "x")]))
    conn = ConnectionAuth()
    client = spnego.client(krb_env.principal, krb_env.password, hostname="localhost", service="HTTP",
                           protocol="kerberos", options=spnego.NegotiateOptions.wrapping_winrm)
    outcome = accepted.authenticate(conn, "Kerberos " + _b64(client.step()))
    assert outcome.ok and outcome.user is not None and outcome.user.name == "wmh" and conn.scheme == "kerberos"
    assert outcome.www_authenticate and outcome.www_authenticate[0].startswith("Kerberos ")   # the AP-REP
    assert is_encrypted('multipart/encrypted;protocol="x";boundary="b"')


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")

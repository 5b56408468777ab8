"""CredSSP (MS-CSSP) in both roles: policy, the sealed session over HTTP, HTTPS, and that the delegated
password is never logged, recorded or kept (MS-WSMV 2.2.4.34, 2.2.9.1.1, 2.2.9.1.2)."""

from __future__ import annotations

import logging

import pytest
import spnego
from _authkit import ADMIN_PASSWORD, READER_PASSWORD, serve

from harness.auth.acceptor import Acceptor, ConnectionAuth
from harness.auth.credssp import CHUNK, CREDSSP_PROTOCOL, MULTI_ENCRYPTED_TYPE, seal
from harness.auth.encryption import is_encrypted, parse_body, parse_content_type, unwrap_message
from harness.auth.headers import encode_token, offered_schemes
from harness.auth.initiator import Initiator
from harness.auth.policy import AuthPolicy
from harness.auth.tls import ServerTls, generate_self_signed
from harness.auth.users import UserDatabase
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.transport.http_client import HttpTransport, TransportError
from harness.transport.tap import REDACTED, Tap
from harness.wire.wsman import messages as msg

SERVICE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
TLS: ServerTls = generate_self_signed()


def config(**policy: object) -> MockConfig:
    cfg = MockConfig(password=ADMIN_PASSWORD, read_only_users={"reader": READER_PASSWORD})
    cfg.auth = AuthPolicy(**policy)  # type: ignore[arg-type]
    return cfg


def credssp_target(url: str, *, user: str = "wmh", password: str = ADMIN_PASSWORD) -> Target:
    return Target(name="t", url=url, auth="credssp", username=user, password=password, encryption="auto",
                  verify_tls=False, timeout=10.0)


def assert_nothing_secret(tap: Tap, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for ex in tap.exchanges:
        blob = repr(ex.headers).encode() + ex.body
        for secret in secrets:
            assert secret.encode() not in blob and secret.encode("utf-16-le") not in blob
        for name, value in ex.headers.items():
            if name.lower() in ("authorization", "www-authenticate") and value.startswith("CredSSP "):
                assert value == f"CredSSP {REDACTED}", value
    for secret in secrets:
        assert secret not in caplog.text


def handshake(acceptor: Acceptor, conn: ConnectionAuth, initiator: Initiator) -> None:
    """Run the CredSSP legs in memory the way HTTP carries them (tokens under the ``CredSSP`` scheme)."""
    header = initiator.step()
    for _ in range(initiator.max_legs):
        assert header is not None and header.startswith("CredSSP ")
        outcome = acceptor.authenticate(conn, header)
        server_token = offered_schemes(outcome.www_authenticate).get("credssp") or None
        if outcome.ok:
            if server_token is not None:
                initiator.step(server_token)
            return
        assert outcome.reason == "handshake continues", outcome.reason
        header = initiator.step(server_token)
    raise AssertionError("CredSSP did not complete")


@pytest.mark.spec("MS-WSMV 2.2.4.34", "MS-WSMV 3.1.4.1.29.2")
def test_credssp_offered_and_accepted_only_when_allowed(users: UserDatabase) -> None:
    assert "CredSSP" not in AuthPolicy().challenges(tls=False)
    assert "CredSSP" not in AuthPolicy.windows_default().challenges(tls=True)
    assert AuthPolicy(allow_credssp=True).challenges(tls=True)[-1] == "CredSSP"
    initiator = Initiator("credssp", "wmh", ADMIN_PASSWORD, hostname="localhost", encrypt=True)
    refused = Acceptor(AuthPolicy(), users).authenticate(ConnectionAuth(), initiator.step())
    assert not refused.ok and "not offered" in refused.reason
    assert not any(v.startswith("CredSSP") for v in refused.www_authenticate)


@pytest.mark.spec("MS-CSSP 3.1.5")
def test_in_memory_handshake_maps_the_user_and_drops_the_password(users: UserDatabase) -> None:
    acceptor, conn = Acceptor(AuthPolicy(allow_credssp=True), users), ConnectionAuth()
    initiator = Initiator("credssp", "reader", READER_PASSWORD, hostname="localhost", encrypt=True)
    handshake(acceptor, conn, initiator)
    assert conn.user is not None and conn.user.name == "reader" and conn.user.read_only
    assert conn.scheme == "credssp" and initiator.complete
    assert conn.context.get_extra_info("client_credential") is None   # the delegated password is gone
    # the sealed session works both ways
    ctype, body = seal(initiator.context, b"<x/>" * 10, CREDSSP_PROTOCOL)
    assert unwrap_message(conn.context, ctype, body) == b"<x/>" * 10


@pytest.mark.spec("MS-CSSP 3.1.5")
def test_wrong_password_is_refused(users: UserDatabase) -> None:
    acceptor, conn = Acceptor(AuthPolicy(allow_credssp=True), users), ConnectionAuth()
    initiator = Initiator("credssp", "wmh", "not-the-password-1", hostname="localhost", encrypt=True)
    header = initiator.step()
    for _ in range(initiator.max_legs):
        outcome = acceptor.authenticate(conn, header)
        if outcome.reason != "handshake continues":
            break
        try:
            header = initiator.step(offered_schemes(outcome.www_authenticate).get("credssp"))
        except Exception:   # the initiator may notice the failure itself (TSRequest errorCode)
            return
        if header is None:
            break
    assert not outcome.ok and outcome.reason != "handshake continues"
    assert conn.user is None


@pytest.mark.spec("MS-CSSP 2.2.1")
@pytest.mark.parametrize("token", ["AAAA", "FgMBAAEA", encode_token("X", b"\x16\x03\x01\xff\xff" + b"\x00" * 40)[2:]])
def test_garbage_tokens_get_a_401(users: UserDatabase, token: str) -> None:
    outcome = Acceptor(AuthPolicy(allow_credssp=True), users).authenticate(ConnectionAuth(), f"CredSSP {token}")
    assert not outcome.ok and outcome.attempted


@pytest.mark.spec("MS-WSMV 2.2.9.1.2")
def test_long_messages_are_sealed_in_16k_pieces(users: UserDatabase) -> None:
    acceptor, conn = Acceptor(AuthPolicy(allow_credssp=True), users), ConnectionAuth()
    initiator = Initiator("credssp", "wmh", ADMIN_PASSWORD, hostname="localhost", encrypt=True)
    handshake(acceptor, conn, initiator)
    message = bytes(range(256)) * 200   # 51200 bytes: four pieces
    ctype, body = seal(conn.context, message, CREDSSP_PROTOCOL)
    assert ctype.startswith(MULTI_ENCRYPTED_TYPE) and is_encrypted(ctype)
    protocol, boundary = parse_content_type(ctype)
    parts = parse_body(body, boundary)
    assert protocol == CREDSSP_PROTOCOL and [p.length for p in parts] == [CHUNK, CHUNK, CHUNK, 51200 - 3 * CHUNK]
    assert unwrap_message(initiator.context, ctype, body) == message
    short_type, _ = seal(conn.context, b"<short/>", CREDSSP_PROTOCOL)
    assert short_type.startswith("multipart/encrypted")


@pytest.mark.spec("MS-WSMV 2.2.9.1.1", "MS-CSSP 3.1.5")
async def test_sealed_credssp_over_http(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tap = Tap()
    async with serve(config(allow_basic=False, allow_unencrypted=False, allow_credssp=True)) as url, \
            WSManClient(credssp_target(url), tap=tap) as client:
        for _ in range(2):
            assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        services = await client.enumerate_all(SERVICE, max_elements=100)   # answers over 16 KiB
        assert len(services.items) > 5
    requests = [e for e in tap.exchanges if e.direction == "request"]
    assert requests[0].body == b"" and any(e.headers.get("Authorization", "").startswith("CredSSP") for e in requests)
    sealed = [e for e in requests if e.body]
    assert sealed and all(CREDSSP_PROTOCOL in e.headers["Content-Type"] for e in sealed)
    assert all(b"Envelope" not in e.body for e in sealed)
    replies = [e for e in tap.exchanges if e.direction == "response" and e.body and e.status == 200]
    assert any(MULTI_ENCRYPTED_TYPE in e.headers.get("Content-Type", "") for e in replies)
    assert_nothing_secret(tap, caplog, ADMIN_PASSWORD)


@pytest.mark.spec("MS-CSSP 3.1.5")
async def test_credssp_over_https_without_sealing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tap = Tap()
    cfg = config(allow_basic=False, allow_unencrypted=False, allow_credssp=True)
    cfg.tls = TLS
    async with serve(cfg) as url, WSManClient(credssp_target(url), tap=tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    assert not any(is_encrypted(e.headers.get("Content-Type", "")) for e in tap.exchanges)
    assert_nothing_secret(tap, caplog, ADMIN_PASSWORD)


@pytest.mark.spec("MS-WSMV 3.1.4.1.29.2")
async def test_credssp_client_against_a_listener_without_it() -> None:
    async with serve(config()) as url, \
            HttpTransport(url, username="wmh", password=ADMIN_PASSWORD, tap=Tap(), auth="credssp") as transport:
        with pytest.raises(TransportError, match="does not offer CredSSP"):
            await transport.post(msg.build_identify_request())


@pytest.mark.spec("MS-CSSP 3.1.5")
async def test_credssp_wrong_password_over_http(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tap = Tap()
    async with serve(config(allow_credssp=True)) as url, \
            WSManClient(credssp_target(url, password="wrong-Pa55-777"), tap=tap) as client:
        with pytest.raises((ProtocolViolation, TransportError)):
            await client.get(SERVICE, {"Name": "WinRM"})
    assert_nothing_secret(tap, caplog, ADMIN_PASSWORD, "wrong-Pa55-777")


def test_raw_pyspnego_client_is_accepted(users: UserDatabase) -> None:
    """A CredSSP initiator built by pyspnego alone (as requests-credssp does) is accepted too."""
    client = spnego.client("wmh", ADMIN_PASSWORD, hostname="localhost", protocol="credssp",
                           credssp_negotiate_context=spnego.client("wmh", ADMIN_PASSWORD, protocol="ntlm"))
    acceptor, conn = Acceptor(AuthPolicy(allow_credssp=True), users), ConnectionAuth()
    token = client.step()
    for _ in range(12):
        outcome = acceptor.authenticate(conn, encode_token("CredSSP", token))
        server = offered_schemes(outcome.www_authenticate).get("credssp")
        if outcome.ok:
            break
        token = client.step(spnego_bytes(server))
    assert outcome.ok and outcome.user is not None and outcome.user.name == "wmh"


def spnego_bytes(value: str | None) -> bytes:
    import base64

    assert value
    return base64.b64decode(value)

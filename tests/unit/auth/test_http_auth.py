"""Client and mock over real sockets: NTLM/Negotiate handshakes on one keep-alive connection, sealed
messages, policy refusals, HTTPS verification and channel binding (MS-WSMV 2.2.9.1, RFC 5929)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import aiohttp
import pytest
from _authkit import ADMIN_PASSWORD, READER_PASSWORD, ntlm_client, serve

from harness.auth.encryption import is_encrypted
from harness.auth.headers import encode_token, offered_schemes
from harness.auth.policy import AuthPolicy, CbtHardening
from harness.auth.tls import ServerTls, channel_bindings, generate_self_signed
from harness.client.wsman import ProtocolViolation, WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.transport.http_client import HttpTransport, TransportError
from harness.transport.tap import REDACTED, Tap
from harness.wire.wsman import messages as msg
from harness.wire.wsman.faults import WSManFault

SERVICE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
TLS: ServerTls = generate_self_signed()


def config(**policy: object) -> MockConfig:
    cfg = MockConfig(password=ADMIN_PASSWORD, read_only_users={"reader": READER_PASSWORD})
    cfg.auth = AuthPolicy(**policy)  # type: ignore[arg-type]
    return cfg


def target(url: str, auth: str, *, user: str = "wmh", password: str = ADMIN_PASSWORD, encryption: str = "auto",
           verify: bool = True, ca_file: str | None = None) -> Target:
    return Target(name="t", url=url, auth=auth, username=user, password=password, encryption=encryption,
                  verify_tls=verify, ca_file=ca_file, timeout=10.0)


def assert_no_secret(tap: Tap, *secrets: str) -> None:
    for ex in tap.exchanges:
        blob = repr(ex.headers).encode() + ex.body
        for secret in secrets:
            assert secret.encode() not in blob and secret.encode("utf-16-le") not in blob
        for name, value in ex.headers.items():
            if name.lower() in ("authorization", "www-authenticate") and value.split(" ")[0] in ("Negotiate", "Basic"):
                assert value.endswith(REDACTED) or value in ("Negotiate", 'Basic [REDACTED]'), value


@pytest.mark.spec("MS-WSMV 2.2.9.1.1", "MS-NLMP 3.2.5")
@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
async def test_sealed_get_over_http(auth: str) -> None:
    tap = Tap()
    async with serve(config(allow_basic=False, allow_unencrypted=False)) as url, \
            WSManClient(target(url, auth), tap=tap) as client:
        for _ in range(3):
            instance = await client.get(SERVICE, {"Name": "WinRM"})
            assert instance.properties["Name"] == "WinRM"
    requests = [e for e in tap.exchanges if e.direction == "request"]
    responses = [e for e in tap.exchanges if e.direction == "response"]
    # one handshake (empty POST, then NEGOTIATE and AUTHENTICATE legs) for three sealed messages
    assert [e.body for e in requests[:3]] == [b"", b"", b""]
    assert [r.status for r in responses[:3]] == [401, 401, 200]
    assert sum("Authorization" in e.headers for e in requests) == 2
    sealed = requests[3:]
    assert len(sealed) == 3
    for ex in sealed:   # recorded as on the wire: multipart/encrypted, no readable SOAP
        assert is_encrypted(ex.headers["Content-Type"]) and ex.body.startswith(b"--Encrypted Boundary\r\n")
        assert b"Win32_Service" not in ex.body and b"Envelope" not in ex.body
    for ex in responses[3:]:
        assert is_encrypted(ex.headers["Content-Type"]) and b"WinRM" not in ex.body
    assert_no_secret(tap, ADMIN_PASSWORD)


@pytest.mark.spec("MS-WSMV 2.2.9.1")
async def test_ntlm_without_sealing_when_policy_allows_it() -> None:
    tap = Tap()
    async with serve(config()) as url, WSManClient(target(url, "ntlm", encryption="never"), tap=tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        assert (await client.identify()).product_vendor
    requests = [e for e in tap.exchanges if e.direction == "request"]
    assert all(b"Envelope" in e.body for e in requests)   # the body travels with every leg
    assert_no_secret(tap, ADMIN_PASSWORD)


@pytest.mark.spec("MS-WSMV 2.2.9.1")
async def test_unencrypted_negotiate_refused_when_policy_forbids_it() -> None:
    tap = Tap()
    async with serve(config(allow_unencrypted=False)) as url:
        async with HttpTransport(url, username="wmh", password=ADMIN_PASSWORD, tap=tap, auth="ntlm",
                                 encryption="never") as transport:
            reply = await transport.post(msg.build_identify_request())
            assert reply.status == 500 and b"AllowUnencrypted" in reply.body
        async with HttpTransport(url, username="wmh", password=ADMIN_PASSWORD, tap=tap, auth="basic") as transport:
            reply = await transport.post(msg.build_identify_request())
            assert reply.status == 401   # Basic cannot be sealed: not even offered over HTTP
            offered = [v.split(" ")[0] for k, v in tap.exchanges[-1].headers.items() if k == "WWW-Authenticate"]
            assert offered == ["Negotiate"]


@pytest.mark.spec("MS-WSMV 2.2.9.1")
@pytest.mark.parametrize("auth", ["ntlm", "negotiate", "basic"])
async def test_wrong_password_is_reported(auth: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tap = Tap()
    async with serve(config()) as url, WSManClient(target(url, auth, password="not-it-123"), tap=tap) as client:
        with pytest.raises(ProtocolViolation, match="401"):
            await client.get(SERVICE, {"Name": "WinRM"})
    assert_no_secret(tap, "not-it-123", ADMIN_PASSWORD)
    assert "authentication refused" in caplog.text          # the mock says why, without secrets
    assert "not-it-123" not in caplog.text and ADMIN_PASSWORD not in caplog.text


@pytest.mark.spec("MS-WMOD 2.9.3")
async def test_read_only_user_over_ntlm_can_get_but_not_put() -> None:
    async with serve(config()) as url, WSManClient(target(url, "ntlm", user="reader",
                                                          password=READER_PASSWORD)) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        with pytest.raises(WSManFault) as fault:
            await client.put(SERVICE, {"Name": "WinRM"}, {"StartMode": "Manual"}, class_name="Win32_Service")
        assert "AccessDenied" in fault.value.subcode


async def test_negotiate_disallowed_is_reported() -> None:
    async with serve(config(allow_negotiate=False)) as url, WSManClient(target(url, "ntlm")) as client:
        with pytest.raises(TransportError, match="does not offer Negotiate"):
            await client.get(SERVICE, {"Name": "WinRM"})


async def test_connection_loss_reauthenticates() -> None:
    tap = Tap()
    async with serve(config()) as url, WSManClient(target(url, "ntlm"), tap=tap) as client:
        await client.get(SERVICE, {"Name": "WinRM"})
        transport = client._transport
        assert transport._session is not None
        await transport._session.close()   # drop the keep-alive connection; the old context is bound to it
        transport._session = None
        await client.get(SERVICE, {"Name": "WinRM"})
    assert sum("Authorization" in e.headers for e in tap.exchanges if e.direction == "request") == 4


def _write_ca(tmp_path: Path) -> str:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(TLS.cert_pem)
    return str(ca)


@pytest.mark.spec("RFC 5929 4.1", "MS-WSMV 2.2.9.1")
@pytest.mark.parametrize("auth", ["ntlm", "negotiate"])
async def test_https_with_ca_file_and_strict_channel_binding(tmp_path: Path, auth: str) -> None:
    cfg = config(allow_unencrypted=False, cbt_hardening=CbtHardening.STRICT)
    cfg.tls = TLS
    async with serve(cfg) as url, WSManClient(target(url, auth, ca_file=_write_ca(tmp_path))) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        assert client._transport.encrypt is False   # TLS protects the messages: no sealing in "auto"


async def test_https_basic_allowed_without_unencrypted_and_verification_modes(tmp_path: Path) -> None:
    cfg = config(allow_unencrypted=False)
    cfg.tls = TLS
    async with serve(cfg) as url:
        async with WSManClient(target(url, "basic", verify=False)) as client:
            assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        async with WSManClient(target(url, "basic")) as client:   # system trust: self-signed is refused
            with pytest.raises(TransportError, match=r"certificate|SSL"):
                await client.get(SERVICE, {"Name": "WinRM"})
        with pytest.raises(TransportError, match="CA file"):
            HttpTransport(url, username="wmh", password="x", tap=Tap(), verify_tls=str(tmp_path / "missing.pem"))


@pytest.mark.spec("RFC 5929 4.1")
@pytest.mark.parametrize("level, cert_der, expected", [
    (CbtHardening.STRICT, None, 401),
    (CbtHardening.STRICT, generate_self_signed().cert_der, 401),
    (CbtHardening.RELAXED, None, 200),
    (CbtHardening.RELAXED, generate_self_signed().cert_der, 401),
    (CbtHardening.STRICT, TLS.cert_der, 200),
])
async def test_cbt_hardening_against_a_hand_driven_client(level: CbtHardening, cert_der: bytes | None,
                                                          expected: int) -> None:
    cfg = config(cbt_hardening=level)
    cfg.tls = TLS
    client = ntlm_client("wmh", ADMIN_PASSWORD, wrap=False, cbt=channel_bindings(cert_der) if cert_der else None)
    body = msg.build_identify_request()
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    async with serve(cfg) as url, aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=1)) as s:
        async with s.post(url, data=body, headers={**headers, "Authorization": encode_token(
                "Negotiate", client.step())}) as resp:
            assert resp.status == 401
            challenge = offered_schemes(resp.headers.getall("WWW-Authenticate"))["negotiate"]
            await resp.read()
        token = client.step(base64.b64decode(challenge))
        async with s.post(url, data=body, headers={**headers, "Authorization": encode_token("Negotiate", token)}) \
                as resp:
            assert resp.status == expected
            if expected == 401:   # refused: a fresh challenge, as for any failed logon
                assert "Negotiate" in resp.headers.getall("WWW-Authenticate")


async def test_sealed_request_without_context_and_garbage_sealed_body() -> None:
    from harness.auth.encryption import content_type

    async with serve(config()) as url, aiohttp.ClientSession() as s, s.post(
            url, data=b"--Encrypted Boundary\r\n", headers={"Content-Type": content_type()}) as resp:
        assert resp.status == 401
    tap = Tap()
    async with serve(config()) as url, HttpTransport(url, username="wmh", password=ADMIN_PASSWORD, tap=tap,
                                                     auth="ntlm") as transport:
        await transport.post(msg.build_identify_request())
        assert transport._session is not None
        async with transport._session.post(url, data=b"--Encrypted Boundary\r\ngarbage",
                                           headers={"Content-Type": content_type()}) as resp:
            assert resp.status == 400 and "cannot decrypt" in await resp.text()


def test_transport_argument_checks() -> None:
    with pytest.raises(TransportError, match="unsupported authentication"):
        HttpTransport("http://h/wsman", username="u", password="p", tap=Tap(), auth="digest")
    with pytest.raises(TransportError, match="encryption must be"):
        HttpTransport("http://h/wsman", username="u", password="p", tap=Tap(), auth="ntlm", encryption="maybe")
    assert not HttpTransport("http://h/wsman", username="u", password="p", tap=Tap(), auth="basic").encrypt
    assert HttpTransport("http://h/wsman", username="u", password="p", tap=Tap(), auth="ntlm").encrypt
    assert not HttpTransport("https://h/wsman", username="u", password="p", tap=Tap(), auth="ntlm").encrypt
    assert HttpTransport("https://h/wsman", username="u", password="p", tap=Tap(), auth="ntlm",
                         encryption="always").encrypt

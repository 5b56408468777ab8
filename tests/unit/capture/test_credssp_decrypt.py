"""CredSSP-sealed WinRM traffic opened with a TLS key log, sans-IO (harness.capture.credssp_decrypt).

The CredSSP legs run in memory between our initiator and our acceptor (pyspnego underneath, each
role able to write its TLS secrets to an NSS key log, harness.auth.credssp) and are laid out as the
HTTP messages that carry them (``Authorization: CredSSP`` / ``WWW-Authenticate: CredSSP``, MS-CSSP
3.1.5; sealed bodies, MS-WSMV 2.2.9.1.1 / 2.2.9.1.2). TSRequests built by pyspnego's own encoder
check our DER reader (MS-CSSP 2.2.1).
"""

from __future__ import annotations

import base64
import os
import random
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import spnego
from spnego._credssp_structures import NegoData
from spnego._credssp_structures import TSRequest as SpnegoTSRequest

from harness.auth import credssp
from harness.auth.credssp import CHUNK, CREDSSP_PROTOCOL, MULTI_ENCRYPTED_TYPE, seal
from harness.auth.errors import AuthError
from harness.auth.users import LocalUser, UserDatabase
from harness.capture.check import KeysMissing, NotDecryptable
from harness.capture.credssp_decrypt import (
    CredSSPDecodeError,
    credssp_token,
    describe_nego_token,
    open_credssp_stream,
    parse_ts_request,
    parse_ts_requests,
    sealed_parts,
    uses_credssp,
)
from harness.capture.http1 import HttpMessage
from harness.capture.tls import KeyLog, parse_keylog, read_keylog

PASSWORD = "Cred-Ssp-Unit-7!"
USER = "wmh"
USERS = UserDatabase([LocalUser(USER, PASSWORD)])


def soap(n: int, tag: str = "x") -> bytes:
    """A stand-in SOAP message of about ``n`` bytes (only its bytes matter here)."""
    filler = (tag * n)[:max(0, n - 40)]
    return f'<?xml version="1.0"?><e>{filler}</e>'.encode()


def initiator(keylog: Path | None = None, *, tls12: bool = False) -> Any:
    inner = spnego.client(USER, PASSWORD, hostname="wmh-mock", service="http", protocol="negotiate",
                          options=spnego.NegotiateOptions.use_negotiate)
    if not tls12:
        return credssp.new_initiator(USER, PASSWORD, hostname="wmh-mock", inner=inner,
                                     tls_keylog=str(keylog) if keylog else None)
    context = credssp.tls_context("initiate", str(keylog) if keylog else None) or \
        spnego.tls.default_tls_context("initiate")
    context.context.maximum_version = ssl.TLSVersion.TLSv1_2
    return spnego.client(USER, PASSWORD, hostname="wmh-mock", service="HTTP", protocol="credssp",
                         credssp_negotiate_context=inner, credssp_tls_context=context)


@dataclass
class Conversation:
    """HTTP messages of one connection, offsets counted per direction."""

    requests: list[HttpMessage] = field(default_factory=list)
    responses: list[HttpMessage] = field(default_factory=list)
    at: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    sent: list[tuple[HttpMessage, bytes]] = field(default_factory=list)

    def add(self, is_request: bool, headers: list[tuple[str, str]], body: bytes = b"",
            status: int = 200) -> HttpMessage:
        msg = HttpMessage(is_request=is_request, offset=self.at[is_request], frame=None,
                          method="POST" if is_request else "", target="/wsman" if is_request else "",
                          status=None if is_request else status, headers=headers, body=body)
        self.at[is_request] += 1000 + len(body)
        (self.requests if is_request else self.responses).append(msg)
        return msg

    def handshake(self, client: Any, server: Any) -> None:
        """The CredSSP legs as HTTP carries them (MS-CSSP 3.1.5): 401 until the acceptor completes."""
        token = client.step()
        for _ in range(credssp.MAX_LEGS):
            self.add(True, [("Authorization", "CredSSP " + base64.b64encode(token).decode())])
            out, user = credssp.accept_step(server, token, USERS)
            headers = [("WWW-Authenticate", "CredSSP " + base64.b64encode(out).decode())] if out else []
            self.add(False, headers, status=200 if user else 401)
            if user is not None:
                return
            token = client.step(out)
        raise AssertionError("CredSSP did not complete")

    def sealed(self, context: Any, is_request: bool, message: bytes) -> HttpMessage:
        content_type, body = seal(context, message, CREDSSP_PROTOCOL)
        msg = self.add(is_request, [("Content-Type", content_type)], body)
        self.sent.append((msg, message))
        return msg


def session(client_log: Path | None = None, server_log: Path | None = None, *, tls12: bool = False,
            big: bool = True) -> Conversation:
    conv = Conversation()
    client = initiator(client_log, tls12=tls12)
    server = credssp.new_acceptor("wmh-mock", tls_keylog=str(server_log) if server_log else None)
    conv.handshake(client, server)
    conv.sealed(client, True, soap(700, "a"))
    conv.sealed(server, False, soap(1500, "b"))
    if big:
        conv.sealed(client, True, soap(900, "c"))
        conv.sealed(server, False, soap(3 * CHUNK + 1234, "d"))   # MS-WSMV 2.2.9.1.2: four pieces
    return conv


@pytest.fixture(autouse=True)
def no_env_keylog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(credssp.KEYLOG_ENV, raising=False)


def opened_all(conv: Conversation, keylog: KeyLog | None) -> Any:
    result = open_credssp_stream(0, conv.requests, conv.responses, keylog)
    for msg, message in conv.sent:
        assert result.plain[(msg.is_request, msg.offset)] == message
    return result


# -- key log written by either role ---------------------------------------------------------------

@pytest.mark.spec("MS-CSSP 3.1.5", "MS-WSMV 2.2.9.1.1", "MS-WSMV 2.2.9.1.2", "RFC 8446 7.1")
@pytest.mark.parametrize("side", ["client", "server"])
def test_either_roles_key_log_alone_opens_the_session(side: str, tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log if side == "client" else None, log if side == "server" else None)
    assert log.is_file() and "SERVER_TRAFFIC_SECRET_0" in log.read_text()
    assert any((m.header("Content-Type") or "").startswith(MULTI_ENCRYPTED_TYPE) for m in conv.responses)
    result = opened_all(conv, read_keylog(log))
    assert result.status == "decrypted" and result.summary() is None
    assert len(result.sessions) == 1 and result.sessions[0].version_name == "TLS 1.3"
    steps = [s for key in result.steps for s in result.steps[key]]
    assert any("ClientHello" in s for s in steps) and any("ServerHello" in s for s in steps)
    assert any(s.startswith("client: CredSSP TSRequest v6; negoTokens SPNEGO NegTokenInit (NTLM NEGOTIATE)")
               for s in steps)
    assert any("NTLM CHALLENGE" in s for s in steps)
    assert any("NTLM AUTHENTICATE" in s and "pubKeyAuth" in s and "clientNonce" in s for s in steps)
    assert any(s.startswith("server:") and "pubKeyAuth" in s for s in steps)
    assert "client: CredSSP TSRequest v6; authInfo (TSCredentials) present, not shown" in steps
    assert not [e for errors in result.errors.values() for e in errors]
    note = result.notes[-1]
    assert "inner SPNEGO/NTLM" in note and "authInfo (TSCredentials) present, not shown" in note
    assert PASSWORD not in repr(result.steps) + repr(result.notes)


@pytest.mark.spec("RFC 5246 8.1", "RFC 5288 3", "MS-CSSP 3.1.5")
def test_tls12_session_with_client_random_master_secret(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log, tls12=True)
    assert "CLIENT_RANDOM" in log.read_text()
    result = opened_all(conv, read_keylog(log))
    assert result.sessions[0].version_name == "TLS 1.2" and result.status == "decrypted"


def test_no_key_log_is_written_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert credssp.tls_context("initiate") is None and credssp.tls_context("accept") is None
    monkeypatch.chdir(tmp_path)
    session(big=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(credssp.KEYLOG_ENV, str(tmp_path / "env.log"))
    context = credssp.tls_context("accept")
    assert context is not None and context.public_key and context.context.keylog_filename == str(tmp_path / "env.log")
    with pytest.raises(AuthError, match="cannot open the TLS key log"):
        credssp.tls_context("initiate", str(tmp_path / "missing-dir" / "k.log"))


# -- without keys, wrong keys, broken records --------------------------------------------------------

def test_without_keys_every_sealed_message_is_keys_missing(tmp_path: Path) -> None:
    conv = session(big=False)
    for keylog in (None, parse_keylog("")):
        result = open_credssp_stream(0, conv.requests, conv.responses, keylog)
        assert result.status == "no keys"
        verdict, text = result.summary() or ("", "")
        assert verdict == "info" and text.startswith("CredSSP, no keys")
        assert ("SSLKEYLOGFILE" in text) == (keylog is None)
        for msg, _ in conv.sent:
            assert isinstance(result.plain[(msg.is_request, msg.offset)], KeysMissing)


def test_wrong_secrets_cannot_decrypt(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log, big=False)
    wrong = "".join(f"{label} {rnd} {'5a' * (len(secret) // 2)}\n" for label, rnd, secret in
                    (line.split() for line in log.read_text().splitlines() if line and not line.startswith("#")))
    result = open_credssp_stream(0, conv.requests, conv.responses, parse_keylog(wrong))
    assert result.status == "cannot decrypt"
    verdict, text = result.summary() or ("", "")
    assert verdict == "encrypted" and text.startswith("CredSSP, cannot decrypt") and "bad_record_mac" in text
    for msg, _ in conv.sent:
        value = result.plain[(msg.is_request, msg.offset)]
        assert isinstance(value, NotDecryptable) and not isinstance(value, KeysMissing)


def test_a_flipped_ciphertext_byte_fails_that_message_and_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log)
    target, _ = conv.sent[1]                       # the first sealed answer
    body = bytearray(target.body)
    body[-40] ^= 0x01                              # inside the last record's ciphertext / tag
    target.body = bytes(body)
    result = open_credssp_stream(0, conv.requests, conv.responses, read_keylog(log))
    assert result.status == "failed"
    assert result.plain[(True, conv.sent[0][0].offset)] == conv.sent[0][1]   # before the damage: opened
    assert result.plain[(True, conv.sent[2][0].offset)] == conv.sent[2][1]   # the other direction: opened
    for msg, _ in (conv.sent[1], conv.sent[3]):
        reason = result.plain[(False, msg.offset)]
        assert isinstance(reason, str) and "bad_record_mac" in reason
    assert (result.summary() or ("",))[0] == "fail"


def test_a_broken_record_header_is_a_typed_error(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log, big=False)
    msg, _ = conv.sent[0]
    start = msg.body.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n") + 4
    body = bytearray(msg.body)
    body[start] = 0x16                               # a handshake record type where application data must be
    msg.body = bytes(body)
    result = open_credssp_stream(0, conv.requests, conv.responses, read_keylog(log))
    reason = result.plain[(True, msg.offset)]
    assert isinstance(reason, str) and "not a TLS application-data record" in reason


@pytest.mark.parametrize("seed", range(40))
def test_mutated_tokens_and_bodies_never_crash(seed: int, tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log, big=False)
    rng = random.Random(seed)
    victim = rng.choice(conv.requests + conv.responses)
    if victim.body and rng.random() < 0.5:
        body = bytearray(victim.body)
        for _ in range(rng.randint(1, 6)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        victim.body = bytes(body[:rng.randint(len(body) // 2, len(body))])
    elif victim.headers:
        name, value = victim.headers[0]
        raw = bytearray(base64.b64decode(value.split(" ", 1)[1])) if " " in value else bytearray(b"x")
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        text = base64.b64encode(bytes(raw)).decode() if rng.random() < 0.8 else "not*base64"
        victim.headers[0] = (name, value.split(" ", 1)[0] + " " + text)
    result = open_credssp_stream(0, conv.requests, conv.responses, read_keylog(log))
    for opened in result.plain.values():
        assert isinstance(opened, bytes | str | NotDecryptable)
    assert result.status in ("decrypted", "failed", "cannot decrypt", "no keys", "incomplete", "unsupported",
                             "no tokens")


@pytest.mark.spec("MS-CSSP 2.2.1", "MS-CSSP 3.1.5")
def test_a_wrong_password_shows_the_servers_error_code(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    inner = spnego.client(USER, "Wrong-Pw-0", hostname="wmh-mock", service="http", protocol="negotiate",
                          options=spnego.NegotiateOptions.use_negotiate)
    client = credssp.new_initiator(USER, "Wrong-Pw-0", hostname="wmh-mock", inner=inner, tls_keylog=str(log))
    server = credssp.new_acceptor("wmh-mock")
    conv = Conversation()
    with pytest.raises(spnego.exceptions.SpnegoError):
        conv.handshake(client, server)
    result = open_credssp_stream(0, conv.requests, conv.responses, read_keylog(log))
    steps = [s for key in result.steps for s in result.steps[key]]
    assert steps[-1] == "server: CredSSP TSRequest v6; errorCode 0x8009030C (SEC_E_LOGON_DENIED)"
    assert "errorCode 0x8009030C" in result.notes[-1] and "authInfo" not in result.notes[-1]
    assert "Wrong-Pw-0" not in repr(result.steps) + repr(result.notes)


def test_a_second_handshake_on_the_connection_is_a_new_session(tmp_path: Path) -> None:
    log = tmp_path / "keys.log"
    conv = session(log, big=False)
    client = initiator(log)
    server = credssp.new_acceptor("wmh-mock")
    conv.handshake(client, server)
    conv.sealed(client, True, soap(300, "z"))
    result = opened_all(conv, read_keylog(log))
    assert len(result.sessions) == 2 and result.status == "decrypted"
    assert any("session 2" in n for n in result.notes)


# -- TSRequest DER (MS-CSSP 2.2.1) ---------------------------------------------------------------------

@pytest.mark.spec("MS-CSSP 2.2.1")
def test_ts_request_fields_as_pyspnego_encodes_them() -> None:
    nonce = os.urandom(32)
    packed = SpnegoTSRequest(6, nego_tokens=[NegoData(b"\xa1\x05tok1"), NegoData(b"NTLMSSP\x00\x02\x00\x00\x00")],
                             auth_info=b"sealed-credentials", pub_key_auth=b"P" * 48, error_code=0xC000006D,
                             client_nonce=nonce).pack()
    req = parse_ts_request(packed)
    assert req.version == 6 and req.nego_tokens == (b"\xa1\x05tok1", b"NTLMSSP\x00\x02\x00\x00\x00")
    assert req.auth_info is True and req.pub_key_auth == b"P" * 48 and req.client_nonce == nonce
    assert req.error_code == 0xC000006D
    assert "sealed-credentials" not in repr(req) and nonce.hex() not in repr(req)
    assert parse_ts_requests(packed + SpnegoTSRequest(2).pack())[1].version == 2
    minimal = parse_ts_request(SpnegoTSRequest(2).pack())
    assert (minimal.nego_tokens, minimal.auth_info, minimal.pub_key_auth, minimal.error_code) == ((), False, None, None)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "truncated"),
    (b"\x30\x03\xa0\x01", "runs past"),
    (b"\x30\x80\xa0\x03\x02\x01\x06\x00\x00", "indefinite"),
    (b"\x31\x05\xa0\x03\x02\x01\x06", "tag 0x31"),
    (b"\x30\x05\xa1\x03\x02\x01\x06", "tag 0x02"),
    (b"\x30\x0a\xa3\x03\x04\x01\x00\xa0\x03\x02\x01\x06", "out of order"),
    (b"\x30\x05\xa3\x03\x04\x01\x00", "version [0] missing"),
    (b"\x30\x05\xa0\x03\x02\x01\x06\xff", "after the SEQUENCE"),
    (b"\x30\x04\xa0\x02\x02\x00", "INTEGER of 0 bytes"),
    (b"\x30\x05\x02\x03\x02\x01\x06", "not a context-specific"),
    (b"\x30\x09\xa0\x03\x02\x01\x06\xa1\x02\x30\x01", "runs past"),
    (b"\x30\x85\x01\x00\x00\x00\x00", "length of length"),
])
def test_malformed_ts_requests_raise_the_typed_error(data: bytes, reason: str) -> None:
    with pytest.raises(CredSSPDecodeError, match=re.escape(reason)):
        parse_ts_request(data)


def test_random_bytes_never_escape_the_typed_error() -> None:
    rng = random.Random(7)
    base = SpnegoTSRequest(6, nego_tokens=[NegoData(b"abc")], pub_key_auth=b"k" * 32, client_nonce=b"n" * 32).pack()
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            parse_ts_requests(bytes(data[:rng.randint(0, len(data))]))
        except CredSSPDecodeError as exc:
            assert exc.reason


def test_nego_token_descriptions() -> None:
    client = spnego.client(USER, PASSWORD, hostname="h", service="http", protocol="negotiate",
                           options=spnego.NegotiateOptions.use_negotiate)
    init = client.step()
    assert init is not None and describe_nego_token(init) == "SPNEGO NegTokenInit (NTLM NEGOTIATE)"
    assert describe_nego_token(b"NTLMSSP\x00\x03\x00\x00\x00rest") == "NTLM AUTHENTICATE"
    assert describe_nego_token(b"\xa1\x07\x30\x05\xa0\x03\x0a\x01\x00") == "SPNEGO NegTokenResp (no mechanism token)"
    assert "Kerberos" in describe_nego_token(b"\x60\x10\x06\x06\x2b\x06\x01\x05\x05\x02"
                                             + bytes.fromhex("06092a864886f712010202"))
    assert describe_nego_token(b"") == "empty"


# -- HTTP side --------------------------------------------------------------------------------------------

def test_credssp_tokens_in_headers() -> None:
    assert credssp_token("CredSSP " + base64.b64encode(b"\x16\x03\x01").decode()) == b"\x16\x03\x01"
    assert credssp_token("credssp FgMB") == b"\x16\x03\x01"
    assert credssp_token("CredSSP") is None and credssp_token("Negotiate TlRMTQ==") is None
    assert credssp_token(None) is None
    with pytest.raises(CredSSPDecodeError, match="base64"):
        credssp_token("CredSSP ***")
    msg = HttpMessage(is_request=False, offset=0, frame=None, status=401,
                      headers=[("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "CredSSP")])
    assert uses_credssp([msg])
    assert not uses_credssp([HttpMessage(is_request=True, offset=0, frame=None,
                                         headers=[("Authorization", "Negotiate TlRMTQ==")])])


@pytest.mark.spec("MS-WSMV 2.2.9.1.1", "MS-WSMV 2.2.9.1.2")
def test_sealed_parts_single_and_multi_encrypted(tmp_path: Path) -> None:
    conv = session(big=True)
    single, small = conv.sent[0]
    multi, message = conv.sent[3]
    parts = sealed_parts(single.header("Content-Type") or "", single.body)
    assert len(parts) == 1 and parts[0].records[0] == 0x17 and parts[0].length == len(small)
    pieces = sealed_parts(multi.header("Content-Type") or "", multi.body)
    assert [p.length for p in pieces] == [CHUNK, CHUNK, CHUNK, len(message) - 3 * CHUNK]
    assert repr(pieces[0]) == f"SealedPart(length={CHUNK})"
    spnego_type = (single.header("Content-Type") or "").replace("CredSSP", "SPNEGO")
    with pytest.raises(CredSSPDecodeError, match="not CredSSP"):
        sealed_parts(spnego_type, single.body.replace(b"CredSSP", b"SPNEGO"))
    with pytest.raises(CredSSPDecodeError):
        sealed_parts(single.header("Content-Type") or "", single.body[:len(single.body) // 2])
    with pytest.raises(CredSSPDecodeError, match="not an encrypted content type"):
        sealed_parts("application/soap+xml", b"")

"""``wmh check-pcap`` opens RC4-HMAC (etype 23) Kerberos-sealed WinRM traffic.

Three kinds of evidence:

* published vectors: MD4 (RFC 1320 A.5), the AES string-to-key (RFC 3962 B);
* independent implementations used only as oracles at test time: MIT krb5's string-to-key
  (python-krb5), impacket's RC4-HMAC EncryptedData cipher (RFC 4757 5) and, end to end, MIT GSS-API
  (through pyspnego) sealing WinRM messages in a loopback realm whose every key is RC4-HMAC
  (tests/kdc/mit_realm.py with RC4_ENCTYPES): our unwrap must open the RFC 4757 7.3 tokens MIT
  wrote, in both directions, after opening the RC4 ticket, authenticator and AP-REP;
* our own encoder (rc4_wrap) for the malformed and tampered cases.

The capture is the mock's recorded session replayed with every body sealed by MIT (not a live
session through our client and mock: their pyspnego-based unsealing keeps the RFC 1964 pad of
RC4 tokens, see the report).

RFC 4757 itself publishes no test vectors. Skipped with the reason when krb5kdc or gssapi is missing.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.auth.encryption import KERBEROS_PROTOCOL, SPNEGO_PROTOCOL, wrap_message
from harness.capture.check import check_capture_bytes, format_report
from harness.capture.keytab import password_entries, read_keytab
from harness.capture.krb_crypto import (
    ETYPE_RC4_HMAC,
    KerberosCryptoError,
    decrypt,
    encrypt,
    rc4_usage_t,
    string_to_key,
)
from harness.capture.krb_decrypt import (
    TOK_AP_REP,
    TOK_AP_REQ,
    KerberosContext,
    KerberosDecodeError,
    Key,
    accept,
    accept_reply,
    header_token,
    parse_ap_req,
    rc4_unwrap,
    rc4_wrap,
    split_v1_token,
    strip_rc4_padding,
)
from harness.capture.md4 import md4
from harness.capture.pcapng import LINKTYPE_ETHERNET, pcapng_bytes
from harness.capture.synth import SynthStream
from harness.capture.tcpip import ipv4_bytes
from harness.transport.tap import Exchange
from harness.wire.wsman import parse_envelope

# --- the RC4 realm: tests/conftest.py (rc4_realm, rc4_env, kdc) ---------------------------------


def _gss_pair(realm: Any, hostname: str = "localhost") -> tuple[Any, Any, bytes, bytes | None]:
    """An MIT GSS-API (pyspnego) Kerberos initiator and acceptor; the AP-REQ and AP-REP they exchanged."""
    import spnego

    client = spnego.client(realm.user, realm.password, hostname=hostname, service="HTTP", protocol="kerberos")
    server = spnego.server(protocol="kerberos")
    ap_req = client.step()
    assert ap_req is not None
    ap_rep = server.step(ap_req)
    if ap_rep is not None:
        client.step(ap_rep)
    assert client.complete and server.complete
    return client, server, ap_req, ap_rep


def _strip_gss(token: bytes, tok_id: bytes) -> bytes:
    found = header_token("Kerberos " + base64.b64encode(token).decode(), tok_id)
    assert found is not None
    return found


def test_mit_issues_rc4_keys(rc4_env: Any) -> None:
    entries = read_keytab(rc4_env.keytab)
    assert entries and {e.etype for e in entries} == {ETYPE_RC4_HMAC}
    _, _, ap_req, _ = _gss_pair(rc4_env)
    req = parse_ap_req(_strip_gss(ap_req, TOK_AP_REQ))
    assert req.ticket_part.etype == ETYPE_RC4_HMAC and req.authenticator.etype == ETYPE_RC4_HMAC


def test_mit_rc4_wrap_tokens_open_both_directions(rc4_env: Any) -> None:
    """MIT's RFC 4757 7.3 tokens (pyspnego wrap_winrm = gss_wrap_iov header|data|padding, and
    plain gss_wrap) are opened by our unwrap with the keys taken from the AP-REQ/AP-REP alone."""
    client, server, ap_req, ap_rep = _gss_pair(rc4_env)
    context = accept(read_keytab(rc4_env.keytab), _strip_gss(ap_req, TOK_AP_REQ))
    assert context.session.etype == ETYPE_RC4_HMAC
    if ap_rep is not None:
        accept_reply(context, _strip_gss(ap_rep, TOK_AP_REP))
    messages = [b"<s:Envelope>" + bytes(range(256)) * n + b"</s:Envelope>" for n in (0, 1, 7)]
    for message in messages:
        up = client.wrap_winrm(message)
        assert up.header[:1] == b"\x60" and split_v1_token(up.header + up.data)[0][:2] == b"\x02\x01"
        assert context.unwrap(True, up.header + up.data, len(message)) == message
        # MIT agrees the token is valid (pyspnego hands back the RFC 1964 pad: one 01 byte with RC4)
        assert server.unwrap_winrm(up.header, up.data) == message + b"\x01"
        down = server.wrap_winrm(message[::-1])
        assert context.unwrap(False, down.header + down.data, len(message)) == message[::-1]
        assert client.unwrap_winrm(down.header, down.data) == message[::-1] + b"\x01"
        plain = client.wrap(message).data                                # RFC 1964 framing over the data
        assert strip_rc4_padding(rc4_unwrap(context.context_key, True, plain).data, None) == message
        assert server.unwrap(plain).data == message                       # keeps MIT's sequence window
    # SND_SEQ counts up per message and direction (the plain gss_wrap tokens took every other number)
    assert len(context.sequences[True]) == 3 and len(context.sequences[False]) == 3
    assert context.sequences[True] == sorted(set(context.sequences[True]))
    # a token from the other direction is refused by the SND_SEQ direction bytes
    up = client.wrap_winrm(b"x")
    with pytest.raises(ValueError, match="direction"):
        context.unwrap(False, up.header + up.data, 1)
    assert server.unwrap_winrm(up.header, up.data) == b"x\x01"
    # our encoder's tokens (the next initiator sequence number) are accepted by MIT
    sig, sealed = rc4_wrap(context.context_key, True, context.sequences[True][-1] + 3, b"from wm-harness",
                           dce_style=False)
    assert server.unwrap_winrm(sig, sealed) == b"from wm-harness\x01"


def _sealed_capture(realm: Any, exchanges: list[Exchange], auth: str,
                    hostname: str = "localhost") -> tuple[bytes, list[str]]:
    """The recorded mock session (plain SOAP) replayed as a Kerberos-sealed one: the AP-REQ / AP-REP
    of a fresh MIT GSS-API context in the first exchange's headers and every SOAP body sealed by
    MIT (pyspnego wrap_winrm, RFC 4757 7.3 with RC4 keys) as MS-WSMV 2.2.9.1.1 multipart/encrypted.
    Returns the pcapng and the plain actions in order."""
    client, server, ap_req, ap_rep = _gss_pair(realm, hostname)
    protocol = KERBEROS_PROTOCOL if auth == "Kerberos" else SPNEGO_PROTOCOL
    actions: list[str] = []
    pairs = [(exchanges[i], exchanges[i + 1]) for i in range(len(exchanges) - 1)
             if exchanges[i].direction == "request" and exchanges[i + 1].direction == "response"
             and exchanges[i + 1].status != 401]
    # raw HTTP/1.1 on one TCP connection (synthesise() would redact the Kerberos headers)
    conn = SynthStream(LINKTYPE_ETHERNET, 1460, ipv4_bytes("192.0.2.10"), ipv4_bytes("192.0.2.20"), 50123, 5985,
                       1, 2)
    at = 1_000_000
    conn.handshake(at, "wm-harness test: RC4 Kerberos-sealed WinRM")
    for index, (request, response) in enumerate(pairs):
        req_type, req_body = wrap_message(client, request.body, protocol)
        resp_type, resp_body = wrap_message(server, response.body, protocol)
        req_auth = f"Authorization: {auth} {base64.b64encode(ap_req).decode()}\r\n" if index == 0 else ""
        resp_auth = (f"WWW-Authenticate: {auth} {base64.b64encode(ap_rep).decode()}\r\n"
                     if index == 0 and ap_rep is not None else "")
        head = (f"POST /wsman HTTP/1.1\r\nHost: 192.0.2.20:5985\r\n{req_auth}Content-Type: {req_type}\r\n"
                f"Content-Length: {len(req_body)}\r\n\r\n")
        at += 1000
        conn.message(True, head.encode() + req_body, at)
        status = response.status or 200
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{resp_auth}Content-Type: {resp_type}\r\n"
                f"Content-Length: {len(resp_body)}\r\n\r\n")
        at += 1000
        conn.message(False, head.encode() + resp_body, at)
        actions += [parse_envelope(request.body).header.action, parse_envelope(response.body).header.action]
    conn.teardown()
    return pcapng_bytes(conn.packets, LINKTYPE_ETHERNET), actions


@pytest.mark.parametrize("auth", ["Kerberos", "Negotiate"])
def test_rc4_sealed_session_is_decrypted(rc4_env: Any, mock_session: tuple[list[Exchange], str], auth: str) -> None:
    data, actions = _sealed_capture(rc4_env, mock_session[0], auth)
    sealed = check_capture_bytes(data)
    assert sealed.messages and {m.verdict for m in sealed.messages} == {"encrypted"}, format_report(sealed)
    report = check_capture_bytes(data, keytab=str(rc4_env.keytab))
    assert report.passed, format_report(report)
    assert [m.action or "" for m in report.messages] == actions
    assert any(a.endswith("/PullResponse") for a in actions) and any(a.endswith("/fault") for a in actions)
    text = format_report(report) + json.dumps(report.to_json())
    assert rc4_env.password not in text
    for entry in read_keytab(rc4_env.keytab):
        assert entry.key.hex() not in text
    # the user's password is not the service's: the messages stay encrypted, not failed
    with_password = check_capture_bytes(data, password=rc4_env.password)
    assert {m.verdict for m in with_password.messages} == {"encrypted"}, format_report(with_password)
    assert any("not the service account's password" in e for m in with_password.messages for e in m.errors)


def test_rc4_sealed_session_opens_with_the_service_password(
        rc4_realm: Any, kdc: ModuleType, mock_session: tuple[list[Exchange], str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """RC4 keys have no salt (RFC 4757 3): the service account's password alone opens its tickets."""
    from harness.capture.keytab import KeytabEntry

    password = "Svc-" + base64.b16encode(bytes(range(6))).decode()
    env = {"PATH": "/usr/bin:/bin", "KRB5_CONFIG": str(rc4_realm.krb5_conf),
           "KRB5_KDC_PROFILE": str(rc4_realm.directory / "kdc.conf")}
    keytab = tmp_path / "svc.keytab"
    service = "HTTP/svc.wmh.test@WMH.TEST"           # a service account of its own: the realm's keys stay
    for query in (f"addprinc -pw {password} {service}", f"ktadd -norandkey -k {keytab} {service}"):
        kdc._run([str(kdc.find_program("kadmin.local")), "-r", "WMH.TEST", "-q", query], env)
    entry: KeytabEntry = read_keytab(keytab)[0]
    assert entry.key == string_to_key(ETYPE_RC4_HMAC, password)
    for name, value in {**rc4_realm.client_env, "KRB5_KTNAME": f"FILE:{keytab}",
                        "KRB5_CONFIG": str(rc4_realm.krb5_conf)}.items():
        monkeypatch.setenv(name, value)
    data, _ = _sealed_capture(rc4_realm, mock_session[0], "Kerberos", "svc.wmh.test")
    report = check_capture_bytes(data, password=password)
    assert report.passed, format_report(report)
    assert password not in format_report(report) + json.dumps(report.to_json())


def test_rc4_tampered_byte_fails(rc4_env: Any, mock_session: tuple[list[Exchange], str]) -> None:
    data, _ = _sealed_capture(rc4_env, mock_session[0], "Kerberos")
    pos = data.index(b"--Encrypted Boundary--") - 5                   # inside the first RC4 ciphertext
    report = check_capture_bytes(data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:],
                                 keytab=str(rc4_env.keytab))
    failed = [m for m in report.messages if m.verdict == "fail"]
    assert len(failed) == 1 and any("SGN_CKSUM" in e for e in failed[0].errors), format_report(report)


# --- no KDC needed -------------------------------------------------------------------------------------

def test_md4_rfc1320_vectors() -> None:
    """RFC 1320 A.5."""
    vectors = {b"": "31d6cfe0d16ae931b73c59d7e0c089c0", b"a": "bde52cb31de33e46245e05fbdbd6fb24",
               b"abc": "a448017aaf21d8525fc10ae87aa6729d", b"message digest": "d9130a8164549fe818874806e1c7014b",
               b"abcdefghijklmnopqrstuvwxyz": "d79e1c308aa5bbcdeea8ed63df412da9",
               b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": "043f8582f241db351ce627e153e7f0e4",
               b"1234567890" * 8: "e33b4ddc9c38f2199c3e7b164fcc0536"}
    for message, digest in vectors.items():
        assert md4(message).hex() == digest
    for n in (55, 56, 63, 64, 65, 119, 120, 1000):   # padding boundaries (RFC 1320 3.1)
        assert len(md4(b"x" * n)) == 16 and md4(b"x" * n) != md4(b"x" * (n + 1))


def test_string_to_key_against_mit_and_rfc3962() -> None:
    assert string_to_key(17, "password", "ATHENA.MIT.EDUraeburn", 1).hex() == "42263c6e89f4fc28b8df68ee09799f15"
    assert string_to_key(18, "password", "ATHENA.MIT.EDUraeburn", 1).hex() == (
        "fe697b52bc0d3ce14432ba036a92e65bbb52280990a2fa27883998d72af30161")     # RFC 3962 B
    krb5 = pytest.importorskip("krb5")
    ctx = krb5.init_context()
    for etype in (23, 17, 18):
        for password in ("Pass-word1", "pässwörd €"):
            mit = krb5.c_string_to_key(ctx, etype, password.encode(), b"WMH.TESTHTTPlocalhost").data
            assert string_to_key(etype, password, "WMH.TESTHTTPlocalhost") == mit
    entry, = password_entries("Pass-word1", "WMH.TEST", ("HTTP", "localhost"), (23,))
    assert entry.key == md4("Pass-word1".encode("utf-16-le")) and "Pass" not in repr(entry)


def test_rc4_hmac_encrypted_data_against_impacket() -> None:
    """RFC 4757 5 in both directions against impacket's implementation (an oracle only)."""
    crypto = pytest.importorskip("impacket.krb5.crypto")
    key = bytes(range(16))
    ikey = crypto.Key(23, key)
    for usage in (1, 2, 3, 7, 8, 9, 11, 12, 22):
        plain = b"EncTicketPart" * usage
        ours = encrypt(23, key, usage, plain)
        assert crypto._RC4.decrypt(ikey, usage, ours) == plain
        assert decrypt(23, key, usage, crypto._RC4.encrypt(ikey, usage, plain, b"\x00" * 8)) == plain
    assert rc4_usage_t(3) == 8 and rc4_usage_t(9) == 9 and rc4_usage_t(11) == 11   # RFC 4757 5 (+ errata)
    sealed = encrypt(23, key, 3, b"as-rep")
    assert decrypt(23, key, 8, sealed) == b"as-rep"          # usage 3 is T=8
    assert decrypt(23, key, 9, encrypt(23, key, 8, b"tgs-rep")) == b"tgs-rep"    # the table's T=8 for 9
    with pytest.raises(KerberosCryptoError, match="integrity"):
        decrypt(23, key, 2, sealed)
    with pytest.raises(KerberosCryptoError, match="too short"):
        decrypt(23, key, 2, b"x" * 23)
    with pytest.raises(KerberosCryptoError, match="16 expected"):
        decrypt(23, key[:8], 2, sealed)
    with pytest.raises(KerberosCryptoError, match="not supported"):
        decrypt(3, key, 2, sealed)


def test_rc4_wrap_round_trip_and_malformed_tokens() -> None:
    key = Key(23, bytes(range(100, 116)))
    context = KerberosContext(Key(23, bytes(16)), Key(23, bytes(range(16))), key)
    assert context.context_key is key
    for dce, pad in ((True, True), (True, False), (False, True)):
        sig, sealed = rc4_wrap(key, False, 7, b"hello" * 40, dce_style=dce, pad=pad)
        assert context.unwrap(False, sig + sealed, 200) == b"hello" * 40
        if not dce:   # RFC 1964 form: the pad is known to be there, a Length counting it is accepted too
            assert context.unwrap(False, sig + sealed, 201) == b"hello" * 40
    sig, sealed = rc4_wrap(key, False, 8, b"hello", dce_style=False, pad=False)
    with pytest.raises(ValueError, match="RFC 1964 padding"):              # the RFC 1964 form always pads
        context.unwrap(False, sig + sealed, 5)
    sig, sealed = rc4_wrap(key, True, 1, b"data")
    opened = rc4_unwrap(key, True, sig + sealed)
    assert opened.sequence == 1 and strip_rc4_padding(opened.data, None) == b"data"
    token = bytearray(sig + sealed)
    for offset, reason in ((13, "TOK_ID"), (15, "SGN_ALG"), (17, "SEAL_ALG"), (19, "filler"),
                           (30, "SGN_CKSUM"), (40, "SGN_CKSUM"), (len(token) - 1, "SGN_CKSUM")):
        bad = bytearray(token)
        bad[offset] ^= 0x40
        with pytest.raises(ValueError, match=reason):
            rc4_unwrap(key, True, bytes(bad))
    with pytest.raises(ValueError, match="SGN_CKSUM"):
        rc4_unwrap(Key(23, bytes(16)), True, bytes(token))                 # wrong key
    with pytest.raises(ValueError, match="etype 18"):
        rc4_unwrap(Key(18, bytes(32)), True, bytes(token))
    with pytest.raises(KerberosDecodeError, match="framing length"):
        rc4_unwrap(key, True, b"\x60\x10" + bytes(token[2:]))
    with pytest.raises(KerberosDecodeError, match="not a Kerberos token"):
        rc4_unwrap(key, True, bytes(token[:6]) + b"\x00" + bytes(token[7:]))
    with pytest.raises(KerberosDecodeError, match="at least 32"):
        rc4_unwrap(key, True, sig[:30])
    with pytest.raises(ValueError, match="not RFC 1964 padding"):
        strip_rc4_padding(b"abc\x02\x01", 3)
    with pytest.raises(ValueError, match="fewer than"):
        strip_rc4_padding(b"abc", 4)
    with pytest.raises(ValueError, match="does not end"):
        strip_rc4_padding(b"abc\x09", None)

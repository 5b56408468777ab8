"""``wmh check-pcap --keytab``: Kerberos-sealed WinRM traffic decrypted with the service keytab.

A live Kerberos session between our client and the in-process mock, in a loopback MIT realm
(tests/kdc/mit_realm.py), recorded at the socket level by the recording proxy
(recording_proxy.py): the AP-REQ / AP-REP are in the HTTP headers as on a real wire. The realm's
variables reach client and acceptor through a per-test ``monkeypatch`` only. Skipped (with the
reason) when krb5kdc or python-gssapi is missing. RFC 4120 5.5.1, RFC 4121 4.2.6.2, MS-WSMV 2.2.9.1.1.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from recording_proxy import Recording, recording_proxy

from harness.auth.policy import AuthPolicy
from harness.capture.check import check_capture_bytes, format_report
from harness.capture.keytab import KeytabError, parse_keytab, read_keytab
from harness.capture.krb_crypto import ETYPE_AES128, KerberosCryptoError, decrypt, encrypt, nfold
from harness.capture.krb_decrypt import TOK_AP_REQ, header_token, parse_ap_req
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig

SERVICE = wmi_uri("Win32_Service")


@pytest.fixture
async def recorded(krb_env: Any) -> AsyncIterator[tuple[str, Recording]]:
    """The mock (Kerberos scheme offered, unencrypted refused) behind a recording proxy; its URL."""
    config = MockConfig(password="unused-Ntlm-1", wmi_enabled=False)
    config.auth = AuthPolicy(allow_basic=False, allow_unencrypted=False, allow_kerberos=True)
    async with recording_proxy(config) as recorded_session:
        yield recorded_session


async def _session(url: str, realm: Any, auth: str) -> None:
    target = Target(name="mock", url=url, auth=auth, username=realm.principal, password=realm.password,
                    encryption="auto", timeout=10.0)
    async with WSManClient(target) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        assert (await client.enumerate_all(SERVICE, max_elements=7)).items
        with contextlib.suppress(Exception):
            await client.get(SERVICE, {"Name": "NoSuchServiceWmh"})


@pytest.mark.parametrize("auth", ["kerberos", "negotiate"])
async def test_kerberos_sealed_session_is_decrypted_with_the_keytab(
        recorded: tuple[str, Recording], realm: Any, auth: str) -> None:
    url, rec = recorded
    await _session(url, realm, auth)
    data = rec.pcapng()
    sealed = check_capture_bytes(data)
    encrypted = [m for m in sealed.messages if m.verdict == "encrypted"]
    assert encrypted, format_report(sealed)
    report = check_capture_bytes(data, keytab=str(realm.keytab))
    assert report.passed, format_report(report)
    actions = [m.action for m in report.messages if m.action]
    assert len(actions) == len(encrypted)
    assert any(a.endswith("/GetResponse") for a in actions)
    assert any(a.endswith("/PullResponse") for a in actions)
    assert any(a.endswith("/fault") for a in actions), "the fault answer was opened too"
    text = format_report(report) + json.dumps(report.to_json())
    assert realm.password not in text
    for entry in read_keytab(realm.keytab):
        assert entry.key.hex() not in text and repr(entry.key) not in text and entry.key.hex() not in repr(entry)
    # a password alone does not open Kerberos: the messages stay encrypted, not failed
    with_password = check_capture_bytes(data, password=realm.password)
    assert {m.verdict for m in with_password.messages} >= {"encrypted"}
    assert "fail" not in {m.verdict for m in with_password.messages}, format_report(with_password)
    # both given: the chain still opens everything
    assert check_capture_bytes(data, password=realm.password, keytab=str(realm.keytab)).passed


async def test_a_tampered_byte_fails(recorded: tuple[str, Recording], realm: Any) -> None:
    url, rec = recorded
    await _session(url, realm, "kerberos")
    index = next(i for i, (_, fc, _, d) in enumerate(rec.chunks) if fc and b"Encrypted Boundary--" in d)
    conn, fc, at, chunk = rec.chunks[index]
    pos = chunk.rindex(b"--Encrypted Boundary--") - 5      # inside the ciphertext
    rec.chunks[index] = (conn, fc, at, chunk[:pos] + bytes([chunk[pos] ^ 0x01]) + chunk[pos + 1:])
    report = check_capture_bytes(rec.pcapng(), keytab=str(realm.keytab))
    assert not report.passed
    failed = [m for m in report.messages if m.verdict == "fail"]
    assert len(failed) == 1 and any("integrity check failed" in e for e in failed[0].errors), format_report(report)


async def test_cli_keytab_option(recorded: tuple[str, Recording], realm: Any, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    url, rec = recorded
    await _session(url, realm, "kerberos")
    path = tmp_path / "krb.pcapng"
    path.write_bytes(rec.pcapng())
    assert main(["check-pcap", str(path), "--keytab", str(realm.keytab)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["check-pcap", str(path)]) == 1
    assert "ENCRYPTED" in capsys.readouterr().out
    wrong = tmp_path / "other.keytab"
    wrong.write_bytes(b"\x05\x02")
    assert main(["check-pcap", str(path), "--keytab", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "ENCRYPTED" in out and "keytab holds no key for HTTP/127.0.0.1@WMH.TEST" in out


async def test_the_ap_req_names_the_service(recorded: tuple[str, Recording], realm: Any) -> None:
    url, rec = recorded
    await _session(url, realm, "negotiate")
    lines = b"".join(d for _, fc, _, d in rec.chunks if fc).split(b"\r\n")
    tokens = [header_token(line.split(b": ", 1)[1].decode(), TOK_AP_REQ) for line in lines
              if line.startswith(b"Authorization: ")]
    req = parse_ap_req(next(t for t in tokens if t is not None))
    assert req.realm == "WMH.TEST" and req.sname == ("HTTP", "127.0.0.1")
    assert req.ticket_part.etype in (17, 18) and req.ticket_part.kvno is not None
    assert header_token("Basic abc", TOK_AP_REQ) is None and header_token("Negotiate !!!", TOK_AP_REQ) is None


# --- no KDC needed -------------------------------------------------------------------------------------

def test_nfold_rfc3961_vectors() -> None:
    """RFC 3961 A.1."""
    assert nfold(b"012345", 8).hex() == "be072631276b1955"
    assert nfold(b"password", 7).hex() == "78a07b6caf85fa"
    assert nfold(b"kerberos", 8).hex() == "6b65726265726f73"
    assert nfold(b"kerberos", 32).hex() == ("6b65726265726f737b9b5b2b93132b93"
                                           "5c9bdcdad95c9899c4cae4dee6d6cae4")


def test_aes_cts_rfc3962_vector_and_round_trip() -> None:
    from harness.capture.krb_crypto import cts_decrypt, cts_encrypt

    key = bytes.fromhex("636869636b656e207465726979616b69")   # RFC 3962 B: "chicken teriyaki"
    plain = b"I would like the General Gau's Chicken, please, and wonton soup."
    assert cts_encrypt(key, plain[:17]).hex() == "c6353568f2bf8cb4d8a580362da7ff7f97"
    for n in (16, 17, 31, 32, 47, 48, 64):
        assert cts_decrypt(key, cts_encrypt(key, plain[:n])) == plain[:n]
    sealed = encrypt(ETYPE_AES128, key, 24, b"soap")
    assert decrypt(ETYPE_AES128, key, 24, sealed) == b"soap"
    with pytest.raises(KerberosCryptoError, match="integrity"):
        decrypt(ETYPE_AES128, key, 22, sealed)
    with pytest.raises(KerberosCryptoError, match="not supported"):
        decrypt(3, key, 24, sealed)       # des-cbc-md5: never opened (etype 23 is, see the RC4 tests)


def _entry(comps: list[bytes], etype: int, key: bytes, kvno32: int | None) -> bytes:
    body = struct.pack(">H", len(comps)) + struct.pack(">H", 8) + b"WMH.TEST"
    body += b"".join(struct.pack(">H", len(c)) + c for c in comps)
    body += struct.pack(">IIBH", 1, 0, 3, etype) + struct.pack(">H", len(key)) + key
    if kvno32 is not None:
        body += struct.pack(">I", kvno32)
    return struct.pack(">i", len(body)) + body


def test_keytab_parsing_and_errors() -> None:
    data = (b"\x05\x02" + _entry([b"HTTP", b"h"], 17, bytes(16), 300) + struct.pack(">i", -5) + bytes(5)
            + _entry([b"host", b"h"], 18, bytes(32), None))
    first, second = parse_keytab(data)
    assert first.principal == "HTTP/h@WMH.TEST" and first.kvno == 300 and first.etype == 17
    assert second.kvno == 3 and len(second.key) == 32 and "key" not in repr(second).split("etype")[1]
    for bad, reason in ((b"\x05\x01", "0x502"), (b"XX", "not an MIT keytab"),
                        (b"\x05\x02" + struct.pack(">i", 50) + bytes(10), "past the end"),
                        (b"\x05\x02" + struct.pack(">i", 4) + bytes(4), "truncated")):
        with pytest.raises(KeytabError, match=reason):
            parse_keytab(bad)

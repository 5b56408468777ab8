"""``wmh check-pcap --keytab``: Kerberos-sealed WinRM traffic decrypted with the service keytab.

A live Kerberos session between our client and the in-process mock, in a loopback MIT realm
(tests/kdc/mit_realm.py), recorded at the socket level by the recording proxy of
test_decrypt_ntlm.py: the AP-REQ / AP-REP are in the HTTP headers as on a real wire. The realm's
variables reach client and acceptor through a per-test ``monkeypatch`` only. Skipped (with the
reason) when krb5kdc or python-gssapi is missing. RFC 4120 5.5.1, RFC 4121 4.2.6.2, MS-WSMV 2.2.9.1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import struct
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web
from test_decrypt_ntlm import Recording, _pump

from harness.auth.policy import AuthPolicy
from harness.capture.check import check_capture_bytes, format_report
from harness.capture.keytab import KeytabError, parse_keytab, read_keytab
from harness.capture.krb_crypto import ETYPE_AES128, KerberosCryptoError, decrypt, encrypt, nfold
from harness.capture.krb_decrypt import TOK_AP_REQ, header_token, parse_ap_req
from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.targets.mock.http_server import build_app

SERVICE = wmi_uri("Win32_Service")
KDC_HELPER = Path(__file__).resolve().parents[2] / "kdc" / "mit_realm.py"


def _kdc_module() -> ModuleType:
    name = "wmh_tests_kdc_mit_realm"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, KDC_HELPER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


kdc = _kdc_module()


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = kdc.gssapi_missing() or (
        f"MIT KDC not installed: {', '.join(kdc.missing_programs())}" if kdc.missing_programs() else None)
    if reason:
        pytest.skip(reason)
    try:
        with kdc.mit_realm(tmp_path_factory.mktemp("krbcap") / "realm") as built:
            yield built
    except kdc.RealmUnavailable as exc:
        pytest.skip(f"Kerberos realm could not be built: {exc}")


@pytest.fixture
async def recorded(realm: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Recording]]:
    """The mock (Kerberos scheme offered, unencrypted refused) behind a recording proxy; its URL."""
    for name, value in {**realm.client_env, **realm.server_env}.items():
        monkeypatch.setenv(name, value)
    config = MockConfig(password="unused-Ntlm-1", wmi_enabled=False)
    config.auth = AuthPolicy(allow_basic=False, allow_unencrypted=False, allow_kerberos=True)
    runner = web.AppRunner(build_app(default_store(), config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    mock_port = server.sockets[0].getsockname()[1]
    rec = Recording()
    counter = [0]
    tasks: set[asyncio.Task[None]] = set()

    async def accept(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        conn = counter[0]
        counter[0] += 1
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", mock_port)
        for t in (asyncio.create_task(_pump(c_reader, s_writer, rec, conn, True)),
                  asyncio.create_task(_pump(s_reader, c_writer, rec, conn, False))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    proxy = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/wsman", rec
    finally:
        proxy.close()
        for t in list(tasks):
            t.cancel()
        await runner.cleanup()


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
        decrypt(23, key, 24, sealed)


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

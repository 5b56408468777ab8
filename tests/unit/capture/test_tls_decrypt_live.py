"""``wmh check-pcap --tls-keylog``: a real HTTPS WinRM session against the mock, decrypted end to end.

Our client (``SSLKEYLOGFILE`` or ``HttpTransport(tls_keylog=...)``) talks to ``wmh serve --https``'s
application through a TCP relay that records the raw bytes both ways (the TLS records exactly as
they crossed the socket); the recording becomes a pcapng on port 5986 (MS-WSMV 2.1, WinRM HTTPS).
The server's TLS context picks the version and suite: TLS 1.3 (OpenSSL's default), and TLS 1.2
with AES-GCM (RFC 5288), ChaCha20-Poly1305 (RFC 7905) and AES-CBC with HMAC (RFC 5246 6.2.3.2).
When tshark is installed it decrypts the same capture with the same key log, and its HTTP
messages must be ours.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from recording_proxy import Recording, recording_proxy

from harness.auth.tls import generate_self_signed
from harness.capture.check import check_capture_bytes, format_report, run_check_pcap
from harness.capture.reader import frames_from_bytes, reassemble
from harness.capture.tcpip import (
    CLIENT_MAC,
)
from harness.capture.tls import decrypt_tcp_stream, parse_keylog, read_keylog
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.transport.http_client import HttpTransport
from harness.transport.tap import Tap
from harness.wire.wsman import messages

PASSWORD = "Tls-Capture-Pw-8!"
USER = "wmh"
SERVICE = wmi_uri("Win32_Service")
HTTPS_PORT = 5986
TSHARK = shutil.which("tshark")


def tls_pcapng(rec: Recording, port: int = HTTPS_PORT) -> bytes:
    """The recording as a capture with the server on ``port`` (WinRM HTTPS)."""
    return rec.pcapng(port=port)


@contextlib.asynccontextmanager
async def https_relay(tune: Callable[[ssl.SSLContext], None]) -> AsyncIterator[tuple[str, Recording]]:
    """``wmh serve --https``'s app (self-signed certificate, server context tuned by ``tune``) behind a
    recording TCP relay; yields the relay's https URL and the recording."""
    config = MockConfig(password=PASSWORD, username=USER, wmi_enabled=False)
    config.tls = generate_self_signed()
    context = config.tls.ssl_context()
    tune(context)
    async with recording_proxy(config, ssl_context=context) as (url, rec):
        yield url, rec


def tls13(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_3


#: OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC (bit 19): the server refuses RFC 7366, CBC records are MAC-then-encrypt
NO_ENCRYPT_THEN_MAC = 1 << 19


def tls12(ciphers: str, options: int = 0) -> Callable[[ssl.SSLContext], None]:
    def tune(context: ssl.SSLContext) -> None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
        context.options |= options
    return tune


async def _session(url: str) -> None:
    target = Target(name="mock", url=url, auth="basic", username=USER, password=PASSWORD, verify_tls=False,
                    is_mock=True)
    async with WSManClient(target) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        assert (await client.enumerate_all(SERVICE, max_elements=7)).items
        with contextlib.suppress(Exception):
            await client.get(SERVICE, {"Name": "NoSuchServiceWmh"})


async def _recorded(tune: Callable[[ssl.SSLContext], None], keylog: Path,
                    monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    async with https_relay(tune) as (url, rec):
        await _session(url)
    return tls_pcapng(rec)


def _tshark_http(capture: Path, keylog: Path) -> list[str]:
    """tshark's HTTP messages of the decrypted capture: request methods and response codes, in order."""
    assert TSHARK is not None
    out = subprocess.run(
        [TSHARK, "-n", "-r", str(capture), "-o", f"tls.keylog_file:{keylog}", "-d", f"tcp.port=={HTTPS_PORT},tls",
         "-Y", "http", "-T", "fields", "-e", "http.request.method", "-e", "http.response.code"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    items: list[str] = []
    for line in out.splitlines():
        method, _, code = line.partition("\t")
        items += [m for m in method.split(",") if m] + [c for c in code.split(",") if c]
    return items


CASES = {
    "tls13": (tls13, "TLS 1.3 TLS_AES_256_GCM_SHA384"),
    "tls12-aes128-gcm": (tls12("ECDHE-ECDSA-AES128-GCM-SHA256"), "TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    "tls12-aes256-gcm": (tls12("ECDHE-ECDSA-AES256-GCM-SHA384"), "TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    "tls12-chacha20": (tls12("ECDHE-ECDSA-CHACHA20-POLY1305"),
                       "TLS 1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    # CBC (Python's client refuses the SHA-1 MAC suites): encrypt-then-MAC (RFC 7366, OpenSSL's default)
    # and MAC-then-encrypt (RFC 5246 6.2.3.2)
    "tls12-aes128-cbc-sha256-etm": (tls12("ECDHE-ECDSA-AES128-SHA256"),
                                    "TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    "tls12-aes256-cbc-sha384-mte": (tls12("ECDHE-ECDSA-AES256-SHA384", NO_ENCRYPT_THEN_MAC),
                                    "TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
}


@pytest.mark.spec("RFC 8446 7.3", "RFC 5288 3", "RFC 7905 2", "RFC 5246 6.2.3.2", "MS-WSMV 2.1")
@pytest.mark.parametrize("case", list(CASES))
async def test_https_session_is_decrypted_and_every_message_checked(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tune, description = CASES[case]
    keylog_path = tmp_path / "keys.log"
    data = await _recorded(tune, keylog_path, monkeypatch)
    keylog = read_keylog(keylog_path)
    report = check_capture_bytes(data, keylog=keylog)
    assert report.passed, format_report(report)
    assert any(description in n and "decrypted" in n for n in report.stream_notes), report.stream_notes
    actions = [m.action for m in report.messages if m.action]
    assert any(a.endswith("/GetResponse") for a in actions if a)
    assert any(a.endswith("/PullResponse") for a in actions if a)
    assert any(a.endswith("/fault") for a in actions if a), "the fault answer was decrypted too"
    text = format_report(report) + json.dumps(report.to_json())
    assert PASSWORD not in text
    for line in keylog_path.read_text().splitlines():   # no secret of the key log leaks into the report
        assert line.split()[-1] not in text

    # without the key log: one "TLS, no keys" info per stream, not a failure
    blind = check_capture_bytes(data)
    assert blind.passed and blind.messages
    assert all(m.verdict == "info" and m.errors[0].startswith("TLS, no keys") for m in blind.messages)
    assert all("SSLKEYLOGFILE" in m.errors[0] for m in blind.messages)

    if TSHARK is not None:
        capture = tmp_path / "session.pcapng"
        capture.write_bytes(data)
        ours = [m.http.split(" ")[0] for m in report.messages]
        assert _tshark_http(capture, keylog_path) == ours


async def test_wrong_keys_say_cannot_decrypt_and_a_corrupt_record_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keylog_path = tmp_path / "keys.log"
    data = await _recorded(tls12("ECDHE-ECDSA-AES128-GCM-SHA256"), keylog_path, monkeypatch)
    randoms = {line.split()[1] for line in keylog_path.read_text().splitlines() if line.startswith("CLIENT_RANDOM")}
    assert randoms
    wrong = parse_keylog("".join(f"CLIENT_RANDOM {r} {'00' * 48}\n" for r in randoms))
    report = check_capture_bytes(data, keylog=wrong)
    assert not report.passed
    assert report.messages and all(m.verdict == "encrypted" for m in report.messages)
    assert all("TLS, cannot decrypt" in m.errors[0] and "bad_record_mac" in m.errors[0] for m in report.messages)

    # flip one byte late in the server's stream (inside an application-data record)
    stream = reassemble(frames_from_bytes(data))[0]
    good, _ = decrypt_tcp_stream(stream, read_keylog(keylog_path))
    assert good.to_client.chunks
    frames = frames_from_bytes(data)
    last_server = max(f.number for f in frames if len(f.data) > 200 and f.data[0:6] == CLIENT_MAC)
    mutated = bytearray(data)
    frame_bytes = frames[last_server - 1].data
    where = data.index(frame_bytes) + len(frame_bytes) - 30
    mutated[where] ^= 0x55
    broken = check_capture_bytes(bytes(mutated), keylog=read_keylog(keylog_path))
    assert not broken.passed
    failed = [m for m in broken.messages if m.verdict == "fail"]
    assert any("TLS decryption failed part way" in e and "bad_record_mac" in e for m in failed for e in m.errors), \
        format_report(broken)


async def test_transport_writes_the_key_log_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    async with https_relay(tls13) as (url, rec):
        plain = HttpTransport(url, username=USER, password=PASSWORD, tap=Tap(), verify_tls=False)
        assert plain.tls_keylog is None
        keylog = tmp_path / "explicit.log"
        async with HttpTransport(url, username=USER, password=PASSWORD, tap=Tap(), verify_tls=False,
                                 tls_keylog=str(keylog)) as transport:
            assert transport.tls_keylog == str(keylog)
            reply = await transport.post(messages.build_identify_request())
            assert reply.status == 200
    labels = {line.split()[0] for line in keylog.read_text().splitlines() if line and not line.startswith("#")}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"} <= labels
    report = check_capture_bytes(tls_pcapng(rec), keylog=read_keylog(keylog))
    assert report.passed, format_report(report)
    assert [(m.http, m.verdict) for m in report.messages] == [("POST /wsman", "pass"), ("200 OK", "pass")]


async def test_check_pcap_command_reads_the_key_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keylog_path = tmp_path / "keys.log"
    capture = tmp_path / "https.pcapng"
    capture.write_bytes(await _recorded(tls13, keylog_path, monkeypatch))
    code, out = run_check_pcap(str(capture), as_json=False, password=None, tls_keylog=str(keylog_path))
    assert code == 0, out
    assert "decrypted with the key log" in out
    code, out = run_check_pcap(str(capture), as_json=False, password=None, tls_keylog=str(tmp_path / "none.log"))
    assert code == 2 and "cannot read the key log" in out


async def test_cli_takes_the_key_log_from_sslkeylogfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import build_parser, cmd_check_pcap

    keylog_path = tmp_path / "keys.log"
    capture = tmp_path / "https.pcapng"
    capture.write_bytes(await _recorded(tls12("ECDHE-ECDSA-AES128-GCM-SHA256"), keylog_path, monkeypatch))
    args = build_parser().parse_args(["check-pcap", str(capture), "--json"])
    assert args.tls_keylog is None
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog_path))
    assert cmd_check_pcap(args) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    monkeypatch.delenv("SSLKEYLOGFILE")
    assert cmd_check_pcap(args) == 0          # no keys: reported, not a failure
    assert "TLS, no keys" in capsys.readouterr().out
    explicit = build_parser().parse_args(["check-pcap", str(capture), "--tls-keylog", str(keylog_path)])
    assert cmd_check_pcap(explicit) == 0
    assert "decrypted with the key log" in capsys.readouterr().out

"""``wmh check-pcap --tls-keylog`` on CredSSP-sealed WinRM traffic recorded on the wire.

A real CredSSP session (MS-CSSP 3.1.5 over HTTP, MS-WSMV 2.2.9.1.1 sealing) crosses the recording
proxy in front of the mock (ServiceAuthType CredSSP on, Basic and unencrypted traffic off):

* our client, with only its own key log (the mock's acceptor is kept from writing one);
* pypsrp (``auth="credssp"``, requests-credssp underneath, which has no key log option), with the
  key log of the mock's acceptor (``SSLKEYLOGFILE`` in the mock's process).

The recording becomes a pcapng that ``check_capture_bytes`` decrypts and validates end to end,
including a Pull answer above 16 KiB (``multipart/x-multi-encrypted``, MS-WSMV 2.2.9.1.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from recording_proxy import Recording, recording_proxy

from harness.auth import credssp
from harness.auth.policy import AuthPolicy
from harness.capture.check import CaptureReport, check_capture_bytes, format_report, run_check_pcap
from harness.capture.tls import parse_keylog, read_keylog
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig

PASSWORD = "Cred-Ssp-Wire-Pw-5!"
USER = "wmh"
SERVICE = wmi_uri("Win32_Service")
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
TSHARK = shutil.which("tshark")


def mock_config() -> MockConfig:
    config = MockConfig(password=PASSWORD, username=USER, wmi_enabled=False)
    config.auth = AuthPolicy(allow_basic=False, allow_unencrypted=False, allow_credssp=True)
    return config


@contextlib.asynccontextmanager
async def recorded() -> AsyncIterator[tuple[str, Recording]]:
    async with recording_proxy(mock_config()) as (url, rec):
        yield url, rec


async def our_session(url: str) -> None:
    target = Target(name="mock", url=url, auth="credssp", username=USER, password=PASSWORD, encryption="auto",
                    is_mock=True)
    async with WSManClient(target) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        # every service in one Pull: an answer well above 16 KiB, sealed in 16 KiB pieces
        assert len((await client.enumerate_all(SERVICE, max_elements=200)).items) > 5
        with contextlib.suppress(Exception):
            await client.get(SERVICE, {"Name": "NoSuchServiceWmh"})


def pypsrp_session(url: str) -> None:
    from pypsrp.wsman import WSMan

    parts = urlsplit(url)
    client = WSMan(parts.hostname or "127.0.0.1", port=parts.port, username=USER, password=PASSWORD, path="wsman",
                   ssl=False, auth="credssp", encryption="always", credssp_auth_mechanism="ntlm", no_proxy=True,
                   connection_timeout=5, read_timeout=15, operation_timeout=5)
    try:
        started = client.enumerate(SERVICE, ET.Element(f"{{{ENUMERATION}}}Enumerate"))
        context = started.findtext(f".//{{{ENUMERATION}}}EnumerationContext")
        assert context
        pull = ET.Element(f"{{{ENUMERATION}}}Pull")
        ET.SubElement(pull, f"{{{ENUMERATION}}}EnumerationContext").text = context
        ET.SubElement(pull, f"{{{ENUMERATION}}}MaxElements").text = "200"
        answer = client.pull(SERVICE, pull)
        assert len(ET.tostring(answer)) > 16_384
    finally:
        client.close()


def client_only_keylog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The acceptor of the in-process mock writes no key log: only our initiator's secrets are used."""
    original = credssp.tls_context

    def initiator_only(usage: str, tls_keylog: str | None = None) -> Any:
        return original(usage, tls_keylog) if usage == "initiate" else None

    monkeypatch.setattr(credssp, "tls_context", initiator_only)


def assert_nothing_secret(report: CaptureReport, keylog_path: Path) -> str:
    text = format_report(report) + json.dumps(report.to_json())
    assert PASSWORD not in text
    assert PASSWORD.encode("utf-16-le").hex() not in text and PASSWORD.encode().hex() not in text
    for line in keylog_path.read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split()[-1] not in text    # no TLS secret either
    return text


def assert_credssp_steps(report: CaptureReport) -> None:
    objects = [o for m in report.messages for o in m.objects]
    assert any("ClientHello" in o for o in objects) and any("ServerHello" in o for o in objects)
    assert any("NTLM NEGOTIATE" in o for o in objects) and any("NTLM CHALLENGE" in o for o in objects)
    assert any("NTLM AUTHENTICATE" in o and "pubKeyAuth" in o for o in objects)
    assert any(o.startswith("server:") and "pubKeyAuth" in o for o in objects)
    assert any("authInfo (TSCredentials) present, not shown" in o for o in objects)
    assert any("decrypted with the key log" in n and "authInfo (TSCredentials) present, not shown" in n
               for n in report.stream_notes), report.stream_notes


def multi_encrypted_answers(rec: Recording) -> int:
    return sum(data.count(b"multipart/x-multi-encrypted") for _, from_client, _, data in rec.chunks if not from_client)


@pytest.mark.spec("MS-CSSP 3.1.5", "MS-CSSP 2.2.1", "MS-WSMV 2.2.9.1.1", "MS-WSMV 2.2.9.1.2", "RFC 8446 7.1")
async def test_our_client_session_is_decrypted_with_its_own_key_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keylog_path = tmp_path / "client-keys.log"
    monkeypatch.setenv(credssp.KEYLOG_ENV, str(keylog_path))
    client_only_keylog(monkeypatch)
    async with recorded() as (url, rec):
        await our_session(url)
    data = rec.pcapng()
    assert multi_encrypted_answers(rec) >= 1
    report = check_capture_bytes(data, keylog=read_keylog(keylog_path))
    assert report.passed, format_report(report)
    actions = [m.action or "" for m in report.messages]
    assert any(a.endswith("/GetResponse") for a in actions)
    assert any(a.endswith("/PullResponse") for a in actions)
    assert any(a.endswith("/fault") for a in actions), "the fault answer was opened too"
    pull = next(m for m in report.messages if (m.action or "").endswith("/PullResponse"))
    assert pull.size > 16_384 and pull.verdict == "pass"
    assert_credssp_steps(report)
    assert_nothing_secret(report, keylog_path)

    # the CLI path: the same capture and key log from files, exit code 0
    capture = tmp_path / "credssp.pcapng"
    capture.write_bytes(data)
    code, out = run_check_pcap(str(capture), as_json=True, password=None, tls_keylog=str(keylog_path))
    assert code == 0, out
    assert PASSWORD not in out

    # without the key log: "CredSSP, no keys", info only, not a failure
    blind = check_capture_bytes(data)
    assert blind.passed, format_report(blind)
    assert {m.verdict for m in blind.messages} == {"info"}
    assert any(e.startswith("CredSSP, no keys") and "SSLKEYLOGFILE" in e for m in blind.messages for e in m.errors)
    assert not any(m.action for m in blind.messages)

    # a key log with the right client random but wrong secrets: "cannot decrypt", nothing opened
    wrong = parse_keylog("".join(f"{label} {rnd} {'a5' * (len(secret) // 2)}\n" for label, rnd, secret in
                                 (line.split() for line in keylog_path.read_text().splitlines()
                                  if line and not line.startswith("#"))))
    bad = check_capture_bytes(data, keylog=wrong)
    assert not bad.passed
    assert bad.messages[0].errors[0].startswith("CredSSP, cannot decrypt"), format_report(bad)
    assert "bad_record_mac" in bad.messages[0].errors[0]
    sealed = [m for m in bad.messages[1:] if m.verdict == "encrypted"]
    assert len(sealed) == len([m for m in report.messages if m.action])
    assert all("CredSSP, cannot decrypt" in m.errors[0] for m in sealed)
    assert {m.verdict for m in bad.messages[1:]} == {"encrypted", "info"}
    assert not any(m.action for m in bad.messages)


@pytest.mark.spec("MS-WSMV 2.2.9.1.2", "RFC 8446 5.2")
async def test_mutated_records_fail_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keylog_path = tmp_path / "keys.log"
    monkeypatch.setenv(credssp.KEYLOG_ENV, str(keylog_path))
    async with recorded() as (url, rec):
        await our_session(url)
    keylog = read_keylog(keylog_path)
    marker = b"multipart/x-multi-encrypted"
    index = next(i for i, (_, from_client, _, data) in enumerate(rec.chunks) if not from_client and marker in data)
    conn, from_client, at, data = rec.chunks[index]
    octet = data.index(b"application/octet-stream\r\n", data.index(marker)) + len(b"application/octet-stream\r\n")

    for position, expected in ((octet + 4 + 300, "bad_record_mac"),          # inside the ciphertext
                               (octet + 4, "not a TLS application-data record")):   # the record header
        mutated = bytearray(data)
        mutated[position] ^= 0x40
        rec.chunks[index] = (conn, from_client, at, bytes(mutated))
        report = check_capture_bytes(rec.pcapng(), keylog=keylog)
        rec.chunks[index] = (conn, from_client, at, data)
        assert not report.passed
        failed = [m for m in report.messages if m.verdict == "fail"]
        assert failed and any(expected in e for m in failed for e in m.errors), format_report(report)
        assert any((m.action or "").endswith("/GetResponse") for m in report.messages), "earlier answers opened"
        assert PASSWORD not in format_report(report)


@pytest.mark.spec("MS-CSSP 3.1.5", "MS-WSMV 2.2.9.1.2")
async def test_pypsrp_session_is_decrypted_with_the_acceptors_key_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("requests_credssp", reason="requests-credssp (pypsrp's CredSSP) is not installed")
    keylog_path = tmp_path / "server-keys.log"
    monkeypatch.setenv(credssp.KEYLOG_ENV, str(keylog_path))   # read by the mock's acceptor (pypsrp's TLS ignores it)
    async with recorded() as (url, rec):
        await asyncio.to_thread(pypsrp_session, url)
    assert multi_encrypted_answers(rec) >= 1
    report = check_capture_bytes(rec.pcapng(), keylog=read_keylog(keylog_path))
    assert report.passed, format_report(report)
    assert any((m.action or "").endswith("/PullResponse") and m.size > 16_384 for m in report.messages)
    assert_credssp_steps(report)
    assert_nothing_secret(report, keylog_path)


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
async def test_tshark_sees_the_same_http_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tshark cross-check of the outer HTTP layer. tshark (checked with 4.0) does not run TLS over
    the base64 tokens of ``Authorization: CredSSP`` nor over the multipart/encrypted bodies, so it
    cannot open CredSSP-in-HTTP with the key log: only the HTTP messages can be compared; if a
    tshark ever dissects the tunnelled CredSSP, its TSRequest count must match ours."""
    assert TSHARK is not None
    keylog_path = tmp_path / "keys.log"
    monkeypatch.setenv(credssp.KEYLOG_ENV, str(keylog_path))
    async with recorded() as (url, rec):
        await our_session(url)
    capture = tmp_path / "credssp.pcapng"
    capture.write_bytes(rec.pcapng())
    report = check_capture_bytes(capture.read_bytes(), keylog=read_keylog(keylog_path))
    out = subprocess.run(
        [TSHARK, "-n", "-r", str(capture), "-o", f"tls.keylog_file:{keylog_path}", "-Y", "http || credssp",
         "-T", "fields", "-e", "http.request.method", "-e", "http.response.code", "-e", "credssp.version"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    methods: list[str] = []
    tsrequests = 0
    for line in out.splitlines():
        method, code, version = [*line.split("\t"), "", ""][:3]
        methods += [m for m in method.split(",") if m] + [c for c in code.split(",") if c]
        tsrequests += len([v for v in version.split(",") if v])
    assert methods == [m.http.split(" ")[0] for m in report.messages]
    ours = sum(o.count("CredSSP TSRequest") for m in report.messages for o in m.objects)
    assert ours == 5
    if tsrequests:
        assert tsrequests == ours


@pytest.mark.spec("MS-CSSP 3.1.5")
async def test_transport_key_log_option_reaches_the_credssp_tls_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HttpTransport(tls_keylog=...)`` (no SSLKEYLOGFILE) makes the CredSSP initiator write its
    inner TLS secrets there, and those alone open the recorded session."""
    from harness.transport.http_client import HttpTransport
    from harness.transport.tap import Tap
    from harness.wire.wsman import messages as msg

    monkeypatch.delenv(credssp.KEYLOG_ENV, raising=False)
    keylog_path = tmp_path / "transport-keys.log"
    async with recorded() as (url, rec), HttpTransport(url, username=USER, password=PASSWORD, auth="credssp",
                                                       tap=Tap(), tls_keylog=str(keylog_path)) as transport:
        reply = await transport.post(msg.build_identify_request())
        assert reply.status == 200 and b"IdentifyResponse" in reply.body
    assert keylog_path.is_file() and "TRAFFIC_SECRET" in keylog_path.read_text()
    report = check_capture_bytes(rec.pcapng(), keylog=read_keylog(keylog_path))
    assert report.passed, format_report(report)
    opened = [m for m in report.messages if m.verdict == "pass" and m.size > 0]
    assert len(opened) == 2, "the sealed Identify request and its response are opened and validated"
    blind = check_capture_bytes(rec.pcapng())
    assert not any(m.verdict == "pass" and m.size > 0 for m in blind.messages), "without the key log nothing opens"
    assert_nothing_secret(report, keylog_path)

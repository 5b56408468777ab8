"""``wmh check-pcap --password-env``: NTLM-sealed WinRM traffic decrypted from a capture.

The capture is recorded at the socket level (a small recording proxy on the loopback) while our
client talks NTLM with message encryption to the mock: unlike the tap's synthesised captures, the
Authorization / WWW-Authenticate headers with the NTLM handshake are in it, as on a real wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from recording_proxy import Recording, recording_proxy

from harness.capture.check import check_capture_bytes, format_report, run_check_pcap
from harness.capture.decrypt import derive_session, ntlm_token, parse_authenticate, parse_challenge
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig

PASSWORD = "Decrypt-Me-4-Capture!"
USER = "wmh"
SERVICE = wmi_uri("Win32_Service")


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[Target, Recording]]:
    """The mock behind a recording TCP proxy; the target points at the proxy."""
    config = MockConfig(password=PASSWORD, username=USER, wmi_enabled=False)
    async with recording_proxy(config) as (url, rec):
        yield Target(name="mock", url=url, auth="ntlm", username=USER, password=PASSWORD, encryption="auto",
                     is_mock=True), rec


async def _session(target: Target) -> None:
    async with WSManClient(target) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
        assert (await client.enumerate_all(SERVICE, max_elements=7)).items
        with contextlib.suppress(Exception):
            await client.get(SERVICE, {"Name": "NoSuchServiceWmh"})


async def test_sealed_session_is_decrypted_and_every_message_checked(recorded: tuple[Target, Recording]) -> None:
    target, rec = recorded
    await _session(target)
    data = rec.pcapng()
    sealed = check_capture_bytes(data)
    assert {m.verdict for m in sealed.messages} >= {"encrypted"}, format_report(sealed)
    report = check_capture_bytes(data, password=PASSWORD)
    assert report.passed, format_report(report)
    actions = [m.action for m in report.messages if m.action]
    assert any(a and a.endswith("/GetResponse") for a in actions)
    assert any(a and a.endswith("/PullResponse") for a in actions)
    assert any(a and a.endswith("/fault") for a in actions), "the fault answer was opened too"
    encrypted = [m for m in sealed.messages if m.verdict == "encrypted"]
    assert len([m for m in report.messages if m.action]) == len(encrypted)
    text = format_report(report) + json.dumps(report.to_json())
    assert PASSWORD not in text


async def test_wrong_password_is_reported_without_revealing_anything(recorded: tuple[Target, Recording]) -> None:
    target, rec = recorded
    await _session(target)
    report = check_capture_bytes(rec.pcapng(), password="Not-The-Password-1")
    assert not report.passed
    failed = [m for m in report.messages if m.verdict == "fail"]
    assert failed and all(any("password does not produce" in e for e in m.errors) for m in failed)
    assert "Not-The-Password-1" not in format_report(report)


async def test_a_missing_segment_breaks_the_stream_cleanly(recorded: tuple[Target, Recording]) -> None:
    target, rec = recorded
    await _session(target)
    # drop the first sealed request body of the stream: the RC4 stream and the sequence numbers
    # of the later messages no longer line up, which the signature check reports
    index = next(i for i, (_, fc, _, d) in enumerate(rec.chunks) if fc and b"multipart/encrypted" in d)
    del rec.chunks[index]
    report = check_capture_bytes(rec.pcapng(), password=PASSWORD)
    assert not report.passed
    assert any("signature does not verify" in e for m in report.messages for e in m.errors), format_report(report)


async def test_cli_reads_the_password_from_the_environment_only(recorded: tuple[Target, Recording],
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    target, rec = recorded
    await _session(target)
    path = tmp_path / "ntlm.pcapng"
    path.write_bytes(rec.pcapng())
    monkeypatch.setenv("WMH_TEST_CAPTURE_PASSWORD", PASSWORD)
    assert main(["check-pcap", str(path), "--password-env", "WMH_TEST_CAPTURE_PASSWORD"]) == 0
    out = capsys.readouterr()
    assert "PASS" in out.out and PASSWORD not in out.out + out.err
    code, _ = run_check_pcap(str(path), as_json=True, password=None)
    assert code == 1, "without the password the sealed messages stay unchecked"


async def test_handshake_tokens_and_keys(recorded: tuple[Target, Recording]) -> None:
    target, rec = recorded
    await _session(target)
    stream = b"".join(d for _, fc, _, d in rec.chunks if fc)
    answers = b"".join(d for _, fc, _, d in rec.chunks if not fc)
    auths = [ntlm_token(line.split(b": ", 1)[1].decode(), 3) for line in stream.split(b"\r\n")
             if line.startswith(b"Authorization: Negotiate")]
    chals = [ntlm_token(line.split(b": ", 1)[1].decode(), 2) for line in answers.split(b"\r\n")
             if line.startswith(b"WWW-Authenticate: Negotiate ")]
    assert None in auths, "the NEGOTIATE message is not taken for an AUTHENTICATE"
    auth = parse_authenticate(next(t for t in auths if t is not None))
    challenge = parse_challenge(next(t for t in chals if t is not None))
    assert auth.user.lower() == USER and len(challenge.server_challenge) == 8
    derive_session(PASSWORD, challenge, auth)
    with pytest.raises(ValueError, match="password"):
        derive_session(PASSWORD + "x", challenge, auth)
    assert ntlm_token("Basic abc", 3) is None and ntlm_token("Negotiate !!!", 3) is None


def test_ntowfv2_matches_the_ms_nlmp_example() -> None:
    """MS-NLMP 4.2.4.1.1: NTOWFv2("Password", "User", "Domain")."""
    import hashlib
    import hmac

    from spnego._ntlm_raw.crypto import ntowfv1

    key = hmac.new(ntowfv1("Password"), "USERDomain".encode("utf-16-le"), hashlib.md5).digest()
    assert key.hex() == "0c868a403bfd7a93a3001ef22ef02e3f"


@pytest.mark.parametrize("token", [b"", b"NTLMSSP\0\x03\0\0\0", b"NTLMSSP\0\x03\0\0\0" + b"\xff" * 60])
def test_malformed_authenticate_messages_raise_value_error(token: bytes) -> None:
    with pytest.raises(ValueError):
        parse_authenticate(token)


async def test_pypsrp_sealed_session_is_decrypted(recorded: tuple[Target, Recording]) -> None:
    """The same for another client: pypsrp's WSMan (NTLM through pyspnego, its own sealing)."""
    from urllib.parse import urlsplit

    from pypsrp.wsman import SelectorSet, WSMan

    target, rec = recorded
    port = urlsplit(target.url).port

    def talk() -> None:
        wsman = WSMan("127.0.0.1", port=port, username=USER, password=PASSWORD, ssl=False, auth="ntlm",
                      encryption="always", cert_validation=False, operation_timeout=5)
        selectors = SelectorSet()
        selectors.add_option("Name", "WinRM")
        try:
            wsman.get(SERVICE, selector_set=selectors)
        finally:
            wsman.close()

    await asyncio.to_thread(talk)
    report = check_capture_bytes(rec.pcapng(), password=PASSWORD)
    assert report.passed, format_report(report)
    assert any(m.action and m.action.endswith("/GetResponse") for m in report.messages)


async def test_a_capture_without_the_handshake_stays_encrypted(recorded: tuple[Target, Recording]) -> None:
    """A capture that starts after the handshake (or whose headers were redacted) cannot be opened:
    the sealed messages are reported as encrypted, not as failures."""
    target, rec = recorded
    await _session(target)
    rec.chunks = [c for c in rec.chunks if b"Negotiate " not in c[3] or b"multipart/encrypted" in c[3]]
    first_sealed = next(i for i, c in enumerate(rec.chunks) if b"multipart/encrypted" in c[3])
    rec.chunks = [c for c in rec.chunks[first_sealed:] if b"Negotiate " not in c[3]]
    report = check_capture_bytes(rec.pcapng(), password=PASSWORD)
    verdicts = {m.verdict for m in report.messages}
    assert "encrypted" in verdicts and "fail" not in verdicts, format_report(report)
    assert any("no NTLM handshake" in e for m in report.messages for e in m.errors)

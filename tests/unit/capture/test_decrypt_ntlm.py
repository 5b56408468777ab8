"""``wmh check-pcap --password-env``: NTLM-sealed WinRM traffic decrypted from a capture.

The capture is recorded at the socket level (a small recording proxy on the loopback) while our
client talks NTLM with message encryption to the mock: unlike the tap's synthesised captures, the
Authorization / WWW-Authenticate headers with the NTLM handshake are in it, as on a real wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from harness.capture.check import check_capture_bytes, format_report, run_check_pcap
from harness.capture.decrypt import derive_session, ntlm_token, parse_authenticate, parse_challenge
from harness.capture.pcapng import LINKTYPE_ETHERNET, Packet, pcapng_bytes
from harness.capture.tcpip import (
    CLIENT_MAC,
    SERVER_MAC,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    ethernet_frame,
    ipv4_bytes,
    ipv4_packet,
    tcp_segment,
)
from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.targets.mock.http_server import build_app

PASSWORD = "Decrypt-Me-4-Capture!"
USER = "wmh"
SERVICE = wmi_uri("Win32_Service")


@dataclass
class Recording:
    """Bytes seen by the proxy: (connection, from client, seconds, data) in order."""

    chunks: list[tuple[int, bool, float, bytes]] = field(default_factory=list)

    def pcapng(self, mss: int = 1460) -> bytes:
        packets: list[Packet] = []
        for conn in sorted({c for c, _, _, _ in self.chunks}):
            tcp = _Connection(conn, packets)
            first = last = next(t for c, _, t, _ in self.chunks if c == conn)
            tcp.emit(True, TCP_SYN, b"", first)
            tcp.emit(False, TCP_SYN | TCP_ACK, b"", first)
            tcp.emit(True, TCP_ACK, b"", first)
            for c, from_client, at, data in self.chunks:
                if c == conn:
                    for off in range(0, len(data), mss):
                        tcp.emit(from_client, TCP_ACK | TCP_PSH, data[off:off + mss], at)
                    last = at
            tcp.emit(True, TCP_FIN | TCP_ACK, b"", last)
            tcp.emit(False, TCP_FIN | TCP_ACK, b"", last)
            tcp.emit(True, TCP_ACK, b"", last)
        packets.sort(key=lambda p: p.timestamp_us)
        return pcapng_bytes(packets, LINKTYPE_ETHERNET)


class _Connection:
    """Ethernet / IPv4 / TCP frames of one recorded connection (RFC 9293 sequence numbers)."""

    def __init__(self, index: int, packets: list[Packet]) -> None:
        self.port = 50000 + index
        self.seq = {True: 1000 * (index + 1), False: 90000 * (index + 1)}
        self.ident = 1
        self.packets = packets

    def emit(self, from_client: bool, flags: int, payload: bytes, at: float) -> None:
        client, server = ipv4_bytes("10.0.0.1"), ipv4_bytes("10.0.0.2")
        src, dst = (client, server) if from_client else (server, client)
        sp, dp = (self.port, 5985) if from_client else (5985, self.port)
        ack = self.seq[not from_client] if flags & TCP_ACK else 0
        seg = tcp_segment(src, dst, sp, dp, self.seq[from_client], ack, flags, payload)
        frame = ethernet_frame(SERVER_MAC if from_client else CLIENT_MAC, CLIENT_MAC if from_client else SERVER_MAC,
                               ipv4_packet(src, dst, self.ident, seg))
        self.ident += 1
        self.packets.append(Packet(int(at * 1_000_000) + len(self.packets), frame))
        self.seq[from_client] += len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Recording, conn: int,
                from_client: bool) -> None:
    try:
        while data := await reader.read(65536):
            rec.chunks.append((conn, from_client, time.time(), data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[Target, Recording]]:
    """The mock behind a recording TCP proxy; the target points at the proxy."""
    config = MockConfig(password=PASSWORD, username=USER, wmi_enabled=False)
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
    target = Target(name="mock", url=f"http://127.0.0.1:{port}/wsman", auth="ntlm", username=USER,
                    password=PASSWORD, encryption="auto", is_mock=True)
    try:
        yield target, rec
    finally:
        proxy.close()
        for t in list(tasks):
            t.cancel()
        await runner.cleanup()


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

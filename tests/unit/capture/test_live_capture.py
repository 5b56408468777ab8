"""harness.capture.live: a live loopback capture of the mock, redacted, read back and checked."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from pathlib import Path

import pytest

from harness.capture.check import check_capture
from harness.capture.http1 import extract_messages
from harness.capture.live import LiveCapture, bpf_filter, locate_tcp, redact_frames
from harness.capture.pcapng import LINKTYPE_ETHERNET
from harness.capture.reader import read_frames, reassemble
from harness.capture.reference import record_session
from harness.capture.tcpip import (
    CLIENT_MAC,
    SERVER_MAC,
    TCP_ACK,
    TCP_PSH,
    ethernet_frame,
    internet_checksum,
    ipv4_bytes,
    ipv4_packet,
    tcp_segment,
)
from harness.transport.tap import Tap


def _frame(payload: bytes, seq: int) -> bytes:
    src, dst = ipv4_bytes("127.0.0.1"), ipv4_bytes("127.0.0.1")
    seg = tcp_segment(src, dst, 50000, 5985, seq, 1, TCP_ACK | TCP_PSH, payload)
    return ethernet_frame(SERVER_MAC, CLIENT_MAC, ipv4_packet(src, dst, 1, seg))


def _tcp_checksum_ok(frame: bytes) -> bool:
    t = locate_tcp(0, frame, LINKTYPE_ETHERNET)
    assert t is not None
    src, _, dst, _ = t.key
    seg = frame[t.tcp:t.end]
    return internet_checksum(src + dst + struct.pack("!BBH", 0, 6, len(seg)), seg) == 0 and \
        internet_checksum(frame[t.ip:t.tcp]) == 0


def test_redaction_keeps_lengths_masks_split_secrets_and_fixes_checksums() -> None:
    token = base64.b64encode(b"wmh:s3cret-Pw").decode()
    first = b"POST /wsman HTTP/1.1\r\nAuthorization: Basic " + token.encode()[:6]
    second = token.encode()[6:] + b"\r\nContent-Length: 40\r\n\r\n<x>s3cr"
    third = b"et-Pw</x>" + "s3cret-Pw".encode("utf-16-le") + b"\r\n"
    frames = [_frame(first, 1000), _frame(second, 1000 + len(first)),
              _frame(third, 1000 + len(first) + len(second))]
    clean = redact_frames(frames, LINKTYPE_ETHERNET, ["s3cret-Pw"])
    assert [len(f) for f in clean] == [len(f) for f in frames]
    blob = b"".join(clean)
    for needle in (token.encode(), token.encode()[:6], token.encode()[6:], b"s3cr", b"et-Pw",
                   "s3cret-Pw".encode("utf-16-le")):
        assert needle not in blob
    assert b"Authorization: Basic ******" in blob and b"Content-Length: 40" in blob
    assert all(_tcp_checksum_ok(f) for f in clean)


def test_an_authorization_value_without_scheme_is_masked_whole() -> None:
    [clean] = redact_frames([_frame(b"GET / HTTP/1.1\r\nAuthorization: abcdef\r\n\r\n", 7)], LINKTYPE_ETHERNET, [])
    assert b"Authorization: ******\r\n" in clean


def test_bpf_filter_and_bad_ports() -> None:
    assert bpf_filter([5985, 135], inbound_only=True) == "inbound and tcp and (port 135 or port 5985)"
    from harness.capture.live import LiveCaptureError

    with pytest.raises(LiveCaptureError):
        bpf_filter([70000], inbound_only=False)


def test_live_capture_of_the_mock_is_readable_checked_and_redacted(tmp_path: Path) -> None:
    from harness.targets.mock.runner import MockServerThread

    mock = MockServerThread()
    url = mock.start()
    try:
        ports = [int(url.rsplit(":", 1)[1].split("/")[0])]
        if mock.wmi is not None:
            ports += [mock.wmi.epm_port, mock.wmi.orpc_port]
        live = LiveCapture(ports, max_packets=10_000)
        why = live.start()
        if why is not None:
            pytest.skip(f"live capture not possible here: {why}")
        try:
            time.sleep(0.2)  # the sniffer thread is reading before the first SYN
            tap = Tap()
            password = mock.config.password
            tap.add_secret(password)
            asyncio.run(record_session(url, mock.config.username, password, tap))
            time.sleep(0.3)  # the last segments reach the socket
        finally:
            out = tmp_path / "captures" / "live.pcapng"
            count = live.write(out, tap.secrets)
    finally:
        mock.stop()
    assert count > 0 and not live.running
    frames = read_frames(out)
    assert len(frames) == count
    streams = reassemble(frames)
    requests = [m for s in streams for m in extract_messages(s.to_server, True)]
    assert len(requests) == sum(1 for e in tap.exchanges if e.direction == "request")
    assert all(m.method == "POST" and m.complete for m in requests)
    report = check_capture(out)
    assert report.passed, [(m.verdict, m.errors) for m in report.messages if m.verdict not in ("pass", "info")]
    assert len(report.messages) == len(tap.exchanges)
    data = out.read_bytes()
    basic = base64.b64encode(f"{mock.config.username}:{password}".encode()).decode()
    for secret in (password, basic):
        assert secret.encode("utf-8") not in data and secret.encode("utf-16-le") not in data
    assert b"Authorization: Basic ***" in data


SUITE = '''
async def test_identify(wsman):
    await wsman.identify()
'''


def test_plugin_option_writes_a_redacted_live_capture(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "test_tiny_live.py").write_text(SUITE)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_tiny_live.py", "-q", "-p", "no:cacheprovider",
                           "-o", "asyncio_mode=auto", f"--wm-reports={reports}", "--wm-live-capture"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    live = reports / "captures" / "live.pcapng"
    if "live capture of mock not started" in proc.stderr:
        assert not live.exists()
        pytest.skip("live capture not possible here: " + proc.stderr.strip().splitlines()[-1])
    report = check_capture(live)
    assert report.passed and len(report.messages) == 2
    assert b"Authorization: Basic ***" in live.read_bytes()


def test_an_unprivileged_process_gets_the_reason_and_no_sniffer() -> None:
    def refuse(**_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    live = LiveCapture([5985], listen=refuse)
    why = live.start()
    assert why is not None and "CAP_NET_RAW" in why and not live.running

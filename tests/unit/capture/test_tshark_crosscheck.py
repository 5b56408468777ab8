"""Cross-check our pcapng with tshark (Wireshark's dissectors): HTTP seen, no malformed or bad packets.

tshark is installed by .ci/run (apt-get); without the binary these tests skip and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.capture.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW
from harness.capture.synth import write_capture

REPO = Path(__file__).resolve().parents[3]  # the checkout (tests/unit/capture/<this file>)

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark binary not installed (apt-get install tshark)")
CHECKSUMS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]


def _tshark(*args: str) -> list[list[str]]:
    assert TSHARK is not None
    proc = subprocess.run([TSHARK, *args], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module", params=[LINKTYPE_ETHERNET, LINKTYPE_RAW], ids=["ethernet", "raw-ipv4"])
def session_capture(request: pytest.FixtureRequest, mock_session, tmp_path_factory) -> tuple[Path, list]:
    exchanges, _ = mock_session
    path = tmp_path_factory.mktemp("tshark") / "session.pcapng"
    write_capture(exchanges, path, linktype=request.param)
    return path, exchanges


def test_tshark_sees_every_request_and_response_with_its_status(session_capture):
    path, exchanges = session_capture
    rows = _tshark("-r", str(path), "-Y", "http", "-T", "fields", "-e", "http.request.method",
                   "-e", "http.response.code", "-e", "http.content_length_header")
    seen = [(r[0], r[1]) for r in rows]
    expected = [("POST", "") if e.direction == "request" else ("", str(e.status)) for e in exchanges]
    assert seen == expected
    assert [int(r[2]) for r in rows] == [len(e.body) for e in exchanges]


def test_tshark_reports_no_malformed_bad_checksum_or_out_of_order_packets(session_capture):
    path, _ = session_capture
    rows = _tshark("-r", str(path), *CHECKSUMS, "-T", "fields", "-e", "frame.number", "-e", "tcp.analysis.flags",
                   "-e", "tcp.checksum.status", "-e", "ip.checksum.status", "-e", "_ws.malformed",
                   "-e", "_ws.expert.severity")
    assert rows
    for row in rows:
        row += [""] * (6 - len(row))
        number, flags, tcp_ok, ip_ok, malformed, severity = row[:6]
        assert flags == "", f"frame {number}: tcp.analysis.flags set"
        assert tcp_ok == "1" and ip_ok == "1", f"frame {number}: checksum status {tcp_ok}/{ip_ok}"
        assert malformed == "", f"frame {number}: malformed"
        # expert severities (epan/proto.h PI_*): 0x200000 chat, 0x400000 note, 0x600000 warn, 0x800000 error
        assert all(int(s) < 0x600000 for s in severity.split(",") if s), f"frame {number}: expert {severity}"


def test_tshark_follows_the_stream_and_finds_the_bodies(session_capture):
    path, exchanges = session_capture
    assert TSHARK is not None
    out = subprocess.run([TSHARK, "-r", str(path), "-q", "-z", "follow,tcp,raw,0"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    hexdata = "".join(line.strip() for line in out.splitlines() if line and not line.startswith(("=", "Follow",
                                                                                                   "Filter", "Node")))
    for ex in exchanges:
        if ex.body:
            assert ex.body[-40:].hex() in hexdata


def test_tshark_reads_the_committed_reference_capture():
    rows = _tshark("-r", str(REPO / "captures" / "mock-wsman.pcapng"), "-Y", "http.response", "-T", "fields",
                   "-e", "http.response.code")
    assert {r[0] for r in rows} >= {"200", "401", "500"}


def test_the_crosscheck_can_fail_a_corrupted_or_reordered_capture(tmp_path: Path, mock_session):
    """The checks above are not vacuous: tshark flags a flipped byte and a swapped pair of segments."""
    from harness.capture.pcapng import pcapng_bytes
    from harness.capture.synth import synthesise

    exchanges, _ = mock_session
    packets = synthesise(exchanges, linktype=LINKTYPE_RAW)
    big = max(range(len(packets)), key=lambda i: len(packets[i].data))
    corrupted = list(packets)
    data = bytearray(packets[big].data)
    data[-1] ^= 0xFF
    corrupted[big] = type(packets[big])(packets[big].timestamp_us, bytes(data))
    path = tmp_path / "bad.pcapng"
    path.write_bytes(pcapng_bytes(corrupted, LINKTYPE_RAW))
    rows = _tshark("-r", str(path), *CHECKSUMS, "-T", "fields", "-e", "tcp.checksum.status")
    assert rows[big][0] == "0"  # PROTO_CHECKSUM_E_BAD (1 = good, 2 = unverified)
    from _capture_helpers import exchange

    big_pair = synthesise([exchange("request", b"<a>" + b"x" * 6000 + b"</a>"),
                           exchange("response", b"<b/>", status=200, ts=1.7e9 + 1)], linktype=LINKTYPE_RAW)
    swapped = list(big_pair)
    swapped[4], swapped[5] = swapped[5], swapped[4]  # two data segments of the request
    path.write_bytes(pcapng_bytes(swapped, LINKTYPE_RAW))
    flags = _tshark("-r", str(path), "-T", "fields", "-e", "tcp.analysis.flags", "-e", "tcp.analysis.out_of_order",
                    "-e", "tcp.analysis.lost_segment")
    assert any(any(cell for cell in r) for r in flags)

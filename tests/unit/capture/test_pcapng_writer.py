"""pcapng writer: block layout per draft-ietf-opsawg-pcapng 4.1-4.3, classic pcap, and third-party readers."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from harness.capture.pcapng import (
    BT_EPB,
    BT_IDB,
    BT_SHB,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    Packet,
    PcapngWriter,
    pcap_bytes,
    pcapng_bytes,
)
from harness.capture.reader import CaptureReadError, frames_from_bytes


def _blocks(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        btype, total = struct.unpack_from("<II", data, pos)
        assert total % 4 == 0 and struct.unpack_from("<I", data, pos + total - 4)[0] == total
        out.append((btype, data[pos + 8:pos + total - 4]))
        pos += total
    return out


def test_section_interface_and_enhanced_packet_blocks_are_laid_out_per_the_draft():
    ts = 1_700_000_000_123_456
    data = pcapng_bytes([Packet(ts, b"\x45abc", "hello")], LINKTYPE_RAW)
    (t1, shb), (t2, idb), (t3, epb) = _blocks(data)
    assert (t1, t2, t3) == (BT_SHB, BT_IDB, BT_EPB)
    magic, major, minor, length = struct.unpack_from("<IHHq", shb)
    assert (magic, major, minor, length) == (0x1A2B3C4D, 1, 0, -1)
    linktype, _, snaplen = struct.unpack_from("<HHI", idb)
    assert linktype == LINKTYPE_RAW and snaplen > 0
    assert struct.unpack_from("<HHB", idb, 8) == (9, 1, 6)  # if_tsresol = 10^-6
    iface, hi, lo, cap, orig = struct.unpack_from("<IIIII", epb)
    assert iface == 0 and (hi << 32 | lo) == ts and cap == orig == 4
    assert epb[20:24] == b"\x45abc" and b"hello" in epb[24:]


def test_streaming_writer_equals_the_in_memory_form():
    packets = [Packet(1_000_000 + i, bytes([i]) * (i + 1)) for i in range(7)]
    buf = io.BytesIO()
    assert PcapngWriter(buf, LINKTYPE_ETHERNET).write_all(packets) == 7
    assert buf.getvalue() == pcapng_bytes(packets, LINKTYPE_ETHERNET)


@pytest.mark.parametrize("writer", [pcapng_bytes, pcap_bytes])
def test_our_reader_reads_both_formats_back(writer):
    packets = [Packet(1_600_000_000_000_000 + 17 * i, bytes(range(i, i + 60))) for i in range(5)]
    frames = frames_from_bytes(writer(packets, LINKTYPE_ETHERNET))
    assert [f.data for f in frames] == [p.data for p in packets]
    assert [f.timestamp_us for f in frames] == [p.timestamp_us for p in packets]
    assert [f.number for f in frames] == [1, 2, 3, 4, 5]


def test_big_endian_pcap_and_nanosecond_resolution_are_read():
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
    record = struct.pack(">IIII", 10, 500_000_000, 3, 3) + b"xyz"
    [frame] = frames_from_bytes(header + record)
    assert frame.timestamp_us == 10_500_000 and frame.data == b"xyz" and frame.linktype == LINKTYPE_RAW


def test_scapy_reads_our_pcapng(tmp_path: Path):
    scapy_utils = pytest.importorskip("scapy.utils")
    path = tmp_path / "x.pcapng"
    path.write_bytes(pcapng_bytes([Packet(1_700_000_000_000_000, b"\x00" * 60)]))
    packets = scapy_utils.rdpcap(str(path))
    assert len(packets) == 1 and bytes(packets[0]) == b"\x00" * 60


@pytest.mark.parametrize("data, reason", [
    (b"", "unknown magic"),
    (b"GET / HTTP/1.1\r\n", "unknown magic"),
    (pcapng_bytes([Packet(1, b"abcd")])[:-3], "truncated"),
    (pcapng_bytes([])[:] + struct.pack("<II", BT_EPB, 0x7FFFFFF0), "bad length"),
    (pcapng_bytes([]) + struct.pack("<IIIIIIII", BT_EPB, 32, 3, 0, 0, 0, 0, 32), "undeclared interface"),
    (pcap_bytes([Packet(1, b"abcdef")])[:-2], "truncated"),
])
def test_unreadable_input_raises_only_the_typed_error(data: bytes, reason: str):
    with pytest.raises(CaptureReadError) as info:
        frames_from_bytes(data)
    assert reason in info.value.reason

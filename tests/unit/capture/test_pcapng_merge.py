"""pcapng merge (harness.capture.merge): time order, one SHB + one IDB per link type, our reader reads it."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.capture.merge import CaptureMergeError, merge_pcapng, merge_pcapng_files
from harness.capture.pcapng import (
    BT_EPB,
    BT_IDB,
    BT_SHB,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    Packet,
    pcapng_bytes,
)
from harness.capture.reader import read_frames

T0 = 1_700_000_000_000_000


def _block_types(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        btype, total = struct.unpack_from("<II", data, pos)
        out.append(btype)
        pos += total
    return out


def test_two_files_merge_in_time_order_and_read_back_with_our_reader(tmp_path: Path):
    a = [Packet(T0 + 10, b"a1" * 30, "gw0 first"), Packet(T0 + 30, b"a2" * 30), Packet(T0 + 50, b"a3" * 30)]
    b = [Packet(T0 + 5, b"b1" * 30), Packet(T0 + 30, b"b2" * 30, "tie"), Packet(T0 + 40, b"b3" * 30)]
    (tmp_path / "all-gw0.pcapng").write_bytes(pcapng_bytes(a))
    (tmp_path / "all-gw1.pcapng").write_bytes(pcapng_bytes(b))
    out = tmp_path / "all.pcapng"
    count = merge_pcapng_files([tmp_path / "all-gw0.pcapng", tmp_path / "all-gw1.pcapng"], out)
    assert count == 6
    frames = read_frames(out)
    assert [f.data[:2] for f in frames] == [b"b1", b"a1", b"a2", b"b2", b"b3", b"a3"]  # tie at +30: file order
    assert [f.timestamp_us for f in frames] == sorted(f.timestamp_us for f in frames)
    assert [f.number for f in frames] == [1, 2, 3, 4, 5, 6]
    assert {f.linktype for f in frames} == {LINKTYPE_ETHERNET}
    data = out.read_bytes()
    assert _block_types(data) == [BT_SHB, BT_IDB] + [BT_EPB] * 6
    assert b"gw0 first" in data and b"tie" in data  # packet comments survive
    assert not (tmp_path / "all.pcapng.part").exists()


def test_one_interface_per_link_type_and_resolution_is_normalised():
    eth = pcapng_bytes([Packet(T0 + 2, b"e" * 20)], LINKTYPE_ETHERNET)
    raw = pcapng_bytes([Packet(T0 + 1, b"\x45" + b"r" * 19)], LINKTYPE_RAW)
    # a file with if_tsresol = 9 (nanoseconds), hand-built: SHB, IDB, EPB at T0+3 us
    shb = eth[:struct.unpack_from("<I", eth, 4)[0]]
    idb_body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 65535) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0" + b"\0" * 4
    idb = struct.pack("<II", BT_IDB, len(idb_body) + 12) + idb_body + struct.pack("<I", len(idb_body) + 12)
    ns = (T0 + 3) * 1000
    epb_body = struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, 20, 20) + b"n" * 20
    epb = struct.pack("<II", BT_EPB, len(epb_body) + 12) + epb_body + struct.pack("<I", len(epb_body) + 12)
    merged, count = merge_pcapng([eth, raw, shb + idb + epb])
    assert count == 3
    assert _block_types(merged) == [BT_SHB, BT_IDB, BT_IDB, BT_EPB, BT_EPB, BT_EPB]
    from harness.capture.reader import frames_from_bytes

    frames = frames_from_bytes(merged)
    assert [(f.timestamp_us - T0, f.linktype, f.data[:1]) for f in frames] == [
        (1, LINKTYPE_RAW, b"\x45"), (2, LINKTYPE_ETHERNET, b"e"), (3, LINKTYPE_ETHERNET, b"n")]


@pytest.mark.parametrize("bad, reason", [
    (b"", "not a pcapng"),
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 20, "not a pcapng"),
    (pcapng_bytes([Packet(T0, b"x" * 8)])[:-3], "input 2: truncated file"),
])
def test_malformed_inputs_raise_the_typed_error(bad: bytes, reason: str):
    with pytest.raises(CaptureMergeError, match=reason):
        merge_pcapng([pcapng_bytes([Packet(T0, b"ok")]), bad])


def test_packet_on_an_undeclared_interface_is_rejected():
    data = pcapng_bytes([Packet(T0, b"x" * 8)])
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    without_idb = data[:shb_len] + data[shb_len + idb_len:]
    with pytest.raises(CaptureMergeError, match="undeclared interface"):
        merge_pcapng([without_idb])


def test_missing_file_raises_the_typed_error(tmp_path: Path):
    with pytest.raises(CaptureMergeError, match="cannot read"):
        merge_pcapng_files([tmp_path / "absent.pcapng"], tmp_path / "all.pcapng")

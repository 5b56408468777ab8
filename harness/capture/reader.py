"""Read pcap and pcapng files and reassemble their TCP streams (our own block parser).

File formats:

* pcapng (draft-ietf-opsawg-pcapng): 3.1 general block structure, 4.1 Section Header Block (the
  byte-order magic sets the endianness of the section; several sections may follow each other),
  4.2 Interface Description Block (link type, ``if_tsresol`` option 9), 4.3 Enhanced Packet Block,
  4.4 Simple Packet Block, Appendix A obsolete Packet Block (type 2); other blocks are skipped.
* classic pcap (draft-ietf-opsawg-pcap 4, 5): magic ``A1B2C3D4`` (microseconds) or ``A1B23C4D``
  (nanoseconds), in either byte order.

Link types (draft-ietf-opsawg-pcaplinktype): ETHERNET (1, with 802.1Q tags), RAW (101),
NULL (0) / LOOP (108), LINUX_SLL (113), LINUX_SLL2 (276), IPV4 (228), IPV6 (229).
IP: IPv4 (RFC 791; fragments are skipped) and IPv6 (RFC 8200; TCP directly after the fixed header).

TCP reassembly (RFC 9293 3.4 sequence numbers, modulo 2**32): segments are grouped by
connection (4-tuple; a new SYN on a finished 4-tuple opens a new stream), ordered by sequence
number; retransmitted and duplicated segments are dropped, out-of-order segments put in place
and holes reported as missing byte ranges.

Every malformed input raises :class:`CaptureReadError` (file level) or is counted and skipped
(packet level); sizes are bounded by the file itself.
"""

from __future__ import annotations

import io
import ipaddress
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from harness.capture.pcapng import BT_EPB, BT_IDB, BT_SPB, BYTE_ORDER_MAGIC, IF_TSRESOL, OPT_COMMENT
from harness.capture.tcpip import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

MAX_BLOCK = 64 * 1024 * 1024  # no sane capture block is larger; guards the allocation
BT_OBSOLETE_PB = 0x00000002

LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = 0, 1, 101, 108, 113, 228, 229, 276


class CaptureReadError(Exception):
    """The file is not a readable pcap/pcapng capture (with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    """One captured frame: 1-based number (as Wireshark counts), time, link type, bytes, and the
    ``opt_comment`` of its pcapng packet block (pcapng 3.5, 4.3), if any."""

    number: int
    timestamp_us: int
    linktype: int
    data: bytes
    comment: str | None = None


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise CaptureReadError(f"truncated file: {what} needs {n} bytes, {len(data)} left")
    return data


def _resolution(value: bytes) -> int:
    """``if_tsresol`` (pcapng 4.2): high bit clear = 10**-v seconds, set = 2**-v seconds; as units/second."""
    v = value[0]
    exp = v & 0x7F
    if exp > 30 and not v & 0x80:
        raise CaptureReadError(f"if_tsresol 10^-{exp} is out of range")
    return int(2 ** exp if v & 0x80 else 10 ** exp)


def _options(body: bytes, pos: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """Options (pcapng 3.5) from ``pos`` to the end of ``body``, up to ``opt_endofopt``."""
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        pos += 4
        if code == 0:
            return
        if pos + length > len(body):
            raise CaptureReadError(f"option {code} runs past its block")
        yield code, body[pos:pos + length]
        pos += length + (4 - length % 4) % 4


def _idb_resolution(body: bytes, endian: str) -> int:
    for code, value in _options(body, 8, endian):
        if code == IF_TSRESOL and value:
            return _resolution(value)
    return 1_000_000


def _comment(body: bytes, pos: int, endian: str) -> str | None:
    for code, value in _options(body, pos, endian):
        if code == OPT_COMMENT:
            return value.decode("utf-8", errors="replace")
    return None


def _iter_pcapng(f: BinaryIO) -> Iterator[Frame]:
    number = 0
    endian = "<"
    interfaces: list[tuple[int, int]] = []  # (linktype, units per second)
    while True:
        head = f.read(8)
        if not head:
            return
        if len(head) < 8:
            raise CaptureReadError("truncated pcapng block header")
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            magic = _read_exact(f, 4, "section header")
            if struct.unpack("<I", magic)[0] == BYTE_ORDER_MAGIC:
                endian = "<"
            elif struct.unpack(">I", magic)[0] == BYTE_ORDER_MAGIC:
                endian = ">"
            else:
                raise CaptureReadError("pcapng section header with a bad byte-order magic")
            total = struct.unpack(endian + "I", head[4:])[0]
            if total < 28 or total % 4 or total > MAX_BLOCK:
                raise CaptureReadError(f"pcapng section header with bad length {total}")
            body = magic + _read_exact(f, total - 16, "section header")
            interfaces = []
            major = struct.unpack_from(endian + "H", body, 4)[0]
            if major != 1:
                raise CaptureReadError(f"pcapng version {major} not supported (1 expected)")
            if struct.unpack(endian + "I", _read_exact(f, 4, "block trailer"))[0] != total:
                raise CaptureReadError("pcapng section header: trailing length does not match")
            continue
        btype, total = struct.unpack(endian + "II", head)
        if total < 12 or total % 4 or total > MAX_BLOCK:
            raise CaptureReadError(f"pcapng block type {btype:#x} with bad length {total}")
        body = _read_exact(f, total - 12, f"block type {btype:#x}")
        trailer = _read_exact(f, 4, "block trailer")
        if struct.unpack(endian + "I", trailer)[0] != total:
            raise CaptureReadError(f"pcapng block type {btype:#x}: trailing length does not match")
        if btype == BT_IDB:
            if len(body) < 8:
                raise CaptureReadError("interface description block too short")
            interfaces.append((struct.unpack_from(endian + "H", body)[0], _idb_resolution(body, endian)))
        elif btype in (BT_EPB, BT_OBSOLETE_PB):
            if len(body) < 20:
                raise CaptureReadError("enhanced packet block too short")
            if btype == BT_EPB:
                iface, hi, lo, caplen, _ = struct.unpack_from(endian + "IIIII", body)
            else:
                iface, _, hi, lo, caplen, _ = struct.unpack_from(endian + "HHIIII", body)
            if iface >= len(interfaces):
                raise CaptureReadError(f"packet on undeclared interface {iface}")
            if caplen > len(body) - 20:
                raise CaptureReadError("packet block: captured length exceeds the block")
            linktype, units = interfaces[iface]
            number += 1
            comment = _comment(body, 20 + caplen + (4 - caplen % 4) % 4, endian)
            yield Frame(number, ((hi << 32) | lo) * 1_000_000 // units, linktype, body[20:20 + caplen], comment)
        elif btype == BT_SPB:
            if not interfaces:
                raise CaptureReadError("simple packet block before any interface")
            if len(body) < 4:
                raise CaptureReadError("simple packet block too short")
            orig = struct.unpack_from(endian + "I", body)[0]
            number += 1
            yield Frame(number, 0, interfaces[0][0], body[4:4 + min(orig, len(body) - 4)])


def _iter_pcap(f: BinaryIO, header: bytes) -> Iterator[Frame]:
    magic_le = struct.unpack("<I", header[:4])[0]
    endian = "<" if magic_le in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    magic = struct.unpack(endian + "I", header[:4])[0]
    units = 1_000_000_000 if magic == 0xA1B23C4D else 1_000_000
    linktype = struct.unpack(endian + "I", header[20:24])[0] & 0x0FFFFFFF
    number = 0
    while True:
        rec = f.read(16)
        if not rec:
            return
        if len(rec) < 16:
            raise CaptureReadError("truncated pcap record header")
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", rec)
        if caplen > MAX_BLOCK:
            raise CaptureReadError(f"pcap record of {caplen} bytes")
        data = _read_exact(f, caplen, "pcap record")
        number += 1
        yield Frame(number, sec * 1_000_000 + frac * 1_000_000 // units, linktype, data)


def iter_frames(f: BinaryIO) -> Iterator[Frame]:
    """Frames of a pcap or pcapng stream (the format is recognised from the first bytes)."""
    first = f.read(4)
    if first == b"\x0a\x0d\x0d\x0a":
        rest = f.read()
        return _iter_pcapng(io.BytesIO(first + rest))
    if first in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        header = first + _read_exact(f, 20, "pcap file header")
        return _iter_pcap(f, header)
    raise CaptureReadError("not a pcap or pcapng file (unknown magic number)")


def read_frames(path: Path) -> list[Frame]:
    """All frames of a capture file; :class:`CaptureReadError` when it cannot be read."""
    try:
        with path.open("rb") as f:
            return list(iter_frames(f))
    except OSError as exc:
        raise CaptureReadError(str(exc.strerror or exc)) from None


def frames_from_bytes(data: bytes) -> list[Frame]:
    return list(iter_frames(io.BytesIO(data)))


# ------------------------------------------------------------------------------------- packets
@dataclass(frozen=True)
class Segment:
    """A decoded TCP segment (RFC 9293 3.1)."""

    frame: int
    timestamp_us: int
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes


def _network_layer(frame: Frame) -> tuple[int, bytes] | None:
    """(ethertype, packet) of a frame, or None for a frame that carries no IP."""
    d, lt = frame.data, frame.linktype
    if lt == LT_ETHERNET:
        if len(d) < 14:
            return None
        etype, pos = struct.unpack_from("!H", d, 12)[0], 14
        while etype == ETHERTYPE_VLAN and len(d) >= pos + 4:
            etype, pos = struct.unpack_from("!H", d, pos + 2)[0], pos + 4
        return etype, d[pos:]
    if lt in (LT_RAW, LT_IPV4, LT_IPV6):
        if not d:
            return None
        return (ETHERTYPE_IPV4 if d[0] >> 4 == 4 else ETHERTYPE_IPV6), d
    if lt in (LT_NULL, LT_LOOP):
        if len(d) < 4:
            return None
        return (ETHERTYPE_IPV4 if d[4:5] and d[4] >> 4 == 4 else ETHERTYPE_IPV6), d[4:]
    if lt == LT_SLL and len(d) >= 16:
        return struct.unpack_from("!H", d, 14)[0], d[16:]
    if lt == LT_SLL2 and len(d) >= 20:
        return struct.unpack_from("!H", d, 0)[0], d[20:]
    return None


def decode_segment(frame: Frame) -> Segment | None:
    """The TCP segment in a frame, or None (not IP/TCP, a fragment, or too short)."""
    net = _network_layer(frame)
    if net is None:
        return None
    etype, pkt = net
    if etype == ETHERTYPE_IPV4:
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return None
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        frag = struct.unpack_from("!H", pkt, 6)[0]
        if pkt[9] != 6 or ihl < 20 or frag & 0x3FFF:  # not TCP, or a fragment (MF set / offset)
            return None
        src, dst = str(ipaddress.IPv4Address(pkt[12:16])), str(ipaddress.IPv4Address(pkt[16:20]))
        tcp = pkt[ihl:total] if total >= ihl else pkt[ihl:]
    elif etype == ETHERTYPE_IPV6:
        if len(pkt) < 40 or pkt[6] != 6:
            return None
        plen = struct.unpack_from("!H", pkt, 4)[0]
        src, dst = str(ipaddress.IPv6Address(pkt[8:24])), str(ipaddress.IPv6Address(pkt[24:40]))
        tcp = pkt[40:40 + plen]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack, off, flags = struct.unpack_from("!HHIIBB", tcp)
    hlen = (off >> 4) * 4
    if hlen < 20 or hlen > len(tcp):
        return None
    return Segment(frame.number, frame.timestamp_us, src, sport, dst, dport, seq, ack, flags, tcp[hlen:])


# ----------------------------------------------------------------------------------- reassembly
@dataclass
class HalfStream:
    """The bytes one side sent, reassembled. Offsets count from the first data byte (ISN + 1)."""

    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    missing: list[tuple[int, int]] = field(default_factory=list)  # [start, end) byte ranges never seen
    duplicates: int = 0
    out_of_order: int = 0
    segments: int = 0
    fin: bool = False
    #: (offset, frame number) of every data segment, sorted, to map bytes back to frames
    frame_map: list[tuple[int, int]] = field(default_factory=list)

    def frame_at(self, offset: int) -> int | None:
        i = bisect_right(self.frame_map, (offset, 1 << 62)) - 1
        return self.frame_map[i][1] if i >= 0 else None

    @property
    def length(self) -> int:
        return sum(len(c) for _, c in self.chunks)


@dataclass
class TcpStream:
    """One TCP connection: ``index`` counts from 0 in order of first packet (as tshark's tcp.stream)."""

    index: int
    client: tuple[str, int]
    server: tuple[str, int]
    first_frame: int
    syn_seen: bool
    to_server: HalfStream
    to_client: HalfStream
    reset: bool = False


@dataclass
class _Collect:
    index: int
    client: tuple[str, int]
    server: tuple[str, int]
    first_frame: int
    syn_seen: bool = False
    syn_from: tuple[str, int] | None = None
    isn: dict[tuple[str, int], int] = field(default_factory=dict)
    segs: dict[tuple[str, int], list[Segment]] = field(default_factory=dict)
    fin: set[tuple[str, int]] = field(default_factory=set)
    reset: bool = False


def _signed(d: int) -> int:
    d &= 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


class _Coverage:
    """Sorted, disjoint [start, end) byte ranges already received (bisect: O(log n) lookups)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def contains(self, start: int, end: int) -> bool:
        i = bisect_right(self.starts, start) - 1
        return i >= 0 and end <= self.ends[i]

    def add(self, start: int, end: int) -> None:
        i = bisect_right(self.starts, start) - 1
        if i >= 0 and self.ends[i] >= start:  # touches the range on the left
            start = self.starts[i]
        else:
            i += 1
        j = i
        while j < len(self.starts) and self.starts[j] <= end:  # swallow ranges it reaches
            end = max(end, self.ends[j])
            j += 1
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]


def _assemble(segs: list[Segment], isn: int | None, fin: bool) -> HalfStream:
    half = HalfStream(fin=fin)
    data = [s for s in segs if s.payload]
    half.segments = len(data)
    if not data:
        return half
    ref = (isn + 1) if isn is not None else data[0].seq
    placed = [(_signed(s.seq - ref), s.frame, s.payload) for s in data]
    if isn is None:
        base = min(p[0] for p in placed)
        placed = [(o - base, f, p) for o, f, p in placed]
    # arrival-order classification: a segment entirely inside bytes already seen is a duplicate /
    # retransmission; one that starts below the highest byte seen but brings new bytes is out of order
    covered = _Coverage()
    highest = 0
    for start, _, payload in placed:
        end = start + len(payload)
        if covered.contains(start, end):
            half.duplicates += 1
            continue
        if start < highest:
            half.out_of_order += 1
        highest = max(highest, end)
        covered.add(start, end)
    placed.sort(key=lambda p: (p[0], -len(p[2])))
    expected = 0
    current: list[bytes] = []
    current_start = 0
    for start, frame, payload in placed:
        end = start + len(payload)
        if end <= expected:
            continue
        if start > expected:
            if current:
                half.chunks.append((current_start, b"".join(current)))
            half.missing.append((expected, start))
            current, current_start = [], start
        elif start < expected:
            payload = payload[expected - start:]
            start = expected
        current.append(payload)
        half.frame_map.append((start, frame))
        expected = end
    if current:
        half.chunks.append((current_start, b"".join(current)))
    return half


def _new_connection(col: _Collect, side: tuple[str, int], syn_seq: int) -> bool:
    """Does a SYN from ``side`` open a new connection on a 4-tuple already seen (port reuse)?

    It does when that side's ISN is known and differs, or when the old connection ended and the
    SYN's sequence number is nowhere near the data that side sent (a reordered capture can show a
    FIN before its connection's SYN; that SYN still belongs to the connection).
    """
    if side in col.isn:
        return col.isn[side] != syn_seq
    if not (col.fin or col.reset):
        return False
    sent = col.segs.get(side)
    return not sent or not 0 <= _signed(sent[0].seq - (syn_seq + 1)) < 1 << 30


def _roles(col: _Collect) -> tuple[tuple[str, int], tuple[str, int]]:
    """(client, server): the SYN sender; else the side answering ``HTTP/``; else the lower port serves."""
    a, b = col.client, col.server
    if col.syn_from is not None:
        return col.syn_from, (b if col.syn_from == a else a)
    for side, other in ((a, b), (b, a)):
        first = next((s for s in col.segs.get(side, []) if s.payload), None)
        if first is not None and first.payload.startswith(b"HTTP/"):
            return other, side
    return (a, b) if a[1] >= b[1] else (b, a)


def reassemble(frames: list[Frame]) -> list[TcpStream]:
    """TCP streams of the frames, in order of their first packet."""
    open_streams: dict[frozenset[tuple[str, int]], _Collect] = {}
    done: list[_Collect] = []
    for frame in frames:
        seg = decode_segment(frame)
        if seg is None:
            continue
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        key = frozenset((a, b))
        col = open_streams.get(key)
        is_syn = bool(seg.flags & TCP_SYN) and not seg.flags & TCP_ACK
        if col is not None and is_syn and _new_connection(col, a, seg.seq):
            done.append(col)
            col = None
        if col is None:
            col = _Collect(len(done) + len(open_streams), a, b, frame.number)
            open_streams[key] = col
        if seg.flags & TCP_SYN:
            col.isn[a] = seg.seq
            col.syn_seen = True
            if is_syn:
                col.syn_from = a
        if seg.flags & TCP_FIN:
            col.fin.add(a)
        if seg.flags & TCP_RST:
            col.reset = True
        col.segs.setdefault(a, []).append(seg)
    collected = sorted(done + list(open_streams.values()), key=lambda c: c.first_frame)
    streams = []
    for i, col in enumerate(collected):
        client, server = _roles(col)
        streams.append(TcpStream(
            index=i, client=client, server=server, first_frame=col.first_frame, syn_seen=col.syn_seen,
            to_server=_assemble(col.segs.get(client, []), col.isn.get(client), client in col.fin),
            to_client=_assemble(col.segs.get(server, []), col.isn.get(server), server in col.fin),
            reset=col.reset))
    return streams

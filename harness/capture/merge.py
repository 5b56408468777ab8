"""Merge several pcapng files into one, in time order (what ``mergecap`` does, for our own captures).

Under pytest-xdist every worker writes ``captures/all-<worker>.pcapng``; the controller merges them
into one ``captures/all.pcapng`` with :func:`merge_pcapng_files`.

File format (draft-ietf-opsawg-pcapng):

* 3.1 general block structure (type, total length, body, total length again; 32-bit aligned);
  4.1 Section Header Block: its byte-order magic sets the endianness of the section, and a new
  section starts a new list of interfaces;
* 4.2 Interface Description Block: link type, snap length and ``if_tsresol`` (option 9; 10**-6 s
  when absent) that scales the timestamps of its packets;
* 4.3 Enhanced Packet Block (its ``opt_comment`` option 1 is kept), 4.4 Simple Packet Block (no
  timestamp: it sorts as time 0) and Appendix A obsolete Packet Block (type 2).
  Other block types (name resolution, statistics, ...) are not carried over.

The output has one Section Header Block and one Interface Description Block per link type (in the
order the link types first appear), timestamps in microseconds. Packets are ordered by time; ties
keep the order of the input files and, within a file, the order of its packets.
The written original length is the captured length (our captures are never truncated).

Every malformed input raises :class:`CaptureMergeError`; sizes are bounded by the files themselves.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.capture.pcapng import (
    BT_EPB,
    BT_IDB,
    BT_SHB,
    BT_SPB,
    BYTE_ORDER_MAGIC,
    DEFAULT_SNAPLEN,
    IF_TSRESOL,
    OPT_COMMENT,
    Packet,
    enhanced_packet_block,
    interface_description_block,
    section_header_block,
)

BT_OBSOLETE_PB = 0x00000002
MAX_BLOCK = 64 * 1024 * 1024  # no sane capture block is larger; guards the allocation
_USEC = 1_000_000


class CaptureMergeError(Exception):
    """An input that is not a readable pcapng file, or an output that cannot be written (with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Interface:
    linktype: int
    units: int  # timestamp units per second (if_tsresol)


@dataclass(frozen=True)
class MergedPacket:
    """One packet of an input file: its link type and the packet (time in microseconds, comment kept)."""

    linktype: int
    packet: Packet


def _tsresol(value: int, where: str) -> int:
    """``if_tsresol`` (pcapng 4.2): high bit clear = 10**-v seconds, set = 2**-v seconds; as units/second."""
    exp = value & 0x7F
    if exp > 30:
        raise CaptureMergeError(f"{where}: if_tsresol {value:#x} is out of range")
    return int(2 ** exp if value & 0x80 else 10 ** exp)


def _options(body: bytes, pos: int, endian: str, where: str) -> Iterator[tuple[int, bytes]]:
    """Options (pcapng 3.5) from ``pos`` to the end of ``body``, up to ``opt_endofopt``."""
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        pos += 4
        if code == 0:
            return
        if pos + length > len(body):
            raise CaptureMergeError(f"{where}: option {code} runs past its block")
        yield code, body[pos:pos + length]
        pos += length + (4 - length % 4) % 4


def _comment(body: bytes, pos: int, endian: str, where: str) -> str | None:
    for code, value in _options(body, pos, endian, where):
        if code == OPT_COMMENT:
            return value.decode("utf-8", errors="replace")
    return None


def _blocks(data: bytes, where: str) -> Iterator[tuple[int, bytes, str]]:
    """(block type, body, endianness) of every block; section headers are checked here."""
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        raise CaptureMergeError(f"{where}: not a pcapng file (no Section Header Block first)")
    pos, endian = 0, "<"
    while pos < len(data):
        if len(data) - pos < 12:
            raise CaptureMergeError(f"{where}: truncated block at offset {pos}")
        if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            if len(data) - pos < 28:
                raise CaptureMergeError(f"{where}: truncated section header at offset {pos}")
            if struct.unpack_from("<I", data, pos + 8)[0] == BYTE_ORDER_MAGIC:
                endian = "<"
            elif struct.unpack_from(">I", data, pos + 8)[0] == BYTE_ORDER_MAGIC:
                endian = ">"
            else:
                raise CaptureMergeError(f"{where}: section header with a bad byte-order magic")
        btype, total = struct.unpack_from(endian + "II", data, pos)
        if total < 12 or total % 4 or total > MAX_BLOCK or pos + total > len(data):
            raise CaptureMergeError(f"{where}: block type {btype:#x} at offset {pos} has bad length {total}")
        if struct.unpack_from(endian + "I", data, pos + total - 4)[0] != total:
            raise CaptureMergeError(f"{where}: block type {btype:#x} at offset {pos}: trailing length differs")
        yield btype, data[pos + 8:pos + total - 4], endian
        pos += total


def read_packets(data: bytes, where: str = "capture") -> list[MergedPacket]:
    """Every packet of one pcapng file, in file order, with its link type; times in microseconds."""
    interfaces: list[_Interface] = []
    out: list[MergedPacket] = []
    for btype, body, endian in _blocks(data, where):
        if btype == BT_SHB:
            major = struct.unpack_from(endian + "H", body, 4)[0]
            if major != 1:
                raise CaptureMergeError(f"{where}: pcapng version {major} not supported (1 expected)")
            interfaces = []
        elif btype == BT_IDB:
            if len(body) < 8:
                raise CaptureMergeError(f"{where}: interface description block too short")
            units = _USEC
            for code, value in _options(body, 8, endian, where):
                if code == IF_TSRESOL and value:
                    units = _tsresol(value[0], where)
            interfaces.append(_Interface(struct.unpack_from(endian + "H", body)[0], units))
        elif btype in (BT_EPB, BT_OBSOLETE_PB):
            if len(body) < 20:
                raise CaptureMergeError(f"{where}: packet block too short")
            if btype == BT_EPB:
                iface, hi, lo, caplen, _ = struct.unpack_from(endian + "IIIII", body)
            else:
                iface, _, hi, lo, caplen, _ = struct.unpack_from(endian + "HHIIII", body)
            if iface >= len(interfaces):
                raise CaptureMergeError(f"{where}: packet on undeclared interface {iface}")
            if caplen > len(body) - 20:
                raise CaptureMergeError(f"{where}: packet block: captured length exceeds the block")
            intf = interfaces[iface]
            options_at = 20 + caplen + (4 - caplen % 4) % 4
            comment = _comment(body, options_at, endian, where)
            ts = ((hi << 32) | lo) * _USEC // intf.units
            out.append(MergedPacket(intf.linktype, Packet(ts, body[20:20 + caplen], comment)))
        elif btype == BT_SPB:
            if not interfaces or len(body) < 4:
                raise CaptureMergeError(f"{where}: simple packet block without interface or too short")
            orig = struct.unpack_from(endian + "I", body)[0]
            out.append(MergedPacket(interfaces[0].linktype, Packet(0, body[4:4 + min(orig, len(body) - 4)])))
    return out


def merge_pcapng(inputs: Sequence[bytes], application: str = "wm-harness",
                 names: Sequence[str] | None = None) -> tuple[bytes, int]:
    """One pcapng file of every packet of ``inputs`` in time order (ties: input order, then file order);
    one Section Header Block and one Interface Description Block per link type. Returns the file and
    its packet count; ``names`` (one per input) label the errors."""
    labels = list(names) if names is not None else [f"input {n + 1}" for n in range(len(inputs))]
    if len(labels) != len(inputs):
        raise CaptureMergeError("one name per input expected")
    tagged = [(mp.packet.timestamp_us, n, i, mp)
              for n, data in enumerate(inputs)
              for i, mp in enumerate(read_packets(data, labels[n]))]
    tagged.sort(key=lambda t: (t[0], t[1], t[2]))
    interface_of: dict[int, int] = {}
    parts = [section_header_block(application)]
    for _, _, _, mp in tagged:
        if mp.linktype not in interface_of:
            interface_of[mp.linktype] = len(interface_of)
            parts.append(interface_description_block(mp.linktype))
    if not interface_of:  # no packet at all: still a valid file with the usual Ethernet interface
        parts.append(interface_description_block(1))
    parts.extend(enhanced_packet_block(mp.packet, interface_of[mp.linktype], DEFAULT_SNAPLEN) for *_, mp in tagged)
    return b"".join(parts), len(tagged)


def merge_pcapng_files(sources: Sequence[Path], out: Path) -> int:
    """Merge the pcapng files ``sources`` into ``out`` (through a ``.part`` file, replaced at the end);
    returns the number of packets written."""
    try:
        inputs = [p.read_bytes() for p in sources]
    except OSError as exc:
        raise CaptureMergeError(f"cannot read a capture: {exc.strerror or exc}") from None
    merged, count = merge_pcapng(inputs, names=[p.name for p in sources])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(merged)
        tmp.replace(out)
    except OSError as exc:
        raise CaptureMergeError(f"cannot write {out.name}: {exc.strerror or exc}") from None
    return count

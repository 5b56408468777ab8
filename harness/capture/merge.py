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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.capture.pcapng import (
    BT_SHB,
    DEFAULT_SNAPLEN,
    Packet,
    enhanced_packet_block,
    interface_description_block,
    section_header_block,
)
from harness.capture.reader import CaptureReadError, frames_from_bytes

_SHB_TYPE = struct.pack("<I", BT_SHB)  # a palindrome: the same bytes in either byte order (pcapng 4.1)


class CaptureMergeError(Exception):
    """An input that is not a readable pcapng file, or an output that cannot be written (with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MergedPacket:
    """One packet of an input file: its link type and the packet (time in microseconds, comment kept)."""

    linktype: int
    packet: Packet


def read_packets(data: bytes, where: str = "capture") -> list[MergedPacket]:
    """Every packet of one pcapng file, in file order, with its link type; times in microseconds.
    The blocks are parsed by :func:`harness.capture.reader.frames_from_bytes`."""
    if data[:4] != _SHB_TYPE:
        raise CaptureMergeError(f"{where}: not a pcapng file (no Section Header Block first)")
    try:
        frames = frames_from_bytes(data)
    except CaptureReadError as exc:
        raise CaptureMergeError(f"{where}: {exc.reason}") from None
    return [MergedPacket(f.linktype, Packet(f.timestamp_us, f.data, f.comment)) for f in frames]


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

"""A pcapng (and classic pcap) writer: the file formats that Wireshark and tshark read.

Block layouts follow the PCAP Next Generation Dump File Format, draft-ietf-opsawg-pcapng
(section numbers of draft -02 and later):

* 3.1  general block structure: Block Type, Block Total Length, body, Block Total Length again;
  every block is padded to a multiple of 32 bits.
* 3.5  options: code (16 bit), length (16 bit), value padded to 32 bits, ``opt_endofopt`` (0).
* 4.1  Section Header Block (type ``0x0A0D0D0A``, byte-order magic ``0x1A2B3C4D``, version 1.0,
  section length -1 = "not given"); option ``shb_userappl`` (4).
* 4.2  Interface Description Block (type 1): LinkType, SnapLen; option ``if_tsresol`` (9) = 6,
  that is microseconds (also the default when the option is absent).
* 4.3  Enhanced Packet Block (type 6): Interface ID, Timestamp (upper, lower 32 bits of the
  64-bit count of ``if_tsresol`` units since 1970-01-01 UTC), Captured and Original Packet Length,
  packet data padded to 32 bits.

Link types are the tcpdump.org LINKTYPE_ values (draft-ietf-opsawg-pcaplinktype):
``LINKTYPE_ETHERNET`` = 1 (IEEE 802.3 frame) and ``LINKTYPE_RAW`` = 101 (a bare IPv4/IPv6 packet).

The classic libpcap format (draft-ietf-opsawg-pcap 4 and 5: a 24-byte file header, 16-byte record
headers) is written too, so that readers of both formats can be tested with our own files.
All values are written little-endian; readers honour either byte order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_TSRESOL = 9

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D

DEFAULT_SNAPLEN = 262144
_USEC = 1_000_000


class CaptureWriteError(Exception):
    """A packet or option that cannot be written (with the reason)."""


@dataclass(frozen=True)
class Packet:
    """One captured frame: its bytes and when it was seen (integer microseconds since the epoch)."""

    timestamp_us: int
    data: bytes
    comment: str | None = None


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    """One option TLV, padded to 32 bits (pcapng 3.5)."""
    if len(value) > 0xFFFF:
        raise CaptureWriteError(f"option {code} is longer than 65535 bytes")
    return struct.pack("<HH", code, len(value)) + value + b"\0" * _pad4(len(value))


def _options(opts: Iterable[tuple[int, bytes]]) -> bytes:
    body = b"".join(_option(code, value) for code, value in opts)
    return body + struct.pack("<HH", OPT_ENDOFOPT, 0) if body else b""


def _block(block_type: int, body: bytes) -> bytes:
    """General block structure (pcapng 3.1): type, total length, body (padded), total length."""
    body += b"\0" * _pad4(len(body))
    total = len(body) + 12
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header_block(application: str = "wm-harness") -> bytes:
    """Section Header Block (pcapng 4.1): version 1.0, section length unknown (-1)."""
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    body += _options([(SHB_USERAPPL, application.encode("utf-8"))])
    return _block(BT_SHB, body)


def interface_description_block(linktype: int, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """Interface Description Block (pcapng 4.2) with ``if_tsresol`` = 6 (microseconds)."""
    body = struct.pack("<HHI", linktype, 0, snaplen)
    body += _options([(IF_TSRESOL, bytes([6]))])
    return _block(BT_IDB, body)


def enhanced_packet_block(packet: Packet, interface_id: int = 0, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """Enhanced Packet Block (pcapng 4.3); the timestamp is in microseconds (``if_tsresol`` 6)."""
    if packet.timestamp_us < 0:
        raise CaptureWriteError("packet timestamp before 1970")
    captured = packet.data[:snaplen]
    ts = packet.timestamp_us
    body = struct.pack("<IIIII", interface_id, (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF,
                       len(captured), len(packet.data))
    body += captured + b"\0" * _pad4(len(captured))
    if packet.comment:
        body += _options([(OPT_COMMENT, packet.comment.encode("utf-8"))])
    return _block(BT_EPB, body)


class PcapngWriter:
    """Streams one section with one interface to a binary file object."""

    def __init__(self, out: BinaryIO, linktype: int = LINKTYPE_ETHERNET, *, snaplen: int = DEFAULT_SNAPLEN,
                 application: str = "wm-harness") -> None:
        self._out = out
        self.snaplen = snaplen
        self.linktype = linktype
        self.packets = 0
        out.write(section_header_block(application))
        out.write(interface_description_block(linktype, snaplen))

    def write(self, packet: Packet) -> None:
        self._out.write(enhanced_packet_block(packet, 0, self.snaplen))
        self.packets += 1

    def write_all(self, packets: Iterable[Packet]) -> int:
        for p in packets:
            self.write(p)
        return self.packets


def pcapng_bytes(packets: Iterable[Packet], linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """A whole pcapng file in memory."""
    parts = [section_header_block(), interface_description_block(linktype)]
    parts.extend(enhanced_packet_block(p) for p in packets)
    return b"".join(parts)


def pcap_bytes(packets: Iterable[Packet], linktype: int = LINKTYPE_ETHERNET,
               snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    """A classic libpcap file (draft-ietf-opsawg-pcap 4: file header; 5: packet records), microseconds."""
    parts = [struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, linktype)]
    for p in packets:
        data = p.data[:snaplen]
        sec, usec = divmod(p.timestamp_us, _USEC)
        parts.append(struct.pack("<IIII", sec, usec, len(data), len(p.data)) + data)
    return b"".join(parts)

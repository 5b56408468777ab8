"""Sans-IO building of Ethernet / IPv4 / TCP frames for synthesised captures.

* Internet checksum: RFC 1071 (ones' complement sum of 16-bit words; computed in native byte
  order and swapped at the end, RFC 1071 section 2(B) "byte order independence").
* IPv4 header: RFC 791 3.1 (version 4, IHL 5, DF set, TTL 64, protocol 6 = TCP).
* TCP header: RFC 9293 3.1 (data offset, flags, window; checksum over the pseudo-header of
  3.1 "Checksum": source, destination, zero, protocol, TCP length); MSS option kind 2 (3.2).
* Ethernet II: IEEE 802.3 destination, source, EtherType 0x0800 (IPv4).
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
IPPROTO_TCP = 6

CLIENT_MAC = bytes.fromhex("020000000001")  # locally administered (IEEE 802 U/L bit), never a real NIC
SERVER_MAC = bytes.fromhex("020000000002")


def internet_checksum(*parts: bytes) -> int:
    """RFC 1071 checksum over the concatenation of ``parts``."""
    data = b"".join(parts)
    if len(data) % 2:
        data += b"\0"
    words = array("H")
    words.frombytes(data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    result = ~total & 0xFFFF
    if sys.byteorder == "little":
        result = ((result & 0xFF) << 8) | (result >> 8)
    return result


def ipv4_bytes(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def tcp_segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
                payload: bytes = b"", *, window: int = 65535, mss: int | None = None) -> bytes:
    """A TCP header (RFC 9293 3.1) with a correct checksum, followed by ``payload``."""
    options = struct.pack("!BBH", 2, 4, mss) if mss is not None else b""
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         offset << 4, flags, window, 0, 0) + options
    length = len(header) + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, length)
    csum = internet_checksum(pseudo, header, payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def ipv4_packet(src: bytes, dst: bytes, ident: int, payload: bytes, *, ttl: int = 64) -> bytes:
    """An IPv4 header (RFC 791 3.1, DF set, no options) with its checksum, followed by ``payload``."""
    total = 20 + len(payload)
    if total > 0xFFFF:
        raise ValueError("IPv4 packet longer than 65535 bytes")
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0x4000, ttl, IPPROTO_TCP, 0, src, dst)
    csum = internet_checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ethernet_frame(dst_mac: bytes, src_mac: bytes, payload: bytes, ethertype: int = ETHERTYPE_IPV4) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload

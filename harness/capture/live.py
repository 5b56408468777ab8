"""A live loopback capture of the mock target's traffic (scapy), redacted, written as pcapng.

The synthesised captures (:mod:`harness.capture.synth`) rebuild TCP from what the tap recorded;
this module records what really crossed the wire when the process may open a packet socket
(root or ``CAP_NET_RAW``; detected by trying to open it, never by guessing from the uid):

* scapy's ``AsyncSniffer`` on one interface (``lo`` by default) with a BPF filter on the target's
  TCP ports (the mock's HTTP port and, when it runs, its WMI endpoint mapper and ORPC ports);
* on a loopback interface every packet passes the packet socket twice (once outgoing, once
  incoming); the filter keeps only the ``inbound`` copy, as libpcap does for ``lo``;
* :meth:`LiveCapture.write` writes the frames with our own pcapng writer
  (:mod:`harness.capture.pcapng`, draft-ietf-opsawg-pcapng 4.1-4.3), link type from the socket
  (``LINKTYPE_ETHERNET`` on Linux ``lo``).

Bounds
------
A capture keeps at most ``max_packets`` frames (default 200 000) and ``max_bytes`` bytes of frame
data (default 256 MiB). Beyond either bound recording stops: later frames are counted but not
kept, and the last kept frame carries a pcapng comment (opt_comment, pcapng 3.5) saying how many
were not recorded. Memory is therefore bounded whatever the session does.

Credentials
-----------
A live capture holds the real ``Authorization`` headers and bodies, so before anything is written
every TCP payload is redacted in place with same-length ``*`` runs (so that TCP sequence and
acknowledgement numbers, RFC 9293 3.4, stay valid):

* the value of every ``Authorization``, ``Proxy-Authorization``, ``WWW-Authenticate``,
  ``Proxy-Authenticate``, ``Cookie`` and ``Set-Cookie`` header (RFC 9110 11.6.1-11.7.1) after its
  scheme name (kept: the scheme is protocol evidence, MS-WSMV 2.2.9);
* every secret known to the tap, in UTF-8 and UTF-16LE.

Redaction runs on each direction of each TCP connection reassembled by sequence number, so a
header or secret split across segments is still found, and once more on every single payload.
Changed packets get their TCP checksum (RFC 9293 3.1, pseudo-header of RFC 791 / RFC 8200 8.1)
and IPv4 header checksum (RFC 791 3.1) recomputed (RFC 1071).
"""

from __future__ import annotations

import contextlib
import re
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.capture.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, PcapngWriter
from harness.capture.tcpip import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, IPPROTO_TCP, internet_checksum

MAX_PACKETS = 200_000
MAX_BYTES = 256 * 1024 * 1024
LINKTYPE_LINUX_SLL = 113
LINKTYPE_NULL = 0
LINKTYPE_LOOP = 108
_MAX_SPAN_SLACK = 1 << 20  # a stream's sequence span may exceed its payload bytes by this much (holes)

_AUTH_HEADER = re.compile(
    rb"(?im)^(?:authorization|proxy-authorization|www-authenticate|proxy-authenticate|cookie|set-cookie)"
    rb"[ \t]*:[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+(?=[ \t]))?[ \t]*([^\r\n]*)")


class LiveCaptureError(Exception):
    """A live capture that cannot start or be written (with the reason)."""


# ------------------------------------------------------------------------------ redaction (sans-IO)
def _secret_patterns(secrets: Iterable[str]) -> list[bytes]:
    pats: set[bytes] = set()
    for s in secrets:
        if s:
            pats.add(s.encode("utf-8"))
            pats.add(s.encode("utf-16-le"))
    return sorted(pats, key=len, reverse=True)


def sensitive_ranges(data: bytes, secrets: Sequence[bytes]) -> list[tuple[int, int]]:
    """[start, end) byte ranges of ``data`` to mask: authentication header values and secrets."""
    ranges: list[tuple[int, int]] = []
    for m in _AUTH_HEADER.finditer(data):
        if m.end(1) > m.start(1):
            ranges.append((m.start(1), m.end(1)))
    for pat in secrets:
        start = data.find(pat)
        while start >= 0:
            ranges.append((start, start + len(pat)))
            start = data.find(pat, start + 1)
    return ranges


def mask(data: bytes, ranges: Iterable[tuple[int, int]]) -> bytes:
    """``data`` with every byte inside ``ranges`` replaced by ``*`` (same length)."""
    out = bytearray(data)
    for start, end in ranges:
        start, end = max(start, 0), min(end, len(out))
        if end > start:
            out[start:end] = b"*" * (end - start)
    return bytes(out)


@dataclass
class _Tcp:
    """Where the IP and TCP headers and the payload of one frame are."""

    index: int
    ip: int  # offset of the IP header
    version: int
    tcp: int  # offset of the TCP header
    payload: int  # offset of the payload
    end: int  # end of the IP packet (frame padding excluded)
    key: tuple[bytes, int, bytes, int]
    seq: int


def _ip_offset(data: bytes, linktype: int) -> int | None:
    """Offset of the IP header in a frame of ``linktype`` (draft-ietf-opsawg-pcaplinktype)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        etype, pos = struct.unpack_from("!H", data, 12)[0], 14
        while etype == ETHERTYPE_VLAN and len(data) >= pos + 4:
            etype, pos = struct.unpack_from("!H", data, pos + 2)[0], pos + 4
        return pos if etype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6) else None
    if linktype == LINKTYPE_RAW:
        return 0
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return 4
    if linktype == LINKTYPE_LINUX_SLL and len(data) >= 16:
        return 16 if struct.unpack_from("!H", data, 14)[0] in (ETHERTYPE_IPV4, ETHERTYPE_IPV6) else None
    return None


def locate_tcp(index: int, data: bytes, linktype: int) -> _Tcp | None:
    """The TCP segment of a frame (IPv4 RFC 791 3.1 without fragments, IPv6 RFC 8200 3), or None."""
    ip = _ip_offset(data, linktype)
    if ip is None or len(data) < ip + 20:
        return None
    version = data[ip] >> 4
    if version == 4:
        ihl = (data[ip] & 0x0F) * 4
        total = struct.unpack_from("!H", data, ip + 2)[0]
        frag = struct.unpack_from("!H", data, ip + 6)[0]
        if ihl < 20 or data[ip + 9] != IPPROTO_TCP or frag & 0x3FFF or total < ihl:
            return None
        src, dst = data[ip + 12:ip + 16], data[ip + 16:ip + 20]
        tcp, end = ip + ihl, ip + total
    elif version == 6:
        if len(data) < ip + 40 or data[ip + 6] != IPPROTO_TCP:
            return None
        src, dst = data[ip + 8:ip + 24], data[ip + 24:ip + 40]
        tcp, end = ip + 40, ip + 40 + struct.unpack_from("!H", data, ip + 4)[0]
    else:
        return None
    if end > len(data) or end < tcp + 20:
        return None
    offset = (data[tcp + 12] >> 4) * 4
    if offset < 20 or tcp + offset > end:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", data, tcp)
    return _Tcp(index, ip, version, tcp, tcp + offset, end, (src, sport, dst, dport), seq)


def _with_checksums(data: bytes, t: _Tcp) -> bytes:
    """The frame with its TCP checksum (and IPv4 header checksum) recomputed (RFC 1071)."""
    out = bytearray(data)
    segment = bytearray(out[t.tcp:t.end])
    segment[16:18] = b"\0\0"
    src, _, dst, _ = t.key
    if t.version == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, len(segment))
        header = bytearray(out[t.ip:t.tcp])
        header[10:12] = b"\0\0"
        out[t.ip + 10:t.ip + 12] = struct.pack("!H", internet_checksum(bytes(header)))
    else:
        pseudo = src + dst + struct.pack("!I3xB", len(segment), IPPROTO_TCP)
    out[t.tcp + 16:t.tcp + 18] = struct.pack("!H", internet_checksum(pseudo, bytes(segment)))
    return bytes(out)


def _signed(d: int) -> int:
    d &= 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


def redact_frames(frames: Sequence[bytes], linktype: int, secrets: Iterable[str]) -> list[bytes]:
    """Every frame with authentication header values and secrets masked (same length, checksums fixed)."""
    patterns = _secret_patterns(secrets)
    located = [locate_tcp(i, f, linktype) for i, f in enumerate(frames)]
    masks: dict[int, list[tuple[int, int]]] = {}
    streams: dict[tuple[bytes, int, bytes, int], list[_Tcp]] = {}
    for t in located:
        if t is not None and t.end > t.payload:
            streams.setdefault(t.key, []).append(t)
    for segs in streams.values():
        # one direction of one connection, laid out by sequence number (RFC 9293 3.4)
        base = segs[0].seq
        placed = [(_signed(s.seq - base), s) for s in segs]
        low = min(o for o, _ in placed)
        size = sum(s.end - s.payload for s in segs)
        span = max(o + s.end - s.payload for o, s in placed) - low
        if span > size + _MAX_SPAN_SLACK:  # sequence numbers all over the place: per payload only
            continue
        stream = bytearray(span)
        for o, s in sorted(placed, key=lambda p: p[0]):
            stream[o - low:o - low + s.end - s.payload] = frames[s.index][s.payload:s.end]
        ranges = sensitive_ranges(bytes(stream), patterns)
        for o, s in placed:
            start, length = o - low, s.end - s.payload
            for a, b in ranges:
                if a < start + length and b > start:
                    masks.setdefault(s.index, []).append((max(a, start) - start, min(b, start + length) - start))
    out: list[bytes] = []
    for i, frame in enumerate(frames):
        t = located[i]
        if t is None or t.end <= t.payload:
            out.append(frame)
            continue
        payload = frame[t.payload:t.end]
        ranges = masks.get(i, []) + sensitive_ranges(payload, patterns)
        clean = mask(payload, ranges)
        if clean == payload:
            out.append(frame)
        else:
            out.append(_with_checksums(frame[:t.payload] + clean + frame[t.end:], t))
    return out


# ---------------------------------------------------------------------------------- the capture
def bpf_filter(ports: Iterable[int], *, inbound_only: bool) -> str:
    """The BPF expression (pcap-filter(7)) for TCP traffic to or from any of ``ports``."""
    ports = sorted({int(p) for p in ports if p})
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise LiveCaptureError(f"no valid TCP ports to capture: {ports}")
    expr = "tcp and (" + " or ".join(f"port {p}" for p in ports) + ")"
    return f"inbound and {expr}" if inbound_only else expr


class LiveCapture:
    """A bounded live capture of the TCP traffic of ``ports`` on ``iface`` (see the module docstring)."""

    def __init__(self, ports: Iterable[int], iface: str = "lo", *, max_packets: int = MAX_PACKETS,
                 max_bytes: int = MAX_BYTES, inbound_only: bool | None = None,
                 listen: Callable[..., Any] | None = None) -> None:
        self.iface = iface
        #: opens the layer-2 listening socket (default: scapy's ``conf.L2listen`` at start time)
        self._listen = listen
        self.ports = sorted({int(p) for p in ports if p})
        self.filter = bpf_filter(self.ports, inbound_only=iface.startswith("lo") if inbound_only is None
                                 else inbound_only)
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.linktype = LINKTYPE_ETHERNET
        self.packets: list[Packet] = []
        self.bytes = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._sniffer: Any = None

    @property
    def running(self) -> bool:
        return self._sniffer is not None

    def start(self) -> str | None:
        """Start sniffing; ``None`` when it runs, else why it cannot (not privileged, no scapy, ...)."""
        try:
            from scapy.config import conf
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            return f"scapy is not available ({exc})"
        listen = self._listen if self._listen is not None else conf.L2listen
        try:
            sock = listen(iface=self.iface, filter=self.filter)
        except PermissionError as exc:
            return f"not permitted to capture on {self.iface} (needs root or CAP_NET_RAW): {exc}"
        except Exception as exc:  # scapy raises OSError, Scapy_Exception, ImportError (no libpcap)...
            return f"cannot capture on {self.iface}: {type(exc).__name__}: {exc}"
        try:
            layer: Any = getattr(sock, "LL", None)
            num = conf.l2types.layer2num.get(layer)
            self.linktype = int(num) if num is not None else LINKTYPE_ETHERNET
            sniffer = AsyncSniffer(opened_socket=sock, prn=self._on_packet, store=False)
            sniffer.start()
        except Exception as exc:
            sock.close()
            return f"cannot start the sniffer on {self.iface}: {type(exc).__name__}: {exc}"
        self._sniffer = sniffer
        return None

    def _on_packet(self, pkt: Any) -> None:
        data = bytes(pkt)
        with self._lock:
            if len(self.packets) >= self.max_packets or self.bytes + len(data) > self.max_bytes:
                self.dropped += 1  # bounded: stop recording, only count
                return
            self.packets.append(Packet(int(float(pkt.time) * 1_000_000), data))
            self.bytes += len(data)

    def stop(self) -> None:
        """Stop sniffing (idempotent); the packets seen so far stay."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is not None:
            with contextlib.suppress(Exception):  # the sniffer thread may have died already
                sniffer.stop(join=True)

    def write(self, path: Path, secrets: Iterable[str] = ()) -> int:
        """Stop, redact (module docstring) and write ``path`` as pcapng; returns the packet count."""
        self.stop()
        with self._lock:
            packets = list(self.packets)
            dropped = self.dropped
        clean = redact_frames([p.data for p in packets], self.linktype, secrets)
        out = [Packet(p.timestamp_us, data) for p, data in zip(packets, clean, strict=True)]
        if dropped and out:
            out[-1] = Packet(out[-1].timestamp_us, out[-1].data,
                             f"live capture bound reached ({self.max_packets} packets / {self.max_bytes} bytes): "
                             f"{dropped} later packets not recorded")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as f:
                return PcapngWriter(f, self.linktype, application="wm-harness live capture").write_all(out)
        except OSError as exc:
            raise LiveCaptureError(f"cannot write {path}: {exc.strerror or exc}") from exc

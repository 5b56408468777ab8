"""Turn tapped WS-Man exchanges into a synthesised TCP/HTTP conversation for pcapng files.

The tap records what the client sent and received (headers and bodies, credentials already
redacted); this module lays those messages out as a plausible TCP conversation so that Wireshark,
tshark and our own reader (:mod:`harness.capture.reader`) can show them:

* one TCP connection per (test, peer): three-way handshake (RFC 9293 3.5, SYN carrying the MSS
  option), the HTTP/1.1 requests and responses of the test in order on that connection
  (persistent connection, RFC 9112 9.3), FIN teardown (RFC 9293 3.6);
* each message segmented at the MSS (1460 = Ethernet MTU 1500 - 20 IPv4 - 20 TCP), with correct
  sequence and acknowledgement numbers, the receiver acknowledging at least every 8 segments so
  that no more than one 65535-byte window is ever in flight;
* HTTP/1.1 framing per RFC 9112: request line ``POST <path> HTTP/1.1``, ``Host`` (RFC 9112 3.2),
  the recorded headers, ``Content-Length`` (RFC 9112 6.2) recomputed from the recorded body; the
  recorded ``Transfer-Encoding`` / ``Content-Encoding`` / ``Content-Length`` are dropped because the
  tap stores the decoded body.

Addresses: the server is the peer URL's host and port (a TEST-NET-2 address, RFC 5737, stands in
for a host name or IPv6 literal); the client is 127.0.0.1 towards a loopback server, else the
tap's local address or TEST-NET-1; its port is a stable ephemeral port (RFC 6335 6: 49152-65535)
derived from the test id.

Credentials: the tap redacts before recording. As defence in depth every sensitive header is
redacted again here (an ``Authorization`` value that is not already ``<scheme> [REDACTED]`` is
reduced to that form), password elements in bodies are blanked, and any extra secret passed in is
replaced; nothing is ever added back.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from harness.capture.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, PcapngWriter
from harness.capture.tcpip import (
    CLIENT_MAC,
    SERVER_MAC,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_SYN,
    ethernet_frame,
    ipv4_bytes,
    ipv4_packet,
    tcp_segment,
)
from harness.transport.tap import REDACTED, Exchange, redact_body, redact_headers

DEFAULT_MSS = 1460
ACK_EVERY = 8
EPHEMERAL_LOW = 49152
EPHEMERAL_COUNT = 65535 - EPHEMERAL_LOW + 1

#: Headers the synthesiser writes itself (framing and Host) or must not copy (the body is decoded).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "content-encoding"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 5.1 field-name = token
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "www-authenticate", "cookie", "set-cookie"})
_REDACTED_VALUE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*\s?" + re.escape(REDACTED) + r"$")


class SynthError(Exception):
    """Exchanges that cannot be laid out as TCP (with the reason)."""


def _clean_value(value: str) -> str:
    return re.sub(r"[\r\n\0]+", " ", value).strip()


def safe_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    """Recorded headers fit to write: redacted again, framing dropped, no CR/LF injection."""
    out: list[tuple[str, str]] = []
    for name, value in redact_headers(headers).items():
        lname = name.lower()
        if lname in _FRAMING or not _TOKEN.match(name):
            continue
        value = _clean_value(value)
        if lname in _AUTH_HEADERS and not _REDACTED_VALUE.match(value):
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} {REDACTED}".strip() if _TOKEN.match(scheme) else REDACTED
        out.append((name, value))
    return out


def _host_port(url: str) -> tuple[str, int, str, str]:
    """(host, port, Host header value, request target) of a peer URL."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise SynthError(f"bad port in peer URL {url!r}") from exc
    default_port = 443 if parts.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return host, port, host_header, target


def http_request_bytes(ex: Exchange, secrets: Iterable[str] = ()) -> bytes:
    """The HTTP/1.1 request (RFC 9112 3) for a recorded request exchange."""
    _, _, host_header, target = _host_port(ex.peer)
    body = redact_body(ex.body, secrets)
    lines = [f"POST {target} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{n}: {v}" for n, v in safe_headers(ex.headers)]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace") + body


def http_response_bytes(ex: Exchange, secrets: Iterable[str] = ()) -> bytes:
    """The HTTP/1.1 response (RFC 9112 4) for a recorded response exchange."""
    if ex.status is None or not 100 <= ex.status <= 999:
        raise SynthError(f"response exchange without a valid HTTP status ({ex.status!r})")
    try:
        phrase = HTTPStatus(ex.status).phrase
    except ValueError:
        phrase = "Unknown"
    body = redact_body(ex.body, secrets)
    lines = [f"HTTP/1.1 {ex.status} {phrase}"]
    lines += [f"{n}: {v}" for n, v in safe_headers(ex.headers)]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace") + body


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", errors="replace"))


def client_port(test_id: str | None, peer: str = "") -> int:
    """A stable ephemeral port (RFC 6335 6) for one test's connection to one peer."""
    return EPHEMERAL_LOW + _stable(f"{test_id}|{peer}") % EPHEMERAL_COUNT


def _server_ip(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr)
    return f"198.51.100.{1 + _stable(host) % 254}"  # RFC 5737 TEST-NET-2 stands in for a name


def _client_ip(local: str, server_ip: str) -> str:
    if ipaddress.IPv4Address(server_ip).is_loopback:
        return "127.0.0.1"
    host = local.rsplit(":", 1)[0].strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv4Address) and not addr.is_unspecified and not addr.is_loopback:
        return str(addr)
    return "192.0.2.1"  # RFC 5737 TEST-NET-1


@dataclass
class SynthStream:
    """One synthesised TCP connection while it is being laid out (used for the HTTP conversations
    here and for the DCE/RPC ones in :mod:`harness.capture.dcerpc_synth`).

    Sequence numbers advance by the payload and by one for SYN and FIN (RFC 9293 3.4); the receiver
    acknowledges at least every :data:`ACK_EVERY` segments and after the last one of a message.
    """

    linktype: int
    mss: int
    client: bytes
    server: bytes
    cport: int
    sport: int
    c_seq: int
    s_seq: int
    clock: int = 0
    ip_id: list[int] = field(default_factory=lambda: [1, 1])
    packets: list[Packet] = field(default_factory=list)

    def emit(self, from_client: bool, flags: int, payload: bytes = b"", *, at: int = 0,
             mss_option: bool = False, comment: str | None = None) -> None:
        self.clock = max(at, self.clock + 1)
        if from_client:
            src, dst, sp, dp, seq, ack = self.client, self.server, self.cport, self.sport, self.c_seq, self.s_seq
        else:
            src, dst, sp, dp, seq, ack = self.server, self.client, self.sport, self.cport, self.s_seq, self.c_seq
        if not flags & TCP_ACK:
            ack = 0
        seg = tcp_segment(src, dst, sp, dp, seq, ack, flags, payload, mss=self.mss if mss_option else None)
        side = 0 if from_client else 1
        ip = ipv4_packet(src, dst, self.ip_id[side], seg, ttl=64 if from_client else 128)
        self.ip_id[side] = (self.ip_id[side] + 1) & 0xFFFF
        if self.linktype == LINKTYPE_ETHERNET:
            frame = ethernet_frame(SERVER_MAC if from_client else CLIENT_MAC,
                                   CLIENT_MAC if from_client else SERVER_MAC, ip)
        else:
            frame = ip
        self.packets.append(Packet(self.clock, frame, comment))
        advance = len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        if from_client:
            self.c_seq = (self.c_seq + advance) & 0xFFFFFFFF
        else:
            self.s_seq = (self.s_seq + advance) & 0xFFFFFFFF

    def handshake(self, at: int, comment: str) -> None:
        """SYN (with the MSS option), SYN+ACK, ACK (RFC 9293 3.5)."""
        self.emit(True, TCP_SYN, at=at, mss_option=True, comment=comment)
        self.emit(False, TCP_SYN | TCP_ACK, mss_option=True)
        self.emit(True, TCP_ACK)

    def message(self, from_client: bool, data: bytes, at: int) -> None:
        """``data`` segmented at the MSS, PSH on the last segment, acknowledged by the peer."""
        first = True
        for i, off in enumerate(range(0, len(data), self.mss), 1):
            chunk = data[off:off + self.mss]
            last = off + self.mss >= len(data)
            self.emit(from_client, TCP_ACK | (TCP_PSH if last else 0), chunk, at=at if first else 0)
            first = False
            if last or i % ACK_EVERY == 0:
                self.emit(not from_client, TCP_ACK)

    def teardown(self) -> None:
        """FIN+ACK from each side, then the last ACK (RFC 9293 3.6)."""
        self.emit(True, TCP_FIN | TCP_ACK)
        self.emit(False, TCP_FIN | TCP_ACK)
        self.emit(True, TCP_ACK)


def timestamp_us(ts: float) -> int:
    """A tap timestamp (seconds) as the non-negative microseconds of a pcapng packet."""
    return max(0, round(ts * 1_000_000))


def check_layout(mss: int, linktype: int) -> None:
    """SynthError unless ``mss`` fits an IPv4/TCP segment and ``linktype`` is Ethernet or raw IPv4."""
    if not 1 <= mss <= 65495:
        raise SynthError(f"MSS {mss} outside 1..65495")
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        raise SynthError(f"link type {linktype} not supported (1 = Ethernet, 101 = raw IPv4)")


def merge_in_time_order(sequences: Iterable[Sequence[Packet]]) -> list[Packet]:
    """Packets of several connections merged by timestamp; ties keep the order of the sequences and,
    within one, the order of its packets (each connection keeps its own order)."""
    merged = [(p.timestamp_us, n, i, p) for n, packets in enumerate(sequences) for i, p in enumerate(packets)]
    merged.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in merged]


def write_packets(packets: Sequence[Packet], path: Path, linktype: int) -> int:
    """Write ``packets`` as pcapng to ``path`` (through a ``.part`` file, replaced at the end); the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as out:
        count = PcapngWriter(out, linktype).write_all(packets)
    tmp.replace(path)
    return count


#: A capture writer: (exchanges, path, secrets=...) -> packet count.
CaptureWriter = Callable[..., int]


def write_session_captures_with(write: CaptureWriter, results: Iterable[tuple[str, Sequence[Exchange]]],
                                all_exchanges: Sequence[Exchange], out_dir: Path,
                                secrets: Iterable[str] = (), *, all_name: str = "all.pcapng") -> dict[str, str]:
    """One capture per test plus ``all_name`` (the whole session; ``all-<worker>.pcapng`` under
    pytest-xdist) under ``out_dir``, each written by ``write``; returns nodeid -> file name."""
    secret_list = [s for s in secrets if s]
    names: dict[str, str] = {}
    for nodeid, wire in results:
        name = capture_name(nodeid)
        write(list(wire), out_dir / name, secrets=secret_list)
        names[nodeid] = name
    write(list(all_exchanges), out_dir / all_name, secrets=secret_list)
    return names


_MESSAGE_ID = re.compile(rb"<(?:[\w.-]+:)?MessageID\b[^>]*>\s*([^<\s]+)")
_RELATES_TO = re.compile(rb"<(?:[\w.-]+:)?RelatesTo\b[^>]*>\s*([^<\s]+)")


def _header_id(pattern: re.Pattern[bytes], body: bytes) -> bytes | None:
    match = pattern.search(body, 0, 8192)
    return match.group(1) if match else None


def _connections(group: Sequence[Exchange]) -> list[list[Exchange]]:
    """Split one (test, peer) conversation into HTTP/1.1 connections: a request sent while another
    is still unanswered (a Pull waiting for events while the test creates one) cannot share its
    connection (RFC 9112 9.3: responses come in request order), so it opens another. Responses
    go to the connection whose request they answer (RelatesTo = MessageID, else the oldest)."""
    conns: list[list[Exchange]] = []
    waiting: dict[int, bytes | None] = {}  # connection index -> MessageID of its unanswered request
    for ex in group:
        if ex.direction == "request":
            idle = next((i for i in range(len(conns)) if i not in waiting), None)
            if idle is None:
                conns.append([])
                idle = len(conns) - 1
            conns[idle].append(ex)
            waiting[idle] = _header_id(_MESSAGE_ID, ex.body)
            continue
        relates = _header_id(_RELATES_TO, ex.body)
        target = next((i for i, mid in waiting.items() if relates is not None and mid == relates), None)
        if target is None:
            target = min(waiting) if waiting else None
        if target is None:  # a response without a request: keep it on the first connection
            if not conns:
                conns.append([])
            target = 0
        conns[target].append(ex)
        waiting.pop(target, None)
    return [c for c in conns if c]


def group_conversations(exchanges: Sequence[Exchange]) -> list[list[Exchange]]:
    """Exchanges grouped by (test id, peer) and split into HTTP connections, in time order."""
    groups: dict[tuple[str | None, str], list[Exchange]] = {}
    for ex in exchanges:
        groups.setdefault((ex.test_id, ex.peer), []).append(ex)
    conns = [conn for group in groups.values() for conn in _connections(group)]
    return sorted(conns, key=lambda g: g[0].timestamp)


def synthesise(exchanges: Sequence[Exchange], *, mss: int = DEFAULT_MSS, linktype: int = LINKTYPE_ETHERNET,
               secrets: Iterable[str] = ()) -> list[Packet]:
    """Packets of one TCP connection per (test, peer), merged in time order.

    Response exchanges without an HTTP status cannot be framed and raise :class:`SynthError`;
    a request without a recorded response (the transport failed) is written alone.
    """
    check_layout(mss, linktype)
    secret_list = [s for s in secrets if s]
    used: set[tuple[bytes, int, bytes, int]] = set()
    streams: list[SynthStream] = []
    for group in group_conversations(exchanges):
        first = group[0]
        host, sport, _, _ = _host_port(first.peer)
        server_ip = _server_ip(host)
        client = ipv4_bytes(_client_ip(first.local, server_ip))
        server = ipv4_bytes(server_ip)
        cport = client_port(first.test_id, first.peer)
        for _ in range(EPHEMERAL_COUNT):
            if (client, cport, server, sport) not in used:
                break
            cport = EPHEMERAL_LOW + (cport - EPHEMERAL_LOW + 1) % EPHEMERAL_COUNT
        used.add((client, cport, server, sport))
        seed = _stable(f"isn|{first.test_id}|{first.peer}")
        stream = SynthStream(linktype, mss, client, server, cport, sport,
                             c_seq=seed, s_seq=(seed * 2654435761) & 0xFFFFFFFF)
        start = timestamp_us(first.timestamp)
        note = f"wm-harness synthesised from tap records; test {first.test_id}"
        if urlsplit(first.peer).scheme == "https":
            note += "; TLS not shown: the HTTP messages as the client saw them"
        stream.handshake(max(0, start - 300), note)
        for ex in group:
            if ex.direction == "request":
                stream.message(True, http_request_bytes(ex, secret_list), timestamp_us(ex.timestamp))
            else:
                stream.message(False, http_response_bytes(ex, secret_list), timestamp_us(ex.timestamp))
        stream.teardown()
        streams.append(stream)
    return merge_in_time_order(s.packets for s in streams)


def write_capture(exchanges: Sequence[Exchange], path: Path, *, mss: int = DEFAULT_MSS,
                  linktype: int = LINKTYPE_ETHERNET, secrets: Iterable[str] = ()) -> int:
    """Synthesise ``exchanges`` and write them as pcapng to ``path``; returns the packet count."""
    return write_packets(synthesise(exchanges, mss=mss, linktype=linktype, secrets=secrets), path, linktype)


def capture_name(nodeid: str) -> str:
    """A file name for a test's capture: the node id made filesystem-safe, plus a hash that keeps it unique."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._-")[:120]
    return f"{safe or 'case'}-{_stable(nodeid):08x}.pcapng"


def write_session_captures(results: Iterable[tuple[str, Sequence[Exchange]]], all_exchanges: Sequence[Exchange],
                           out_dir: Path, secrets: Iterable[str] = ()) -> dict[str, str]:
    """One capture per test plus ``all.pcapng`` under ``out_dir``; returns nodeid -> file name."""
    return write_session_captures_with(write_capture, results, all_exchanges, out_dir, secrets)

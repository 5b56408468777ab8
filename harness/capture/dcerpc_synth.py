"""Lay tapped DCE/RPC PDUs out as TCP conversations, next to the synthesised HTTP ones.

:class:`harness.transport.dcerpc_client.RpcClient` records every PDU as it crossed the socket
(protocol ``dcerpc``; the peer as an ncacn_ip_tcp string binding ``ncacn_ip_tcp:HOST[PORT]``,
MS-RPCE 2.1.1.2; the client's address and port as ``local``). Unlike HTTP these bytes are the
wire bytes themselves (protected as sent), so they are written unchanged:

* one TCP connection per (test, peer, local address): the real endpoint mapper / object exporter
  port as the server port (135 or the port the activation reply named, MS-DCOM 2.2.19), the real
  client port, handshake with the MSS option (RFC 9293 3.5), data segmented at the MSS with
  correct sequence and acknowledgement numbers, FIN teardown (RFC 9293 3.6);
* a host that is not an IPv4 literal is shown as a TEST-NET-2 address (RFC 5737);
* as defence in depth a known secret found in a PDU is masked with ``*`` of the same length (never
  expected: NTLM sends no password; the length is kept so that ``frag_length`` still frames the PDU).

:func:`synthesise_all` merges these packets with :func:`harness.capture.synth.synthesise` of the
other exchanges in time order; :func:`write_session_captures_all` is the drop-in for
:func:`harness.capture.synth.write_session_captures` that the pytest plugin uses.
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.capture.pcapng import LINKTYPE_ETHERNET, LINKTYPE_RAW, Packet, PcapngWriter
from harness.capture.synth import DEFAULT_MSS, SynthError, capture_name, synthesise
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
from harness.transport.tap import Exchange

PROTOCOL = "dcerpc"
ACK_EVERY = 8
_BINDING = re.compile(r"^ncacn_ip_tcp:(?P<host>[^\[\]]+)\[(?P<port>\d{1,5})\]$")


def parse_binding(peer: str) -> tuple[str, int]:
    """(host, port) of ``ncacn_ip_tcp:HOST[PORT]``; SynthError otherwise."""
    m = _BINDING.match(peer)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise SynthError(f"DCE/RPC exchange with an unusable peer {peer!r}")
    return m["host"], int(m["port"])


def _ipv4(host: str, salt: str) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv4Address) and not addr.is_unspecified:
        return str(addr)
    return f"198.51.100.{1 + zlib.crc32((salt + host).encode()) % 254}"   # RFC 5737 TEST-NET-2


def _local(local: str) -> tuple[str, int]:
    host, _, port = local.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = 0
    return host.strip("[]") or "127.0.0.1", number if 0 < number < 65536 else 49152


def mask_secrets(data: bytes, secrets: Iterable[str]) -> bytes:
    """Replace each secret (UTF-8 and UTF-16LE) by ``*`` of the same length."""
    for secret in secrets:
        if secret:
            for encoding in ("utf-8", "utf-16-le"):
                raw = secret.encode(encoding)
                data = data.replace(raw, b"*" * len(raw))
    return data


@dataclass
class _Conn:
    linktype: int
    mss: int
    client: bytes
    server: bytes
    cport: int
    sport: int
    c_seq: int
    s_seq: int
    clock: int = 0
    ident: list[int] = field(default_factory=lambda: [1, 1])
    packets: list[Packet] = field(default_factory=list)

    def emit(self, from_client: bool, flags: int, payload: bytes = b"", *, at: int = 0, syn: bool = False,
             comment: str | None = None) -> None:
        self.clock = max(at, self.clock + 1)
        if from_client:
            src, dst, sp, dp, seq, ack = self.client, self.server, self.cport, self.sport, self.c_seq, self.s_seq
        else:
            src, dst, sp, dp, seq, ack = self.server, self.client, self.sport, self.cport, self.s_seq, self.c_seq
        seg = tcp_segment(src, dst, sp, dp, seq, ack if flags & TCP_ACK else 0, flags, payload,
                          mss=self.mss if syn else None)
        side = 0 if from_client else 1
        ip = ipv4_packet(src, dst, self.ident[side], seg, ttl=64 if from_client else 128)
        self.ident[side] = (self.ident[side] + 1) & 0xFFFF
        frame = ip if self.linktype == LINKTYPE_RAW else ethernet_frame(
            SERVER_MAC if from_client else CLIENT_MAC, CLIENT_MAC if from_client else SERVER_MAC, ip)
        self.packets.append(Packet(self.clock, frame, comment))
        advance = len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        if from_client:
            self.c_seq = (self.c_seq + advance) & 0xFFFFFFFF
        else:
            self.s_seq = (self.s_seq + advance) & 0xFFFFFFFF

    def message(self, from_client: bool, data: bytes, at: int) -> None:
        for i, off in enumerate(range(0, len(data), self.mss), 1):
            last = off + self.mss >= len(data)
            self.emit(from_client, TCP_ACK | (TCP_PSH if last else 0), data[off:off + self.mss], at=at if i == 1 else 0)
            if last or i % ACK_EVERY == 0:
                self.emit(not from_client, TCP_ACK)


def _us(ts: float) -> int:
    return max(0, round(ts * 1_000_000))


def synthesise_raw(exchanges: Sequence[Exchange], *, mss: int = DEFAULT_MSS, linktype: int = LINKTYPE_ETHERNET,
                   secrets: Iterable[str] = ()) -> list[Packet]:
    """Packets of one TCP connection per (test, peer, local) of the ``dcerpc`` exchanges, time-ordered."""
    if not 1 <= mss <= 65495:
        raise SynthError(f"MSS {mss} outside 1..65495")
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        raise SynthError(f"link type {linktype} not supported (1 = Ethernet, 101 = raw IPv4)")
    secret_list = [s for s in secrets if s]
    groups: dict[tuple[str | None, str, str], list[Exchange]] = {}
    for ex in exchanges:
        if ex.protocol == PROTOCOL:
            groups.setdefault((ex.test_id, ex.peer, ex.local), []).append(ex)
    used: set[tuple[bytes, int, bytes, int]] = set()
    conns: list[_Conn] = []
    for (test_id, peer, local), group in sorted(groups.items(), key=lambda kv: kv[1][0].timestamp):
        host, sport = parse_binding(peer)
        chost, cport = _local(local)
        server = ipv4_bytes(_ipv4(host, "server"))
        client = ipv4_bytes(_ipv4(chost, "client"))
        while (client, cport, server, sport) in used:   # the same real port reused by another test
            cport = 49152 + (cport - 49152 + 1) % 16384
        used.add((client, cport, server, sport))
        seed = zlib.crc32(f"isn|{test_id}|{peer}|{local}".encode())
        conn = _Conn(linktype, mss, client, server, cport, sport, seed, (seed * 2654435761) & 0xFFFFFFFF)
        conn.emit(True, TCP_SYN, at=max(0, _us(group[0].timestamp) - 300), syn=True,
                  comment=f"wm-harness: DCE/RPC PDUs recorded at the socket; test {test_id}")
        conn.emit(False, TCP_SYN | TCP_ACK, syn=True)
        conn.emit(True, TCP_ACK)
        for ex in group:
            conn.message(ex.direction == "request", mask_secrets(ex.body, secret_list), _us(ex.timestamp))
        conn.emit(True, TCP_FIN | TCP_ACK)
        conn.emit(False, TCP_FIN | TCP_ACK)
        conn.emit(True, TCP_ACK)
        conns.append(conn)
    merged = [(p.timestamp_us, n, i, p) for n, c in enumerate(conns) for i, p in enumerate(c.packets)]
    merged.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in merged]


def synthesise_all(exchanges: Sequence[Exchange], *, mss: int = DEFAULT_MSS, linktype: int = LINKTYPE_ETHERNET,
                   secrets: Iterable[str] = ()) -> list[Packet]:
    """HTTP exchanges through :func:`harness.capture.synth.synthesise`, DCE/RPC ones through
    :func:`synthesise_raw`, merged in time order (each connection keeps its own order)."""
    secret_list = [s for s in secrets if s]
    http = synthesise([e for e in exchanges if e.protocol != PROTOCOL], mss=mss, linktype=linktype,
                      secrets=secret_list)
    raw = synthesise_raw(exchanges, mss=mss, linktype=linktype, secrets=secret_list)
    merged = [(p.timestamp_us, 0, i, p) for i, p in enumerate(http)] + [
        (p.timestamp_us, 1, i, p) for i, p in enumerate(raw)]
    merged.sort(key=lambda t: (t[0], t[1], t[2]))
    return [t[3] for t in merged]


def write_capture_all(exchanges: Sequence[Exchange], path: Path, *, mss: int = DEFAULT_MSS,
                      linktype: int = LINKTYPE_ETHERNET, secrets: Iterable[str] = ()) -> int:
    """Synthesise every exchange (HTTP and DCE/RPC) and write pcapng to ``path``; the packet count."""
    packets = synthesise_all(exchanges, mss=mss, linktype=linktype, secrets=secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as out:
        count = PcapngWriter(out, linktype).write_all(packets)
    tmp.replace(path)
    return count


def write_session_captures_all(results: Iterable[tuple[str, Sequence[Exchange]]],
                               all_exchanges: Sequence[Exchange], out_dir: Path,
                               secrets: Iterable[str] = ()) -> dict[str, str]:
    """One capture per test plus ``all.pcapng`` (HTTP and DCE/RPC); returns nodeid -> file name."""
    secret_list = [s for s in secrets if s]
    names: dict[str, str] = {}
    for nodeid, wire in results:
        name = capture_name(nodeid)
        write_capture_all(list(wire), out_dir / name, secrets=secret_list)
        names[nodeid] = name
    write_capture_all(list(all_exchanges), out_dir / "all.pcapng", secrets=secret_list)
    return names

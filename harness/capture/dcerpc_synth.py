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
from pathlib import Path

from harness.capture.pcapng import LINKTYPE_ETHERNET, Packet
from harness.capture.synth import (
    DEFAULT_MSS,
    SynthError,
    SynthStream,
    check_layout,
    merge_in_time_order,
    synthesise,
    timestamp_us,
    write_packets,
    write_session_captures_with,
)
from harness.capture.tcpip import ipv4_bytes
from harness.transport.tap import Exchange

PROTOCOL = "dcerpc"
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


def synthesise_raw(exchanges: Sequence[Exchange], *, mss: int = DEFAULT_MSS, linktype: int = LINKTYPE_ETHERNET,
                   secrets: Iterable[str] = ()) -> list[Packet]:
    """Packets of one TCP connection per (test, peer, local) of the ``dcerpc`` exchanges, time-ordered."""
    check_layout(mss, linktype)
    secret_list = [s for s in secrets if s]
    groups: dict[tuple[str | None, str, str], list[Exchange]] = {}
    for ex in exchanges:
        if ex.protocol == PROTOCOL:
            groups.setdefault((ex.test_id, ex.peer, ex.local), []).append(ex)
    used: set[tuple[bytes, int, bytes, int]] = set()
    conns: list[SynthStream] = []
    for (test_id, peer, local), group in sorted(groups.items(), key=lambda kv: kv[1][0].timestamp):
        host, sport = parse_binding(peer)
        chost, cport = _local(local)
        server = ipv4_bytes(_ipv4(host, "server"))
        client = ipv4_bytes(_ipv4(chost, "client"))
        while (client, cport, server, sport) in used:   # the same real port reused by another test
            cport = 49152 + (cport - 49152 + 1) % 16384
        used.add((client, cport, server, sport))
        seed = zlib.crc32(f"isn|{test_id}|{peer}|{local}".encode())
        conn = SynthStream(linktype, mss, client, server, cport, sport, seed, (seed * 2654435761) & 0xFFFFFFFF)
        conn.handshake(max(0, timestamp_us(group[0].timestamp) - 300),
                       f"wm-harness: DCE/RPC PDUs recorded at the socket; test {test_id}")
        for ex in group:
            conn.message(ex.direction == "request", mask_secrets(ex.body, secret_list), timestamp_us(ex.timestamp))
        conn.teardown()
        conns.append(conn)
    return merge_in_time_order(c.packets for c in conns)


def synthesise_all(exchanges: Sequence[Exchange], *, mss: int = DEFAULT_MSS, linktype: int = LINKTYPE_ETHERNET,
                   secrets: Iterable[str] = ()) -> list[Packet]:
    """HTTP exchanges through :func:`harness.capture.synth.synthesise`, DCE/RPC ones through
    :func:`synthesise_raw`, merged in time order (each connection keeps its own order)."""
    secret_list = [s for s in secrets if s]
    http = synthesise([e for e in exchanges if e.protocol != PROTOCOL], mss=mss, linktype=linktype,
                      secrets=secret_list)
    raw = synthesise_raw(exchanges, mss=mss, linktype=linktype, secrets=secret_list)
    return merge_in_time_order([http, raw])


def write_capture_all(exchanges: Sequence[Exchange], path: Path, *, mss: int = DEFAULT_MSS,
                      linktype: int = LINKTYPE_ETHERNET, secrets: Iterable[str] = ()) -> int:
    """Synthesise every exchange (HTTP and DCE/RPC) and write pcapng to ``path``; the packet count."""
    return write_packets(synthesise_all(exchanges, mss=mss, linktype=linktype, secrets=secrets), path, linktype)


def write_session_captures_all(results: Iterable[tuple[str, Sequence[Exchange]]],
                               all_exchanges: Sequence[Exchange], out_dir: Path,
                               secrets: Iterable[str] = (), *, all_name: str = "all.pcapng") -> dict[str, str]:
    """One capture per test plus ``all_name`` (HTTP and DCE/RPC); returns nodeid -> file name."""
    return write_session_captures_with(write_capture_all, results, all_exchanges, out_dir, secrets,
                                       all_name=all_name)

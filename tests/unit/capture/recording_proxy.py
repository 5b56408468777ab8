"""A recording TCP proxy in front of the mock, for capture tests that need the real wire.

The tap's synthesised captures carry redacted Authorization headers; decryption tests need the
authentication handshake as it crossed the socket, so they put this proxy between our client (or a
third-party one) and the mock and turn what it saw into a pcapng (RFC 9293 sequence numbers).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from harness.capture.pcapng import LINKTYPE_ETHERNET, Packet, pcapng_bytes
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
from harness.cim.mof import default_store
from harness.targets.mock.config import MockConfig
from harness.targets.mock.http_server import build_app
from harness.transport.http_listener import start_listener


@dataclass
class Recording:
    """Bytes seen by the proxy: (connection, from client, seconds, data) in order."""

    chunks: list[tuple[int, bool, float, bytes]] = field(default_factory=list)

    def pcapng(self, mss: int = 1460, port: int = 5985) -> bytes:
        """The recording as Ethernet / IPv4 / TCP frames, the server on ``port`` (5985 HTTP, 5986
        HTTPS: MS-WSMV 2.1)."""
        packets: list[Packet] = []
        for conn in sorted({c for c, _, _, _ in self.chunks}):
            tcp = _Connection(conn, packets, port)
            first = last = next(t for c, _, t, _ in self.chunks if c == conn)
            tcp.emit(True, TCP_SYN, b"", first)
            tcp.emit(False, TCP_SYN | TCP_ACK, b"", first)
            tcp.emit(True, TCP_ACK, b"", first)
            for c, from_client, at, data in self.chunks:
                if c == conn:
                    for off in range(0, len(data), mss):
                        tcp.emit(from_client, TCP_ACK | TCP_PSH, data[off:off + mss], at)
                    last = at
            tcp.emit(True, TCP_FIN | TCP_ACK, b"", last)
            tcp.emit(False, TCP_FIN | TCP_ACK, b"", last)
            tcp.emit(True, TCP_ACK, b"", last)
        packets.sort(key=lambda p: p.timestamp_us)
        return pcapng_bytes(packets, LINKTYPE_ETHERNET)


class _Connection:
    """Ethernet / IPv4 / TCP frames of one recorded connection (RFC 9293 sequence numbers)."""

    def __init__(self, index: int, packets: list[Packet], server_port: int = 5985) -> None:
        self.port = 50000 + index
        self.server_port = server_port
        self.seq = {True: 1000 * (index + 1), False: 90000 * (index + 1)}
        self.ident = 1
        self.packets = packets

    def emit(self, from_client: bool, flags: int, payload: bytes, at: float) -> None:
        client, server = ipv4_bytes("10.0.0.1"), ipv4_bytes("10.0.0.2")
        src, dst = (client, server) if from_client else (server, client)
        sp, dp = (self.port, self.server_port) if from_client else (self.server_port, self.port)
        ack = self.seq[not from_client] if flags & TCP_ACK else 0
        seg = tcp_segment(src, dst, sp, dp, self.seq[from_client], ack, flags, payload)
        frame = ethernet_frame(SERVER_MAC if from_client else CLIENT_MAC, CLIENT_MAC if from_client else SERVER_MAC,
                               ipv4_packet(src, dst, self.ident, seg))
        self.ident += 1
        self.packets.append(Packet(int(at * 1_000_000) + len(self.packets), frame))
        self.seq[from_client] += len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Recording, conn: int,
                from_client: bool) -> None:
    try:
        while data := await reader.read(65536):
            rec.chunks.append((conn, from_client, time.time(), data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def recording_proxy(config: MockConfig, *,
                          ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, Recording]]:
    """The mock (with ``config``; over TLS with ``ssl_context``) behind a recording proxy that relays
    the raw bytes; yields the proxy's WS-Man URL and the recording."""
    runner, mock_port = await start_listener(build_app(default_store(), config), "127.0.0.1", 0,
                                             shutdown_timeout=1.0, ssl_context=ssl_context)
    rec = Recording()
    counter = [0]
    tasks: set[asyncio.Task[None]] = set()

    async def accept(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        conn = counter[0]
        counter[0] += 1
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", mock_port)
        for t in (asyncio.create_task(pump(c_reader, s_writer, rec, conn, True)),
                  asyncio.create_task(pump(s_reader, c_writer, rec, conn, False))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    proxy = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl_context is not None else 'http'}://127.0.0.1:{port}/wsman", rec
    finally:
        proxy.close()
        for t in list(tasks):
            t.cancel()
        await runner.cleanup()

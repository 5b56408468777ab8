"""Slow clients and connection floods (MS-WMOD 2.10.1; mock robustness).

A client that trickles its request (headers or body) slower than the listener's deadlines is cut
off -- the http.sys HeaderWait / IdleConnection and EntityBody timers of Windows
(``MockConfig.header_timeout`` / ``body_timeout``; aiohttp ``keepalive_timeout`` and a body read
deadline) -- and many idle connections do not stop others being served. These run on the built-in
mock only: the deadline checks on a private listener with short limits, the flood on the session mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.targets.mock.config import MockConfig
from harness.targets.mock.http_server import build_app
from harness.transport.tap import Tap

SERVICE = wmi_uri("Win32_Service")
LIMIT = 0.6
FLOOD = 200


@dataclasses.dataclass
class Listener:
    host: str
    port: int
    target: Target


@pytest.fixture
async def short_deadlines(wm_target: Target, wm_mock_config: MockConfig) -> AsyncIterator[Listener]:
    """A private mock listener whose header and body deadlines are LIMIT seconds (mock only)."""
    config = dataclasses.replace(wm_mock_config, port=0, header_timeout=LIMIT, body_timeout=LIMIT,
                                 wmi_enabled=False, read_only_users={}, failing_providers=set())
    runner = web.AppRunner(build_app(default_store(), config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Listener("127.0.0.1", port, dataclasses.replace(wm_target, url=f"http://127.0.0.1:{port}/wsman"))
    finally:
        await runner.cleanup()


async def _closed_by_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes,
                            budget: float) -> tuple[bool, float, bytes]:
    """Trickle ``payload`` one byte every LIMIT/4 s; (server closed the connection, seconds, what it sent)."""
    start = time.monotonic()
    got = b""
    for byte in payload:
        if time.monotonic() - start > budget:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (ConnectionError, OSError):
            return True, time.monotonic() - start, got
        with contextlib.suppress(TimeoutError):
            chunk = await asyncio.wait_for(reader.read(4096), LIMIT / 4)
            if not chunk:
                return True, time.monotonic() - start, got
            got += chunk
    try:
        rest = await asyncio.wait_for(reader.read(), budget)
        return True, time.monotonic() - start, got + rest
    except (TimeoutError, ConnectionError, OSError):
        return False, time.monotonic() - start, got


async def _still_served(target: Target, tap: Tap) -> None:
    async with WSManClient(target, tap=tap) as client:
        assert (await client.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"


@pytest.mark.spec("MS-WMOD 2.10.1")
@pytest.mark.requires("wsman", "get")
async def test_headers_sent_byte_by_byte_too_slowly_are_cut_off(short_deadlines: Listener, wm_tap: Tap) -> None:
    reader, writer = await asyncio.open_connection(short_deadlines.host, short_deadlines.port)
    head = b"POST /wsman HTTP/1.1\r\nHost: mock\r\nContent-Type: application/soap+xml\r\nX-Slow: " + b"a" * 200
    closed, seconds, _ = await _closed_by_server(reader, writer, head, budget=LIMIT * 8)
    writer.close()
    assert closed, "the server kept a connection whose headers never ended"
    assert seconds < LIMIT * 6, f"cut off after {seconds:.2f} s, the deadline is {LIMIT} s"
    await _still_served(short_deadlines.target, wm_tap)


@pytest.mark.spec("MS-WMOD 2.10.1", "RFC 9110 15.5.9")
@pytest.mark.requires("wsman", "get")
async def test_a_body_sent_byte_by_byte_too_slowly_is_refused_with_408(short_deadlines: Listener, wm_tap: Tap) -> None:
    reader, writer = await asyncio.open_connection(short_deadlines.host, short_deadlines.port)
    writer.write(b"POST /wsman HTTP/1.1\r\nHost: mock\r\nContent-Type: application/soap+xml\r\n"
                 b"Content-Length: 4000\r\n\r\n")
    await writer.drain()
    closed, seconds, got = await _closed_by_server(reader, writer, b"<" * 4000, budget=LIMIT * 8)
    writer.close()
    assert closed and got.startswith(b"HTTP/1.1 408"), got[:200]
    assert seconds < LIMIT * 6
    await _still_served(short_deadlines.target, wm_tap)


@pytest.mark.spec("MS-WMOD 2.10.1")
@pytest.mark.requires("wsman", "get")
async def test_idle_connections_are_closed_after_the_idle_deadline(short_deadlines: Listener, wm_tap: Tap) -> None:
    conns = [await asyncio.open_connection(short_deadlines.host, short_deadlines.port) for _ in range(20)]
    try:
        ends = await asyncio.wait_for(asyncio.gather(*(r.read() for r, _ in conns)), LIMIT * 8)
        assert ends == [b""] * 20, "every idle connection is closed by the server"
    finally:
        for _, w in conns:
            w.close()
    await _still_served(short_deadlines.target, wm_tap)


@pytest.mark.spec("MS-WMOD 2.10.1")
@pytest.mark.requires("wsman", "get", "enumerate")
async def test_two_hundred_idle_connections_do_not_stop_others_being_served(
        wm_target: Target, wm_tap: Tap, mock_probe: Any) -> None:
    await _still_served(wm_target, wm_tap)
    baseline = await mock_probe.settles_to(mock_probe.snapshot())
    host, port = wm_target.host, int(wm_target.url.split(":")[2].split("/")[0])
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for i in range(FLOOD):
            reader, writer = await asyncio.open_connection(host, port)
            if i % 2:  # half of them start a request and never finish it
                writer.write(b"POST /wsman HTTP/1.1\r\nHost: mock\r\nContent-Length: 100\r\n\r\n<s:Env")
            conns.append((reader, writer))
        started = time.monotonic()
        await _still_served(wm_target, wm_tap)
        async with WSManClient(wm_target, tap=wm_tap) as client:
            assert len((await client.enumerate_all(SERVICE, max_elements=50)).items) > 0
        assert time.monotonic() - started < 10
    finally:
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    after = await mock_probe.settles_to(baseline, timeout=10)
    assert all(after[k] <= baseline[k] for k in baseline), (baseline, after)
    await _still_served(wm_target, wm_tap)

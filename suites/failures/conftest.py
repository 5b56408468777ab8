"""Fixtures of the failure suites (MS-WMOD 2.10): connections dropped mid-request at the TCP level,
and a probe of the built-in mock's insides (contexts, shells, connections, tasks) for leak checks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.targets.inventory import Target
from harness.targets.mock.http_server import open_connections, service_of
from harness.targets.mock.wsman_service import WSManService

DropFn = Callable[..., Awaitable[None]]


def _request_head(target: Target, length: int) -> bytes:
    parts = urlsplit(target.url)
    credentials = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
    return (f"POST {parts.path or '/wsman'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Basic {credentials}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.fixture
def drop_connection(wm_target: Target) -> DropFn:
    """``await drop_connection(body, sent=fraction)``: open a TCP connection to the target, POST the
    envelope ``body`` with Basic authentication (only ``sent`` of its bytes: 1.0 = all of it), then
    reset the connection without reading the answer -- a client that breaks down mid-operation
    (MS-WMOD 2.10.1). Targets without Basic over plain HTTP skip."""
    parts = urlsplit(wm_target.url)
    if wm_target.auth != "basic" or parts.scheme != "http" or not wm_target.username:
        pytest.skip("dropping a raw connection needs Basic authentication over HTTP")

    async def drop(body: bytes, *, sent: float = 1.0, linger: float = 0.05) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 5985)
        try:
            writer.write(_request_head(wm_target, len(body)) + body[: int(len(body) * sent)])
            await writer.drain()
            await asyncio.sleep(linger)
        finally:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # RST instead of FIN: the client is gone, not finishing politely
                import socket
                import struct

                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        del reader

    return drop


class MockProbe:
    """Counts of what the running mock holds (for leak checks; mock only)."""

    def __init__(self, mock: Any) -> None:
        self._mock = mock
        self._app = mock._runner.app  # the runner of harness.targets.mock.runner.MockServerThread
        self._loop: asyncio.AbstractEventLoop = mock._loop

    @property
    def service(self) -> WSManService:
        return service_of(self._app)

    def enumerations(self) -> int:
        return len(self.service.enumerations)

    def shells(self) -> int:
        return len(self.service.shells.shells)

    def connections(self) -> int:
        return open_connections(self._app)

    def tasks(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), self._loop).result(timeout=5)

    def snapshot(self) -> dict[str, int]:
        return {"enumerations": self.enumerations(), "shells": self.shells(), "connections": self.connections(),
                "tasks": self.tasks()}

    async def settles_to(self, baseline: dict[str, int], *, timeout: float = 5.0) -> dict[str, int]:
        """Wait until nothing is above ``baseline``; the last snapshot (asserted by the caller)."""
        import gc

        deadline = time.monotonic() + timeout
        while True:
            gc.collect()  # connection contexts are weakly keyed by their transport
            now = self.snapshot()
            if all(now[k] <= baseline[k] for k in baseline) or time.monotonic() > deadline:
                return now
            await asyncio.sleep(0.05)


@pytest.fixture
def mock_probe(wm_mock_server: Any) -> MockProbe:
    """A :class:`MockProbe` of the built-in mock (real targets skip)."""
    return MockProbe(wm_mock_server)

"""Mock target throughput and latency: 50 concurrent clients on loopback, against aiohttp's plain
hello-world handler as the peer measured in the same run (ratios, not absolute times).

Each client sends an authenticated (Basic) WS-Man Get of Win32_Service?Name=WinRM (MS-WSMV
3.1.4.8) over keep-alive connections; the peer answers the same POSTs with a fixed text. Both
servers run in their own thread and event loop, the clients in the main loop. The run is bounded
by a request count and a wall-clock limit.

Run: python benchmarks/bench_mock_server.py [--requests 2000] [--concurrency 50] [--limit 60]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import threading
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from harness.targets.mock.runner import MockServerThread
from harness.wire.wsman import messages as msg
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

SERVICE = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"


@dataclass
class HelloServer:
    """aiohttp's hello-world handler on an ephemeral loopback port, in its own thread."""

    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def hello(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(text="Hello, world")

        app = web.Application()
        app.router.add_post("/wsman", hello)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/wsman"
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def load(url: str, body: bytes, headers: dict[str, str], requests: int, concurrency: int,
               limit: float) -> tuple[float, list[float], int]:
    """(requests per second, latencies in seconds, errors)."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.perf_counter() + limit
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main_async(args: argparse.Namespace) -> None:
    mock = MockServerThread()
    mock_url = mock.start()
    hello = HelloServer()
    hello_url = hello.start()
    token = base64.b64encode(f"{mock.config.username}:{mock.config.password}".encode()).decode()
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8", "Authorization": f"Basic {token}"}
    body = msg.build_get_request(Header(action=Action.GET, resource_uri=SERVICE, selectors={"Name": "WinRM"}))
    try:
        await load(mock_url, body, headers, 100, 10, 10)  # warm-up (schemas, connections)
        print(f"{args.requests} requests, {args.concurrency} concurrent clients, loopback, limit {args.limit:.0f} s")
        print(f"{'server':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        figures = {}
        for label, url in (("mock (WS-Man Get, Basic)", mock_url), ("aiohttp hello world", hello_url)):
            rps, lat, errors = await load(url, body, headers, args.requests, args.concurrency, args.limit)
            figures[label] = rps
            print(f"{label:<28} {rps:>8.0f} {_pct(lat, 0.5):>8.1f} {_pct(lat, 0.99):>8.1f} {errors:>7}")
        mock_rps, hello_rps = figures.values()
        print(f"mock / hello-world throughput ratio: {mock_rps / hello_rps:.2f}")
    finally:
        mock.stop()
        hello.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--limit", type=float, default=60.0, help="wall-clock limit per server, seconds")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

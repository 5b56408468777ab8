"""Run the mock target's HTTP server in a background thread (for the pytest plugin and tests).

``wmh serve`` runs the same application in the foreground; this runner gives a synchronous
start/stop around it so that a test session can share one mock across its event loops.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from aiohttp import web

from harness.cim.mof import default_store
from harness.cim.store import CimStore
from harness.targets.mock.config import MockConfig
from harness.targets.mock.http_server import build_app, service_of
from harness.targets.mock.wmi_server import WmiServer, start_wmi_server
from harness.targets.mock.wsman_service import WSManService
from harness.transport.http_listener import start_listener

STARTUP_TIMEOUT = 20.0


@dataclass
class MockServerThread:
    """The mock WS-Man server on 127.0.0.1 and an ephemeral port, in its own thread and loop."""

    config: MockConfig = field(default_factory=MockConfig)
    store: CimStore | None = None
    url: str = ""
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None
    #: The WMI over DCOM role (MS-WMI) beside WS-Man when ``config.wmi_enabled`` (ephemeral ports by default).
    wmi: WmiServer | None = None
    #: The WS-Man service behind the listener (set once started), for mock-only test handles.
    service: WSManService | None = None

    def start(self) -> str:
        if self.store is None:
            self.store = default_store()
        self._thread = threading.Thread(target=self._run, name="wmh-mock", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise RuntimeError(f"mock server did not start within {STARTUP_TIMEOUT} s")
        if self._error is not None:
            raise RuntimeError(f"mock server failed to start: {self._error}") from self._error
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _serve(self) -> None:
        assert self.store is not None
        app = build_app(self.store, self.config)
        self.service = service_of(app)
        self._runner, port = await start_listener(app, self.config.host, self.config.port, shutdown_timeout=2.0)
        self.url = f"http://{self.config.host}:{port}/wsman"
        if self.config.wmi_enabled:
            self.wmi = await start_wmi_server(self.store, self.config)

    @property
    def wmi_endpoint(self) -> tuple[str, int] | None:
        """(host, endpoint mapper port) of the WMI role, or None when it does not run."""
        return (self.config.host, self.wmi.epm_port) if self.wmi is not None else None

    async def _shutdown(self) -> None:
        if self.wmi is not None:
            await self.wmi.close()
            self.wmi.users.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

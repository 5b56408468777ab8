"""Start an aiohttp application on a TCP port and learn the port it got (0 asks for an ephemeral one).

Shared by the harness's own listeners: the WS-Eventing push sink, the subscription manager that
publishers contact (MS-WSMV 3.1.4.8.2, DSP0226 10.2) and the mock WS-Man target.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web


async def start_listener(app: web.Application, host: str, port: int, *,
                         shutdown_timeout: float | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    """Set up ``app`` and listen on ``host``:``port`` (over TLS with ``ssl_context``); returns the
    runner (``cleanup()`` it to stop) and the port actually bound. Access logging is off."""
    runner = (web.AppRunner(app, access_log=None) if shutdown_timeout is None
              else web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout))
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    return runner, int(server.sockets[0].getsockname()[1])

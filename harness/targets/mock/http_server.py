"""The mock target's HTTP listener: WS-Man over HTTP on ``/wsman`` (MS-WSMV 2.1).

Authentication is HTTP Basic (MS-WSMV 2.2.9.1; RFC 7617). Every request body goes to the sans-IO
:class:`~harness.targets.mock.wsman_service.WSManService`; whatever goes wrong, the client gets a
SOAP fault or an HTTP status with a reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging

from aiohttp import web

from harness.cim.store import CimStore
from harness.targets.mock.config import MockConfig
from harness.targets.mock.event_pusher import EventPusher
from harness.targets.mock.wsman_service import Principal, WSManService

log = logging.getLogger("wmh.mock")

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_SERVICE_KEY = web.AppKey("wsman_service", WSManService)
_CONFIG_KEY = web.AppKey("mock_config", MockConfig)
_PUSHER_KEY = web.AppKey("event_pusher", asyncio.Task[None])


def _authenticate(request: web.Request, config: MockConfig) -> Principal | None:
    """Check HTTP Basic credentials in constant time; None when missing or wrong."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    # Windows accepts DOMAIN\\user and user@domain forms for local accounts (observed Windows behaviour).
    bare = user.split("\\")[-1].split("@")[0]
    if bare.lower() == config.username.lower() and hmac.compare_digest(password, config.password):
        return Principal(name=bare, read_only=False)
    expected = config.read_only_users.get(bare)
    if expected is not None and hmac.compare_digest(password, expected):
        return Principal(name=bare, read_only=True)
    return None


def _unauthorized() -> web.Response:
    # MS-WSMV 2.2.9.1: the server answers 401 with the schemes it accepts.
    return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="WSMAN"'})


async def handle_wsman(request: web.Request) -> web.Response:
    service = request.app[_SERVICE_KEY]
    config = request.app[_CONFIG_KEY]
    content_type = request.headers.get("Content-Type", "")
    unauth_identify = config.allow_unauthenticated_identify and request.headers.get(
        "WSMANIDENTIFY", "").lower() == "unauthenticated"
    principal = _authenticate(request, config)
    if principal is None and not unauth_identify:
        return _unauthorized()
    if request.content_length is not None and request.content_length > config.max_request_bytes:
        status, body = service.encoding_limit_fault()
        return web.Response(status=status, body=body, content_type=None,
                            headers={"Content-Type": SOAP_CONTENT_TYPE})
    try:
        data = await asyncio.wait_for(request.content.read(config.max_request_bytes + 1), timeout=config.max_timeout)
    except TimeoutError:
        return web.Response(status=408, text="request body not received in time")
    if len(data) > config.max_request_bytes:
        status, body = service.encoding_limit_fault()
    elif "soap+xml" not in content_type.lower() and "multipart/encrypted" not in content_type.lower():
        # MS-WSMV 2.2.1: WS-Man requests are application/soap+xml.
        return web.Response(status=415, text="Content-Type must be application/soap+xml")
    elif principal is None:
        status, body = service.handle_identify_only(data)
    else:
        status, body = service.handle(data, principal)
    return web.Response(status=status, body=body, headers={"Content-Type": SOAP_CONTENT_TYPE})


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="wm-harness mock: WS-Management is served on /wsman")


async def _start_pusher(app: web.Application) -> None:
    """Push delivery of event subscriptions runs beside the listener (DSP0226 10.2.9.1-10.2.9.3)."""
    app[_PUSHER_KEY] = asyncio.get_running_loop().create_task(EventPusher(app[_SERVICE_KEY].events).run())


async def _stop_pusher(app: web.Application) -> None:
    task = app.get(_PUSHER_KEY)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_app(store: CimStore, config: MockConfig) -> web.Application:
    app = web.Application(client_max_size=config.max_request_bytes + 1)
    app[_SERVICE_KEY] = WSManService(store, config)
    app[_CONFIG_KEY] = config
    app.on_startup.append(_start_pusher)
    app.on_cleanup.append(_stop_pusher)
    app.router.add_post("/wsman", handle_wsman)
    app.router.add_post("/wsman/", handle_wsman)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


async def serve_forever(store: CimStore, config: MockConfig) -> None:
    app = build_app(store, config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    print(f"wmh serve: WS-Man mock target {config.machine} on http://{config.host}:{config.port}/wsman "
          f"(Basic auth, user {config.username!r})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

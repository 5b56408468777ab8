"""The mock target's HTTP listener: WS-Man over HTTP(S) on ``/wsman`` (MS-WSMV 2.1).

Authentication follows the listener's :class:`~harness.auth.policy.AuthPolicy` (MS-WSMV 2.2.9.1):
HTTP Basic per request, Negotiate (NTLM or Kerberos, raw or inside SPNEGO), ``Kerberos`` and
``CredSSP`` (when the policy allows them) as a 401 handshake whose security
context is bound to the TCP connection (one :class:`~harness.auth.acceptor.ConnectionAuth` per
aiohttp transport). Requests sealed with that context (``multipart/encrypted``, MS-WSMV 2.2.9.1.1)
are opened and their answers sealed the same way. Every request body goes to the sans-IO
:class:`~harness.targets.mock.wsman_service.WSManService`; whatever goes wrong, the client gets a
SOAP fault or an HTTP status with a reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from aiohttp import web
from multidict import CIMultiDict

from harness.auth.acceptor import Acceptor, ConnectionAuth
from harness.auth.credssp import seal
from harness.auth.encryption import is_encrypted, parse_content_type, unwrap_message
from harness.auth.errors import EncryptionError
from harness.auth.users import LocalUser, UserDatabase
from harness.cim.store import CimStore
from harness.targets.mock.answer_later import WakeSignal, answer_when_ready
from harness.targets.mock.config import MockConfig
from harness.targets.mock.event_pusher import install_event_tasks
from harness.targets.mock.robust import TransportConnection, request_scope
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.transport.body import read_body
from harness.wire.wsman.ns import SOAP_CONTENT_TYPE

log = logging.getLogger("wmh.mock")

#: Seconds an unread request body is still drained after an early answer (aiohttp lingering close).
LINGERING_TIME = 2.0


class _AuthState:
    """Per-application authentication state: connection contexts and the user database."""

    def __init__(self) -> None:
        self.connections: weakref.WeakKeyDictionary[object, ConnectionAuth] = weakref.WeakKeyDictionary()
        self._fingerprint: tuple[tuple[str, str, bool], ...] | None = None
        self._database: UserDatabase | None = None
        self._cert_der: tuple[bytes, bytes] | None = None

    def connection(self, request: web.Request) -> ConnectionAuth:
        transport = request.transport
        if transport is None:
            return ConnectionAuth()
        conn = self.connections.get(transport)
        if conn is None:
            conn = self.connections[transport] = ConnectionAuth()
        return conn

    def database(self, config: MockConfig) -> UserDatabase:
        """The local users of ``config`` (rebuilt when the administrator or read-only users change)."""
        users = [LocalUser(config.username, config.password)]
        users += [LocalUser(name, password, read_only=True) for name, password in config.read_only_users.items()]
        fingerprint = tuple((u.name, u.password, u.read_only) for u in users)
        if self._database is None or fingerprint != self._fingerprint:
            if self._database is not None:
                self._database.close()
            self._database = UserDatabase(users, machine=config.machine)
            self._fingerprint = fingerprint
        return self._database

    def acceptor(self, config: MockConfig) -> Acceptor:
        cert_der = None
        if config.tls is not None:
            if self._cert_der is None or self._cert_der[0] != config.tls.cert_pem:
                self._cert_der = (config.tls.cert_pem, config.tls.cert_der)
            cert_der = self._cert_der[1]
        return Acceptor(config.auth, self.database(config), tls_cert_der=cert_der)


_SERVICE_KEY = web.AppKey("wsman_service", WSManService)
_CONFIG_KEY = web.AppKey("mock_config", MockConfig)
_AUTH_KEY = web.AppKey("auth_state", _AuthState)
_WAKE_KEY = web.AppKey("wake_signal", WakeSignal)


def _unauthorized(challenges: list[str], reason: str = "") -> web.Response:
    # MS-WSMV 2.2.9.1: the server answers 401 with the schemes it accepts, one header line each.
    headers: CIMultiDict[str] = CIMultiDict(("WWW-Authenticate", value) for value in challenges)
    return web.Response(status=401, headers=headers, text=reason or None)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes, however many TCP segments it arrives in."""
    return await read_body(request.content, limit)


async def handle_wsman(request: web.Request) -> web.StreamResponse:
    service = request.app[_SERVICE_KEY]
    config = request.app[_CONFIG_KEY]
    auth_state = request.app[_AUTH_KEY]
    content_type = request.headers.get("Content-Type", "")
    unauth_identify = config.allow_unauthenticated_identify and request.headers.get(
        "WSMANIDENTIFY", "").lower() == "unauthenticated"
    if request.content_length is not None and request.content_length > config.max_request_bytes:
        status, body = service.encoding_limit_fault()
        return web.Response(status=status, body=body, content_type=None,
                            headers={"Content-Type": SOAP_CONTENT_TYPE})
    # Read the body before authenticating: a Negotiate 401 must leave the keep-alive connection usable.
    try:
        data = await asyncio.wait_for(_read_body(request, config.max_request_bytes + 1), timeout=config.body_timeout)
    except TimeoutError:
        # A body slower than the EntityBody deadline (MockConfig.body_timeout): 408 and the
        # connection is closed, so a trickling client cannot hold it (RFC 9110 15.5.9).
        late = web.Response(status=408, text="request body not received in time")
        late.force_close()
        return late
    conn = auth_state.connection(request)
    outcome = auth_state.acceptor(config).authenticate(conn, request.headers.get("Authorization"))
    if not outcome.ok and (outcome.attempted or not unauth_identify):
        if outcome.attempted and outcome.reason != "handshake continues":
            log.info("authentication refused: %s", outcome.reason)
        return _unauthorized(outcome.www_authenticate)
    extra: CIMultiDict[str] = CIMultiDict(("WWW-Authenticate", value) for value in outcome.www_authenticate)
    principal = None if outcome.user is None else Principal(name=outcome.user.name, read_only=outcome.user.read_only)
    tls = config.tls is not None
    sealed = is_encrypted(content_type)
    if len(data) > config.max_request_bytes:
        status, body = service.encoding_limit_fault()
        return web.Response(status=status, body=body, headers={"Content-Type": SOAP_CONTENT_TYPE, **extra})
    if sealed:
        if conn.context is None:
            return _unauthorized(config.auth.challenges(tls=tls))
        try:
            data = unwrap_message(conn.context, content_type, data, max_length=config.max_request_bytes)
        except EncryptionError as exc:
            # The context's sequence numbers are now out of step: the client has to authenticate again.
            conn.reset()
            return web.Response(status=400, text=f"cannot decrypt the request: {exc.reason}")
    elif not data and outcome.scheme in ("negotiate", "kerberos", "credssp"):
        # The authentication-only POST a client sends before sealing (pypsrp, pywinrm, the Windows
        # client): 200 with an empty body (observed Windows behaviour).
        return web.Response(status=200, headers=extra)
    elif "soap+xml" not in content_type.lower():
        # MS-WSMV 2.2.1: WS-Man requests are application/soap+xml.
        return web.Response(status=415, text="Content-Type must be application/soap+xml")
    elif principal is not None and not tls and not config.auth.allow_unencrypted:
        # AllowUnencrypted false: an authenticated plain-text message over HTTP is refused with
        # HTTP 500 (observed Windows behaviour, reported in pywinrm issues #129 and #208).
        return web.Response(status=500, headers=extra,
                            text="unencrypted traffic is refused by policy (AllowUnencrypted false)")
    if principal is None:
        status, body = service.handle_identify_only(data)
    else:
        # Receive may wait (bounded by OperationTimeout) for a shell command's output (MS-WSMV 3.1.4.14);
        # an empty Pull on an event subscription may wait for events (DSP0226 10.2.9.4): one driver,
        # woken by the service's producers (harness.targets.mock.answer_later).
        # The request's TCP connection is its PrimaryConnection for robust connections (MS-WSMV
        # 3.1.1, 3.1.4.1.39); a retransmission's answer comes back as several envelopes.
        connection = TransportConnection(request.transport) if request.transport is not None else None
        with request_scope(connection) as scope:
            status, body = await answer_when_ready(service, data, principal, request.app[_WAKE_KEY])
        if scope.parts and not sealed:
            return await _write_chunked(request, status, scope.parts, extra)
    if sealed:
        # The answer is sealed under the protocol of the request (SPNEGO, Kerberos or CredSSP;
        # MS-WSMV 2.2.9.1.1), CredSSP in 16 KiB pieces (MS-WSMV 2.2.9.1.2).
        sealed_type, sealed_body = seal(conn.context, body, parse_content_type(content_type)[0])
        return web.Response(status=status, body=sealed_body, headers={**extra, "Content-Type": sealed_type})
    return web.Response(status=status, body=body, headers={**extra, "Content-Type": SOAP_CONTENT_TYPE})


async def _write_chunked(request: web.Request, status: int, parts: list[bytes],
                         extra: CIMultiDict[str]) -> web.StreamResponse:
    """A multi-message answer: ``Transfer-Encoding: chunked``, each SOAP envelope one HTTP chunk,
    then the final zero-length chunk (MS-WSMV 3.1.4.1.39, 3.2.4.2.1). A sealed answer is one
    sealed body instead (the client splits the envelopes after unsealing)."""
    response = web.StreamResponse(status=status, headers={**extra, "Content-Type": SOAP_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in parts:
        await response.write(part)
    await response.write_eof()
    return response


def service_of(app: web.Application) -> WSManService:
    """The sans-IO service behind an application of :func:`build_app` (diagnostics, fixtures)."""
    return app[_SERVICE_KEY]


def open_connections(app: web.Application) -> int:
    """How many TCP connections of ``app`` still hold an authentication context (leak checks)."""
    return len(app[_AUTH_KEY].connections)


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="wm-harness mock: WS-Management is served on /wsman")


def build_app(store: CimStore, config: MockConfig) -> web.Application:
    # keepalive_timeout: aiohttp closes a connection whose next request headers have not arrived
    # that long after it opened or after the previous answer (the header / idle deadline);
    # lingering_time bounds how long the rest of an unread body is drained after an early answer.
    handler_args = {"keepalive_timeout": config.header_timeout, "lingering_time": LINGERING_TIME}
    app = web.Application(client_max_size=config.max_request_bytes + 1, handler_args=handler_args)
    app[_SERVICE_KEY] = WSManService(store, config)
    app[_CONFIG_KEY] = config
    app[_AUTH_KEY] = _AuthState()
    # Requests that answer later wait on this signal; the service's producers wake it.
    app[_WAKE_KEY] = WakeSignal()
    unfollow = app[_WAKE_KEY].follow(app[_SERVICE_KEY].wakeups)

    async def stop_waking(app: web.Application) -> None:
        unfollow()

    app.on_cleanup.append(stop_waking)
    # Push delivery, heartbeats, SubscriptionEnd and the publisher role run beside the listener
    # (DSP0226 10.2.9.x, 10.2.5, 10.6; MS-WSMV 3.1.4.1.30).
    install_event_tasks(app, app[_SERVICE_KEY], config)
    app.router.add_post("/wsman", handle_wsman)
    app.router.add_post("/wsman/", handle_wsman)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


async def serve_forever(store: CimStore, config: MockConfig) -> None:
    app = build_app(store, config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ssl_context = config.tls.ssl_context() if config.tls is not None else None
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    policy = config.auth
    schemes = ", ".join(c.split(" ")[0] for c in policy.challenges(tls=ssl_context is not None)) or "none"
    print(f"wmh serve: WS-Man mock target {config.machine} on {scheme}://{config.host}:{config.port}/wsman "
          f"(auth {schemes}; unencrypted {'allowed' if policy.allow_unencrypted else 'refused'}; "
          f"CBT {policy.cbt_hardening.value}; user {config.username!r})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

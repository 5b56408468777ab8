"""Helpers of the authentication tests: in-memory Negotiate handshakes the way HTTP carries them."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import spnego

from harness.auth.acceptor import Acceptor, AcceptOutcome, ConnectionAuth
from harness.auth.headers import encode_token, offered_schemes
from harness.auth.policy import AuthPolicy
from harness.auth.users import UserDatabase
from harness.targets.mock.config import MockConfig

ADMIN_PASSWORD = "Adm1n-Pa55-xyz"
READER_PASSWORD = "R3ader-Pa55-xyz"


def ntlm_client(username: str, password: str, *, protocol: str = "ntlm", cbt: Any = None,
                wrap: bool = True) -> Any:
    options = spnego.NegotiateOptions.use_ntlm if protocol == "ntlm" else spnego.NegotiateOptions.use_negotiate
    if wrap:
        options |= spnego.NegotiateOptions.wrapping_winrm
    return spnego.client(username, password, hostname="localhost", service="http", protocol=protocol,
                         options=options, channel_bindings=cbt)


def handshake(acceptor: Acceptor, conn: ConnectionAuth, client: Any) -> AcceptOutcome:
    """Run a Negotiate handshake the way HTTP carries it; the last outcome of the acceptor."""
    token = client.step()
    outcome = acceptor.authenticate(conn, encode_token("Negotiate", token))
    for _ in range(4):
        if outcome.ok or not outcome.www_authenticate:
            break
        server = offered_schemes(outcome.www_authenticate).get("negotiate")
        if not server:
            break
        token = client.step(base64.b64decode(server))
        if token is None:
            break
        outcome = acceptor.authenticate(conn, encode_token("Negotiate", token))
    if outcome.ok and outcome.www_authenticate:
        final = offered_schemes(outcome.www_authenticate).get("negotiate")
        if final:
            client.step(base64.b64decode(final))
    return outcome


def acceptor_for(users: UserDatabase, policy: AuthPolicy | None = None, cert_der: bytes | None = None) -> Acceptor:
    return Acceptor(policy or AuthPolicy(), users, tls_cert_der=cert_der)


@contextlib.asynccontextmanager
async def serve(config: MockConfig) -> AsyncIterator[str]:
    """The mock's aiohttp application on an ephemeral loopback port of the running loop (HTTPS with config.tls)."""
    from aiohttp import web

    from harness.cim.mof import default_store
    from harness.targets.mock.http_server import build_app

    runner = web.AppRunner(build_app(default_store(), config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    ssl_context = config.tls.ssl_context() if config.tls is not None else None
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server: Any = site._server
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/wsman"
    finally:
        await runner.cleanup()

"""Helpers of the authentication tests: in-memory Negotiate handshakes the way HTTP carries them."""

from __future__ import annotations

import base64
from typing import Any

import spnego

from harness.auth.acceptor import Acceptor, AcceptOutcome, ConnectionAuth
from harness.auth.headers import encode_token, offered_schemes
from harness.auth.policy import AuthPolicy
from harness.auth.users import UserDatabase

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

"""Client role: Basic, NTLM and Negotiate for WS-Man over HTTP(S) (MS-WSMV 2.2.9.1; RFC 4559).

``ntlm`` and ``negotiate`` both travel under the HTTP scheme ``Negotiate``, the only one a WinRM
listener offers for them: ``ntlm`` sends raw NTLM tokens (as pywinrm and pypsrp do), ``negotiate``
wraps NTLM in SPNEGO (RFC 4178; Kerberos is not used by this client). Over HTTPS the
``tls-server-end-point`` binding of the server certificate goes into the context (RFC 5929).
"""

from __future__ import annotations

import struct
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from harness.auth.errors import AuthError
from harness.auth.headers import basic_credentials, decode_token, encode_token
from harness.auth.tls import channel_bindings

SCHEMES = ("basic", "ntlm", "negotiate")
HTTP_SCHEME = "Negotiate"
#: A Negotiate handshake needing more round trips than this is abandoned (NTLM needs 2, SPNEGO 2-3).
MAX_LEGS = 5


def check_scheme(scheme: str) -> str:
    value = scheme.lower()
    if value not in SCHEMES:
        raise AuthError(f"unsupported authentication {scheme!r}; use one of {', '.join(SCHEMES)}")
    return value


class Initiator:
    """One Negotiate handshake of the client (a new one per TCP connection)."""

    def __init__(self, scheme: str, username: str, password: str, *, hostname: str,
                 encrypt: bool, cert_der: bytes | None = None) -> None:
        self.scheme = check_scheme(scheme)
        if self.scheme == "basic":
            raise AuthError("Basic has no handshake; use basic_credentials()")
        options = spnego.NegotiateOptions.use_ntlm if self.scheme == "ntlm" else spnego.NegotiateOptions.use_negotiate
        if encrypt:
            options |= spnego.NegotiateOptions.wrapping_winrm
        try:
            self.context: Any = spnego.client(
                username, password, hostname=hostname, service="http", protocol=self.scheme, options=options,
                channel_bindings=channel_bindings(cert_der) if cert_der is not None else None)
        except SpnegoError as exc:
            raise AuthError(f"cannot start {self.scheme} context: {type(exc).__name__}") from exc
        self.legs = 0

    @property
    def complete(self) -> bool:
        return bool(self.context.complete)

    def step(self, server_token: str | None = None) -> str | None:
        """The next ``Authorization`` value, or None when the context needs nothing more."""
        self.legs += 1
        if self.legs > MAX_LEGS:
            raise AuthError(f"Negotiate handshake exceeded {MAX_LEGS} legs")
        try:
            out = self.context.step(decode_token(server_token) if server_token is not None else None)
        except SpnegoError as exc:
            raise AuthError(f"{self.scheme} handshake failed: {type(exc).__name__}") from exc
        except (ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeError) as exc:
            raise AuthError(f"malformed {self.scheme} token from the server: {type(exc).__name__}") from exc
        return encode_token(HTTP_SCHEME, out) if out else None


__all__ = ["HTTP_SCHEME", "SCHEMES", "Initiator", "basic_credentials", "check_scheme"]

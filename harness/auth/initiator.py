"""Client role: Basic, NTLM, Negotiate, Kerberos and CredSSP for WS-Man over HTTP(S) (MS-WSMV 2.2.9.1; RFC 4559).

``ntlm`` and ``negotiate`` both travel under the HTTP scheme ``Negotiate``: ``ntlm`` sends raw NTLM
tokens (as pywinrm and pypsrp do), ``negotiate`` uses SPNEGO (RFC 4178), preferring Kerberos when
the user is named as a principal ``user@REALM`` (:mod:`harness.auth.kerberos`) and NTLM otherwise.
``kerberos`` sends raw Kerberos tokens (RFC 4121) under ``Kerberos`` when the listener offers that
scheme, else under ``Negotiate``. ``credssp`` runs MS-CSSP under ``CredSSP`` (:mod:`harness.auth.credssp`).
Over HTTPS the ``tls-server-end-point`` binding of the server certificate goes into the context (RFC 5929).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from harness.auth import credssp, kerberos
from harness.auth.errors import AuthError
from harness.auth.headers import basic_credentials, decode_token, encode_token
from harness.auth.tls import channel_bindings

SCHEMES = ("basic", "ntlm", "negotiate", "kerberos", "credssp")
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
                 encrypt: bool, cert_der: bytes | None = None, offered: Iterable[str] = (),
                 tls_keylog: str | None = None) -> None:
        self.scheme = check_scheme(scheme)
        #: Where a CredSSP context writes its inner TLS secrets (``$SSLKEYLOGFILE`` when None).
        self.tls_keylog = tls_keylog
        if self.scheme == "basic":
            raise AuthError("Basic has no handshake; use basic_credentials()")
        offered_lower = {value.lower() for value in offered}
        #: The HTTP scheme the tokens travel under (``Negotiate``, ``Kerberos`` or ``CredSSP``).
        self.http_scheme = HTTP_SCHEME
        if self.scheme == "credssp":
            self.http_scheme = credssp.CREDSSP_SCHEME
        elif self.scheme == "kerberos" and kerberos.KERBEROS_SCHEME.lower() in offered_lower:
            self.http_scheme = kerberos.KERBEROS_SCHEME
        self.max_legs = credssp.MAX_LEGS if self.scheme == "credssp" else MAX_LEGS
        bindings = channel_bindings(cert_der) if cert_der is not None else None
        try:
            self.context: Any = self._new_context(username, password, hostname, encrypt, bindings)
        except AuthError:
            raise
        except Exception as exc:   # SpnegoError, or krb5.Krb5Error from the kinit (wrong password, no KDC)
            raise AuthError(f"cannot start {self.scheme} context: {type(exc).__name__}") from exc
        self.legs = 0

    def _new_context(self, username: str, password: str, hostname: str, encrypt: bool, bindings: Any) -> Any:
        wrapping = spnego.NegotiateOptions.wrapping_winrm if encrypt else spnego.NegotiateOptions.none
        if self.scheme == "ntlm":
            return spnego.client(username, password, hostname=hostname, service="http", protocol="ntlm",
                                 options=spnego.NegotiateOptions.use_ntlm | wrapping, channel_bindings=bindings)
        if self.scheme == "kerberos":
            reason = kerberos.kerberos_unavailable()
            if reason is not None:
                raise AuthError(f"Kerberos is not available: {reason}")
            return spnego.client(username, password, hostname=hostname, service=kerberos.SERVICE_CLASS,
                                 protocol="kerberos", options=wrapping, channel_bindings=bindings)
        use_kerberos = kerberos.is_principal(username) and kerberos.kerberos_unavailable() is None
        inner = spnego.client(kerberos.client_credentials(username, password, kerberos=use_kerberos),
                              hostname=hostname, service=kerberos.SERVICE_CLASS if use_kerberos else "http",
                              protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate
                              | (wrapping if self.scheme != "credssp" else spnego.NegotiateOptions.none),
                              channel_bindings=None if self.scheme == "credssp" else bindings)
        if self.scheme == "credssp":
            return credssp.new_initiator(username, password, hostname=hostname, inner=inner,
                                         tls_keylog=self.tls_keylog)
        return inner

    @property
    def complete(self) -> bool:
        return bool(self.context.complete)

    def step(self, server_token: str | None = None) -> str | None:
        """The next ``Authorization`` value, or None when the context needs nothing more."""
        self.legs += 1
        if self.legs > self.max_legs:
            raise AuthError(f"{self.http_scheme} handshake exceeded {self.max_legs} legs")
        try:
            out = self.context.step(decode_token(server_token) if server_token is not None else None)
        except SpnegoError as exc:
            raise AuthError(f"{self.scheme} handshake failed: {type(exc).__name__}") from exc
        except (ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeError) as exc:
            raise AuthError(f"malformed {self.scheme} token from the server: {type(exc).__name__}") from exc
        return encode_token(self.http_scheme, out) if out else None


__all__ = ["HTTP_SCHEME", "SCHEMES", "Initiator", "basic_credentials", "check_scheme"]

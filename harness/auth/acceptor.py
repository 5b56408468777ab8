"""Server role: HTTP authentication of a WinRM listener (MS-WSMV 2.2.9.1; RFC 7617; RFC 4559).

Basic is checked per request. Negotiate (SPNEGO, RFC 4178, or a raw NTLM token under the
``Negotiate`` scheme, which Windows accepts and pywinrm/pypsrp send: observed Windows behaviour)
is a multi-leg handshake whose security context belongs to the TCP connection: the 401 answers
carry the acceptor's tokens, and once the context is complete every later request on the same
connection is authenticated by it, without an ``Authorization`` header, and may be sealed with it
(MS-WSMV 2.2.9.1.1). The caller keeps one :class:`ConnectionAuth` per connection.

Channel binding (HTTPS only): the initiator's MsvAvChannelBindings is compared with
``tls-server-end-point`` of the listener certificate according to ``CbtHardeningLevel``:
``None`` ignores it, ``Relaxed`` rejects a wrong binding but accepts none, ``Strict`` also rejects
a missing one (WinRM service CbtHardeningLevel; MS-NLMP 3.2.5.1.2).

Kerberos (RFC 4121) is accepted inside Negotiate whenever the process has a keytab
(``KRB5_KTNAME``), and under the ``Kerberos`` scheme while ``allow_kerberos`` is set; the client
principal ``user@REALM`` names the local user ``user`` (:mod:`harness.auth.kerberos`). CredSSP
(MS-CSSP) is accepted only while ``allow_credssp`` is set (:mod:`harness.auth.credssp`). Any other
scheme, Digest included (the WinRM service never offers it, MS-WSMV 2.2.4.34), gets the 401 with
the offered schemes.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import Any

import spnego
from spnego.exceptions import SpnegoError

from harness.auth import credssp
from harness.auth.errors import AuthError
from harness.auth.headers import decode_token, encode_token, parse_basic, split_credentials
from harness.auth.ntlm_cbt import BindingState, channel_bindings_of
from harness.auth.policy import AuthPolicy, CbtHardening
from harness.auth.tls import channel_bindings
from harness.auth.users import LocalUser, UserDatabase, ntlm_user_file

log = logging.getLogger("wmh.auth")

NEGOTIATE = "Negotiate"
KERBEROS = "Kerberos"
_NTLM_NEGOTIATE_MESSAGE = b"NTLMSSP\x00\x01\x00\x00\x00"
_SPNEGO_INIT_TAG = 0x60   # [APPLICATION 0] InitialContextToken (RFC 2743 3.1)


@dataclass
class ConnectionAuth:
    """Authentication state bound to one TCP connection."""

    pending: Any = None               # spnego ContextProxy of a handshake in progress
    context: Any = None               # the completed context (seals messages)
    user: LocalUser | None = None     # who the completed context authenticated
    scheme: str | None = None

    def reset(self) -> None:
        self.pending = self.context = self.user = self.scheme = None


@dataclass
class AcceptOutcome:
    """Result of :meth:`Acceptor.authenticate`: a user, or the 401 to send."""

    user: LocalUser | None
    scheme: str | None = None
    #: ``WWW-Authenticate`` values: the offered schemes or the next handshake token (401), or the
    #: final SPNEGO token to send with the successful answer.
    www_authenticate: list[str] = field(default_factory=list)
    reason: str = ""
    #: True when the request carried credentials of a scheme (so a wrong one is an authentication failure)
    attempted: bool = False

    @property
    def ok(self) -> bool:
        return self.user is not None


class Acceptor:
    """Authenticates requests against a local user database under an :class:`AuthPolicy`."""

    def __init__(self, policy: AuthPolicy, users: UserDatabase, *, tls_cert_der: bytes | None = None,
                 hostname: str = "unspecified") -> None:
        self.policy = policy
        self.users = users
        self.tls_cert_der = tls_cert_der
        self.hostname = hostname

    @property
    def tls(self) -> bool:
        return self.tls_cert_der is not None

    def _refuse(self, reason: str, *, attempted: bool = True) -> AcceptOutcome:
        return AcceptOutcome(None, None, self.policy.challenges(tls=self.tls), reason, attempted)

    def authenticate(self, conn: ConnectionAuth, authorization: str | None) -> AcceptOutcome:
        """Check one request's ``Authorization`` header in the context of its connection."""
        if not authorization:
            if conn.context is not None and conn.user is not None:
                return AcceptOutcome(conn.user, conn.scheme)
            return self._refuse("no credentials", attempted=False)
        scheme, token = split_credentials(authorization)
        try:
            if scheme == "basic":
                return self._basic(token)
            if scheme == NEGOTIATE.lower():
                return self._negotiate(conn, token)
            if scheme == KERBEROS.lower() and self.policy.allow_kerberos:
                return self._negotiate(conn, token, KERBEROS)
            if scheme == credssp.CREDSSP_SCHEME.lower() and self.policy.allow_credssp:
                return self._credssp(conn, token)
        except AuthError as exc:
            conn.reset()
            return self._refuse(exc.reason)
        return self._refuse(f"authentication scheme {scheme!r} is not offered")

    def _basic(self, token: str) -> AcceptOutcome:
        if not self.policy.allow_basic:
            raise AuthError("Basic authentication is not allowed (AllowBasic false)")
        if not self.policy.basic_usable(tls=self.tls):
            raise AuthError("Basic authentication over HTTP needs AllowUnencrypted")
        user_name, password = parse_basic(token.strip())
        user = self.users.check_password(user_name, password)
        if user is None:
            raise AuthError("user name or password is wrong")
        return AcceptOutcome(user, "basic")

    def _credssp(self, conn: ConnectionAuth, text: str) -> AcceptOutcome:
        """One CredSSP leg (MS-CSSP 3.1.5); the context is the connection's, like Negotiate's."""
        token = decode_token(text)
        if conn.scheme != "credssp" or conn.pending is None or conn.context is not None:
            conn.reset()   # a new CredSSP handshake starts with the TLS ClientHello
            conn.pending, conn.scheme = credssp.new_acceptor(self.hostname), "credssp"
        out, user = credssp.accept_step(conn.pending, token, self.users)
        if user is None:
            return AcceptOutcome(None, "credssp", [encode_token(credssp.CREDSSP_SCHEME, out or b"")],
                                 "handshake continues", True)
        conn.context, conn.pending, conn.user = conn.pending, None, user
        final = [encode_token(credssp.CREDSSP_SCHEME, out)] if out else []
        return AcceptOutcome(user, "credssp", final, "authenticated", True)

    def _negotiate(self, conn: ConnectionAuth, text: str, http_scheme: str = "Negotiate") -> AcceptOutcome:
        if http_scheme == NEGOTIATE and not self.policy.allow_negotiate:
            raise AuthError("Negotiate authentication is not allowed (AllowNegotiate false)")
        scheme_id = http_scheme.lower()
        token = decode_token(text)
        if token.startswith(_NTLM_NEGOTIATE_MESSAGE) or token[:1] == bytes([_SPNEGO_INIT_TAG]):
            conn.reset()   # a new handshake replaces whatever the connection had
            conn.pending = True
        if conn.pending is None:
            raise AuthError("Negotiate token out of sequence: no handshake in progress on this connection")
        bindings = self._bindings_for(token)
        try:
            with ntlm_user_file(self.users):
                if conn.pending is True:
                    conn.pending = spnego.server(hostname=self.hostname, service="http", protocol="negotiate",
                                                 options=spnego.NegotiateOptions.use_negotiate)
                out = conn.pending.step(token, channel_bindings=bindings)
        except SpnegoError as exc:
            raise AuthError(f"Negotiate handshake failed: {type(exc).__name__}") from exc
        except (ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeError) as exc:
            # pyspnego's token parsers raise these on malformed input
            raise AuthError(f"malformed Negotiate token: {type(exc).__name__}") from exc
        if not conn.pending.complete:
            if out is None:
                raise AuthError("Negotiate handshake stalled")
            return AcceptOutcome(None, scheme_id, [encode_token(http_scheme, out)], "handshake continues", True)
        principal = conn.pending.client_principal or ""
        user = self.users.lookup(principal)
        if user is None:
            raise AuthError("authenticated principal is not a local user")
        conn.context, conn.pending, conn.user, conn.scheme = conn.pending, None, user, scheme_id
        final = [encode_token(http_scheme, out)] if out else []
        return AcceptOutcome(user, scheme_id, final, "authenticated", True)

    def _bindings_for(self, token: bytes) -> Any:
        """Channel bindings to enforce for this token under CbtHardeningLevel (None: do not check)."""
        if self.tls_cert_der is None or self.policy.cbt_hardening is CbtHardening.NONE:
            return None
        state, _value = channel_bindings_of(token)
        if state is BindingState.ABSENT and b"NTLMSSP\x00\x03\x00\x00\x00" not in token:
            return None   # not the AUTHENTICATE leg
        if state is BindingState.PRESENT:
            return channel_bindings(self.tls_cert_der)
        if self.policy.cbt_hardening is CbtHardening.STRICT:
            raise AuthError("channel binding token missing (CbtHardeningLevel Strict)")
        return None

"""CredSSP (MS-CSSP) for WS-Man over HTTP(S), both roles, on pyspnego's CredSSP context.

The ``CredSSP`` HTTP scheme carries base64 TSRequest exchanges (MS-CSSP 2.2.1) inside a TLS session
that the tokens themselves tunnel (MS-CSSP 3.1.5 steps 1-5): the TLS handshake, SPNEGO (NTLM here)
inside ``negoTokens``, the public-key binding (``pubKeyAuth``, with the client nonce from version 5
on) and finally the user's password in ``authInfo`` (TSCredentials / TSPasswordCreds, MS-CSSP
2.2.1.2), which the server may use to act for the user (the "second hop"). A WinRM service uses it
only while ServiceAuthType CredSSP is true, false by default (MS-WSMV 2.2.4.34, 3.1.4.1.29.2).

Messages are then sealed with the CredSSP TLS session: ``protocol="application/HTTP-CredSSP-session-
encrypted"``, the "signature" being the TLS record overhead before the data (MS-WSMV 2.2.9.1.1); a
message longer than 16 KiB is cut into 16 KiB pieces, each sealed on its own, in a
``multipart/x-multi-encrypted`` body (MS-WSMV 2.2.9.1.2; observed Windows behaviour).

The delegated password is checked against the authenticated user and then dropped: it is never
logged, kept in the connection state or recorded (the tap only ever sees base64 TLS ciphertext).

TLS key log (diagnostics, never by default): when asked with ``tls_keylog=PATH`` or, as for HTTPS,
when the ``SSLKEYLOGFILE`` environment variable names a file, either role writes the CredSSP TLS
session's secrets to that file in the NSS key log format (``SSLContext.keylog_filename``:
``CLIENT_RANDOM`` master secrets for TLS 1.2, RFC 5246 8.1; the handshake and application traffic
secrets for TLS 1.3, RFC 8446 7.1). With them ``wmh check-pcap --tls-keylog`` opens the TSRequests
of the handshake and the sealed messages (:mod:`harness.capture.credssp_decrypt`). The key log
holds the TLS secrets, never the delegated password (which travels inside the TLS session, sealed
again by the inner SPNEGO context, MS-CSSP 3.1.5 step 5) -- but with the secrets a capture's
TSRequests can be read, so the file must be treated as sensitive.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

import spnego
import spnego.tls
from spnego.exceptions import SpnegoError

from harness.auth.encryption import (
    BOUNDARY,
    ORIGINAL_TYPE,
    EncryptedPart,
    WinRMSealer,
    build_body,
    wrap_message,
)
from harness.auth.errors import AuthError
from harness.auth.users import LocalUser, UserDatabase, bare_name, ntlm_user_file

CREDSSP_SCHEME = "CredSSP"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
MULTI_ENCRYPTED_TYPE = "multipart/x-multi-encrypted"
#: Largest plain piece sealed in one part (MS-WSMV 2.2.9.1.2).
CHUNK = 16_384
#: CredSSP needs: TLS handshake (2-3), SPNEGO/NTLM (2), public key (1), credentials (1).
MAX_LEGS = 12
#: The lowest TSRequest version accepted (5+ binds the public key with a nonce; CVE-2018-0886).
MIN_VERSION = 2
#: The key log convention shared with HTTPS (harness.transport.http_client.KEYLOG_ENV).
KEYLOG_ENV = "SSLKEYLOGFILE"

_certificate_lock = threading.Lock()
_certificate: tuple[bytes, bytes, bytes] | None = None


def keylog_path(tls_keylog: str | None = None) -> str | None:
    """The key log file asked for: ``tls_keylog``, else ``$SSLKEYLOGFILE``, else None (never by default)."""
    return tls_keylog or os.environ.get(KEYLOG_ENV) or None


def _acceptor_certificate() -> tuple[bytes, bytes, bytes]:
    """(certificate PEM, key PEM, public key DER) of the acceptor, made once per process like the
    self-signed certificate WinRM creates for CredSSP (MS-CSSP 3.1.5 step 1: not verified)."""
    global _certificate
    with _certificate_lock:
        if _certificate is None:
            _certificate = spnego.tls.generate_tls_certificate()
        return _certificate


def tls_context(usage: str, tls_keylog: str | None = None) -> spnego.tls.CredSSPTLSContext | None:
    """The CredSSP TLS context of ``usage`` ("initiate" / "accept") writing its secrets to the key
    log asked for (:func:`keylog_path`); None when no key log is asked (pyspnego's own context).

    pyspnego's defaults are kept (TLS 1.2 minimum, no certificate check: MS-CSSP 3.1.5 step 1);
    only ``keylog_filename`` is added, plus, for an acceptor, its certificate and the public key
    that ``pubKeyAuth`` binds (MS-CSSP 3.1.5 steps 3-4). AuthError when the file cannot be opened.
    """
    path = keylog_path(tls_keylog)
    if path is None:
        return None
    context = spnego.tls.default_tls_context(usage=usage)
    if usage == "accept":
        cert_pem, key_pem, public_key = _acceptor_certificate()
        # ssl loads a certificate chain from a file only: a private directory, removed at once
        with tempfile.TemporaryDirectory(prefix="wmh-credssp-") as directory:
            chain = Path(directory) / "chain.pem"
            chain.write_bytes(cert_pem + key_pem)
            context.context.load_cert_chain(str(chain))
        context.public_key = public_key
    try:
        context.context.keylog_filename = path
    except OSError as exc:
        raise AuthError(f"cannot open the TLS key log {path}: {exc.strerror or exc}") from exc
    return context


def seal(context: WinRMSealer, message: bytes, protocol: str) -> tuple[str, bytes]:
    """``(Content-Type, body)`` of ``message`` sealed for ``protocol`` (CredSSP pieces of 16 KiB)."""
    if protocol.lower() != CREDSSP_PROTOCOL.lower() or len(message) <= CHUNK:
        return wrap_message(context, message, protocol)
    parts = []
    for start in range(0, len(message), CHUNK):
        piece = message[start:start + CHUNK]
        result = context.wrap_winrm(piece)
        parts.append(EncryptedPart(protocol, ORIGINAL_TYPE, len(piece) + result.padding_length,
                                   result.header, result.data))
    content_type = f'{MULTI_ENCRYPTED_TYPE};protocol="{protocol}";boundary="{BOUNDARY}"'
    return content_type, build_body(parts)


def new_acceptor(hostname: str, *, tls_keylog: str | None = None) -> Any:
    """A CredSSP acceptor context (its TLS certificate generated by pyspnego, as WinRM makes its own);
    with a key log asked (:func:`keylog_path`) its TLS secrets are written there (:func:`tls_context`)."""
    kwargs: dict[str, Any] = {}
    context = tls_context("accept", tls_keylog)
    if context is not None:
        kwargs["credssp_tls_context"] = context
    try:
        return spnego.server(hostname=hostname, service="HTTP", protocol="credssp",
                             credssp_min_protocol=MIN_VERSION, **kwargs)
    except SpnegoError as exc:
        raise AuthError(f"cannot start a CredSSP acceptor: {type(exc).__name__}") from exc


def accept_step(context: Any, token: bytes, users: UserDatabase) -> tuple[bytes | None, LocalUser | None]:
    """One CredSSP leg: ``(token to send, user once complete)``; AuthError when refused.

    The inner SPNEGO/NTLM acceptor reads the local users from the NTLM credential file; once the
    context completes, the delegated TSPasswordCreds must name the user that authenticated
    (MS-CSSP 3.1.5 step 5) and is then dropped from the context.
    """
    try:
        with ntlm_user_file(users):
            out = context.step(token)
    except SpnegoError as exc:
        raise AuthError(f"CredSSP handshake failed: {type(exc).__name__}") from exc
    except (ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeError, OSError) as exc:
        raise AuthError(f"malformed CredSSP token: {type(exc).__name__}") from exc
    if not context.complete:
        if out is None:
            raise AuthError("CredSSP handshake stalled")
        return out, None
    principal = context.client_principal or ""
    user = users.lookup(principal)
    delegated = context.get_extra_info("client_credential")
    delegated_user = str(getattr(delegated, "username", "") or "")
    _forget_delegated(context)
    if user is None:
        raise AuthError("authenticated principal is not a local user")
    if not delegated_user or bare_name(delegated_user).lower() != user.name.lower():
        raise AuthError("delegated credentials do not name the authenticated user")
    return out, user


def _forget_delegated(context: Any) -> None:
    """Drop the delegated TSCredentials pyspnego keeps on an acceptor context (never stored)."""
    if hasattr(context, "_ts_credential"):
        context._ts_credential = None


def new_initiator(username: str, password: str, *, hostname: str, inner: Any,
                  tls_keylog: str | None = None) -> Any:
    """A CredSSP initiator context delegating ``username``'s password; ``inner`` is its SPNEGO context.
    With a key log asked (:func:`keylog_path`) its TLS secrets are written there (:func:`tls_context`)."""
    kwargs: dict[str, Any] = {}
    context = tls_context("initiate", tls_keylog)
    if context is not None:
        kwargs["credssp_tls_context"] = context
    try:
        return spnego.client(username, password, hostname=hostname, service="HTTP", protocol="credssp",
                             credssp_negotiate_context=inner, **kwargs)
    except SpnegoError as exc:
        raise AuthError(f"cannot start a CredSSP initiator: {type(exc).__name__}") from exc


__all__ = [
    "CHUNK",
    "CREDSSP_PROTOCOL",
    "CREDSSP_SCHEME",
    "KEYLOG_ENV",
    "MULTI_ENCRYPTED_TYPE",
    "accept_step",
    "keylog_path",
    "new_acceptor",
    "new_initiator",
    "seal",
    "tls_context",
]

"""HTTP(S) transport for WS-Man clients: one POST per envelope, tapped, with timeouts.

MS-WSMV 2.1: WS-Man messages travel as HTTP POST bodies of type ``application/soap+xml``; the
service answers faults with HTTP 500 (observed Windows behaviour, where SOAP 1.2's HTTP binding
would allow 400 for sender faults) and authentication failures with 401.

Authentication (MS-WSMV 2.2.9.1): ``basic`` sends credentials with every request; ``ntlm`` and
``negotiate`` run a 401 handshake whose context is bound to the TCP connection (the connector
keeps a single keep-alive connection), and with message encryption (``encryption="auto"`` over
HTTP, ``"always"``) the handshake is an empty POST and every envelope then travels sealed as
``multipart/encrypted`` (MS-WSMV 2.2.9.1.1), as the Windows client and pypsrp do. The tap records
bodies exactly as they are on the wire (sealed) and headers with tokens redacted.

TLS key log (for decrypting a capture of an HTTPS session, ``wmh check-pcap --tls-keylog``): with
``tls_keylog=PATH``, or else when the ``SSLKEYLOGFILE`` environment variable names a file, the TLS
secrets of every connection are appended to that file in the NSS key log format
(``SSLContext.keylog_filename``; ``CLIENT_RANDOM`` lines for TLS 1.2, the traffic secrets for TLS
1.3). Never by default: nothing is written unless one of the two is set. The file holds session
keys: keep it with the capture, never in a report.

``kerberos`` and ``credssp`` run the same way under the ``Kerberos`` / ``Negotiate`` and ``CredSSP``
schemes; their sealed messages are labelled ``application/HTTP-Kerberos-session-encrypted`` and
``application/HTTP-CredSSP-session-encrypted`` (CredSSP in 16 KiB pieces, MS-WSMV 2.2.9.1.2).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from harness.auth.credssp import CREDSSP_PROTOCOL, seal
from harness.auth.encryption import is_encrypted, unwrap_message
from harness.auth.errors import AuthError
from harness.auth.headers import basic_credentials, offered_schemes
from harness.auth.initiator import Initiator, check_scheme
from harness.auth.kerberos import encryption_protocol
from harness.auth.tls import client_ssl_context
from harness.transport.body import read_body
from harness.transport.tap import Tap
from harness.wire.wsman.ns import SOAP_CONTENT_TYPE

ENCRYPTION_MODES = ("auto", "always", "never")
#: The environment variable naming a TLS key log file (the NSS / OpenSSL / browsers convention).
KEYLOG_ENV = "SSLKEYLOGFILE"


class TransportError(Exception):
    """The target could not be reached, timed out, or answered outside WS-Man (with the reason)."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Wire:
    reply: HttpReply
    www_authenticate: list[str]
    peer_cert: bytes | None


class HttpTransport:
    """POSTs envelopes to one endpoint. Every request and response goes through the tap."""

    def __init__(self, url: str, *, username: str | None, password: str | None, tap: Tap,
                 timeout: float = 30.0, max_response_bytes: int = 64 * 1024 * 1024,
                 auth: str = "basic", encryption: str = "auto", verify_tls: bool | str = True,
                 tls_keylog: str | None = None) -> None:
        self.url = url
        try:
            self.auth = check_scheme(auth)
        except AuthError as exc:
            raise TransportError(exc.reason) from exc
        if encryption not in ENCRYPTION_MODES:
            raise TransportError(f"encryption must be one of {', '.join(ENCRYPTION_MODES)}, got {encryption!r}")
        self.https = urlsplit(url).scheme.lower() == "https"
        #: MS-WSMV 2.2.9.1: message encryption needs a session key, so never with Basic; "auto" seals over HTTP.
        self.encrypt = self.auth != "basic" and (encryption == "always" or (encryption == "auto" and not self.https))
        self._username = username
        self._password = password
        self._auth_header: str | None = None
        if username is not None and self.auth == "basic":
            self._auth_header = basic_credentials(username, password or "")
        self._tap = tap
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self._max_response = max_response_bytes
        self._ssl: ssl.SSLContext | None = None
        if self.https:
            try:
                self._ssl = client_ssl_context(verify_tls)
            except AuthError as exc:
                raise TransportError(exc.reason) from exc
            self._ssl.keylog_filename = None   # type: ignore[assignment]  # only what is asked below
            keylog = tls_keylog or os.environ.get(KEYLOG_ENV) or None
            if keylog:
                try:
                    self._ssl.keylog_filename = keylog
                except OSError as exc:
                    raise TransportError(f"cannot open the TLS key log {keylog}: {exc.strerror or exc}") from exc
        #: the TLS key log file this transport writes to (None: none)
        self.tls_keylog: str | None = self._ssl.keylog_filename if self._ssl is not None else None
        #: the key log asked for explicitly; CredSSP's inner TLS session writes there too (MS-CSSP 3.1.5)
        self._keylog_asked = tls_keylog
        self._session: aiohttp.ClientSession | None = None
        self._context: Any = None
        self._protocol = encryption_protocol("Negotiate")
        self._lock = asyncio.Lock()
        tap.add_secret(password)

    def _new_session(self) -> aiohttp.ClientSession:
        # Negotiate contexts belong to a TCP connection: keep exactly one keep-alive connection.
        connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True,
                                         limit=1 if self.auth != "basic" else 100)
        return aiohttp.ClientSession(timeout=self._timeout, connector=connector)

    async def __aenter__(self) -> HttpTransport:
        self._session = self._new_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._context = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def security_context(self) -> Any:
        """The established NTLM/SPNEGO context of the connection (None before a handshake or with Basic)."""
        return self._context

    async def post(self, body: bytes, *, authenticated: bool = True,
                   extra_headers: dict[str, str] | None = None) -> HttpReply:
        headers = {"Content-Type": SOAP_CONTENT_TYPE, **(extra_headers or {})}
        if not authenticated or self._username is None:
            return (await self._send(body, headers)).reply
        if self.auth == "basic":
            assert self._auth_header is not None
            return (await self._send(body, {**headers, "Authorization": self._auth_header})).reply
        async with self._lock:
            try:
                if self.encrypt:
                    return await self._post_sealed(body, headers)
                return await self._post_plain(body, headers)
            except AuthError as exc:
                self._context = None
                raise TransportError(f"authentication with {self.url} failed: {exc.reason}") from exc

    async def _post_plain(self, body: bytes, headers: dict[str, str]) -> HttpReply:
        if self._context is not None:
            wire = await self._send(body, headers)
            if wire.reply.status != 401:
                return wire.reply
            self._context = None   # the connection was replaced: authenticate again
        return await self._handshake(body, headers)

    async def _post_sealed(self, body: bytes, headers: dict[str, str]) -> HttpReply:
        for _attempt in range(2):
            if self._context is None:
                reply = await self._handshake(b"", {})
                if self._context is None:
                    return reply   # refused (401) or no authentication required
            content_type, sealed = seal(self._context, body, self._protocol)
            wire = await self._send(sealed, {**headers, "Content-Type": content_type})
            if wire.reply.status == 401:
                self._context = None
                continue
            ctype = wire.reply.headers.get("Content-Type", "")
            if not is_encrypted(ctype):
                return wire.reply
            plain = unwrap_message(self._context, ctype, wire.reply.body, max_length=self._max_response)
            return HttpReply(wire.reply.status, {**wire.reply.headers, "Content-Type": SOAP_CONTENT_TYPE}, plain)
        return wire.reply

    async def _handshake(self, body: bytes, headers: dict[str, str]) -> HttpReply:
        """The 401 dance of RFC 4559 4: learn the offered schemes, then exchange tokens on one connection."""
        first = await self._send(body, headers)
        if first.reply.status != 401:
            return first.reply
        offered = offered_schemes(first.www_authenticate)
        initiator = Initiator(self.auth, self._username or "", self._password or "", hostname=urlsplit(
            self.url).hostname or "localhost", encrypt=self.encrypt, cert_der=first.peer_cert, offered=offered,
            tls_keylog=self._keylog_asked)
        wanted = initiator.http_scheme.lower()
        if wanted not in offered:
            raise AuthError(f"server does not offer {initiator.http_scheme} "
                            f"(offers: {', '.join(offered) or 'nothing'})")
        token = initiator.step()
        wire = first
        while token is not None:
            wire = await self._send(body, {**headers, "Authorization": token})
            server_token = offered_schemes(wire.www_authenticate).get(wanted) or None
            if wire.reply.status != 401:
                if server_token is not None and not initiator.complete:
                    initiator.step(server_token)   # the final SPNEGO token (mechListMIC)
                break
            if server_token is None:
                return wire.reply   # refused: wrong credentials, binding or policy
            token = initiator.step(server_token)
        if initiator.complete and wire.reply.status != 401:
            self._context = initiator.context
            self._protocol = (CREDSSP_PROTOCOL if self.auth == "credssp"
                              else encryption_protocol(initiator.http_scheme))
        return wire.reply

    async def _send(self, body: bytes, headers: dict[str, str]) -> _Wire:
        if self._session is None:
            self._session = self._new_session()
        self._tap.record(protocol="wsman", direction="request", peer=self.url, headers=headers, body=body)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                peer_cert = _peer_certificate(resp)
                data = await read_body(resp.content, self._max_response + 1)
                if len(data) > self._max_response:
                    raise TransportError(f"response larger than {self._max_response} bytes")
                wire = _Wire(HttpReply(resp.status, dict(resp.headers), data),
                             list(resp.headers.getall("WWW-Authenticate", [])), peer_cert)
        except TimeoutError as exc:
            raise TransportError(f"no answer from {self.url} within {self._timeout.total} s") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"HTTP exchange with {self.url} failed: {exc}") from exc
        self._tap.record(protocol="wsman", direction="response", peer=self.url, headers=wire.reply.headers,
                         body=wire.reply.body, status=wire.reply.status)
        return wire


def _peer_certificate(resp: aiohttp.ClientResponse) -> bytes | None:
    """DER certificate of the TLS peer (for ``tls-server-end-point``, RFC 5929), None over HTTP."""
    connection = resp.connection
    transport = connection.transport if connection is not None else None
    if transport is None:
        # aiohttp returns a connection to the pool as soon as a short body (a 401) is complete;
        # the response still holds the connection's protocol, whose transport is the TLS socket.
        protocol = getattr(resp, "_protocol", None)
        transport = getattr(protocol, "transport", None)
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert(binary_form=True)
    return bytes(cert) if cert else None

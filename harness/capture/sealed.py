"""Following an HTTP authentication handshake along a captured TCP stream and opening the
WS-Man messages it sealed (MS-WSMV 2.2.9.1.1; 2.2.9.1.2 for the multi-part form).

Requests and answers are paired in order (RFC 9112 9.3). Each request's ``Authorization`` and each
answer's ``WWW-Authenticate`` headers step the scheme's :class:`SealingHandshake` (NTLM in
:mod:`harness.capture.decrypt`, Kerberos in :mod:`harness.capture.krb_decrypt`); every
``multipart/encrypted`` body is opened with the session in force when it was sent.
"""

from __future__ import annotations

from typing import Protocol

from harness.auth.encryption import EncryptedPart, parse_body, parse_content_type
from harness.auth.errors import EncryptionError
from harness.capture.check import NotDecryptable, Opened
from harness.capture.http1 import HttpMessage, extract_messages
from harness.capture.reader import TcpStream

SEALED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")


class SealingHandshake(Protocol):
    """One authentication scheme's state along one TCP stream."""

    #: The scheme's name in reasons ("NTLM/SPNEGO", "Kerberos").
    name: str
    #: The part protocols it opens (lower case), e.g. ``application/http-spnego-session-encrypted``.
    protocols: tuple[str, ...]
    #: Why a sealed body cannot be opened while no session is in force.
    failure: Opened

    @property
    def ready(self) -> bool:
        """A session is in force."""

    def on_request(self, authorization: str | None) -> None:
        """A request's Authorization header (may start or end a session)."""

    def on_response(self, www_authenticate: list[str]) -> None:
        """An answer's WWW-Authenticate headers."""

    def open_part(self, from_client: bool, part: EncryptedPart) -> bytes:
        """One sealed part's plaintext; ValueError (or EncryptionError) when it does not open."""


def open_sealed_stream(stream: TcpStream, handshake: SealingHandshake) -> dict[tuple[bool, int], Opened]:
    """Every sealed message of ``stream``, keyed by (is request, body offset): its plaintext, or
    why it cannot be opened."""
    out: dict[tuple[bool, int], Opened] = {}
    requests = extract_messages(stream.to_server, True)
    responses = [r for r in extract_messages(stream.to_client, False, [m.method for m in requests])
                 if r.status is None or r.status >= 200]
    for i, request in enumerate(requests):
        handshake.on_request(request.header("Authorization"))
        _open(out, handshake, request, True)
        response = responses[i] if i < len(responses) else None
        if response is None:
            continue
        handshake.on_response([v for n, v in response.headers if n.lower() == "www-authenticate"])
        _open(out, handshake, response, False)
    return out


def _open(out: dict[tuple[bool, int], Opened], handshake: SealingHandshake, message: HttpMessage,
          from_client: bool) -> None:
    content_type = message.header("Content-Type") or ""
    if not content_type.lower().startswith(SEALED_TYPES):
        return
    key = (from_client, message.offset)
    if not handshake.ready:
        out[key] = handshake.failure
        return
    try:
        protocol, boundary = parse_content_type(content_type)
        if protocol.lower() not in handshake.protocols:
            out[key] = NotDecryptable(f"protocol {protocol} is not {handshake.name} session encryption")
            return
        out[key] = b"".join(handshake.open_part(from_client, part) for part in parse_body(message.body, boundary))
    except (EncryptionError, ValueError) as exc:
        out[key] = str(getattr(exc, "reason", exc))


__all__ = ["SEALED_TYPES", "SealingHandshake", "open_sealed_stream"]

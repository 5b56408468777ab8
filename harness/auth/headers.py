"""HTTP authentication headers: ``Authorization`` and ``WWW-Authenticate`` (RFC 7235, RFC 7617, RFC 4559)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from harness.auth.errors import AuthError

#: Tokens longer than this are refused before decoding (an NTLM or SPNEGO token is a few hundred bytes;
#: Kerberos tickets with a PAC stay well under 64 KiB).
MAX_TOKEN_CHARS = 65_536


def split_credentials(value: str) -> tuple[str, str]:
    """``"Negotiate TlRMTV..."`` -> ``("negotiate", "TlRMTV...")``; the scheme lower-cased (RFC 7235 2.1)."""
    scheme, _, rest = value.strip().partition(" ")
    return scheme.lower(), rest.strip()


def decode_token(text: str) -> bytes:
    """Base64 token of a Negotiate/NTLM header (RFC 4559 4.2); AuthError when malformed or oversized."""
    if not text:
        raise AuthError("authentication header carries no token")
    if len(text) > MAX_TOKEN_CHARS:
        raise AuthError(f"authentication token longer than {MAX_TOKEN_CHARS} characters")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthError("authentication token is not valid base64") from exc


def encode_token(scheme: str, token: bytes) -> str:
    return f"{scheme} {base64.b64encode(token).decode('ascii')}"


def basic_credentials(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP Basic (RFC 7617 2), UTF-8 user-pass."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def parse_basic(token: str) -> tuple[str, str]:
    """Decode a Basic user-pass (RFC 7617 2); AuthError when malformed."""
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("Basic credentials too long")
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise AuthError("Basic credentials are not valid base64 UTF-8") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AuthError("Basic credentials lack the ':' separator")
    return user, password


def offered_schemes(values: Iterable[str]) -> dict[str, str]:
    """Schemes of ``WWW-Authenticate`` header lines -> the rest of the challenge ('' when none).

    Windows sends one scheme per header line (``Negotiate``, ``Basic realm="WSMAN"``); a
    comma-joined list is accepted too (RFC 7235 4.1). For Negotiate/NTLM the rest is the token.
    """
    offered: dict[str, str] = {}
    for value in values:
        for part in _split_challenges(value):
            scheme, rest = split_credentials(part)
            if scheme:
                offered.setdefault(scheme, rest)
    return offered


def _split_challenges(value: str) -> list[str]:
    """Split a comma-joined challenge list; ``realm="a,b"`` and ``x=y`` parameters stay with their scheme."""
    parts: list[str] = []
    current = ""
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            if current.strip():
                parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    merged: list[str] = []
    for part in parts:
        first = part.split(" ", 1)[0]
        if merged and "=" in first and not first.endswith("="):
            merged[-1] = f"{merged[-1]}, {part}"   # an auth-param of the previous challenge
        else:
            merged.append(part)
    return merged

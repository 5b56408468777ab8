"""WS-Man message encryption over HTTP, sans-IO (MS-WSMV 2.2.9.1.1, 2.2.9.1.2).

An encrypted message is an HTTP body of type
``multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"``::

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<N>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <signature length: 4 bytes little-endian><signature><sealed SOAP message>--Encrypted Boundary--\\r\\n

The signature and sealed data come from GSS_WrapEx over the SOAP bytes with the security context
of the connection (for NTLM: the 16-byte MS-NLMP 3.4.4 signature, RC4-sealed data of the same
length). ``Length`` is the length of the plain message plus any cipher padding. Windows, pywinrm
and pypsrp all write exactly this layout (observed: the header lines start with a TAB and the
octet-stream part has no blank line before the binary data).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Protocol

from harness.auth.errors import EncryptionError
from harness.wire.wsman.ns import SOAP_CONTENT_TYPE

SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
BOUNDARY = "Encrypted Boundary"
ENCRYPTED_TYPE = "multipart/encrypted"
ORIGINAL_TYPE = SOAP_CONTENT_TYPE  # the OriginalContent type of a sealed part (MS-WSMV 2.2.9.1.1)
#: Largest signature accepted (NTLM: 16 bytes; Kerberos RFC 4121 wrap tokens: 60 + padding).
MAX_SIGNATURE = 1024


class WinRMSealer(Protocol):
    """The part of a pyspnego ``ContextProxy`` that seals WinRM messages."""

    def wrap_winrm(self, data: bytes) -> WinRMWrapResultLike: ...

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes: ...


class WinRMWrapResultLike(Protocol):
    @property
    def header(self) -> bytes: ...
    @property
    def data(self) -> bytes: ...
    @property
    def padding_length(self) -> int: ...


@dataclass(frozen=True)
class EncryptedPart:
    """One sealed message of a ``multipart/encrypted`` body."""

    protocol: str
    original_type: str
    length: int
    signature: bytes
    sealed: bytes


def content_type(protocol: str = SPNEGO_PROTOCOL) -> str:
    """The HTTP ``Content-Type`` of an encrypted body (MS-WSMV 2.2.9.1.1)."""
    return f'{ENCRYPTED_TYPE};protocol="{protocol}";boundary="{BOUNDARY}"'


def is_encrypted(content_type_value: str) -> bool:
    return content_type_value.strip().lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


def parse_content_type(value: str) -> tuple[str, str]:
    """``(protocol, boundary)`` of an encrypted ``Content-Type``; EncryptionError when either is missing."""
    if not is_encrypted(value):
        raise EncryptionError(f"not an encrypted content type: {value[:100]!r}")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(value)}
    protocol = params.get("protocol")
    boundary = params.get("boundary")
    if not protocol or not boundary:
        raise EncryptionError("encrypted Content-Type lacks protocol or boundary")
    return protocol, boundary


def build_part(part: EncryptedPart, boundary: str = BOUNDARY) -> bytes:
    """Serialise one sealed message (without the closing boundary)."""
    marker = b"--" + boundary.encode("ascii")
    header = (marker + b"\r\n"
              + b"\tContent-Type: " + part.protocol.encode("ascii") + b"\r\n"
              + b"\tOriginalContent: type=" + part.original_type.encode("ascii")
              + b";Length=" + str(part.length).encode("ascii") + b"\r\n"
              + marker + b"\r\n"
              + b"\tContent-Type: application/octet-stream\r\n")
    return header + struct.pack("<I", len(part.signature)) + part.signature + part.sealed


def build_body(parts: list[EncryptedPart], boundary: str = BOUNDARY) -> bytes:
    return b"".join(build_part(p, boundary) for p in parts) + b"--" + boundary.encode("ascii") + b"--\r\n"


def parse_body(body: bytes, boundary: str = BOUNDARY, *, max_length: int = 64 * 1024 * 1024) -> list[EncryptedPart]:
    """Split an encrypted body into its sealed messages; EncryptionError on any deviation.

    The binary part is delimited by the signature length and ``Length`` (never by scanning for
    the boundary, which may occur inside ciphertext).
    """
    marker = b"--" + boundary.encode("ascii", "replace")
    parts: list[EncryptedPart] = []
    pos = 0
    while True:
        if body.startswith(marker + b"--", pos):
            rest = body[pos + len(marker) + 2:]
            if rest not in (b"", b"\r\n"):
                raise EncryptionError("data after the closing boundary")
            break
        if not body.startswith(marker + b"\r\n", pos):
            raise EncryptionError(f"expected boundary {marker.decode(errors='replace')!r} at offset {pos}")
        pos += len(marker) + 2
        end = body.find(marker, pos)
        if end < 0:
            raise EncryptionError("second boundary of an encrypted part is missing")
        headers = _headers(body[pos:end])
        protocol = headers.get("content-type", "")
        original = headers.get("originalcontent", "")
        match = re.search(r"Length=(\d{1,10})", original)
        if not protocol or match is None:
            raise EncryptionError("encrypted part lacks Content-Type or OriginalContent Length")
        length = int(match.group(1))
        if length > max_length:
            raise EncryptionError(f"encrypted part of {length} bytes exceeds the limit of {max_length}")
        original_type = original.removeprefix("type=").split(";Length=")[0]
        pos = end + len(marker)
        octet_header = b"\r\n\tContent-Type: application/octet-stream\r\n"
        if body.startswith(octet_header, pos):
            pos += len(octet_header)
        elif body.startswith(b"\r\nContent-Type: application/octet-stream\r\n", pos):
            pos += len(octet_header) - 1
        else:
            raise EncryptionError("octet-stream part header missing")
        if pos + 4 > len(body):
            raise EncryptionError("signature length missing")
        (sig_len,) = struct.unpack_from("<I", body, pos)
        pos += 4
        if sig_len == 0 or sig_len > MAX_SIGNATURE or pos + sig_len + length > len(body):
            raise EncryptionError(f"signature length {sig_len} or Length {length} does not fit the body")
        signature = body[pos:pos + sig_len]
        pos += sig_len
        sealed_length = length
        if protocol.lower() == CREDSSP_PROTOCOL.lower():
            # CredSSP seals with TLS records whose overhead is split between the "signature" and the
            # data by a guess of the record layout, so the data may run a few bytes past Length
            # (observed with pyspnego / pypsrp over TLS 1.3): that part ends at the next boundary.
            following = body.find(marker, pos + length)
            if following < 0:
                raise EncryptionError("boundary after a CredSSP part is missing")
            sealed_length = following - pos
        sealed = body[pos:pos + sealed_length]
        pos += sealed_length
        parts.append(EncryptedPart(protocol, original_type, length, signature, sealed))
    if not parts:
        raise EncryptionError("encrypted body holds no part")
    return parts


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in block.split(b"\r\n"):
        line = raw.strip().decode("ascii", "replace")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise EncryptionError(f"malformed encrypted part header {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _is_rfc1964_wrap_token(signature: bytes) -> bool:
    """True for an RFC 1964 / RFC 4757 7.3 wrap token (TOK_ID 02 01, the RC4-HMAC form), bare or
    inside the GSS framing of RFC 2743 3.1 (0x60, DER length, mechanism OID); RFC 4121 tokens
    (TOK_ID 05 04) and NTLM signatures are not."""
    if signature[:2] == b"\x02\x01":
        return True
    if signature[:1] != b"\x60" or len(signature) < 4:
        return False
    pos = 2 if signature[1] < 0x80 else 2 + (signature[1] & 0x7F)
    if pos + 2 > len(signature) or signature[pos] != 0x06:
        return False
    pos += 2 + signature[pos + 1]
    return signature[pos:pos + 2] == b"\x02\x01"


def _without_rfc1964_padding(signature: bytes, plain: bytes) -> bytes:
    """The SOAP bytes of an unwrapped RFC 1964-style message without its pad (RFC 1964 1.2.2.3:
    1 to 8 bytes each holding the pad length; RC4-HMAC pads with one byte, RFC 4757 7.3). The
    peer counts the pad in OriginalContent Length (pyspnego / pypsrp behaviour), so it is removed
    only after the length check. A SOAP message never ends in a byte below 9."""
    if not plain or not _is_rfc1964_wrap_token(signature):
        return plain
    pad = plain[-1]
    if 1 <= pad <= 8 and len(plain) >= pad and plain[-pad:] == bytes([pad]) * pad:
        return plain[:-pad]
    return plain


def wrap_message(context: WinRMSealer, message: bytes, protocol: str = SPNEGO_PROTOCOL) -> tuple[str, bytes]:
    """Seal ``message``: returns ``(Content-Type, body)`` (MS-WSMV 2.2.9.1.1)."""
    result = context.wrap_winrm(message)
    part = EncryptedPart(protocol, ORIGINAL_TYPE, len(message) + result.padding_length, result.header, result.data)
    return content_type(protocol), build_body([part])


def unwrap_message(context: WinRMSealer, content_type_value: str, body: bytes, *,
                   max_length: int = 64 * 1024 * 1024) -> bytes:
    """Open an encrypted body: the plain SOAP bytes. EncryptionError on a bad layout, signature or length."""
    protocol, boundary = parse_content_type(content_type_value)
    out = bytearray()
    for part in parse_body(body, boundary, max_length=max_length):
        if part.protocol.lower() != protocol.lower():
            raise EncryptionError(f"part protocol {part.protocol!r} differs from Content-Type {protocol!r}")
        try:
            plain = context.unwrap_winrm(part.signature, part.sealed)
        except Exception as exc:   # pyspnego raises its own error family for bad signatures
            raise EncryptionError(f"cannot unseal message: {type(exc).__name__}") from exc
        if len(plain) != part.length:
            raise EncryptionError(f"unsealed length {len(plain)} differs from OriginalContent Length {part.length}")
        out += _without_rfc1964_padding(part.signature, plain)
        if len(out) > max_length:
            raise EncryptionError(f"decrypted message exceeds {max_length} bytes")
    return bytes(out)

"""Open CredSSP-sealed WinRM traffic of a capture with an NSS key log (``wmh check-pcap --tls-keylog``).

With the ``CredSSP`` HTTP scheme a TLS session is tunnelled through the HTTP messages of one TCP
connection (MS-CSSP 3.1.5; MS-WSMV 2.2.9.1.1):

1. ``Authorization: CredSSP <base64>`` / ``WWW-Authenticate: CredSSP <base64>`` carry the bytes the
   two TLS engines exchange: first the TLS handshake records (MS-CSSP 3.1.5 step 1), then TLS
   application-data records whose plaintext is one DER-encoded TSRequest each (MS-CSSP 2.2.1: "The
   TSRequest message is always sent over the TLS-encrypted channel"): the SPNEGO tokens of the inner
   authentication in ``negoTokens`` (step 2), the public-key binding ``pubKeyAuth`` with, from
   version 5 on, the ``clientNonce`` (steps 3-4), and finally ``authInfo``, the user's
   TSCredentials sealed again by the inner context (step 5, 2.2.1.2).
2. Afterwards every WS-Man message is sealed by the same TLS session: a ``multipart/encrypted``
   body with ``protocol="application/HTTP-CredSSP-session-encrypted"`` whose parts hold TLS
   application-data records, the "signature" being the first bytes of the record (header and
   overhead) and the sealed data the rest (MS-WSMV 2.2.9.1.1); a message longer than 16 KiB is
   cut into 16 KiB pieces, each sealed in its own part of a ``multipart/x-multi-encrypted`` body
   (MS-WSMV 2.2.9.1.2). Each part's ``OriginalContent`` ``Length`` is its plaintext length.

So one connection's TLS byte stream per direction is the concatenation, in message order, of the
header tokens and the sealed parts; :class:`~harness.capture.tls.TlsConnectionDecoder` opens it
with the key log (RFC 5246 / RFC 8446 record protection) and each plaintext piece is mapped back to
the message whose bytes held its record. A new ClientHello from the client starts a new TLS
session (a new CredSSP handshake on the same connection).

The report names the CredSSP steps (TLS handshake, TSRequest version, the inner SPNEGO mechanism,
``pubKeyAuth``, ``errorCode``) and says only that an ``authInfo`` (TSCredentials) was present: its
content (the delegated password, sealed by the inner context) is never opened, kept or shown.
Without the session's secrets the stream is ``CredSSP, no keys`` (info, not a failure).

Every malformed input raises :class:`CredSSPDecodeError` (a ValueError with ``reason``) inside
this module and ends up as an error of the message it came from: never a crash.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.auth.encryption import CREDSSP_PROTOCOL, parse_body, parse_content_type
from harness.auth.errors import EncryptionError
from harness.capture.check import Decryptor, KeysMissing, NotDecryptable, Opened, plaintext_of
from harness.capture.http1 import HttpMessage
from harness.capture.reader import TcpStream
from harness.capture.tls import KeyLog, TlsConnectionDecoder, TlsHalf, TlsSession, looks_like_tls
from harness.capture.tls_crypto import (
    CT_ALERT,
    CT_APPLICATION_DATA,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    MAX_CIPHERTEXT_12,
)

__all__ = ["CREDSSP_SCHEME", "CredSSPDecodeError", "CredSSPStream", "SealedPart", "TSRequest", "credssp_token",
           "describe_nego_token", "open_credssp_stream", "parse_ts_request", "parse_ts_requests",
           "sealed_parts", "uses_credssp"]

CREDSSP_SCHEME = "credssp"
#: MS-CSSP 2.2.1: clientNonce is a 32-byte array.
NONCE_LENGTH = 32
#: MS-CSSP 2.2.1: valid TSRequest versions are 2 to 6 (a higher one is treated as the highest known).
MIN_TS_VERSION = 2
MAX_TOKEN = 1 << 20

_SPNEGO_OID = bytes.fromhex("2b0601050502")                       # 1.3.6.1.5.5.2 (RFC 4178 4.1)
_KRB5_OIDS = (bytes.fromhex("2a864886f712010202"),                # 1.2.840.113554.1.2.2 (RFC 4121)
              bytes.fromhex("2a864882f712010202"))                # 1.2.840.48018.1.2.2 (MS-KILE 3.1.5.3)
_NTLM_SIGNATURE = b"NTLMSSP\0"
_NTLM_TYPES = {1: "NEGOTIATE", 2: "CHALLENGE", 3: "AUTHENTICATE"}   # MS-NLMP 2.2.1.1 - 2.2.1.3
_HANDSHAKE_NAMES = {1: "ClientHello", 2: "ServerHello"}             # RFC 8446 4 / RFC 5246 7.4
#: Values a CredSSP acceptor sends in errorCode: NTSTATUS (MS-ERREF 2.3.1) and the SSPI HRESULTs
#: (MS-ERREF 2.1.1) that implementations put there
_NTSTATUS = {0x8009030C: "SEC_E_LOGON_DENIED", 0xC000006D: "STATUS_LOGON_FAILURE",
             0xC000006E: "STATUS_ACCOUNT_RESTRICTION",
             0xC0000022: "STATUS_ACCESS_DENIED", 0xC000015B: "STATUS_LOGON_TYPE_NOT_GRANTED",
             0xC0000064: "STATUS_NO_SUCH_USER", 0xC000006A: "STATUS_WRONG_PASSWORD",
             0xC0000072: "STATUS_ACCOUNT_DISABLED", 0xC0000224: "STATUS_PASSWORD_MUST_CHANGE",
             0xC000018B: "STATUS_NO_TRUST_SAM_ACCOUNT", 0x80090302: "SEC_E_UNSUPPORTED_FUNCTION"}


class CredSSPDecodeError(ValueError):
    """A CredSSP token, TSRequest or sealed body that cannot be read; ``reason`` says why (no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- DER (X.690) ------------------------------------------------------------------------------------

class _Der:
    """Bounds-checked DER reading (X.690 8.1: identifier, definite length, contents; 10.1: DER
    uses the definite form only). Only low tag numbers occur in MS-CSSP 2.2.1."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def tlv(self) -> tuple[int, bytes]:
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise CredSSPDecodeError(f"{self.what}: truncated DER element at offset {pos}")
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise CredSSPDecodeError(f"{self.what}: high tag number at offset {pos} (not in MS-CSSP 2.2.1)")
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        elif first == 0x80:
            raise CredSSPDecodeError(f"{self.what}: indefinite length at offset {pos - 2} (X.690 10.1: DER "
                                     "uses the definite form)")
        else:
            count = first & 0x7F
            if count > 4 or pos + count > len(data):
                raise CredSSPDecodeError(f"{self.what}: bad length of length at offset {pos - 2}")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise CredSSPDecodeError(f"{self.what}: element of {length} bytes at offset {self.pos} runs past "
                                     f"the end ({len(data)} bytes)")
        self.pos = pos + length
        return tag, data[pos:pos + length]

    def expect(self, tag: int, name: str) -> bytes:
        found, content = self.tlv()
        if found != tag:
            raise CredSSPDecodeError(f"{self.what}: {name} has tag 0x{found:02X}, expected 0x{tag:02X}")
        return content


def _integer(content: bytes, name: str) -> int:
    """X.690 8.3: two's complement, at least one byte."""
    if not content or len(content) > 8:
        raise CredSSPDecodeError(f"TSRequest {name}: INTEGER of {len(content)} bytes")
    return int.from_bytes(content, "big", signed=True)


def _explicit(content: bytes, tag: int, name: str) -> bytes:
    """The single element inside an EXPLICIT context tag (X.690 8.14.2)."""
    inner = _Der(content, f"TSRequest {name}")
    value = inner.expect(tag, name)
    if not inner.done:
        raise CredSSPDecodeError(f"TSRequest {name}: data after the value")
    return value


# -- TSRequest (MS-CSSP 2.2.1) ------------------------------------------------------------------------

@dataclass(frozen=True)
class TSRequest:
    """One TSRequest (MS-CSSP 2.2.1)::

        TSRequest ::= SEQUENCE { version [0] INTEGER, negoTokens [1] NegoData OPTIONAL,
            authInfo [2] OCTET STRING OPTIONAL, pubKeyAuth [3] OCTET STRING OPTIONAL,
            errorCode [4] INTEGER OPTIONAL, clientNonce [5] OCTET STRING OPTIONAL }
        NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }

    ``authInfo`` (the sealed TSCredentials, 2.2.1.2) is not kept: only that it was present.
    """

    version: int
    nego_tokens: tuple[bytes, ...] = ()
    auth_info: bool = False
    pub_key_auth: bytes | None = field(default=None, repr=False)
    error_code: int | None = None
    client_nonce: bytes | None = field(default=None, repr=False)
    #: context tags above [5] (a later version's fields), skipped
    unknown_fields: tuple[int, ...] = ()


def parse_ts_request(data: bytes) -> TSRequest:
    """One DER TSRequest filling ``data`` exactly; :class:`CredSSPDecodeError` otherwise."""
    outer = _Der(data, "TSRequest")
    requests = _ts_request(outer)
    if not outer.done:
        raise CredSSPDecodeError(f"TSRequest: {len(data) - outer.pos} byte(s) after the SEQUENCE")
    return requests


def parse_ts_requests(data: bytes) -> list[TSRequest]:
    """The TSRequests of one direction's plaintext (one after another); CredSSPDecodeError."""
    reader = _Der(data, "TSRequest")
    out: list[TSRequest] = []
    while not reader.done:
        out.append(_ts_request(reader))
    return out


def _ts_request(reader: _Der) -> TSRequest:
    body = _Der(reader.expect(0x30, "TSRequest"), "TSRequest")
    last = -1
    version: int | None = None
    tokens: tuple[bytes, ...] = ()
    auth_info = False
    pub_key_auth = error_code = client_nonce = None
    unknown: list[int] = []
    while not body.done:
        tag, content = body.tlv()
        if tag & 0xE0 != 0xA0:
            raise CredSSPDecodeError(f"TSRequest: field with tag 0x{tag:02X} is not a context-specific [n]")
        number = tag & 0x1F
        if number <= last:
            raise CredSSPDecodeError(f"TSRequest: field [{number}] out of order or repeated (X.690 10: DER "
                                     "SEQUENCE order)")
        last = number
        if number == 0:
            version = _integer(_explicit(content, 0x02, "version"), "version")
        elif number == 1:
            tokens = _nego_data(content)
        elif number == 2:
            _explicit(content, 0x04, "authInfo")
            auth_info = True
        elif number == 3:
            pub_key_auth = _explicit(content, 0x04, "pubKeyAuth")
        elif number == 4:
            error_code = _integer(_explicit(content, 0x02, "errorCode"), "errorCode") & 0xFFFFFFFF
        elif number == 5:
            client_nonce = _explicit(content, 0x04, "clientNonce")
        else:
            unknown.append(number)
    if version is None:
        raise CredSSPDecodeError("TSRequest: version [0] missing")
    return TSRequest(version, tokens, auth_info, pub_key_auth, error_code, client_nonce, tuple(unknown))


def _nego_data(content: bytes) -> tuple[bytes, ...]:
    """NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING } (MS-CSSP 2.2.1.1)."""
    seq = _Der(_explicit(content, 0x30, "negoTokens"), "TSRequest negoTokens")
    tokens: list[bytes] = []
    while not seq.done:
        item = _Der(seq.expect(0x30, "NegoData item"), "TSRequest NegoData item")
        tokens.append(_explicit(item.expect(0xA0, "negoToken"), 0x04, "negoToken"))
        if not item.done:
            raise CredSSPDecodeError("TSRequest NegoData item: data after negoToken")
    return tuple(tokens)


def describe_nego_token(token: bytes) -> str:
    """What a negoToken carries: the SPNEGO token kind (RFC 4178 4.2.1 NegTokenInit, 4.2.2
    NegTokenResp; RFC 2743 3.1 framing) and the mechanism inside (NTLM message type, MS-NLMP
    2.2.1; Kerberos by its OID, RFC 4121 / MS-KILE)."""
    if not token:
        return "empty"
    first = token[0]
    if first == 0x60:
        outer = "SPNEGO NegTokenInit" if _SPNEGO_OID in token[:24] else "GSS-API token"
    elif first == 0xA0:
        outer = "SPNEGO NegTokenInit"
    elif first == 0xA1:
        outer = "SPNEGO NegTokenResp"
    elif token.startswith(_NTLM_SIGNATURE):
        outer = "NTLM"
    else:
        outer = f"token 0x{first:02X}"
    inner: str | None = None
    index = token.find(_NTLM_SIGNATURE)
    if index >= 0 and index + 12 <= len(token):
        (kind,) = struct.unpack_from("<I", token, index + 8)
        inner = f"NTLM {_NTLM_TYPES.get(kind, f'message type {kind}')}"
    elif any(oid in token for oid in _KRB5_OIDS):
        inner = "Kerberos"
    if outer == "NTLM":
        return inner or outer
    if inner is None:
        return outer if outer != "SPNEGO NegTokenResp" else outer + " (no mechanism token)"
    return f"{outer} ({inner})"


def _status_name(code: int) -> str:
    name = _NTSTATUS.get(code)
    return f"0x{code:08X}" + (f" ({name})" if name else "")


# -- HTTP side: tokens and sealed bodies ---------------------------------------------------------------

def credssp_token(value: str | None) -> bytes | None:
    """The bytes of a ``CredSSP <base64>`` Authorization / WWW-Authenticate value (the scheme is
    case-insensitive, RFC 9110 11.1); None for another scheme or a bare ``CredSSP`` challenge;
    :class:`CredSSPDecodeError` for bad base64."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != CREDSSP_SCHEME or not rest.strip():
        return None
    text = rest.strip()
    if len(text) > MAX_TOKEN * 4 // 3 + 4:
        raise CredSSPDecodeError(f"CredSSP token of {len(text)} base64 characters exceeds the limit")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CredSSPDecodeError("CredSSP token is not valid base64") from None


def _tokens_of(msg: HttpMessage) -> list[bytes]:
    """The CredSSP tokens of a message's authentication headers, in header order."""
    name = "authorization" if msg.is_request else "www-authenticate"
    out: list[bytes] = []
    for n, v in msg.headers:
        if n.lower() == name:
            token = credssp_token(v)
            if token:
                out.append(token)
    return out


def _is_credssp_body(msg: HttpMessage) -> bool:
    value = msg.header("Content-Type") or ""
    return CREDSSP_PROTOCOL.lower() in value.lower()


def uses_credssp(messages: Sequence[HttpMessage]) -> bool:
    """Does any message use the CredSSP scheme (a ``CredSSP`` auth header or a CredSSP-sealed body)?"""
    for msg in messages:
        if _is_credssp_body(msg):
            return True
        name = "authorization" if msg.is_request else "www-authenticate"
        if any(n.lower() == name and v.strip().lower().startswith(CREDSSP_SCHEME) for n, v in msg.headers):
            return True
    return False


@dataclass(frozen=True)
class SealedPart:
    """One sealed part of a CredSSP body: its plaintext ``length`` (OriginalContent Length) and its
    TLS application-data records (the "signature" and the sealed data put back together)."""

    length: int
    records: bytes = field(repr=False)


def _check_records(data: bytes, where: str) -> None:
    """``data`` is whole TLS application-data records (RFC 8446 5.1 / RFC 5246 6.2: type, version 3.x,
    16-bit length, at most 2^14 + 2048 bytes of fragment)."""
    pos = 0
    while pos < len(data):
        if pos + 5 > len(data):
            raise CredSSPDecodeError(f"{where}: TLS record header cut at byte {pos}")
        ctype, major, length = data[pos], data[pos + 1], int.from_bytes(data[pos + 3:pos + 5], "big")
        if ctype != CT_APPLICATION_DATA or major != 3:
            raise CredSSPDecodeError(f"{where}: byte {pos} is not a TLS application-data record "
                                     f"(type {ctype}, version {major}.{data[pos + 2]})")
        if length > MAX_CIPHERTEXT_12 or pos + 5 + length > len(data):
            raise CredSSPDecodeError(f"{where}: TLS record of {length} bytes at byte {pos} does not fit the part")
        pos += 5 + length
    if pos == 0:
        raise CredSSPDecodeError(f"{where}: no TLS record")


def sealed_parts(content_type: str, body: bytes) -> list[SealedPart]:
    """The sealed parts of a CredSSP ``multipart/encrypted`` or ``multipart/x-multi-encrypted`` body
    (MS-WSMV 2.2.9.1.1, 2.2.9.1.2); :class:`CredSSPDecodeError` on any deviation."""
    try:
        protocol, boundary = parse_content_type(content_type)
        if protocol.lower() != CREDSSP_PROTOCOL.lower():
            raise CredSSPDecodeError(f"protocol {protocol} is not CredSSP session encryption")
        parts = parse_body(body, boundary)
    except EncryptionError as exc:
        raise CredSSPDecodeError(exc.reason) from None
    out: list[SealedPart] = []
    for i, part in enumerate(parts):
        if part.protocol.lower() != CREDSSP_PROTOCOL.lower():
            raise CredSSPDecodeError(f"part {i + 1}: Content-Type {part.protocol} is not {CREDSSP_PROTOCOL}")
        records = part.signature + part.sealed
        _check_records(records, f"part {i + 1}")
        out.append(SealedPart(part.length, records))
    return out


# -- one connection ---------------------------------------------------------------------------------------

@dataclass
class _Segment:
    """Bytes of one message in one TLS direction: [start, end) of that direction's stream."""

    key: tuple[bool, int]
    from_client: bool
    start: int
    end: int
    data: bytes = field(repr=False)
    part: int | None = None        # None: a header token; else the sealed part's index
    length: int = 0                # OriginalContent Length of a sealed part


@dataclass
class _Session:
    decoder: TlsConnectionDecoder
    segments: list[_Segment] = field(default_factory=list)
    sent: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    result: TlsSession | None = None

    def add(self, key: tuple[bool, int], from_client: bool, data: bytes, part: int | None = None,
            length: int = 0) -> None:
        start = self.sent[from_client]
        self.sent[from_client] = start + len(data)
        self.segments.append(_Segment(key, from_client, start, start + len(data), data, part, length))
        self.decoder.feed(from_client, data)


@dataclass
class CredSSPStream:
    """What opening one connection's CredSSP traffic gave, by message key (is request, offset)."""

    #: the SOAP of each CredSSP-sealed message, or why not (:data:`harness.capture.check.Opened`)
    plain: dict[tuple[bool, int], Opened] = field(default_factory=dict)
    #: the CredSSP steps each message carried (for the report; never a secret)
    steps: dict[tuple[bool, int], list[str]] = field(default_factory=dict)
    #: CredSSP rule violations and undecodable tokens of each message
    errors: dict[tuple[bool, int], list[str]] = field(default_factory=dict)
    sessions: list[TlsSession] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keylog_given: bool = False

    @property
    def status(self) -> str:
        """The worst TLS session status ("decrypted" when every session opened; "no tokens" when the
        capture holds no CredSSP TLS bytes at all)."""
        if not self.sessions:
            return "no tokens"
        order = ("failed", "cannot decrypt", "unsupported", "no keys", "incomplete", "decrypted")
        return min((s.status for s in self.sessions), key=order.index)

    def summary(self) -> tuple[str, str] | None:
        """(verdict, text) of the stream-level report; None when every session was opened."""
        status = self.status
        reasons = list(dict.fromkeys(_reason(h.error) for s in self.sessions for h in (s.client, s.server)
                                     if h.error))
        described = ", ".join(dict.fromkeys(s.description for s in self.sessions)) or "TLS"
        if status in ("decrypted", "no tokens"):
            return None
        if status in ("no keys", "incomplete"):
            hint = "" if self.keylog_given else " (give --tls-keylog PATH or set SSLKEYLOGFILE)"
            why = "; ".join(reasons) if reasons else (
                "the TLS handshake is not complete in the capture" if status == "incomplete" else "no key log")
            return "info", f"CredSSP, no keys: {described} session not opened: {why}{hint}"
        if status in ("cannot decrypt", "unsupported"):
            return "encrypted", f"CredSSP, cannot decrypt: {described}: {'; '.join(reasons) or status}"
        return "fail", f"CredSSP TLS decryption failed part way: {'; '.join(reasons)}"

    def decryptor(self, fallback: Decryptor | None) -> Decryptor:
        """A :data:`~harness.capture.check.Decryptor` answering this stream's CredSSP-sealed messages
        and passing the others to ``fallback`` (NTLM / Kerberos)."""
        def decrypt(stream: TcpStream, msg: HttpMessage, before: list[HttpMessage]) -> bytes:
            result = self.plain.get((msg.is_request, msg.offset))
            if result is None:
                if fallback is None:
                    raise NotDecryptable("the message is not CredSSP session-encrypted")
                return fallback(stream, msg, before)
            return plaintext_of(result)
        return decrypt


def _reason(error: str) -> str:
    """A TLS half's error without the side prefix (both sides usually stop for the same reason)."""
    for side in ("client: ", "server: "):
        if error.startswith(side) and "no keys for client random" in error:
            return error[len(side):]
    return error


def _conversation(requests: Sequence[HttpMessage], responses: Sequence[HttpMessage]) -> list[HttpMessage]:
    """Requests and responses in wire order (RFC 9112 9.3: answers in request order; interim 1xx
    answers precede the final one)."""
    out: list[HttpMessage] = []
    ri = 0
    for req in requests:
        out.append(req)
        while ri < len(responses):
            resp = responses[ri]
            ri += 1
            out.append(resp)
            if resp.status is None or resp.status >= 200:
                break
    out.extend(responses[ri:])
    return out


def open_credssp_stream(stream_index: int, requests: Sequence[HttpMessage], responses: Sequence[HttpMessage],
                        keylog: KeyLog | None) -> CredSSPStream:
    """Follow the CredSSP TLS session(s) of one connection and open its tokens and sealed messages
    with ``keylog`` (see the module docstring). Never raises for bad input: every problem is kept
    as the reason of the message it concerns."""
    out = CredSSPStream(keylog_given=keylog is not None)
    sessions: list[_Session] = []
    current: _Session | None = None
    for msg in _conversation(requests, responses):
        key = (msg.is_request, msg.offset)
        from_client = msg.is_request
        try:
            tokens = _tokens_of(msg)
        except CredSSPDecodeError as exc:
            out.errors.setdefault(key, []).append(f"CredSSP: {exc.reason}")
            tokens = []
        for token in tokens:
            if from_client and looks_like_tls(token[:6], from_client=True) and (
                    current is None or any(current.sent.values())):
                current = _Session(TlsConnectionDecoder(keylog))   # a new CredSSP handshake (MS-CSSP 3.1.5 step 1)
                sessions.append(current)
            if current is None:
                out.errors.setdefault(key, []).append("CredSSP: token before any TLS ClientHello in the capture")
                continue
            current.add(key, from_client, token)
        if not msg.complete or not _is_credssp_body(msg):
            continue
        try:
            parts = sealed_parts(msg.header("Content-Type") or "", msg.body)
        except CredSSPDecodeError as exc:
            out.plain[key] = f"CredSSP-sealed body: {exc.reason}"
            continue
        if current is None:
            out.plain[key] = NotDecryptable("no CredSSP TLS handshake precedes this message in its TCP stream")
            continue
        for i, part in enumerate(parts):
            current.add(key, from_client, part.records, i, part.length)
    for session in sessions:
        session.result = session.decoder.finish()
        out.sessions.append(session.result)
    _collect(out, sessions, stream_index)
    return out


def _pieces_in(half: TlsHalf, seg: _Segment) -> tuple[bytes, bool]:
    """(plaintext of the records that ended inside the segment, whether all its records were read)."""
    plain = b"".join(p for _, end, p in half.pieces if seg.start <= end < seg.end)
    complete = half.stopped_at is None or seg.end <= half.stopped_at
    return plain, complete


def _unopened(session: TlsSession, half: TlsHalf) -> NotDecryptable | str:
    status = session.status
    reason = half.error or "the TLS session is not complete in the capture"
    if status in ("no keys", "incomplete") or half.no_keys:
        return KeysMissing(f"CredSSP, no keys: {reason}")
    if status in ("cannot decrypt", "unsupported"):
        return NotDecryptable(f"CredSSP, cannot decrypt: {reason}")
    return f"CredSSP TLS: {reason}"


def _collect(out: CredSSPStream, sessions: list[_Session], stream_index: int) -> None:
    for number, session in enumerate(sessions, 1):
        state = _Rules()
        result = session.result
        assert result is not None
        label = f"stream {stream_index} CredSSP" + (f" session {number}" if len(sessions) > 1 else "")
        out.notes.extend(f"{label} TLS {n}" for n in result.notes)
        for side, half in (("client", result.client), ("server", result.server)):
            fatal = [a for a in half.alerts if a != "close_notify"]
            if fatal:
                out.notes.append(f"{label} TLS {side} sent alert(s): {', '.join(fatal)}")
        sealed: dict[tuple[bool, int], list[bytes] | NotDecryptable | str] = {}
        for seg in session.segments:
            half = result.client if seg.from_client else result.server
            plain, complete = _pieces_in(half, seg)
            if seg.part is None:
                _token_steps(out, state, seg, plain, complete, result)
                continue
            have = sealed.setdefault(seg.key, [])
            if not isinstance(have, list):
                continue
            if not complete:
                sealed[seg.key] = _unopened(result, half)
            elif len(plain) != seg.length:
                sealed[seg.key] = (f"part {seg.part + 1}: opened {len(plain)} bytes, OriginalContent Length is "
                                   f"{seg.length} (MS-WSMV 2.2.9.1.1)")
            else:
                have.append(plain)
        for key, value in sealed.items():
            out.plain[key] = b"".join(value) if isinstance(value, list) else value
            if isinstance(value, list):
                state.sealed_seen = True
        if result.status == "decrypted":
            random = result.client_random.hex() if result.client_random else "?"
            summary = state.summary()
            out.notes.append(f"{label}: {result.description} session decrypted with the key log (client random "
                             f"{random}; {result.client.decrypted} + {result.server.decrypted} records)"
                             + (f"; {summary}" if summary else ""))


@dataclass
class _Rules:
    """What one CredSSP session showed so far (MS-CSSP 3.1.5 ordering rules)."""

    versions: dict[bool, int] = field(default_factory=dict)
    inner: str | None = None
    pub_key: dict[bool, bool] = field(default_factory=lambda: {True: False, False: False})
    auth_info: bool = False
    error_code: int | None = None
    sealed_seen: bool = False

    def summary(self) -> str:
        parts: list[str] = []
        if self.versions:
            parts.append("TSRequest version " + "/".join(
                f"{'client' if side else 'server'} {v}" for side, v in sorted(self.versions.items(), reverse=True)))
        if self.inner:
            parts.append(f"inner {self.inner}")
        if any(self.pub_key.values()):
            sides = [s for s, seen in (("client", self.pub_key[True]), ("server", self.pub_key[False])) if seen]
            parts.append(f"pubKeyAuth from {' and '.join(sides)}")
        if self.error_code is not None:
            parts.append(f"errorCode {_status_name(self.error_code)}")
        if self.auth_info:
            parts.append("authInfo (TSCredentials) present, not shown")
        if self.sealed_seen:
            parts.append("WS-Man messages sealed by the session (MS-WSMV 2.2.9.1.1)")
        return "; ".join(parts)


def _record_kinds(data: bytes) -> tuple[set[int], str | None]:
    """The record content types of a token and the first cleartext hello it opens with."""
    kinds: set[int] = set()
    hello: str | None = None
    pos = 0
    while pos + 5 <= len(data):
        ctype = data[pos]
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        kinds.add(ctype)
        if pos == 0 and ctype == CT_HANDSHAKE and length and len(data) > 5:
            hello = _HANDSHAKE_NAMES.get(data[5])
        pos += 5 + length
    return kinds, hello


def _token_steps(out: CredSSPStream, state: _Rules, seg: _Segment, plain: bytes, complete: bool,
                 session: TlsSession) -> None:
    steps = out.steps.setdefault(seg.key, [])
    errors = out.errors.setdefault(seg.key, [])
    kinds, hello = _record_kinds(seg.data)
    if kinds & {CT_HANDSHAKE, CT_CHANGE_CIPHER_SPEC} or (hello is None and not plain and complete):
        label = f"CredSSP TLS handshake (MS-CSSP 3.1.5 step 1){': ' + hello if hello else ''}"
        if hello == "ServerHello" and session.version is not None:
            label += f", {session.description}"
        if label not in steps:
            steps.append(label)
    if CT_ALERT in kinds:
        steps.append("CredSSP TLS alert")
    if not complete:
        if CT_APPLICATION_DATA in kinds:
            steps.append("CredSSP encrypted TLS records (TSRequest), not opened")
        return
    if not plain:
        return
    try:
        requests = parse_ts_requests(plain)
    except CredSSPDecodeError as exc:
        errors.append(f"CredSSP: {exc.reason}")
        return
    for request in requests:
        steps.append(_describe(request, state, seg.from_client, errors))


def _describe(req: TSRequest, state: _Rules, from_client: bool, errors: list[str]) -> str:
    """One TSRequest for the report, checking the MS-CSSP 2.2.1 / 3.1.5 rules on the way."""
    side = "client" if from_client else "server"
    words = [f"CredSSP TSRequest v{req.version}"]
    if req.version < MIN_TS_VERSION:
        errors.append(f"CredSSP: TSRequest version {req.version} (MS-CSSP 2.2.1: 2 to 6)")
    state.versions[from_client] = req.version
    for token in req.nego_tokens:
        what = describe_nego_token(token)
        words.append(f"negoTokens {what}")
        if state.inner is None and ("NTLM" in what or "Kerberos" in what):
            state.inner = ("SPNEGO/" if "SPNEGO" in what else "") + ("NTLM" if "NTLM" in what else "Kerberos")
    if req.pub_key_auth is not None:
        words.append(f"pubKeyAuth ({len(req.pub_key_auth)} bytes, sealed by the inner context; MS-CSSP 3.1.5 "
                     f"step {3 if from_client else 4})")
        if not from_client and not state.pub_key[True]:
            errors.append("CredSSP: server pubKeyAuth before the client's (MS-CSSP 3.1.5 step 4 answers step 3)")
        state.pub_key[from_client] = True
    if req.client_nonce is not None:
        words.append("clientNonce")
        if not from_client:
            errors.append("CredSSP: clientNonce sent by the server (MS-CSSP 2.2.1: the client's nonce)")
        if len(req.client_nonce) != NONCE_LENGTH:
            errors.append(f"CredSSP: clientNonce of {len(req.client_nonce)} bytes (MS-CSSP 2.2.1: 32)")
    elif from_client and req.pub_key_auth is not None and req.version >= 5:
        errors.append("CredSSP: pubKeyAuth of version 5+ without clientNonce (MS-CSSP 3.1.5 step 3)")
    if req.error_code is not None:
        words.append(f"errorCode {_status_name(req.error_code)}")
        state.error_code = req.error_code
        if from_client:
            errors.append("CredSSP: errorCode sent by the client (MS-CSSP 2.2.1: the server reports failures)")
    if req.auth_info:
        words.append("authInfo (TSCredentials) present, not shown")
        state.auth_info = True
        if not from_client:
            errors.append("CredSSP: authInfo sent by the server (MS-CSSP 3.1.5 step 5: the client delegates)")
        elif not state.pub_key[False]:
            errors.append("CredSSP: authInfo before the server's pubKeyAuth (MS-CSSP 3.1.5 step 5 follows step 4)")
    if req.unknown_fields:
        words.append("unknown field(s) " + ", ".join(f"[{n}]" for n in req.unknown_fields))
    return f"{side}: " + "; ".join(words)

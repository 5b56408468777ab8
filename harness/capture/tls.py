"""Sans-IO decryption of captured TLS 1.2 / 1.3 connections with an NSS key log (WinRM over HTTPS).

A TLS connection of a capture is two reassembled byte streams. :class:`TlsConnectionDecoder`
takes the bytes of each direction (in any order: a record that needs the other side's hello
waits for it), and gives back the application-data plaintext of each direction with, for every
piece, where its record ended in the ciphertext stream (to map it back to capture frames).

* Record layer: RFC 5246 6.2 / RFC 8446 5.1 (type, legacy version, 16-bit length; lengths
  bounded as in RFC 5246 6.2.3 and RFC 8446 5.2). Handshake messages (type, 24-bit length) are
  reassembled across records (RFC 8446 5.1, RFC 5246 6.2.1).
* Hellos: ClientHello random and offered extensions, ServerHello random, cipher suite and
  version; TLS 1.3 is the ``supported_versions`` extension's selected_version 0x0304
  (RFC 8446 4.1.3, 4.2.1); a ServerHello whose random is SHA-256("HelloRetryRequest") is a
  HelloRetryRequest (RFC 8446 4.1.3) and the client's next ClientHello is still cleartext.
* TLS 1.3 (RFC 8446 2, 7.1 - 7.3): everything after the ServerHello travels as opaque
  ``application_data`` records; each direction starts with its handshake traffic key and changes
  to application traffic secret 0 after its own Finished, then to the next generation after each
  KeyUpdate (4.6.3, 7.2). ``change_cipher_spec`` records are the middlebox-compatibility ones
  (D.4) and are skipped. 0-RTT: with a CLIENT_EARLY_TRAFFIC_SECRET the client's early records
  are opened up to EndOfEarlyData; without one (or when the server refused them, 4.2.10) they are
  skipped and counted.
* TLS 1.2 (RFC 5246 7.1, 7.4.9): a direction's records are protected from its
  ``ChangeCipherSpec`` on, with the key block of the master secret logged for the ClientHello
  random; renegotiation (an encrypted ClientHello / ServerHello, RFC 5246 7.4.1) is followed:
  the next ChangeCipherSpec takes the keys of that handshake.
* Key log: the NSS key log format (``CLIENT_RANDOM`` for TLS 1.2 master secrets;
  ``CLIENT_EARLY_TRAFFIC_SECRET``, ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``,
  ``SERVER_HANDSHAKE_TRAFFIC_SECRET``, ``CLIENT_TRAFFIC_SECRET_0``, ``SERVER_TRAFFIC_SECRET_0``
  for TLS 1.3): ``<label> <client random hex> <secret hex>`` lines, ``#`` comments
  (draft-ietf-tls-keylogfile, the format Python's ``SSLContext.keylog_filename`` writes).

Not supported (reported): SSL 3.0, TLS 1.0 / 1.1, suites outside :data:`SUITES`, DTLS, QUIC.
Secrets never appear in a reason, a note or a repr.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.capture.reader import HalfStream, TcpStream
from harness.capture.tls_crypto import (
    CT_ALERT,
    CT_APPLICATION_DATA,
    CT_CHANGE_CIPHER_SPEC,
    CT_HANDSHAKE,
    CT_HEARTBEAT,
    MAX_CIPHERTEXT_12,
    SUITES,
    TLS12,
    TLS13,
    CipherSuite,
    RecordOpener,
    TlsDecryptError,
    next_traffic_secret,
    suite_name,
    tls12_key_block,
    traffic_keys,
)

__all__ = ["KeyLog", "TlsConnectionDecoder", "TlsDecryptError", "TlsHalf", "TlsSession", "decrypt_connection",
           "decrypt_tcp_stream", "looks_like_tls", "parse_keylog", "read_keylog", "tls_stream"]

MAX_KEYLOG = 64 * 1024 * 1024
MAX_HANDSHAKE_MESSAGE = 1 << 20   # far above any certificate chain; bounds the reassembly buffer
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()   # RFC 8446 4.1.3

HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_NEW_SESSION_TICKET, HS_END_OF_EARLY_DATA = 1, 2, 4, 5
HS_FINISHED, HS_KEY_UPDATE, HS_HELLO_REQUEST = 20, 24, 0
EXT_SUPPORTED_VERSIONS, EXT_EARLY_DATA, EXT_ENCRYPT_THEN_MAC = 43, 42, 22

LABELS_13 = ("CLIENT_EARLY_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
             "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
KNOWN_LABELS = frozenset(("CLIENT_RANDOM", "EXPORTER_SECRET", "EARLY_EXPORTER_SECRET", *LABELS_13))
_HEX = re.compile(r"[0-9A-Fa-f]+")
_ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
           40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate", 45: "certificate_expired",
           46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
           51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
           86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
           110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
           120: "no_application_protocol"}


# -- key log ----------------------------------------------------------------------------------

class KeyLog:
    """Secrets of an NSS key log, by client random and label. Its repr shows counts only."""

    def __init__(self) -> None:
        self._secrets: dict[bytes, dict[str, bytes]] = {}
        #: lines that were neither a comment nor a well-formed secret (ignored, as NSS readers do)
        self.skipped = 0

    def add(self, label: str, client_random: bytes, secret: bytes) -> None:
        if len(client_random) != 32:
            raise TlsDecryptError("a key log client random has 32 bytes")
        self._secrets.setdefault(client_random, {})[label] = secret

    def get(self, client_random: bytes, label: str) -> bytes | None:
        return self._secrets.get(client_random, {}).get(label)

    def labels(self, client_random: bytes) -> frozenset[str]:
        return frozenset(self._secrets.get(client_random, {}))

    def __contains__(self, client_random: object) -> bool:
        return client_random in self._secrets

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"KeyLog({len(self._secrets)} client randoms, {self.skipped} lines skipped)"


def parse_keylog(text: str | bytes) -> KeyLog:
    """Parse the NSS key log format: ``<label> <client random: 64 hex> <secret hex>``, ``#`` comments.
    Unknown labels (e.g. ``RSA``) and malformed lines are skipped and counted."""
    if len(text) > MAX_KEYLOG:
        raise TlsDecryptError(f"key log larger than {MAX_KEYLOG} bytes")
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    log = KeyLog()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if (len(parts) != 3 or parts[0] not in KNOWN_LABELS or len(parts[1]) != 64 or not _HEX.fullmatch(parts[1])
                or not _HEX.fullmatch(parts[2]) or len(parts[2]) % 2 or len(parts[2]) > 256):
            log.skipped += 1
            continue
        log.add(parts[0], bytes.fromhex(parts[1]), bytes.fromhex(parts[2]))
    return log


def read_keylog(path: str | Path) -> KeyLog:
    """:func:`parse_keylog` of a file; :class:`TlsDecryptError` when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEYLOG + 1)
    except OSError as exc:
        raise TlsDecryptError(f"cannot read the key log {path}: {exc.strerror or exc}") from None
    return parse_keylog(data)


# -- hellos -----------------------------------------------------------------------------------

class _Reader:
    """Bounds-checked reading of handshake structures (RFC 8446 3: vectors with length prefixes)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TlsDecryptError(f"{self.what} truncated (decode_error)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))

    def extensions(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        if self.pos == len(self.data):
            return out
        block = _Reader(self.vector(2), self.what + " extensions")
        while block.pos < len(block.data):
            ext = block.uint(2)
            out[ext] = block.vector(2)
        return out


@dataclass(frozen=True)
class ClientHello:
    """RFC 8446 4.1.2 / RFC 5246 7.4.1.2."""

    random: bytes
    cipher_suites: tuple[int, ...]
    extensions: dict[int, bytes]


@dataclass(frozen=True)
class ServerHello:
    """RFC 8446 4.1.3 / RFC 5246 7.4.1.3; ``version`` is the negotiated one."""

    random: bytes
    cipher_suite: int
    version: int
    extensions: dict[int, bytes]

    @property
    def retry_request(self) -> bool:
        return self.random == HRR_RANDOM


def parse_client_hello(body: bytes) -> ClientHello:
    r = _Reader(body, "ClientHello")
    r.take(2)
    random = r.take(32)
    r.vector(1)
    suites_raw = r.vector(2)
    r.vector(1)
    ext = r.extensions()
    return ClientHello(random, tuple(struct.unpack(f"!{len(suites_raw) // 2}H", suites_raw[:len(suites_raw) & ~1])),
                       ext)


def parse_server_hello(body: bytes) -> ServerHello:
    r = _Reader(body, "ServerHello")
    legacy = r.uint(2)
    random = r.take(32)
    r.vector(1)
    suite = r.uint(2)
    r.take(1)
    ext = r.extensions()
    version = legacy
    sv = ext.get(EXT_SUPPORTED_VERSIONS)
    if sv is not None:
        if len(sv) != 2:
            raise TlsDecryptError("ServerHello supported_versions is not one version (decode_error)")
        version = int.from_bytes(sv, "big")
    return ServerHello(random, suite, version, ext)


def looks_like_tls(data: bytes, *, from_client: bool = True) -> bool:
    """Do these first bytes of a stream open a TLS handshake (a handshake record with a ClientHello,
    or a ServerHello from the server; record version 3.x, RFC 5246 6.2.1 / RFC 8446 5.1)?"""
    if len(data) < 6 or data[0] != CT_HANDSHAKE or data[1] != 3 or data[2] > 4:
        return False
    length = int.from_bytes(data[3:5], "big")
    return 0 < length <= MAX_CIPHERTEXT_12 and data[5] == (HS_CLIENT_HELLO if from_client else HS_SERVER_HELLO)


# -- the connection decoder ---------------------------------------------------------------------

@dataclass
class _Record:
    offset: int
    content_type: int
    version: int
    fragment: bytes

    @property
    def end(self) -> int:
        return self.offset + 5 + len(self.fragment)


@dataclass
class _Negotiation:
    """One full handshake (the first, or a TLS 1.2 renegotiation)."""

    client: ClientHello | None = None
    server: ServerHello | None = None


@dataclass
class TlsHalf:
    """What one direction gave: plaintext application data and where each piece came from."""

    #: application-data plaintext pieces: (plaintext offset, ciphertext offset of the record's last byte, bytes)
    pieces: list[tuple[int, int, bytes]] = field(default_factory=list)
    records: int = 0          # records read
    decrypted: int = 0        # records opened
    skipped: int = 0          # records skipped (refused 0-RTT data)
    alerts: list[str] = field(default_factory=list)
    #: why decryption of this direction stopped before its end (None: it did not)
    error: str | None = None
    no_keys: bool = False
    #: ciphertext offset where decryption stopped (None: read to the end)
    stopped_at: int | None = None

    @property
    def plaintext(self) -> bytes:
        return b"".join(p for _, _, p in self.pieces)

    @property
    def length(self) -> int:
        return sum(len(p) for _, _, p in self.pieces)


Status = Literal["decrypted", "no keys", "cannot decrypt", "failed", "unsupported", "incomplete"]


@dataclass
class TlsSession:
    """The outcome of decrypting one TLS connection."""

    client: TlsHalf
    server: TlsHalf
    version: int | None = None
    cipher_suite: int | None = None
    client_random: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def version_name(self) -> str:
        names = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", TLS12: "TLS 1.2", TLS13: "TLS 1.3"}
        return names.get(self.version, f"TLS 0x{self.version:04X}") if self.version is not None else "TLS"

    @property
    def description(self) -> str:
        suite = f" {suite_name(self.cipher_suite)}" if self.cipher_suite is not None else ""
        return f"{self.version_name}{suite}"

    @property
    def status(self) -> Status:
        halves = (self.client, self.server)
        if self.version is not None and (self.version < TLS12 or self.version > TLS13):
            return "unsupported"
        if self.cipher_suite is not None and self.cipher_suite not in SUITES:
            return "unsupported"
        if any(h.no_keys for h in halves):
            return "no keys"
        if any(h.error for h in halves):
            if all(h.decrypted == 0 for h in halves if h.error):
                return "cannot decrypt"
            return "failed"
        if self.version is None:
            return "incomplete"
        return "decrypted"


_BLOCKED = object()
_SKIPPED = object()


class _Half:
    def __init__(self, from_client: bool) -> None:
        self.from_client = from_client
        self.buf = bytearray()
        self.base = 0                       # stream offset of buf[0]
        self.queue: deque[_Record] = deque()
        self.hs = bytearray()               # handshake message reassembly
        self.opener: RecordOpener | None = None
        self.epoch = "clear"                # clear | early | handshake | application
        self.app_secret: bytes | None = None
        self.generation = 0
        self.hellos = 0                     # ClientHello / ServerHello messages seen (negotiation index)
        self.ccs = 0                        # TLS 1.2 ChangeCipherSpec records seen
        self.out = TlsHalf()
        self.plain_len = 0
        self.stopped = False
        self.early_tried = False
        self.hs_missing = False             # TLS 1.3 handshake secret not logged

    @property
    def name(self) -> str:
        return "client" if self.from_client else "server"

    def stop(self, at: int, reason: str | None, *, no_keys: bool = False) -> None:
        self.stopped = True
        self.out.stopped_at = at
        if reason:
            self.out.error = reason
        self.out.no_keys = no_keys
        self.queue.clear()


class TlsConnectionDecoder:
    """Decrypts one TLS connection from the bytes of both directions (sans-IO)."""

    def __init__(self, keylog: KeyLog | None) -> None:
        self.keylog = keylog
        self.client = _Half(True)
        self.server = _Half(False)
        self.negotiations: list[_Negotiation] = []
        self.notes: list[str] = []

    # -- input
    def feed(self, from_client: bool, data: bytes) -> None:
        """Add bytes that ``from_client`` (or the server) sent, in stream order."""
        half = self.client if from_client else self.server
        if half.stopped:
            return
        half.buf += data
        pos = 0
        buf = half.buf
        while len(buf) - pos >= 5:
            ctype, version, length = struct.unpack_from("!BHH", buf, pos)
            if ctype not in (CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA, CT_HEARTBEAT) \
                    or version >> 8 != 3:
                half.stop(half.base + pos, f"{half.name}: no TLS record at stream offset {half.base + pos} "
                                           f"(type {ctype}, version 0x{version:04X})")
                half.buf.clear()
                return
            if length > MAX_CIPHERTEXT_12:
                half.stop(half.base + pos, f"{half.name}: record of {length} bytes at stream offset "
                                           f"{half.base + pos} exceeds 2^14 + 2048 (record_overflow)")
                half.buf.clear()
                return
            if len(buf) - pos < 5 + length:
                break
            half.queue.append(_Record(half.base + pos, ctype, version, bytes(buf[pos + 5:pos + 5 + length])))
            half.out.records += 1
            pos += 5 + length
        del buf[:pos]
        half.base += pos
        self._pump()

    def finish(self) -> TlsSession:
        """The session so far (call after the last :meth:`feed`)."""
        for half in (self.client, self.server):
            if half.queue and not half.stopped:
                waiting = "the ServerHello" if half.from_client else "the ClientHello"
                half.stop(half.queue[0].offset, None)
                self.notes.append(f"{half.name}: {len(half.queue) or 'some'} record(s) not decrypted, waiting for "
                                  f"{waiting} (not in the capture)")
            if half.buf:
                self.notes.append(f"{half.name}: {len(half.buf)} byte(s) of an incomplete record at the end")
            if half.hs:
                self.notes.append(f"{half.name}: {len(half.hs)} byte(s) of an incomplete handshake message")
        neg = self.negotiations[0] if self.negotiations else _Negotiation()
        return TlsSession(self.client.out, self.server.out,
                          version=neg.server.version if neg.server else None,
                          cipher_suite=neg.server.cipher_suite if neg.server else None,
                          client_random=neg.client.random if neg.client else None, notes=self.notes)

    # -- processing
    def _pump(self) -> None:
        progress = True
        while progress:
            progress = False
            for half in (self.server, self.client):
                while half.queue and not half.stopped:
                    rec = half.queue[0]
                    try:
                        result = self._process(half, rec)
                    except TlsDecryptError as exc:
                        half.stop(rec.offset, f"{half.name}: {exc.reason} (record at stream offset {rec.offset})")
                        break
                    if result is _BLOCKED:
                        break
                    if half.queue and half.queue[0] is rec:
                        half.queue.popleft()
                    progress = True

    def _negotiation(self, index: int) -> _Negotiation:
        while len(self.negotiations) <= index:
            self.negotiations.append(_Negotiation())
        return self.negotiations[index]

    def _current(self) -> _Negotiation | None:
        neg = self.negotiations[0] if self.negotiations else None
        if neg is None or neg.client is None or neg.server is None:
            return None
        return neg

    def _process(self, half: _Half, rec: _Record) -> object:
        neg = self._current()
        version = neg.server.version if neg is not None and neg.server is not None else None
        if version is None:
            if rec.content_type == CT_HANDSHAKE and half.opener is None:
                self._handshake(half, rec.fragment, rec, encrypted=False)
                return None
            if rec.content_type == CT_ALERT and half.opener is None and len(rec.fragment) == 2:
                self._alert(half, rec.fragment)
                return None
            return _BLOCKED   # needs both hellos (version, suite, client random)
        assert neg is not None and neg.server is not None and neg.client is not None
        if version < TLS12 or version > TLS13:
            half.stop(rec.offset, f"{half.name}: {TlsSession(TlsHalf(), TlsHalf(), version).version_name} "
                                  "is not supported (TLS 1.2 and 1.3 only)")
            return None
        suite = SUITES.get(neg.server.cipher_suite)
        if suite is None or suite.tls13 != (version == TLS13):
            half.stop(rec.offset, f"{half.name}: cipher suite {suite_name(neg.server.cipher_suite)} is not "
                                  "supported for decryption")
            return None
        if version == TLS13:
            return self._process13(half, rec, neg, suite)
        return self._process12(half, rec, suite)

    # TLS 1.3
    def _process13(self, half: _Half, rec: _Record, neg: _Negotiation, suite: CipherSuite) -> object:
        assert neg.client is not None
        if rec.content_type == CT_CHANGE_CIPHER_SPEC:
            return None   # RFC 8446 5 / D.4: middlebox compatibility, not protected, ignored
        if rec.content_type != CT_APPLICATION_DATA:
            if half.epoch == "clear" and rec.content_type == CT_HANDSHAKE:
                self._handshake(half, rec.fragment, rec, encrypted=False)
                return None
            if half.epoch == "clear" and rec.content_type == CT_ALERT and len(rec.fragment) == 2:
                self._alert(half, rec.fragment)
                return None
            raise TlsDecryptError(f"unprotected record of type {rec.content_type} after the ServerHello "
                                  "(unexpected_message)")
        if half.epoch == "clear":
            if self.keylog is None or neg.client.random not in self.keylog:
                half.stop(rec.offset, f"{half.name}: no keys for client random {neg.client.random.hex()}",
                          no_keys=True)
                return None
            if not self._set_epoch13(half, suite, neg.client.random, "handshake", rec.offset):
                return None
        if half.opener is None:
            result = self._retry13(half, rec, suite, neg)
        else:
            try:
                result = half.opener.open(rec.content_type, rec.version, rec.fragment)
            except TlsDecryptError:
                result = self._retry13(half, rec, suite, neg)
                if result is None:
                    raise
        if result is None:
            raise TlsDecryptError("no key of the key log opens the record")
        if result is _SKIPPED:
            return None
        assert isinstance(result, tuple)
        half.out.decrypted += 1
        half.hs_missing = False
        self._deliver(half, rec, result[0], result[1], suite, neg)
        return None

    def _secret13(self, random: bytes, label: str) -> bytes | None:
        return self.keylog.get(random, label) if self.keylog is not None else None

    def _opener13(self, half: _Half, suite: CipherSuite, random: bytes,
                  epoch: str) -> tuple[RecordOpener, bytes] | str:
        """(opener, secret) of a TLS 1.3 epoch (RFC 8446 7.3), or the label missing from the key log."""
        side = "CLIENT" if half.from_client else "SERVER"
        label = {"early": "CLIENT_EARLY_TRAFFIC_SECRET", "handshake": f"{side}_HANDSHAKE_TRAFFIC_SECRET",
                 "application": f"{side}_TRAFFIC_SECRET_0"}[epoch]
        secret = self._secret13(random, label)
        if secret is None:
            return label
        if len(secret) != suite.hash_length:
            raise TlsDecryptError(f"the key log's {label} has {len(secret)} bytes, {suite.name} needs "
                                  f"{suite.hash_length}")
        key, iv = traffic_keys(secret, suite)
        return RecordOpener(suite, key, iv), secret

    def _set_epoch13(self, half: _Half, suite: CipherSuite, random: bytes, epoch: str, at: int) -> bool:
        found = self._opener13(half, suite, random, epoch)
        if isinstance(found, str):
            side = "CLIENT" if half.from_client else "SERVER"
            if epoch == "handshake" and self._secret13(random, f"{side}_TRAFFIC_SECRET_0") is not None:
                # no handshake secret: skip the handshake records, trial-open with the application key
                half.hs_missing = True
                self.notes.append(f"{half.name}: the key log has no {found}; handshake records skipped")
                return self._set_epoch13(half, suite, random, "application", at)
            half.stop(at, f"{half.name}: the key log has no {found} for client random {random.hex()}", no_keys=True)
            return False
        half.opener, secret = found
        half.epoch = epoch
        if epoch == "application":
            half.app_secret = secret
            half.generation = 0
        return True

    def _retry13(self, half: _Half, rec: _Record, suite: CipherSuite,
                 neg: _Negotiation) -> tuple[int, bytes] | object | None:
        """A record the current key does not open. 0-RTT (RFC 8446 4.2.10): the client's first records
        may be early data (opened with CLIENT_EARLY_TRAFFIC_SECRET when logged, else skipped), and
        refused early data is followed directly by the handshake-key records; handshake records
        without their secret in the key log are skipped. The result, :data:`_SKIPPED` or None."""
        assert neg.client is not None
        early_offered = half.from_client and EXT_EARLY_DATA in neg.client.extensions
        candidates: list[str] = []
        if early_offered and half.epoch == "handshake" and half.opener is not None and half.opener.seq == 0 \
                and not half.early_tried:
            candidates.append("early")
        if early_offered and half.epoch == "early":
            candidates.append("handshake")
        for epoch in candidates:
            half.early_tried = True
            found = self._opener13(half, suite, neg.client.random, epoch)
            if isinstance(found, str):
                continue
            try:
                result = found[0].open(rec.content_type, rec.version, rec.fragment)
            except TlsDecryptError:
                continue
            half.opener, half.epoch = found[0], epoch
            return result
        if (early_offered and half.epoch == "handshake" and half.opener is not None and half.opener.seq == 0) \
                or half.hs_missing:
            half.out.skipped += 1
            return _SKIPPED
        return None

    def _deliver(self, half: _Half, rec: _Record, inner_type: int, plain: bytes, suite: CipherSuite,
                 neg: _Negotiation) -> None:
        if inner_type == CT_APPLICATION_DATA:
            if half.epoch not in ("application", "early"):
                raise TlsDecryptError("application data before the handshake finished (unexpected_message)")
            half.out.pieces.append((half.plain_len, rec.end - 1, plain))
            half.plain_len += len(plain)
        elif inner_type == CT_HANDSHAKE:
            self._handshake(half, plain, rec, encrypted=True, suite=suite, neg=neg)
        elif inner_type == CT_ALERT:
            self._alert(half, plain)
        elif inner_type != CT_HEARTBEAT:
            raise TlsDecryptError(f"protected record of content type {inner_type} (unexpected_message)")

    # TLS 1.2
    def _process12(self, half: _Half, rec: _Record, suite: CipherSuite) -> object:
        if rec.content_type == CT_CHANGE_CIPHER_SPEC:
            if not self._ready12(half):
                return _BLOCKED   # the other side's hello of this handshake is not read yet
            body = rec.fragment if half.opener is None else half.opener.open(
                rec.content_type, rec.version, rec.fragment)[1]
            if body != b"\x01":
                raise TlsDecryptError("malformed ChangeCipherSpec (decode_error)")
            return self._change_cipher12(half, rec)
        if half.opener is None:
            if rec.content_type == CT_HANDSHAKE:
                self._handshake(half, rec.fragment, rec, encrypted=False)
                return None
            if rec.content_type == CT_ALERT and len(rec.fragment) == 2:
                self._alert(half, rec.fragment)
                return None
            raise TlsDecryptError(f"record of type {rec.content_type} before ChangeCipherSpec (unexpected_message)")
        content_type, plain = half.opener.open(rec.content_type, rec.version, rec.fragment)
        half.out.decrypted += 1
        if content_type == CT_APPLICATION_DATA:
            half.out.pieces.append((half.plain_len, rec.end - 1, plain))
            half.plain_len += len(plain)
        elif content_type == CT_HANDSHAKE:
            self._handshake(half, plain, rec, encrypted=True, suite=suite)
        elif content_type == CT_ALERT:
            self._alert(half, plain)
        return None

    def _ready12(self, half: _Half) -> bool:
        if half.ccs >= len(self.negotiations):
            return False
        neg = self.negotiations[half.ccs]
        return neg.client is not None and neg.server is not None

    def _change_cipher12(self, half: _Half, rec: _Record) -> object:
        """RFC 5246 7.1: the pending read state becomes current; it belongs to handshake number ``ccs``."""
        neg = self.negotiations[half.ccs]
        assert neg.client is not None and neg.server is not None
        random = neg.client.random
        suite = SUITES.get(neg.server.cipher_suite)
        if suite is None or suite.tls13:
            half.stop(rec.offset, f"{half.name}: cipher suite {suite_name(neg.server.cipher_suite)} is not "
                                  "supported for decryption")
            return None
        master = self.keylog.get(random, "CLIENT_RANDOM") if self.keylog is not None else None
        if master is None:
            half.stop(rec.offset, f"{half.name}: no CLIENT_RANDOM master secret for client random {random.hex()}",
                      no_keys=True)
            return None
        kb = tls12_key_block(master, random, neg.server.random, suite)
        etm = EXT_ENCRYPT_THEN_MAC in neg.server.extensions and suite.cipher == "AES-CBC"
        if half.from_client:
            half.opener = RecordOpener(suite, kb.client_key, kb.client_iv, kb.client_mac, encrypt_then_mac=etm)
        else:
            half.opener = RecordOpener(suite, kb.server_key, kb.server_iv, kb.server_mac, encrypt_then_mac=etm)
        if half.ccs:
            self.notes.append(f"{half.name}: renegotiated keys from stream offset {rec.offset}")
        half.ccs += 1
        return None

    # handshake and alert messages
    def _handshake(self, half: _Half, data: bytes, rec: _Record, *, encrypted: bool,
                   suite: CipherSuite | None = None, neg: _Negotiation | None = None) -> None:
        half.hs += data
        if len(half.hs) > MAX_HANDSHAKE_MESSAGE + 4:
            raise TlsDecryptError(f"handshake message larger than {MAX_HANDSHAKE_MESSAGE} bytes")
        while len(half.hs) >= 4:
            msg_type = half.hs[0]
            length = int.from_bytes(half.hs[1:4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                raise TlsDecryptError(f"handshake message of {length} bytes (limit {MAX_HANDSHAKE_MESSAGE})")
            if len(half.hs) < 4 + length:
                return
            body = bytes(half.hs[4:4 + length])
            del half.hs[:4 + length]
            self._message(half, msg_type, body, rec, encrypted, suite, neg)

    def _message(self, half: _Half, msg_type: int, body: bytes, rec: _Record, encrypted: bool,
                 suite: CipherSuite | None, neg: _Negotiation | None) -> None:
        if msg_type == HS_CLIENT_HELLO and half.from_client:
            client_hello = parse_client_hello(body)
            first = self.negotiations[0].client if self.negotiations else None
            if half.hellos and not encrypted and first is not None and first.random == client_hello.random:
                return   # the second ClientHello after a HelloRetryRequest (RFC 8446 4.1.2): same random
            self._negotiation(half.hellos).client = client_hello
            half.hellos += 1
            if encrypted:
                self.notes.append(f"client: renegotiation (ClientHello at stream offset {rec.offset})")
        elif msg_type == HS_SERVER_HELLO and not half.from_client:
            server_hello = parse_server_hello(body)
            if server_hello.retry_request:
                self.notes.append("server: HelloRetryRequest")
                return
            self._negotiation(half.hellos).server = server_hello
            half.hellos += 1
        elif not encrypted:
            return
        elif suite is not None and suite.tls13 and neg is not None and neg.client is not None:
            if msg_type == HS_FINISHED and half.epoch == "handshake":
                self._set_epoch13(half, suite, neg.client.random, "application", rec.end)  # RFC 8446 7.3, 4.4.4
            elif msg_type == HS_END_OF_EARLY_DATA and half.epoch == "early":
                self._set_epoch13(half, suite, neg.client.random, "handshake", rec.end)    # RFC 8446 4.5
            elif msg_type == HS_KEY_UPDATE:
                if len(body) != 1 or body[0] > 1:
                    raise TlsDecryptError("malformed KeyUpdate (decode_error)")
                if half.epoch != "application" or half.app_secret is None:
                    raise TlsDecryptError("KeyUpdate before the handshake finished (unexpected_message)")
                half.app_secret = next_traffic_secret(half.app_secret, suite)    # RFC 8446 7.2
                half.generation += 1
                key, iv = traffic_keys(half.app_secret, suite)
                half.opener = RecordOpener(suite, key, iv)
                self.notes.append(f"{half.name}: KeyUpdate to application traffic secret {half.generation} "
                                  f"at stream offset {rec.offset}")
        elif msg_type in (HS_HELLO_REQUEST,) and not half.from_client:
            self.notes.append(f"server: HelloRequest (renegotiation asked) at stream offset {rec.offset}")

    def _alert(self, half: _Half, data: bytes) -> None:
        if len(data) != 2:
            raise TlsDecryptError(f"alert of {len(data)} bytes (decode_error)")
        level = "fatal" if data[0] == 2 else "warning"
        name = _ALERTS.get(data[1], f"alert {data[1]}")
        half.out.alerts.append(name if name == "close_notify" else f"{level} {name}")


def decrypt_connection(client_data: bytes | Iterable[bytes], server_data: bytes | Iterable[bytes],
                       keylog: KeyLog | None) -> TlsSession:
    """Decrypt one connection given the bytes each side sent (or their pieces, in order)."""
    decoder = TlsConnectionDecoder(keylog)
    for from_client, data in ((True, client_data), (False, server_data)):
        for piece in ([data] if isinstance(data, bytes | bytearray) else data):
            decoder.feed(from_client, bytes(piece))
    return decoder.finish()


# -- capture streams ------------------------------------------------------------------------------

def tls_stream(stream: TcpStream) -> bool:
    """Is this TCP stream a TLS connection (its first bytes are a TLS handshake)?"""
    for half, from_client in ((stream.to_server, True), (stream.to_client, False)):
        if half.chunks and half.chunks[0][0] == 0:
            return looks_like_tls(half.chunks[0][1][:6], from_client=from_client)
    return False


def _plain_half(cipher: HalfStream, out: TlsHalf) -> HalfStream:
    half = HalfStream(fin=cipher.fin, segments=len(out.pieces))
    if out.pieces:
        half.chunks.append((0, b"".join(p for _, _, p in out.pieces)))
        for plain_offset, cipher_end, _ in out.pieces:
            frame = cipher.frame_at(cipher_end)
            if frame is not None:
                half.frame_map.append((plain_offset, frame))
    return half


def decrypt_tcp_stream(stream: TcpStream, keylog: KeyLog | None) -> tuple[TcpStream, TlsSession]:
    """The plaintext TCP stream of a TLS stream (same index, endpoints and frames), for the HTTP
    reassembly exactly like a cleartext stream, and what decryption found. Only the bytes up to a
    hole in a direction (segments missing from the capture) are read: records cannot be found after it."""
    decoder = TlsConnectionDecoder(keylog)
    for half, from_client in ((stream.to_server, True), (stream.to_client, False)):
        if half.chunks and half.chunks[0][0] == 0:
            decoder.feed(from_client, half.chunks[0][1])
        if half.missing:
            a, b = half.missing[0]
            decoder.notes.append(f"{'client' if from_client else 'server'}: bytes {a}-{b - 1} missing from the "
                                 "capture; TLS records after them are not read")
    session = decoder.finish()
    plain = TcpStream(index=stream.index, client=stream.client, server=stream.server, first_frame=stream.first_frame,
                      syn_seen=stream.syn_seen, to_server=_plain_half(stream.to_server, session.client),
                      to_client=_plain_half(stream.to_client, session.server), reset=stream.reset)
    return plain, session

"""Decrypt Kerberos-sealed WinRM traffic in a capture with the service's keytab.

MS-WSMV 2.2.9.1.1: with Kerberos (raw under the ``Kerberos`` scheme, or inside SPNEGO under
``Negotiate``, RFC 4559 / RFC 4178) WS-Man bodies travel as ``multipart/encrypted`` parts, each an
RFC 4121 Wrap token split into its "signature" (the token header and the rotated head of the
ciphertext) and the rest. A password is no help here: the keys come from the ticket, which only
the SERVICE key opens. Per TCP stream (one HTTP connection, one security context):

1. The first ``Authorization: Kerberos|Negotiate <base64>`` holding a Kerberos AP-REQ: SPNEGO
   NegTokenInit (RFC 4178 4.2.1) mechToken -> InitialContextToken (RFC 2743 3.1, RFC 4121 4.1:
   OID 1.2.840.113554.1.2.2, TOK_ID 01 00) -> AP-REQ (RFC 4120 5.5.1).
2. The ticket's enc-part is decrypted with the keytab key of its server principal, etype and kvno,
   key usage 2 (RFC 4120 7.5.1), giving EncTicketPart and its session key (5.3).
3. The authenticator is decrypted with the session key, key usage 11; its subkey, if any, is the
   initiator subkey (RFC 4120 5.5.1, RFC 4121 2).
4. The AP-REP in the server's ``WWW-Authenticate`` (SPNEGO NegTokenResp responseToken, TOK_ID
   02 00, RFC 4120 5.5.2) is decrypted with the session key, key usage 12; its subkey is the
   acceptor subkey.
5. Each sealed part is a Wrap token (RFC 4121 4.2.6.2): TOK_ID 05 04, flags (SentByAcceptor 1,
   Sealed 2, AcceptorSubkey 4), filler FF, EC, RRC, SND_SEQ. The ciphertext is rotated right by
   RRC bytes (4.2.5) and undone here; it is decrypted with the acceptor subkey when AcceptorSubkey
   is set, else the initiator subkey, else the session key (2), under key usage 22 (acceptor seal)
   or 24 (initiator seal) (2). The plaintext is data | EC filler bytes | a copy of the token header
   (4.2.4), which must match the token header (RRC excepted).

6. RC4-HMAC (etype 23, RFC 4757): tickets, authenticators and AP-REPs are opened as above with
   the RFC 4757 5 encryption (krb_crypto). The context key being an RC4 key, the sealed parts are
   RFC 1964-style v1 Wrap tokens as RFC 4757 7.3 defines them, not RFC 4121 ones (see
   :func:`rc4_unwrap`): the MS-WSMV 2.2.9.1.1 signature is the RFC 2743 3.1 framing (0x60, length,
   Kerberos OID) and the 32-byte token (TOK_ID 02 01, SGN_ALG 11 00 = HMAC-MD5, SEAL_ALG 10 00 =
   RC4, filler FF FF, the encrypted SND_SEQ, SGN_CKSUM, the encrypted Confounder); the rest of the
   part is the RC4-encrypted data. In the DCE style (MS-KILE 3.4.5.1, 3.4.5.4.1) the framing's
   length covers the 32-byte token only; in the plain RFC 1964 form it covers the data too: both
   are read. The context key is the AP-REP subkey if there is one, else the authenticator subkey,
   else the session key (RFC 1964 1.2, RFC 4757 7.1).

The keytab is only used to decrypt: no key is written into a report or an error message.
A password (``--password``) stands for the keytab when it is the SERVICE account's: its keys
come from :func:`harness.capture.keytab.password_entries`; a ticket it does not open leaves the
messages "encrypted" (the password is most likely the user's, for NTLM), never "failed".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.auth.encryption import KERBEROS_PROTOCOL, SPNEGO_PROTOCOL, EncryptedPart
from harness.capture.check import (
    Decryptor,
    NotDecryptable,
    Opened,
    register_kerberos_password_decryptor_factory,
    register_keytab_decryptor_factory,
    stream_decryptor,
)
from harness.capture.http1 import HttpMessage
from harness.capture.keytab import KeytabEntry, KeytabError, password_entries, read_keytab
from harness.capture.krb_crypto import (
    ETYPE_RC4_HMAC,
    SUPPORTED_ETYPES,
    KerberosCryptoError,
    Rc4Stream,
    decrypt,
    hmac_md5,
    rc4,
)
from harness.capture.reader import TcpStream
from harness.capture.sealed import open_sealed_stream

KRB5_OID = bytes.fromhex("2a864886f712010202")          # 1.2.840.113554.1.2.2 (RFC 4121 4.1)
MS_KRB5_OID = bytes.fromhex("2a864882f712010202")       # 1.2.840.48018.1.2.2 (Windows' variant)
SPNEGO_OID = bytes.fromhex("2b0601050502")              # 1.3.6.1.5.5.2 (RFC 4178)
TOK_AP_REQ = b"\x01\x00"
TOK_AP_REP = b"\x02\x00"
TOK_WRAP = b"\x05\x04"
TOK_WRAP_V1 = b"\x02\x01"                  # RFC 1964 1.2.2 / RFC 4757 7.3 Wrap token
SGN_ALG_HMAC_MD5 = b"\x11\x00"            # RFC 4757 7.3
SEAL_ALG_RC4 = b"\x10\x00"                # RFC 4757 7.3
SEAL_ALG_NONE = b"\xff\xff"               # RFC 1964 1.2.2: integrity only
RC4_TOKEN_SIZE = 32                       # header 8 | SND_SEQ 8 | SGN_CKSUM 8 | Confounder 8
RC4_SIGN_T = 13                           # RFC 4757 7.3: message type T of the Wrap checksum
DIRECTION_INITIATOR = b"\x00" * 4         # RFC 1964 1.2.1.2: SND_SEQ bytes 4..7
DIRECTION_ACCEPTOR = b"\xff" * 4
MAX_RC4_PAD = 8                           # RFC 1964 1.2.2.3: 1..8 pad bytes of the pad length
USAGE_TICKET = 2
USAGE_AUTHENTICATOR = 11
USAGE_AP_REP = 12
USAGE_ACCEPTOR_SEAL = 22
USAGE_INITIATOR_SEAL = 24
FLAG_SENT_BY_ACCEPTOR = 0x01
FLAG_SEALED = 0x02
FLAG_ACCEPTOR_SUBKEY = 0x04
MAX_TOKEN = 64 * 1024
MAX_DEPTH = 12
_HEADER = re.compile(r"^\s*(?:Negotiate|Kerberos)\s+([A-Za-z0-9+/=]+)\s*$", re.IGNORECASE)


class KerberosDecodeError(ValueError):
    """A malformed Kerberos / SPNEGO / GSS token (the reason says which field)."""


# --- DER (X.690 8.1), just enough for RFC 4120 messages -----------------------------------------

@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes


def _read_der_length(data: bytes, pos: int, what: str = "DER") -> tuple[int, int]:
    """The definite DER length at ``pos`` (X.690 8.1.3; at most 4 length bytes) and the position
    after it."""
    if pos >= len(data):
        raise KerberosDecodeError(f"{what} length truncated")
    length = data[pos]
    pos += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise KerberosDecodeError(f"{what} length is indefinite or too long")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return length, pos


def _tlv(data: bytes, pos: int) -> tuple[Tlv, int]:
    if pos + 2 > len(data):
        raise KerberosDecodeError("DER element truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise KerberosDecodeError("DER high tag numbers are not used by Kerberos")
    length, pos = _read_der_length(data, pos + 1)
    if pos + length > len(data):
        raise KerberosDecodeError("DER element runs past its container")
    return Tlv(tag, data[pos:pos + length]), pos + length


def der(data: bytes, tag: int | None = None) -> Tlv:
    """The single DER element of ``data`` (trailing bytes rejected), optionally of ``tag``."""
    element, end = _tlv(data, 0)
    if tag is not None and element.tag != tag:
        raise KerberosDecodeError(f"DER tag 0x{element.tag:02x} where 0x{tag:02x} was expected")
    if end != len(data):
        raise KerberosDecodeError("bytes after a DER element")
    return element


def children(value: bytes) -> list[Tlv]:
    out: list[Tlv] = []
    pos = 0
    while pos < len(value):
        element, pos = _tlv(value, pos)
        out.append(element)
    return out


def fields(element: Tlv, app_tag: int | None = None) -> dict[int, bytes]:
    """Context-tagged fields ``[n]`` of a SEQUENCE, optionally wrapped in ``[APPLICATION app_tag]``."""
    if app_tag is not None:
        if element.tag != 0x60 | app_tag:
            raise KerberosDecodeError(f"expected [APPLICATION {app_tag}], found tag 0x{element.tag:02x}")
        element = der(element.value, 0x30)
    elif element.tag != 0x30:
        raise KerberosDecodeError("expected a SEQUENCE")
    out: dict[int, bytes] = {}
    for child in children(element.value):
        if child.tag & 0xE0 != 0xA0:
            raise KerberosDecodeError("SEQUENCE member without a context tag")
        out[child.tag & 0x1F] = child.value
    return out


def _need(f: dict[int, bytes], n: int, what: str) -> bytes:
    if n not in f:
        raise KerberosDecodeError(f"{what} is missing")
    return f[n]


def _int(value: bytes) -> int:
    return int.from_bytes(der(value, 0x02).value, "big", signed=True)


def _octets(value: bytes) -> bytes:
    return der(value, 0x04).value


@dataclass(frozen=True)
class EncryptedData:
    """EncryptedData (RFC 4120 5.2.9)."""

    etype: int
    kvno: int | None
    cipher: bytes = field(repr=False)


def encrypted_data(value: bytes) -> EncryptedData:
    f = fields(der(value))
    kvno = _int(f[1]) if 1 in f else None
    return EncryptedData(_int(_need(f, 0, "EncryptedData etype")), kvno, _octets(_need(f, 2, "EncryptedData cipher")))


@dataclass(frozen=True)
class Key:
    """EncryptionKey (RFC 4120 5.2.9)."""

    etype: int
    value: bytes = field(repr=False)


def encryption_key(value: bytes) -> Key:
    f = fields(der(value))
    return Key(_int(_need(f, 0, "keytype")), _octets(_need(f, 1, "keyvalue")))


def principal_name(value: bytes) -> tuple[str, ...]:
    """PrincipalName name-string (RFC 4120 5.2.2)."""
    f = fields(der(value))
    names = der(_need(f, 1, "name-string"), 0x30)
    try:
        return tuple(c.value.decode("utf-8") for c in children(names.value))
    except UnicodeDecodeError as exc:
        raise KerberosDecodeError("principal name is not UTF-8") from exc


@dataclass(frozen=True)
class ApReq:
    """What decryption needs of an AP-REQ (RFC 4120 5.5.1) and its Ticket (5.3)."""

    realm: str
    sname: tuple[str, ...]
    ticket_part: EncryptedData
    authenticator: EncryptedData


def parse_ap_req(data: bytes) -> ApReq:
    f = fields(der(data), 14)
    ticket = fields(der(_need(f, 3, "AP-REQ ticket")), 1)
    realm = der(_need(ticket, 1, "ticket realm"), 0x1B).value.decode("utf-8", "replace")
    return ApReq(realm, principal_name(_need(ticket, 2, "ticket sname")),
                 encrypted_data(_need(ticket, 3, "ticket enc-part")),
                 encrypted_data(_need(f, 4, "AP-REQ authenticator")))


def _krb5_token(token: bytes, tok_id: bytes) -> bytes | None:
    """The inner message of an RFC 2743 3.1 / RFC 4121 4.1 Kerberos token with ``tok_id``, looking
    through SPNEGO NegTokenInit / NegTokenResp (RFC 4178 4.2) for its mechToken / responseToken."""
    for _ in range(MAX_DEPTH):
        outer = der(token)
        if outer.tag == 0x60:
            oid, end = _tlv(outer.value, 0)
            rest = outer.value[end:]
            if oid.tag != 0x06:
                raise KerberosDecodeError("GSS token without a mechanism OID")
            if oid.value in (KRB5_OID, MS_KRB5_OID):
                return rest[2:] if rest[:2] == tok_id else None
            if oid.value != SPNEGO_OID:
                return None
            token = rest
            continue
        if outer.tag in (0xA0, 0xA1):     # NegTokenInit mechToken [2] / NegTokenResp responseToken [2]
            inner = fields(der(outer.value)).get(2)
        elif outer.tag in (0x6E, 0x6F) and tok_id in (TOK_AP_REQ, TOK_AP_REP):
            return token if (outer.tag == 0x6E) == (tok_id == TOK_AP_REQ) else None
        else:
            return None
        if inner is None:
            return None
        token = _octets(inner)
    raise KerberosDecodeError("GSS token nested too deeply")


def header_token(value: str | None, tok_id: bytes) -> bytes | None:
    """The AP-REQ / AP-REP carried by a ``Kerberos`` / ``Negotiate`` header value, or None."""
    if not value:
        return None
    match = _HEADER.match(value)
    if match is None or len(match.group(1)) > MAX_TOKEN * 2:
        return None
    try:
        token = base64.b64decode(match.group(1), validate=True)
        return _krb5_token(token, tok_id) if token else None
    except (binascii.Error, KerberosDecodeError):
        return None


# --- RFC 4757 7.3 (RC4-HMAC) v1 Wrap tokens --------------------------------------------------------

@dataclass(frozen=True)
class Rc4Unwrapped:
    """An opened RFC 4757 7.3 Wrap token: its sequence number and the decrypted data (pad included)."""

    sequence: int
    data: bytes = field(repr=False)
    #: True when the RFC 2743 framing length covered the data (RFC 1964 1.2.2 form: padding mandatory),
    #: False in the DCE style (MS-KILE 3.4.5.1) or without framing.
    framed_data: bool = False


def split_v1_token(token: bytes) -> tuple[bytes, bytes]:
    """See :func:`split_v1_framed`; the token and the data only."""
    header, data, _ = split_v1_framed(token)
    return header, data


def split_v1_framed(token: bytes) -> tuple[bytes, bytes, bool]:
    """The 32-byte RFC 4757 7.3 token and the data after it, from a token with or without the
    RFC 2743 3.1 framing (0x60, DER length, Kerberos OID). The framing length covers the token only
    (DCE style, MS-KILE 3.4.5.1) or the token and the data (RFC 1964 1.2.2); anything else is
    rejected, as is a mechanism other than Kerberos."""
    body = token
    framed_data = False
    if token[:1] == b"\x60":
        if len(token) < 2:
            raise KerberosDecodeError("GSS token framing truncated")
        length, pos = _read_der_length(token, 1, "GSS token framing")
        start = pos
        if pos + 2 > len(token) or token[pos] != 0x06:
            raise KerberosDecodeError("GSS token without a mechanism OID")
        oid_end = pos + 2 + token[pos + 1]
        if token[pos + 2:oid_end] not in (KRB5_OID, MS_KRB5_OID):
            raise KerberosDecodeError("the GSS token is not a Kerberos token (RFC 1964 1.1)")
        body = token[oid_end:]
        if length not in (oid_end - start + RC4_TOKEN_SIZE, len(token) - start):
            raise KerberosDecodeError(f"GSS token framing length {length} covers neither the RFC 4757 token "
                                      "nor the whole message")
        framed_data = length == len(token) - start and len(token) > oid_end + RC4_TOKEN_SIZE
    if len(body) < RC4_TOKEN_SIZE:
        raise KerberosDecodeError(f"RFC 4757 Wrap token of {len(body)} bytes (at least {RC4_TOKEN_SIZE} expected)")
    return body[:RC4_TOKEN_SIZE], body[RC4_TOKEN_SIZE:], framed_data


def _rc4_checksum(key: bytes, header: bytes, confounder: bytes, data: bytes) -> bytes:
    """SGN_CKSUM (RFC 4757 7.3): HMAC-MD5(Ksign, MD5(T=13 | header | confounder | data))[0..7],
    Ksign = HMAC-MD5(Kss, "signaturekey" with its NUL)."""
    ksign = hmac_md5(key, b"signaturekey\x00")
    digest = hashlib.md5(struct.pack("<I", RC4_SIGN_T) + header[:8] + confounder + data).digest()
    return hmac_md5(ksign, digest)[:8]


def _rc4_kseq(key: bytes, checksum: bytes) -> bytes:
    """Kseq = HMAC-MD5(HMAC-MD5(Kss, (int32)0), SGN_CKSUM) (RFC 4757 7.3)."""
    return hmac_md5(hmac_md5(key, bytes(4)), checksum)


def _rc4_kcrypt(key: bytes, seq: bytes) -> bytes:
    """Kcrypt = HMAC-MD5(HMAC-MD5(Klocal, (int32)0), seq), Klocal = Kss xor F0 (RFC 4757 7.3);
    seq is the first four SND_SEQ bytes as sent (big-endian, RFC 1964 1.2.1.2)."""
    klocal = bytes(b ^ 0xF0 for b in key)
    return hmac_md5(hmac_md5(klocal, bytes(4)), seq)


def rc4_unwrap(key: Key, from_client: bool, token: bytes) -> Rc4Unwrapped:
    """Open one sealed RFC 4757 7.3 Wrap token (framing as :func:`split_v1_token` reads it).

    The SND_SEQ is decrypted with Kseq (keyed by the plaintext SGN_CKSUM), the Confounder and the
    data with the one Kcrypt RC4 stream; SGN_CKSUM is then recomputed over the plaintext and must
    match, and the SND_SEQ direction bytes must be 00000000 from the initiator, FFFFFFFF from the
    acceptor (RFC 1964 1.2.1.2). ValueError (KerberosDecodeError for a malformed token) otherwise.
    """
    if key.etype != ETYPE_RC4_HMAC:
        raise ValueError(f"an RFC 4757 RC4-HMAC Wrap token, but the context key is etype {key.etype}")
    header, data, framed_data = split_v1_framed(token)
    if header[:2] != TOK_WRAP_V1:
        raise ValueError(f"TOK_ID {header[:2].hex()} is not an RFC 4757 Wrap token (02 01)")
    if header[2:4] != SGN_ALG_HMAC_MD5:
        raise ValueError(f"SGN_ALG {header[2:4].hex()} is not HMAC-MD5 (11 00, RFC 4757 7.3)")
    if header[4:6] == SEAL_ALG_NONE:
        raise ValueError("Wrap token is not sealed (SEAL_ALG FF FF); WinRM seals every message")
    if header[4:6] != SEAL_ALG_RC4:
        raise ValueError(f"SEAL_ALG {header[4:6].hex()} is not RC4 (10 00, RFC 4757 7.3)")
    if header[6:8] != b"\xff\xff":
        raise ValueError("Wrap token filler is not FF FF (RFC 1964 1.2.2)")
    checksum = header[16:24]
    snd_seq = rc4(_rc4_kseq(key.value, checksum), header[8:16])
    stream = Rc4Stream(_rc4_kcrypt(key.value, snd_seq[:4]))
    confounder = stream.apply(header[24:32])
    plain = stream.apply(data)
    if not hmac.compare_digest(_rc4_checksum(key.value, header, confounder, plain), checksum):
        raise ValueError("integrity check failed (RFC 4757 7.3 SGN_CKSUM): wrong key or altered data")
    if snd_seq[4:] != (DIRECTION_INITIATOR if from_client else DIRECTION_ACCEPTOR):
        raise ValueError(f"SND_SEQ direction {snd_seq[4:].hex()} does not match a message from the "
                         f"{'initiator' if from_client else 'acceptor'} (RFC 1964 1.2.1.2)")
    return Rc4Unwrapped(int.from_bytes(snd_seq[:4], "big"), plain, framed_data)


def rc4_wrap(key: Key, from_client: bool, sequence: int, data: bytes, *, dce_style: bool = True,
             pad: bool = True, confounder: bytes | None = None) -> tuple[bytes, bytes]:
    """Seal ``data`` as an RFC 4757 7.3 Wrap token; (signature, sealed data) as MS-WSMV 2.2.9.1.1
    carries them (for synthesised traffic and tests). ``pad`` appends one pad byte 01 (RFC 1964
    1.2.2.3 with the RC4 block size of 1); ``dce_style`` makes the framing length cover the
    32-byte token only (MS-KILE 3.4.5.1)."""
    if key.etype != ETYPE_RC4_HMAC:
        raise ValueError(f"RFC 4757 Wrap needs an etype {ETYPE_RC4_HMAC} key, not etype {key.etype}")
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise ValueError(f"sequence number {sequence} out of range")
    conf = confounder if confounder is not None else os.urandom(8)
    if len(conf) != 8:
        raise ValueError("the RFC 4757 Confounder is 8 bytes")
    plain = data + (b"\x01" if pad else b"")
    header = TOK_WRAP_V1 + SGN_ALG_HMAC_MD5 + SEAL_ALG_RC4 + b"\xff\xff"
    snd_seq = struct.pack(">I", sequence) + (DIRECTION_INITIATOR if from_client else DIRECTION_ACCEPTOR)
    checksum = _rc4_checksum(key.value, header, conf, plain)
    stream = Rc4Stream(_rc4_kcrypt(key.value, snd_seq[:4]))
    sealed_conf = stream.apply(conf)
    sealed = stream.apply(plain)
    token = header + rc4(_rc4_kseq(key.value, checksum), snd_seq) + checksum + sealed_conf
    inner = b"\x06" + bytes([len(KRB5_OID)]) + KRB5_OID + token
    length = len(inner) if dce_style else len(inner) + len(sealed)
    framing = b"\x60" + (bytes([length]) if length < 0x80 else _der_length(length))
    return framing + inner, sealed


def _der_length(length: int) -> bytes:
    """A DER long-form length (X.690 8.1.3.5)."""
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def strip_rc4_padding(data: bytes, length: int | None, *, padded: bool = False) -> bytes:
    """The message without its RFC 1964 1.2.2.3 padding (1..8 bytes each holding the pad length).

    ``padded`` (the RFC 1964 form, where the pad is mandatory) or no ``length``: the last byte
    gives the pad, and the OriginalContent Length (MS-WSMV 2.2.9.1.1), if known, must be the
    message's length or that plus the pad (senders built on GSS IOV count the pad in it). DCE style
    (MS-KILE 3.4.5.1) with a length: the bytes past it must be such a pad, or nothing."""
    if padded or length is None:
        count = data[-1] if data else 0
        if not 1 <= count <= min(MAX_RC4_PAD, len(data)) or data[-count:] != bytes([count]) * count:
            raise ValueError("the unwrapped message does not end with RFC 1964 padding")
        if length is not None and length not in (len(data) - count, len(data)):
            raise ValueError(f"unwrapped {len(data) - count} bytes (+{count} pad), OriginalContent Length {length}")
        return data[:-count]
    if length > len(data):
        raise ValueError(f"unwrapped {len(data)} bytes, fewer than OriginalContent Length {length}")
    pad = data[length:]
    if pad and (len(pad) > MAX_RC4_PAD or pad != bytes([len(pad)]) * len(pad)):
        raise ValueError(f"{len(pad)} bytes after OriginalContent Length are not RFC 1964 padding")
    return data[:length]


# --- keys of one security context -----------------------------------------------------------------

@dataclass
class KerberosContext:
    """The keys of one GSS Kerberos context (RFC 4121 2; RFC 4757 7.1 for RC4-HMAC)."""

    session: Key
    initiator_subkey: Key | None = None
    acceptor_subkey: Key | None = None
    #: RFC 4757 7.3 SND_SEQ numbers seen, per direction (True: from the initiator).
    sequences: dict[bool, list[int]] = field(default_factory=lambda: {True: [], False: []})

    def key_for(self, flags: int) -> Key:
        if flags & FLAG_ACCEPTOR_SUBKEY:
            if self.acceptor_subkey is None:
                raise ValueError("the Wrap token uses the acceptor subkey but no AP-REP carried one in the capture")
            return self.acceptor_subkey
        return self.initiator_subkey or self.session

    @property
    def context_key(self) -> Key:
        """The RFC 1964 / RFC 4757 context key: the AP-REP subkey, else the authenticator subkey,
        else the session key (RFC 1964 1.2, RFC 4120 3.2.6)."""
        return self.acceptor_subkey or self.initiator_subkey or self.session

    def unwrap(self, from_client: bool, token: bytes, length: int | None = None) -> bytes:
        """Open one sealed Wrap token: RFC 4757 7.3 (RC4-HMAC, TOK_ID 02 01 with or without the
        RFC 2743 framing, padding removed with ``length``, see :func:`strip_rc4_padding`) or RFC
        4121 4.2.6.2 (TOK_ID 05 04); ValueError when it does not verify."""
        if token[:1] == b"\x60" or token[:2] == TOK_WRAP_V1:
            opened = rc4_unwrap(self.context_key, from_client, token)
            self.sequences[from_client].append(opened.sequence)
            return strip_rc4_padding(opened.data, length, padded=opened.framed_data)
        if len(token) < 16 or token[:2] != TOK_WRAP or token[3] != 0xFF:
            raise ValueError("not an RFC 4121 Wrap token (TOK_ID 05 04, filler FF)")
        flags = token[2]
        ec, rrc = struct.unpack_from(">HH", token, 4)
        if bool(flags & FLAG_SENT_BY_ACCEPTOR) == from_client:
            raise ValueError("Wrap token SentByAcceptor flag does not match its direction")
        if not flags & FLAG_SEALED:
            raise ValueError("Wrap token is not sealed (integrity only); WinRM seals every message")
        body = token[16:]
        if body:
            rrc %= len(body)
            body = body[rrc:] + body[:rrc]
        key = self.key_for(flags)
        usage = USAGE_INITIATOR_SEAL if from_client else USAGE_ACCEPTOR_SEAL
        try:
            plain = decrypt(key.etype, key.value, usage, body)
        except KerberosCryptoError as exc:
            raise ValueError(f"Wrap token does not decrypt: {exc}") from exc
        if len(plain) < ec + 16:
            raise ValueError("Wrap token plaintext shorter than its filler and header copy")
        copy = plain[-16:]
        if copy[:6] != token[:6] or copy[8:] != token[8:16]:
            raise ValueError("the header copy inside the Wrap token differs from its header (RFC 4121 4.2.4)")
        message = plain[:len(plain) - ec - 16]
        if length is not None and len(message) != length:
            raise ValueError(f"unwrapped length {len(message)} differs from OriginalContent Length {length}")
        return message


#: The candidate long-term keys of a ticket: (realm, sname, ticket enc-part) -> keys, newest first.
#: NotDecryptable when there is none.
KeySource = Callable[[str, tuple[str, ...], EncryptedData], list[Key]]


def _keytab_key(entries: list[KeytabEntry], realm: str, sname: tuple[str, ...], data: EncryptedData) -> list[Key]:
    matches = [e for e in entries if e.etype == data.etype and e.realm == realm and e.components == sname
               and (data.kvno is None or e.kvno == 0 or e.kvno % 256 == data.kvno % 256)]
    if not matches:
        raise NotDecryptable(f"the keytab holds no key for {'/'.join(sname)}@{realm} etype {data.etype}"
                             + (f" kvno {data.kvno}" if data.kvno is not None else ""))
    return [Key(e.etype, e.key) for e in sorted(matches, key=lambda e: -e.kvno)]


def keytab_keys(entries: list[KeytabEntry]) -> KeySource:
    """The keys of a keytab, matched on principal, etype and kvno (RFC 4120 5.3)."""
    return lambda realm, sname, data: _keytab_key(entries, realm, sname, data)


def password_keys(password: str) -> KeySource:
    """The key of the ticket's etype from a password (:func:`harness.capture.keytab.password_entries`:
    RFC 4757 3 for etype 23, RFC 3962 4 with the principal's default salt for 17/18)."""
    def keys(realm: str, sname: tuple[str, ...], data: EncryptedData) -> list[Key]:
        if data.etype not in SUPPORTED_ETYPES:
            raise NotDecryptable(f"ticket etype {data.etype} is not supported (only 17, 18 and 23)")
        try:
            entries = password_entries(password, realm, sname, (data.etype,))
        except KeytabError as exc:
            raise NotDecryptable(str(exc)) from exc
        return _keytab_key(entries, realm, sname, data)
    return keys


def accept(entries: list[KeytabEntry] | KeySource, ap_req: bytes, *, wrong_key_fails: bool = True) -> KerberosContext:
    """Steps 2 and 3 of the module docstring: the context keys from an AP-REQ and a keytab (or a
    :data:`KeySource`). The ticket's etype picks the decryption (RFC 3961/3962 or RFC 4757 5).
    A key that does not open the ticket is a ValueError, or NotDecryptable when
    ``wrong_key_fails`` is false (a password that may not be the service's)."""
    source = keytab_keys(entries) if isinstance(entries, list) else entries
    req = parse_ap_req(ap_req)
    failure: Exception | None = None
    for key in source(req.realm, req.sname, req.ticket_part):
        try:
            ticket = fields(der(decrypt(key.etype, key.value, USAGE_TICKET, req.ticket_part.cipher)), 3)
            break
        except KerberosCryptoError as exc:
            failure = exc
    else:
        reason = (f"the {'keytab key' if wrong_key_fails else 'password'} does not decrypt the ticket for "
                  f"{'/'.join(req.sname)}@{req.realm} (etype {req.ticket_part.etype}): {failure}")
        if wrong_key_fails:
            raise ValueError(reason)
        raise NotDecryptable(reason + "; not the service account's password")
    session = encryption_key(_need(ticket, 1, "EncTicketPart key"))
    try:
        plain = decrypt(session.etype, session.value, USAGE_AUTHENTICATOR, req.authenticator.cipher)
    except KerberosCryptoError as exc:
        raise ValueError(f"the authenticator does not decrypt with the ticket's session key: {exc}") from exc
    auth = fields(der(plain), 2)
    return KerberosContext(session, encryption_key(auth[6]) if 6 in auth else None)


def accept_reply(context: KerberosContext, ap_rep: bytes) -> None:
    """Step 4: the acceptor subkey from an AP-REP (RFC 4120 5.5.2), usage 12."""
    enc = encrypted_data(_need(fields(der(ap_rep), 15), 2, "AP-REP enc-part"))
    try:
        part = fields(der(decrypt(context.session.etype, context.session.value, USAGE_AP_REP, enc.cipher)), 27)
    except KerberosCryptoError as exc:
        raise ValueError(f"the AP-REP does not decrypt with the session key: {exc}") from exc
    if 2 in part:
        context.acceptor_subkey = encryption_key(part[2])


# --- the decryptor ---------------------------------------------------------------------------------



class _KerberosHandshake:
    """The Kerberos handshake of one TCP stream: the AP-REQ of a request (RFC 4120 3.2.2) gives
    the session key with the service key, the AP-REP of its answer (3.2.4) the acceptor subkey;
    the wrap tokens that follow open with them (RFC 4121 4.2.6.2, RFC 4757 7.3)."""

    name = "Kerberos"
    protocols: tuple[str, ...] = (KERBEROS_PROTOCOL.lower(), SPNEGO_PROTOCOL.lower())

    def __init__(self, source: KeySource, wrong_key_fails: bool) -> None:
        self.source = source
        self.wrong_key_fails = wrong_key_fails
        self.context: KerberosContext | None = None
        self.failure: Opened = NotDecryptable("no Kerberos AP-REQ precedes this message in its TCP stream")

    @property
    def ready(self) -> bool:
        return self.context is not None

    def on_request(self, authorization: str | None) -> None:
        ap_req = header_token(authorization, TOK_AP_REQ)
        if ap_req is None:
            return
        try:
            self.context = accept(self.source, ap_req, wrong_key_fails=self.wrong_key_fails)
        except NotDecryptable as exc:
            self.context, self.failure = None, exc
        except ValueError as exc:
            self.context, self.failure = None, str(exc)

    def on_response(self, www_authenticate: list[str]) -> None:
        for value in www_authenticate:
            ap_rep = header_token(value, TOK_AP_REP)
            if ap_rep is not None and self.context is not None:
                try:
                    accept_reply(self.context, ap_rep)
                except ValueError as exc:
                    self.context, self.failure = None, str(exc)

    def open_part(self, from_client: bool, part: EncryptedPart) -> bytes:
        assert self.context is not None
        return self.context.unwrap(from_client, part.signature + part.sealed, part.length)


def _open_stream(source: KeySource, stream: TcpStream, wrong_key_fails: bool = True
                 ) -> dict[tuple[bool, int], Opened]:
    return open_sealed_stream(stream, _KerberosHandshake(source, wrong_key_fails))


def keytab_decryptor(keytab: Path) -> Decryptor:
    """A :data:`harness.capture.check.Decryptor` for Kerberos-sealed WinRM messages (one capture)."""
    try:
        entries = read_keytab(keytab)
        problem: str | None = None
    except KeytabError as exc:
        entries, problem = [], str(exc)
    if problem is not None:
        reason = problem

        def unreadable_keytab(stream: TcpStream, message: HttpMessage, before: list[HttpMessage]) -> bytes:
            raise ValueError(reason)

        return unreadable_keytab
    source = keytab_keys(entries)
    return stream_decryptor(lambda stream: _open_stream(source, stream), "Kerberos")


def password_decryptor(password: str) -> Decryptor:
    """A :data:`harness.capture.check.Decryptor` for Kerberos-sealed WinRM messages whose service
    ticket the password's key opens (the service account's password; any etype 17/18/23). A ticket
    it does not open leaves the stream's messages NotDecryptable."""
    source = password_keys(password)
    return stream_decryptor(lambda stream: _open_stream(source, stream, wrong_key_fails=False), "Kerberos")


def _factory(keytab: str) -> Decryptor | None:
    return keytab_decryptor(Path(keytab)) if keytab else None


def _password_factory(password: str) -> Decryptor | None:
    return password_decryptor(password) if password else None


register_keytab_decryptor_factory(_factory)
register_kerberos_password_decryptor_factory(_password_factory)

__all__ = ["ApReq", "KerberosContext", "KerberosDecodeError", "KeySource", "Rc4Unwrapped", "accept", "accept_reply",
           "header_token", "keytab_decryptor", "keytab_keys", "parse_ap_req", "password_decryptor", "password_keys",
           "rc4_unwrap", "rc4_wrap", "split_v1_framed", "split_v1_token", "strip_rc4_padding"]

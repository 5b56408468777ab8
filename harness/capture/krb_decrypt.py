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

The keytab is only used to decrypt: no key is written into a report or an error message.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from harness.auth.encryption import KERBEROS_PROTOCOL, SPNEGO_PROTOCOL, parse_body, parse_content_type
from harness.auth.errors import EncryptionError
from harness.capture.check import (
    Decryptor,
    NotDecryptable,
    Opened,
    register_keytab_decryptor_factory,
    stream_decryptor,
)
from harness.capture.http1 import HttpMessage, extract_messages
from harness.capture.keytab import KeytabEntry, KeytabError, read_keytab
from harness.capture.krb_crypto import KerberosCryptoError, decrypt
from harness.capture.reader import TcpStream

KRB5_OID = bytes.fromhex("2a864886f712010202")          # 1.2.840.113554.1.2.2 (RFC 4121 4.1)
MS_KRB5_OID = bytes.fromhex("2a864882f712010202")       # 1.2.840.48018.1.2.2 (Windows' variant)
SPNEGO_OID = bytes.fromhex("2b0601050502")              # 1.3.6.1.5.5.2 (RFC 4178)
TOK_AP_REQ = b"\x01\x00"
TOK_AP_REP = b"\x02\x00"
TOK_WRAP = b"\x05\x04"
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


def _tlv(data: bytes, pos: int) -> tuple[Tlv, int]:
    if pos + 2 > len(data):
        raise KerberosDecodeError("DER element truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise KerberosDecodeError("DER high tag numbers are not used by Kerberos")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise KerberosDecodeError("DER length is indefinite or too long")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
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


# --- keys of one security context -----------------------------------------------------------------

@dataclass
class KerberosContext:
    """The keys of one GSS Kerberos context (RFC 4121 2)."""

    session: Key
    initiator_subkey: Key | None = None
    acceptor_subkey: Key | None = None

    def key_for(self, flags: int) -> Key:
        if flags & FLAG_ACCEPTOR_SUBKEY:
            if self.acceptor_subkey is None:
                raise ValueError("the Wrap token uses the acceptor subkey but no AP-REP carried one in the capture")
            return self.acceptor_subkey
        return self.initiator_subkey or self.session

    def unwrap(self, from_client: bool, token: bytes) -> bytes:
        """Open one sealed RFC 4121 4.2.6.2 Wrap token; ValueError when it does not verify."""
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
        return plain[:len(plain) - ec - 16]


def _keytab_key(entries: list[KeytabEntry], realm: str, sname: tuple[str, ...], data: EncryptedData) -> list[Key]:
    matches = [e for e in entries if e.etype == data.etype and e.realm == realm and e.components == sname
               and (data.kvno is None or e.kvno % 256 == data.kvno % 256)]
    if not matches:
        raise NotDecryptable(f"the keytab holds no key for {'/'.join(sname)}@{realm} etype {data.etype}"
                             + (f" kvno {data.kvno}" if data.kvno is not None else ""))
    return [Key(e.etype, e.key) for e in sorted(matches, key=lambda e: -e.kvno)]


def accept(entries: list[KeytabEntry], ap_req: bytes) -> KerberosContext:
    """Steps 2 and 3 of the module docstring: the context keys from an AP-REQ and the keytab."""
    req = parse_ap_req(ap_req)
    failure: Exception | None = None
    for key in _keytab_key(entries, req.realm, req.sname, req.ticket_part):
        try:
            ticket = fields(der(decrypt(key.etype, key.value, USAGE_TICKET, req.ticket_part.cipher)), 3)
            break
        except KerberosCryptoError as exc:
            failure = exc
    else:
        raise ValueError(f"the keytab key does not decrypt the ticket for {'/'.join(req.sname)}@{req.realm}: "
                         f"{failure}")
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



def _open_stream(entries: list[KeytabEntry], stream: TcpStream) -> dict[tuple[bool, int], Opened]:
    out: dict[tuple[bool, int], Opened] = {}
    requests = extract_messages(stream.to_server, True)
    responses = [r for r in extract_messages(stream.to_client, False, [m.method for m in requests])
                 if r.status is None or r.status >= 200]
    context: KerberosContext | None = None
    failure: Opened = NotDecryptable("no Kerberos AP-REQ precedes this message in its TCP stream")
    for i, request in enumerate(requests):
        ap_req = header_token(request.header("Authorization"), TOK_AP_REQ)
        if ap_req is not None:
            try:
                context = accept(entries, ap_req)
            except NotDecryptable as exc:
                context, failure = None, exc
            except ValueError as exc:
                context, failure = None, str(exc)
        _open(out, context, failure, request, True)
        response = responses[i] if i < len(responses) else None
        if response is None:
            continue
        for value in (v for n, v in response.headers if n.lower() == "www-authenticate"):
            ap_rep = header_token(value, TOK_AP_REP)
            if ap_rep is not None and context is not None:
                try:
                    accept_reply(context, ap_rep)
                except ValueError as exc:
                    context, failure = None, str(exc)
        _open(out, context, failure, response, False)
    return out


def _open(out: dict[tuple[bool, int], Opened], context: KerberosContext | None, failure: Opened,
          message: HttpMessage, from_client: bool) -> None:
    content_type = message.header("Content-Type") or ""
    if not content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
        return
    key = (from_client, message.offset)
    if context is None:
        out[key] = failure
        return
    try:
        protocol, boundary = parse_content_type(content_type)
        if protocol.lower() not in (KERBEROS_PROTOCOL.lower(), SPNEGO_PROTOCOL.lower()):
            out[key] = NotDecryptable(f"protocol {protocol} is not Kerberos session encryption")
            return
        plain = bytearray()
        for part in parse_body(message.body, boundary):
            opened = context.unwrap(from_client, part.signature + part.sealed)
            if len(opened) != part.length:
                raise ValueError(f"unwrapped length {len(opened)} differs from OriginalContent Length {part.length}")
            plain += opened
        out[key] = bytes(plain)
    except KerberosDecodeError as exc:
        out[key] = str(exc)
    except (EncryptionError, ValueError) as exc:
        out[key] = str(getattr(exc, "reason", exc))


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
    return stream_decryptor(lambda stream: _open_stream(entries, stream), "Kerberos")


def _factory(keytab: str) -> Decryptor | None:
    return keytab_decryptor(Path(keytab)) if keytab else None


register_keytab_decryptor_factory(_factory)

__all__ = ["ApReq", "KerberosContext", "KerberosDecodeError", "accept", "accept_reply", "header_token",
           "keytab_decryptor", "parse_ap_req"]

"""Decrypt NTLM-sealed WinRM traffic in a capture, from the handshake in the capture and a password.

MS-WSMV 2.2.9.1.1: with Negotiate (NTLM, raw or inside SPNEGO) over HTTP, WS-Man bodies travel as
``multipart/encrypted; protocol="application/HTTP-SPNEGO-session-encrypted"``, each part a 16-byte
NTLM signature and the RC4-sealed SOAP message (:mod:`harness.auth.encryption` parses the layout).
To open them the keys are derived again, as the server did (MS-NLMP 3.3.2, 3.4, 3.4.5):

1. The NTLM handshake is read from the HTTP headers of the TCP stream: CHALLENGE_MESSAGE
   (MS-NLMP 2.2.1.2: ServerChallenge, at offset 24) in ``WWW-Authenticate: Negotiate <base64>``,
   AUTHENTICATE_MESSAGE (2.2.1.3: NtChallengeResponse, UserName, DomainName,
   EncryptedRandomSessionKey, NegotiateFlags) in ``Authorization: Negotiate <base64>``. SPNEGO
   wrappers (RFC 4178) are looked through by finding the ``NTLMSSP\\0`` signature.
2. ResponseKeyNT = NTOWFv2(password, user, domain) = HMAC_MD5(MD4(UNICODE(password)),
   UNICODE(Uppercase(user) + domain)) (3.3.2). NTProofStr = HMAC_MD5(ResponseKeyNT,
   ServerChallenge + temp) must equal the first 16 bytes of the NtChallengeResponse: this is how a
   wrong password is detected. SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr);
   KeyExchangeKey = SessionBaseKey (NTLMv2, 3.4.5.1).
3. ExportedSessionKey = RC4K(KeyExchangeKey, EncryptedRandomSessionKey) with
   NTLMSSP_NEGOTIATE_KEY_EXCH, else KeyExchangeKey (3.1.5.1.2, 3.2.5.1.2).
4. SIGNKEY / SEALKEY per direction (3.4.5.2, 3.4.5.3: MD5 of the key and the client-to-server or
   server-to-client magic constant; the seal key cut to 5 / 7 bytes without NEGOTIATE_128).
5. Every sealed message in a direction continues one RC4 stream (connection-oriented, 3.4.3):
   plaintext = RC4(handle, sealed), then the signature (3.4.4.2, extended session security) is
   checked: version 1, the sequence number counting messages from 0, and the checksum
   HMAC_MD5(SigningKey, SeqNum + plaintext)[0..7], RC4-encrypted with the same handle under KEY_EXCH.

Only NTLMv2 with extended session security is supported (what Windows, pywinrm and pypsrp use);
anything else raises ValueError with the reason. The password is only used to derive keys: it is
never written into a report or an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from spnego._ntlm_raw.crypto import RC4Handle, ntowfv1

from harness.auth.encryption import SPNEGO_PROTOCOL, EncryptedPart
from harness.auth.ntlm_cbt import find_ntlm_message
from harness.capture.check import Decryptor, NotDecryptable, Opened, register_decryptor_factory, stream_decryptor
from harness.capture.sealed import open_sealed_stream

NTLM_SIGNATURE = b"NTLMSSP\0"
NEGOTIATE_UNICODE = 0x00000001
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000

CLIENT_SIGNING = b"session key to client-to-server signing key magic constant\0"
SERVER_SIGNING = b"session key to server-to-client signing key magic constant\0"
CLIENT_SEALING = b"session key to client-to-server sealing key magic constant\0"
SERVER_SEALING = b"session key to server-to-client sealing key magic constant\0"

#: Largest NTLM token accepted from a header (the fields are 16-bit lengths and offsets).
MAX_TOKEN = 64 * 1024
_NEGOTIATE_HEADER = re.compile(r"^\s*(?:Negotiate|NTLM)\s+([A-Za-z0-9+/=]+)\s*$", re.IGNORECASE)


def _hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def _field(msg: bytes, offset: int, what: str) -> bytes:
    """A security buffer (MS-NLMP 2.2.2.x: Len, MaxLen, BufferOffset) of ``msg``."""
    if offset + 8 > len(msg):
        raise ValueError(f"NTLM message too short for its {what} field")
    length, _, start = struct.unpack_from("<HHI", msg, offset)
    if start + length > len(msg):
        raise ValueError(f"NTLM {what} field points outside the message")
    return msg[start:start + length]


def ntlm_token(header_value: str | None, message_type: int) -> bytes | None:
    """The NTLM message of ``message_type`` (2 CHALLENGE, 3 AUTHENTICATE) carried by a
    ``Negotiate`` / ``NTLM`` header value (raw or inside SPNEGO), or None."""
    if not header_value:
        return None
    match = _NEGOTIATE_HEADER.match(header_value)
    if match is None or len(match.group(1)) > MAX_TOKEN * 2:
        return None
    try:
        token = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        return None
    return find_ntlm_message(token, message_type)


@dataclass(frozen=True)
class Challenge:
    """What the decryption needs of a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2)."""

    server_challenge: bytes
    flags: int


@dataclass(frozen=True)
class Authenticate:
    """What the decryption needs of an AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3)."""

    nt_response: bytes
    user: str
    domain: str
    encrypted_session_key: bytes
    flags: int


def parse_challenge(msg: bytes) -> Challenge:
    if len(msg) < 32 or not msg.startswith(NTLM_SIGNATURE) or struct.unpack_from("<I", msg, 8)[0] != 2:
        raise ValueError("not an NTLM CHALLENGE_MESSAGE")
    (flags,) = struct.unpack_from("<I", msg, 20)
    return Challenge(msg[24:32], flags)


def parse_authenticate(msg: bytes) -> Authenticate:
    if len(msg) < 64 or not msg.startswith(NTLM_SIGNATURE) or struct.unpack_from("<I", msg, 8)[0] != 3:
        raise ValueError("not an NTLM AUTHENTICATE_MESSAGE")
    (flags,) = struct.unpack_from("<I", msg, 60)
    encoding = "utf-16-le" if flags & NEGOTIATE_UNICODE else "cp437"
    try:
        domain = _field(msg, 28, "DomainName").decode(encoding)
        user = _field(msg, 36, "UserName").decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError("NTLM user or domain name is not valid text") from exc
    return Authenticate(_field(msg, 20, "NtChallengeResponse"), user, domain,
                        _field(msg, 52, "EncryptedRandomSessionKey"), flags)


@dataclass
class _Direction:
    """One direction of a sealed NTLM session: its RC4 stream, signing key and sequence number."""

    sign_key: bytes
    handle: RC4Handle
    seq: int = 0


@dataclass
class NtlmSession:
    """The keys of one NTLM security context (MS-NLMP 3.4.5), both directions."""

    flags: int
    client: _Direction
    server: _Direction

    def unseal(self, from_client: bool, signature: bytes, sealed: bytes) -> bytes:
        """Open one sealed message (MS-NLMP 3.4.3 / 3.4.4.2); ValueError if its signature is wrong."""
        side = self.client if from_client else self.server
        if len(signature) != 16:
            raise ValueError(f"NTLM signature of {len(signature)} bytes (16 expected)")
        version, checksum, seq = struct.unpack("<I8sI", signature)
        plain = side.handle.update(sealed)
        expected = _hmac_md5(side.sign_key, struct.pack("<I", side.seq) + plain)[:8]
        if self.flags & NEGOTIATE_KEY_EXCH:
            expected = side.handle.update(expected)
        if version != 1 or seq != side.seq or not hmac.compare_digest(checksum, expected):
            raise ValueError(f"NTLM signature does not verify (sequence number {side.seq}): wrong password, "
                             "or a message of the stream is missing from the capture")
        side.seq += 1
        return plain


def _seal_key(flags: int, key: bytes, magic: bytes) -> bytes:
    """SEALKEY (MS-NLMP 3.4.5.3), extended session security."""
    if flags & NEGOTIATE_128:
        cut = key
    elif flags & NEGOTIATE_56:
        cut = key[:7]
    else:
        cut = key[:5]
    return hashlib.md5(cut + magic).digest()


def derive_session(password: str, challenge: Challenge, auth: Authenticate) -> NtlmSession:
    """Keys of the NTLM session from the password and the captured handshake (see the module
    docstring); ValueError when the password does not match or the dialect is unsupported."""
    flags = auth.flags
    if len(auth.nt_response) <= 24:
        raise ValueError("the AUTHENTICATE message carries an NTLMv1 response (only NTLMv2 is supported)")
    if not flags & NEGOTIATE_EXTENDED_SESSIONSECURITY:
        raise ValueError("the NTLM session has no extended session security (not supported)")
    if not flags & NEGOTIATE_SEAL:
        raise ValueError("the NTLM session did not negotiate sealing")
    response_key = _hmac_md5(ntowfv1(password), (auth.user.upper() + auth.domain).encode("utf-16-le"))
    nt_proof = auth.nt_response[:16]
    temp = auth.nt_response[16:]
    if not hmac.compare_digest(_hmac_md5(response_key, challenge.server_challenge + temp), nt_proof):
        raise ValueError("the password does not produce the NTLMv2 response of the capture")
    key_exchange_key = _hmac_md5(response_key, nt_proof)
    if flags & NEGOTIATE_KEY_EXCH:
        if len(auth.encrypted_session_key) != 16:
            raise ValueError("KEY_EXCH negotiated but the EncryptedRandomSessionKey is not 16 bytes")
        exported = RC4Handle(key_exchange_key).update(auth.encrypted_session_key)
    else:
        exported = key_exchange_key
    client = _Direction(hashlib.md5(exported + CLIENT_SIGNING).digest(),
                        RC4Handle(_seal_key(flags, exported, CLIENT_SEALING)))
    server = _Direction(hashlib.md5(exported + SERVER_SIGNING).digest(),
                        RC4Handle(_seal_key(flags, exported, SERVER_SEALING)))
    return NtlmSession(flags, client, server)


class _NtlmHandshake:
    """The NTLM handshake of one TCP stream (MS-NLMP 3.1.5): the CHALLENGE of an answer and the
    AUTHENTICATE of the next request give the session that seals what follows."""

    name = "NTLM/SPNEGO"
    protocols: tuple[str, ...] = (SPNEGO_PROTOCOL.lower(),)

    def __init__(self, password: str) -> None:
        self.password = password
        self.session: NtlmSession | None = None
        self.challenge: Challenge | None = None
        self.failure: Opened = NotDecryptable("no NTLM handshake precedes this message in its TCP stream")

    @property
    def ready(self) -> bool:
        return self.session is not None

    def on_request(self, authorization: str | None) -> None:
        token = ntlm_token(authorization, 3)
        if token is None:
            return
        try:
            if self.challenge is None:
                raise NotDecryptable("the capture holds an NTLM AUTHENTICATE but not the CHALLENGE before it")
            self.session = derive_session(self.password, self.challenge, parse_authenticate(token))
        except NotDecryptable as exc:
            self.session, self.failure = None, exc
        except ValueError as exc:
            self.session, self.failure = None, str(exc)

    def on_response(self, www_authenticate: list[str]) -> None:
        for value in www_authenticate:
            chal = ntlm_token(value, 2)
            if chal is not None:
                try:
                    self.challenge = parse_challenge(chal)
                except ValueError as exc:
                    self.challenge, self.failure = None, str(exc)

    def open_part(self, from_client: bool, part: EncryptedPart) -> bytes:
        assert self.session is not None
        opened = self.session.unseal(from_client, part.signature, part.sealed)
        if len(opened) != part.length:
            raise ValueError(f"unsealed length {len(opened)} differs from OriginalContent Length {part.length}")
        return opened


def ntlm_decryptor(password: str) -> Decryptor:
    """A :data:`harness.capture.check.Decryptor` for NTLM-sealed WinRM messages (one capture)."""
    return stream_decryptor(lambda stream: open_sealed_stream(stream, _NtlmHandshake(password)), "NTLM")


def _factory(password: str) -> Decryptor | None:
    return ntlm_decryptor(password) if password else None


register_decryptor_factory(_factory)

__all__ = ["Authenticate", "Challenge", "NtlmSession", "derive_session", "ntlm_decryptor", "ntlm_token",
           "parse_authenticate", "parse_challenge"]

"""NTLM acceptor for DCE/RPC (RPC_C_AUTHN_WINNT, MS-RPCE 2.2.1.1.7) built on pyspnego's NTLM
message classes and crypto primitives (MS-NLMP 2.2, 3.3.2, 3.4).

pyspnego's own acceptor recomputes the NTLMv2 client blob from its parsed fields; clients that lay
the blob out differently (impacket omits the trailing Z(4) after the AV pairs: observed client
behaviour that Windows accepts) then fail. This acceptor checks NTProofStr over the blob *as
received* (MS-NLMP 3.3.2: ``HMAC_MD5(ResponseKeyNT, ServerChallenge + temp)``), like Windows.

Only NTLMv2 with extended session security is accepted (MS-NLMP 3.3.2; NTLMv1 is refused). Keys:
ExportedSessionKey from KeyExchangeKey (3.4.5.1), SIGNKEY / SEALKEY per direction (3.4.5.2, 3.4.5.3);
sign and seal per 3.4.4.2 / 3.4.3 with one RC4 handle per direction.
"""

from __future__ import annotations

import hmac
import os

from spnego._ntlm_raw.crypto import RC4Handle, hmac_md5, ntowfv1, ntowfv2, rc4, rc4init, rc4k, sealkey, signkey
from spnego._ntlm_raw.messages import (
    Authenticate,
    AvFlags,
    AvId,
    Challenge,
    FileTime,
    Negotiate,
    NegotiateFlags,
    NTClientChallengeV2,
    TargetInfo,
    Version,
)
from spnego._ntlm_raw.security import sign

from harness.auth.users import LocalUser, UserDatabase

_MIC_OFFSET = 72   # AUTHENTICATE_MESSAGE: 64 fixed octets + 8 octets Version, then MIC (MS-NLMP 2.2.1.3)


class NtlmError(Exception):
    """The NTLM handshake or a message signature failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NtlmAcceptor:
    """Server side of one NTLM context: NEGOTIATE -> CHALLENGE, AUTHENTICATE -> complete."""

    def __init__(self, users: UserDatabase, machine: str = "WMH-MOCK01") -> None:
        self.users = users
        self.machine = machine.upper()
        self.user: LocalUser | None = None
        self.flags = 0
        self._negotiate: bytes | None = None
        self._challenge: bytes | None = None
        self._server_challenge = b""
        self._seq_in = 0
        self._seq_out = 0
        self._sign_in = b""
        self._sign_out = b""
        self._handle_in: RC4Handle | None = None
        self._handle_out: RC4Handle | None = None

    @property
    def complete(self) -> bool:
        return self.user is not None

    def step(self, token: bytes) -> bytes | None:
        try:
            if self._challenge is None:
                return self._on_negotiate(token)
            self._on_authenticate(token)
        except NtlmError:
            raise
        except Exception as exc:   # pyspnego's parsers raise assorted errors on malformed tokens
            raise NtlmError(f"malformed NTLM message: {exc}") from exc
        return None

    def _on_negotiate(self, token: bytes) -> bytes:
        """CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2, 3.2.5.1.1)."""
        negotiate = Negotiate.unpack(token)
        flags = (negotiate.flags | NegotiateFlags.request_target | NegotiateFlags.ntlm | NegotiateFlags.always_sign
                 | NegotiateFlags.target_info | NegotiateFlags.target_type_server)
        if not flags & NegotiateFlags.unicode:
            raise NtlmError("the client does not offer NTLMSSP_NEGOTIATE_UNICODE")
        flags &= ~NegotiateFlags.oem
        if not flags & NegotiateFlags.extended_session_security:
            raise NtlmError("NTLM without extended session security is refused")
        flags &= ~NegotiateFlags.lm_key
        self._server_challenge = os.urandom(8)
        info = TargetInfo()
        info[AvId.nb_computer_name] = self.machine
        info[AvId.nb_domain_name] = self.machine
        info[AvId.dns_computer_name] = self.machine.lower()
        info[AvId.timestamp] = FileTime.now()
        version = Version.get_current() if flags & NegotiateFlags.version else None
        challenge = Challenge(flags, self._server_challenge, target_name=self.machine, target_info=info,
                              version=version)
        self.flags = flags
        self._negotiate = token
        self._challenge = challenge.pack()
        return self._challenge

    def _on_authenticate(self, token: bytes) -> None:
        """AUTHENTICATE_MESSAGE check (MS-NLMP 3.3.2) and key derivation (3.4.5)."""
        auth = Authenticate.unpack(token)
        user_name = auth.user_name or ""
        nt_response = auth.nt_challenge_response or b""
        if not user_name:
            raise NtlmError("anonymous NTLM logon is refused")
        if len(nt_response) <= 24:
            raise NtlmError("NTLMv1 responses are refused")
        user = self.users.lookup(user_name)
        if user is None:
            raise NtlmError(f"unknown user {user_name!r}")
        response_key = ntowfv2(user_name, ntowfv1(user.password), auth.domain_name)
        blob = nt_response[16:]
        proof = hmac_md5(response_key, self._server_challenge + blob)
        if not hmac.compare_digest(proof, nt_response[:16]):
            raise NtlmError("wrong password (NTProofStr mismatch)")
        session_base_key = hmac_md5(response_key, proof)
        flags = auth.flags
        if not flags & NegotiateFlags.extended_session_security:
            raise NtlmError("NTLM without extended session security is refused")
        exported = session_base_key
        if flags & NegotiateFlags.key_exch and flags & (NegotiateFlags.sign | NegotiateFlags.seal):
            exported = rc4k(session_base_key, auth.encrypted_random_session_key or b"")
        av_pairs = NTClientChallengeV2.unpack(blob).av_pairs
        if av_pairs.get(AvId.flags, 0) & AvFlags.mic:
            mic = token[_MIC_OFFSET:_MIC_OFFSET + 16]
            zeroed = token[:_MIC_OFFSET] + b"\x00" * 16 + token[_MIC_OFFSET + 16:]
            assert self._negotiate is not None and self._challenge is not None
            expected = hmac_md5(exported, self._negotiate + self._challenge + zeroed)
            if not hmac.compare_digest(mic, expected):
                raise NtlmError("AUTHENTICATE MIC mismatch")
        self.flags = flags
        self._sign_in = signkey(flags, exported, "initiate")
        self._sign_out = signkey(flags, exported, "accept")
        self._handle_in = rc4init(sealkey(flags, exported, "initiate"))
        self._handle_out = rc4init(sealkey(flags, exported, "accept"))
        self.user = user

    # -------------------------------------------------------------------- protection

    def _handles(self) -> tuple[RC4Handle, RC4Handle]:
        if self._handle_in is None or self._handle_out is None:
            raise NtlmError("the NTLM context is not complete")
        return self._handle_in, self._handle_out

    def sign(self, data: bytes) -> bytes:
        sig = sign(self.flags, self._handles()[1], self._sign_out, self._seq_out, data)
        self._seq_out += 1
        return bytes(sig)

    def verify(self, data: bytes, signature: bytes) -> None:
        expected = sign(self.flags, self._handles()[0], self._sign_in, self._seq_in, data)
        if not hmac.compare_digest(bytes(expected), signature[:16]):
            raise NtlmError("message signature mismatch")
        self._seq_in += 1

    def seal(self, pre: bytes, data: bytes, post: bytes) -> tuple[bytes, bytes]:
        """Encrypt ``data`` and sign ``pre + data + post`` (header signing, MS-RPCE 3.3.1.5.2.2)."""
        sealed = rc4(self._handles()[1], data)
        return sealed, self.sign(pre + data + post)

    def unseal(self, pre: bytes, data: bytes, post: bytes, signature: bytes) -> bytes:
        plain = rc4(self._handles()[0], data)
        self.verify(pre + plain + post, signature)
        return bytes(plain)

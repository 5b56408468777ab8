"""Channel bindings inside an NTLM AUTHENTICATE message (MS-NLMP 2.2.1.3, 2.2.2.1, 2.2.2.7).

The acceptor needs to know whether the initiator sent a binding at all before it can apply the
listener's ``CbtHardeningLevel`` (Relaxed accepts a missing or all-zero MsvAvChannelBindings,
Strict does not), so this sans-IO reader finds the AV pair without changing any state.
"""

from __future__ import annotations

import enum
import hashlib
import struct

NTLM_SIGNATURE = b"NTLMSSP\x00"
AUTHENTICATE_TYPE = 3
MSV_AV_EOL = 0x0000
MSV_AV_CHANNEL_BINDINGS = 0x000A   # MS-NLMP 2.2.2.1
_NTLMV2_CLIENT_CHALLENGE_OFFSET = 16 + 28   # NTProofStr, then RespType..ChallengeFromClient..Reserved3


class BindingState(enum.Enum):
    """What the initiator put into MsvAvChannelBindings."""

    ABSENT = "absent"        # no AV pair, an NTLMv1 response, or no NTLM token found
    ZERO = "zero"            # sixteen zero bytes: "I have no bindings" (MS-NLMP 3.1.5.1.2)
    PRESENT = "present"


def binding_hash(application_data: bytes) -> bytes:
    """MD5 of a gss_channel_bindings_struct with only application data (MS-NLMP 3.1.5.1.2, RFC 4121 4.1.1.2)."""
    packed = struct.pack("<IIIII", 0, 0, 0, 0, len(application_data)) + application_data
    return hashlib.md5(packed).digest()


def find_ntlm_message(token: bytes, message_type: int) -> bytes | None:
    """The NTLM message of ``message_type`` (1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE; MS-NLMP 2.2.1)
    in a raw NTLM token or inside a SPNEGO token: from its ``NTLMSSP\\0`` signature to the end."""
    index = token.find(NTLM_SIGNATURE + struct.pack("<I", message_type))
    return None if index < 0 else token[index:]


def find_authenticate(token: bytes) -> bytes | None:
    """The NTLM AUTHENTICATE message in a raw NTLM token or inside a SPNEGO NegTokenResp."""
    return find_ntlm_message(token, AUTHENTICATE_TYPE)


def channel_bindings_of(token: bytes) -> tuple[BindingState, bytes | None]:
    """Read MsvAvChannelBindings from the NTLMv2 response of an AUTHENTICATE message.

    Never raises: anything malformed is reported as ABSENT, the acceptor then rejects the token itself.
    """
    message = find_authenticate(token)
    if message is None or len(message) < 64:
        return BindingState.ABSENT, None
    nt_len, _nt_max, nt_offset = struct.unpack_from("<HHI", message, 20)   # NtChallengeResponseFields
    if nt_len <= 24 or nt_offset + nt_len > len(message):
        return BindingState.ABSENT, None        # NTLMv1 carries no AV pairs
    response = message[nt_offset:nt_offset + nt_len]
    pos = _NTLMV2_CLIENT_CHALLENGE_OFFSET
    while pos + 4 <= len(response):
        av_id, av_len = struct.unpack_from("<HH", response, pos)
        pos += 4
        if av_id == MSV_AV_EOL or pos + av_len > len(response):
            break
        if av_id == MSV_AV_CHANNEL_BINDINGS:
            value = response[pos:pos + av_len]
            if value == b"\x00" * len(value):
                return BindingState.ZERO, value
            return BindingState.PRESENT, value
        pos += av_len
    return BindingState.ABSENT, None

"""MS-WSMV 2.2.9.1.1 message encryption: layout, round trips in both directions, and refusal of bad bodies."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from _authkit import ADMIN_PASSWORD, acceptor_for, handshake, ntlm_client
from pypsrp.encryption import WinRMEncryption

from harness.auth.acceptor import ConnectionAuth
from harness.auth.encryption import (
    BOUNDARY,
    SPNEGO_PROTOCOL,
    EncryptedPart,
    build_body,
    content_type,
    is_encrypted,
    parse_body,
    parse_content_type,
    unwrap_message,
    wrap_message,
)
from harness.auth.errors import EncryptionError
from harness.auth.users import UserDatabase

SOAP = b'<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>'


@pytest.fixture
def pair(users: UserDatabase) -> tuple[Any, Any]:
    """An established (client context, server context) pair over NTLM."""
    conn = ConnectionAuth()
    client = ntlm_client("wmh", ADMIN_PASSWORD)
    outcome = handshake(acceptor_for(users), conn, client)
    assert outcome.ok and client.complete
    return client, conn.context


@pytest.mark.spec("MS-WSMV 2.2.9.1.1")
def test_layout_of_a_sealed_message(pair: tuple[Any, Any]) -> None:
    client, _server = pair
    ctype, body = wrap_message(client, SOAP)
    assert ctype == ('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
                     'boundary="Encrypted Boundary"')
    head = (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(SOAP)).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n")
    assert body.startswith(head)
    assert body.endswith(b"--Encrypted Boundary--\r\n")
    binary = body[len(head):-len(b"--Encrypted Boundary--\r\n")]
    (sig_len,) = struct.unpack("<I", binary[:4])
    assert sig_len == 16                              # MS-NLMP 3.4.4 signature
    assert len(binary) == 4 + 16 + len(SOAP)          # RC4 sealing keeps the length
    assert SOAP not in body


@pytest.mark.spec("MS-WSMV 2.2.9.1.1")
def test_round_trip_both_directions_many_messages(pair: tuple[Any, Any]) -> None:
    client, server = pair
    for i in range(5):   # sequence numbers advance on both sides
        message = SOAP + str(i).encode()
        ctype, body = wrap_message(client, message)
        assert unwrap_message(server, ctype, body) == message
        ctype, body = wrap_message(server, message * 3)
        assert unwrap_message(client, ctype, body) == message * 3


def test_pypsrp_reads_what_we_seal_and_we_read_what_it_seals(pair: tuple[Any, Any]) -> None:
    client, server = pair
    theirs = WinRMEncryption(client, WinRMEncryption.SPNEGO)
    _ctype, body = theirs.wrap_message(SOAP)
    assert unwrap_message(server, content_type(), body) == SOAP
    _ctype, body = wrap_message(server, SOAP)
    assert theirs.unwrap_message(body, BOUNDARY) == SOAP


def test_tampered_ciphertext_is_refused(pair: tuple[Any, Any]) -> None:
    client, server = pair
    ctype, body = wrap_message(client, SOAP)
    tampered = bytearray(body)
    tampered[-30] ^= 0x01
    with pytest.raises(EncryptionError, match="cannot unseal"):
        unwrap_message(server, ctype, bytes(tampered))


@pytest.mark.parametrize("mutate, reason", [
    (lambda b: b.replace(b"--Encrypted Boundary\r\n", b"--Other\r\n", 1), "expected boundary"),
    (lambda b: b.replace(b"Length=", b"Lenght=", 1), "OriginalContent Length"),
    (lambda b: b.replace(b"application/octet-stream", b"text/plain", 1), "octet-stream"),
    (lambda b: b[:-40], "does not fit|boundary"),
    (lambda b: b + b"junk", "after the closing boundary"),
    (lambda b: b.replace(b"Length=", b"Length=9999999999", 1), "exceeds|does not fit"),
])
def test_malformed_bodies_raise_only_encryption_error(pair: tuple[Any, Any], mutate: Any, reason: str) -> None:
    client, server = pair
    ctype, body = wrap_message(client, SOAP)
    with pytest.raises(EncryptionError, match=reason):
        unwrap_message(server, ctype, mutate(body), max_length=100_000)


def test_signature_length_is_bounded() -> None:
    part = EncryptedPart(SPNEGO_PROTOCOL, "application/soap+xml;charset=UTF-8", 3, b"s" * 2000, b"abc")
    with pytest.raises(EncryptionError, match="signature length"):
        parse_body(build_body([part]))


def test_content_type_parsing() -> None:
    assert is_encrypted(content_type()) and not is_encrypted("application/soap+xml;charset=UTF-8")
    assert parse_content_type(content_type()) == (SPNEGO_PROTOCOL, BOUNDARY)
    assert parse_content_type('multipart/encrypted;boundary=Encrypted Boundary;protocol=x') == ("x", "Encrypted")
    with pytest.raises(EncryptionError):
        parse_content_type("multipart/encrypted")
    with pytest.raises(EncryptionError):
        parse_content_type("text/xml")


def test_several_parts_are_concatenated(pair: tuple[Any, Any]) -> None:
    client, server = pair
    parts = []
    for chunk in (b"<a>", b"<b/>", b"</a>"):
        res = client.wrap_winrm(chunk)
        parts.append(EncryptedPart(SPNEGO_PROTOCOL, "application/soap+xml;charset=UTF-8", len(chunk),
                                   res.header, res.data))
    assert unwrap_message(server, content_type(), build_body(parts)) == b"<a><b/></a>"


class _PaddingSealer:
    """A sealer whose tokens have a chosen header and whose data carries an RFC 1964 pad byte, as
    MIT's RC4-HMAC wrap does (the cipher here is the identity: only the framing is under test)."""

    def __init__(self, token_header: bytes) -> None:
        self.token_header = token_header

    def wrap_winrm(self, data: bytes) -> Any:
        from spnego import WinRMWrapResult

        return WinRMWrapResult(header=self.token_header, data=data + b"\x01", padding_length=1)

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        assert header == self.token_header
        return data


# GSS framing (RFC 2743 3.1) around the Kerberos OID, then TOK_ID 02 01 (RFC 1964 / RFC 4757 7.3)
_RC4_TOKEN = bytes.fromhex("602b06092a864886f712010202") + b"\x02\x01" + bytes(30)
_AES_TOKEN = b"\x05\x04" + bytes(58)   # RFC 4121 4.2.6.2: never stripped


@pytest.mark.spec("RFC 1964 1.2.2.3", "RFC 4757 7.3", "MS-WSMV 2.2.9.1.1")
@pytest.mark.parametrize(("token", "stripped"), [(_RC4_TOKEN, True), (_RC4_TOKEN[13:], True), (_AES_TOKEN, False)])
def test_rfc1964_pad_counted_in_length_but_not_in_the_soap(token: bytes, stripped: bool) -> None:
    message = b"<s:Envelope>...</s:Envelope>"
    ctype, body = wrap_message(_PaddingSealer(token), message)
    assert b"Length=%d" % (len(message) + 1) in body, "the pad counts in OriginalContent Length (pyspnego, pypsrp)"
    opened = unwrap_message(_PaddingSealer(token), ctype, body)
    assert opened == (message if stripped else message + b"\x01")

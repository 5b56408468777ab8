"""MS-PSRP 2.2.2.3 / 2.2.2.4 key exchange and 2.2.5.1.24 SecureString, with pypsrp as the independent peer."""

from __future__ import annotations

import base64
import struct
from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pypsrp.complex_objects import ObjectMeta
from pypsrp.messages import EncryptedSessionKey as PypsrpEncryptedSessionKey
from pypsrp.messages import Message as PypsrpMessage
from pypsrp.powershell import RunspacePool as PypsrpRunspacePool
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import deserialize, serialize
from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.keyexchange import (
    decode_public_key,
    decrypt_secure_string,
    decrypt_session_key,
    encode_public_key,
    encrypt_secure_string,
    encrypt_session_key,
    generate_exchange_key,
    generate_session_key,
    parse_public_key_blob,
    public_key_blob,
)
from harness.wire.psrp.primitives import SecureString


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return generate_exchange_key()


def test_public_key_blob_layout(private_key: rsa.RSAPrivateKey) -> None:
    blob = public_key_blob(private_key.public_key())
    assert blob[:8] == bytes.fromhex("0602000000a40000")
    assert blob[8:12] == b"RSA1"
    assert struct.unpack("<II", blob[12:20]) == (2048, 65537)
    assert int.from_bytes(blob[20:], "little") == private_key.public_key().public_numbers().n
    assert parse_public_key_blob(blob).public_numbers() == private_key.public_key().public_numbers()


def _pypsrp_public_key() -> tuple[str, Any]:
    """Run pypsrp's RunspacePool.exchange_keys with its I/O stubbed out; return the PublicKey string it sends."""
    sent: list[Any] = []

    def capture(msg: Any, rpid: str) -> list[bytes]:
        sent.append(msg)
        return []

    fake = SimpleNamespace(
        _key_exchanged=False,
        _exchange_key=None,
        session_key_timeout_ms=60_000,
        id="00000000-0000-0000-0000-000000000001",
        _fragmenter=SimpleNamespace(fragment=capture),
        shell=SimpleNamespace(send=lambda stream, data: None),
    )
    fake._receive = lambda: setattr(fake, "_key_exchanged", True)
    pool: Any = PypsrpRunspacePool
    pool.exchange_keys(fake)
    return sent[0].public_key, fake


def test_pypsrp_public_key_and_session_key_round_trip() -> None:
    """pypsrp produces PUBLIC_KEY; we parse it, answer ENCRYPTED_SESSION_KEY; pypsrp decrypts it and then reads
    a SecureString we encrypted with the same session key."""
    public_key_text, fake = _pypsrp_public_key()
    public_key = decode_public_key(public_key_text)
    session_key = generate_session_key()
    encrypted = encrypt_session_key(session_key, public_key)
    serializer = Serializer()
    fake._serializer = serializer
    key_message: Any = PypsrpEncryptedSessionKey
    message = PypsrpMessage(1, None, None, key_message(encrypted), serializer)
    pool: Any = PypsrpRunspacePool
    pool._process_encrypted_session_key(fake, message)
    assert fake._key_exchanged is True
    secure = encrypt_secure_string("p@ss wörd 😀", session_key)
    assert serializer.deserialize(serialize(secure)) == "p@ss wörd 😀"
    # and the reverse: pypsrp encrypts a SecureString, we decrypt it
    element: Any = serializer.serialize("from pypsrp", ObjectMeta("SS"))
    ours = deserialize(ET.tostring(element, encoding="unicode"))
    assert isinstance(ours, SecureString)
    assert decrypt_secure_string(ours, session_key) == "from pypsrp"


def test_session_key_round_trip(private_key: rsa.RSAPrivateKey) -> None:
    key = generate_session_key()
    text = encrypt_session_key(key, decode_public_key(encode_public_key(private_key.public_key())))
    blob = base64.b64decode(text)
    assert blob[:12] == bytes.fromhex("010200001066000000a40000")
    assert len(blob) == 12 + 256
    assert decrypt_session_key(text, private_key) == key


def test_secure_string_round_trip_and_errors() -> None:
    key = generate_session_key()
    for text in ["", "a", "x" * 8, "x" * 100]:
        secure = encrypt_secure_string(text, key)
        assert len(secure.ciphertext) % 16 == 0
        assert decrypt_secure_string(secure, key) == text
    with pytest.raises(PsrpDecodeError):
        decrypt_secure_string(SecureString(b"short"), key)
    with pytest.raises(PsrpDecodeError):
        decrypt_secure_string(encrypt_secure_string("abc", key), generate_session_key())
    with pytest.raises(PsrpEncodeError):
        encrypt_secure_string("x", b"short key")
    with pytest.raises(PsrpEncodeError):
        encrypt_session_key(b"1234", generate_exchange_key().public_key())


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x07\x02\x00\x00\x00\xa4\x00\x00RSA1" + struct.pack("<II", 2048, 65537) + bytes(256),
        b"\x06\x02\x00\x00\x00\xa4\x00\x00RSA2" + struct.pack("<II", 2048, 65537) + bytes(256),
        b"\x06\x02\x00\x00\x00\xa4\x00\x00RSA1" + struct.pack("<II", 2048, 65537) + bytes(255),
        b"\x06\x02\x00\x00\x00\xa4\x00\x00RSA1" + struct.pack("<II", 100, 65537) + bytes(12),
        b"\x06\x02\x00\x00\x00\xa4\x00\x00RSA1" + struct.pack("<II", 1024, 4) + bytes(128),
    ],
)
def test_bad_public_key_blobs(blob: bytes) -> None:
    with pytest.raises(PsrpDecodeError):
        parse_public_key_blob(blob)


def test_bad_session_keys(private_key: rsa.RSAPrivateKey) -> None:
    for text in ["!!!", base64.b64encode(b"\x01\x02").decode(), base64.b64encode(bytes(12 + 256)).decode()]:
        with pytest.raises(PsrpDecodeError):
            decrypt_session_key(text, private_key)
    with pytest.raises(PsrpDecodeError):
        decode_public_key("not base64!")

"""MS-PSRP session key exchange and SecureString encryption (sans-IO, ``cryptography`` primitives).

* PUBLIC_KEY (MS-PSRP 2.2.2.3): base64 of a CryptoAPI ``PUBLICKEYBLOB`` of the client's RSA key::

      BLOBHEADER  bType 0x06 (PUBLICKEYBLOB) | bVersion 0x02 | reserved 0x0000 | aiKeyAlg 0x0000A400 (CALG_RSA_KEYX, LE)
      RSAPUBKEY   magic "RSA1" | bitlen (uint32 LE) | pubexp (uint32 LE)
      modulus     bitlen/8 bytes, little-endian

* ENCRYPTED_SESSION_KEY (MS-PSRP 2.2.2.4): base64 of a CryptoAPI ``SIMPLEBLOB``::

      BLOBHEADER  bType 0x01 (SIMPLEBLOB) | bVersion 0x02 | reserved 0x0000 | aiKeyAlg 0x00006610 (CALG_AES_256, LE)
      algid       0x0000A400 (CALG_RSA_KEYX, LE): the algorithm of the key that encrypted the session key
      key         RSAES-PKCS1-v1_5 encryption of the 32-byte AES key, byte-reversed (CryptoAPI little-endian)

* SecureString (MS-PSRP 2.2.5.1.24): UTF-16LE text, PKCS#7 padded, AES-256-CBC with the session key. The IV is
  all zero bytes (observed Windows behaviour, also what pypsrp implements).
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from typing import Final

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from harness.wire.psrp.errors import PsrpDecodeError, PsrpEncodeError
from harness.wire.psrp.primitives import SecureString

PUBLICKEYBLOB: Final = 0x06
SIMPLEBLOB: Final = 0x01
CUR_BLOB_VERSION: Final = 0x02
CALG_RSA_KEYX: Final = 0x0000A400
CALG_AES_256: Final = 0x00006610
RSA1_MAGIC: Final = b"RSA1"
SESSION_KEY_SIZE: Final = 32
_BLOBHEADER: Final = struct.Struct("<BBHI")
_RSAPUBKEY: Final = struct.Struct("<4sII")
_ZERO_IV: Final = bytes(16)


def generate_exchange_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    """The client's ephemeral RSA key pair for one RunspacePool (MS-PSRP 2.2.2.3)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def public_key_blob(public_key: rsa.RSAPublicKey) -> bytes:
    """CryptoAPI PUBLICKEYBLOB of ``public_key`` (MS-PSRP 2.2.2.3)."""
    numbers = public_key.public_numbers()
    bit_length = public_key.key_size
    if numbers.e >= 2**32:
        raise PsrpEncodeError("RSA public exponent does not fit a uint32")
    modulus = numbers.n.to_bytes((bit_length + 7) // 8, "little")
    return (
        _BLOBHEADER.pack(PUBLICKEYBLOB, CUR_BLOB_VERSION, 0, CALG_RSA_KEYX)
        + _RSAPUBKEY.pack(RSA1_MAGIC, bit_length, numbers.e)
        + modulus
    )


def parse_public_key_blob(blob: bytes) -> rsa.RSAPublicKey:
    """Inverse of :func:`public_key_blob`. Raises :class:`PsrpDecodeError`."""
    if len(blob) < _BLOBHEADER.size + _RSAPUBKEY.size:
        raise PsrpDecodeError("PUBLICKEYBLOB too short")
    b_type, version, _, alg = _BLOBHEADER.unpack_from(blob)
    magic, bit_length, exponent = _RSAPUBKEY.unpack_from(blob, _BLOBHEADER.size)
    if b_type != PUBLICKEYBLOB or version != CUR_BLOB_VERSION or alg != CALG_RSA_KEYX or magic != RSA1_MAGIC:
        raise PsrpDecodeError("not an RSA key-exchange PUBLICKEYBLOB")
    if not 512 <= bit_length <= 16384 or bit_length % 8:
        raise PsrpDecodeError(f"unsupported RSA key length {bit_length}")
    modulus = blob[_BLOBHEADER.size + _RSAPUBKEY.size :]
    if len(modulus) != bit_length // 8:
        raise PsrpDecodeError("PUBLICKEYBLOB modulus length does not match bitlen")
    try:
        return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()
    except ValueError as exc:
        raise PsrpDecodeError(f"invalid RSA public key: {exc}") from exc


def encode_public_key(public_key: rsa.RSAPublicKey) -> str:
    """The ``PublicKey`` string of a PUBLIC_KEY message (base64 of the blob)."""
    return base64.b64encode(public_key_blob(public_key)).decode("ascii")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PsrpDecodeError(f"{what} is not valid base64") from exc


def decode_public_key(text: str) -> rsa.RSAPublicKey:
    return parse_public_key_blob(_b64(text, "PublicKey"))


def generate_session_key() -> bytes:
    """A fresh 256-bit AES session key (server side)."""
    return os.urandom(SESSION_KEY_SIZE)


def encrypt_session_key(session_key: bytes, public_key: rsa.RSAPublicKey) -> str:
    """The ``EncryptedSessionKey`` string of an ENCRYPTED_SESSION_KEY message (MS-PSRP 2.2.2.4)."""
    if len(session_key) != SESSION_KEY_SIZE:
        raise PsrpEncodeError("the session key must be 32 bytes (AES-256)")
    encrypted = public_key.encrypt(session_key, padding.PKCS1v15())
    blob = _BLOBHEADER.pack(SIMPLEBLOB, CUR_BLOB_VERSION, 0, CALG_AES_256) + struct.pack("<I", CALG_RSA_KEYX)
    return base64.b64encode(blob + encrypted[::-1]).decode("ascii")


def decrypt_session_key(text: str, private_key: rsa.RSAPrivateKey) -> bytes:
    """Inverse of :func:`encrypt_session_key` (client side). Raises :class:`PsrpDecodeError`."""
    blob = _b64(text, "EncryptedSessionKey")
    if len(blob) < 12:
        raise PsrpDecodeError("SIMPLEBLOB too short")
    b_type, version, _, alg = _BLOBHEADER.unpack_from(blob)
    (wrapping_alg,) = struct.unpack_from("<I", blob, _BLOBHEADER.size)
    if b_type != SIMPLEBLOB or version != CUR_BLOB_VERSION or alg != CALG_AES_256 or wrapping_alg != CALG_RSA_KEYX:
        raise PsrpDecodeError("not an AES-256 SIMPLEBLOB wrapped with CALG_RSA_KEYX")
    try:
        key = private_key.decrypt(blob[12:][::-1], padding.PKCS1v15())
    except ValueError as exc:
        raise PsrpDecodeError("cannot decrypt the session key") from exc
    if len(key) != SESSION_KEY_SIZE:
        raise PsrpDecodeError(f"session key of {len(key)} bytes, expected 32")
    return key


def _cipher(session_key: bytes) -> Cipher[modes.CBC]:
    if len(session_key) != SESSION_KEY_SIZE:
        raise PsrpEncodeError("the session key must be 32 bytes (AES-256)")
    return Cipher(algorithms.AES(session_key), modes.CBC(_ZERO_IV))


def encrypt_secure_string(text: str, session_key: bytes) -> SecureString:
    """MS-PSRP 2.2.5.1.24: encrypt ``text`` for an ``<SS>`` element."""
    padder = PKCS7(128).padder()
    data = padder.update(text.encode("utf-16-le", "surrogatepass")) + padder.finalize()
    encryptor = _cipher(session_key).encryptor()
    return SecureString(encryptor.update(data) + encryptor.finalize())


def decrypt_secure_string(value: SecureString, session_key: bytes) -> str:
    """Inverse of :func:`encrypt_secure_string`. Raises :class:`PsrpDecodeError` on bad length/padding/text."""
    if not value.ciphertext or len(value.ciphertext) % 16:
        raise PsrpDecodeError("SecureString ciphertext is not a whole number of AES blocks")
    decryptor = _cipher(session_key).decryptor()
    data = decryptor.update(value.ciphertext) + decryptor.finalize()
    unpadder = PKCS7(128).unpadder()
    try:
        plain = unpadder.update(data) + unpadder.finalize()
        return plain.decode("utf-16-le", "surrogatepass")
    except ValueError as exc:
        raise PsrpDecodeError("SecureString does not decrypt to padded UTF-16 text") from exc

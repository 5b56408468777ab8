"""Kerberos encryption for decrypting captures (RFC 3961, RFC 3962, RFC 4757), sans-IO.

Only what opening a captured Kerberos session needs: the ``aes128-cts-hmac-sha1-96`` (etype 17)
and ``aes256-cts-hmac-sha1-96`` (etype 18) simplified profile, and ``rc4-hmac`` (etype 23, the
Windows 2000 type still used by domains with older settings).

* n-fold (RFC 3961 5.1): the input replicated with 13-bit right rotations up to the least common
  multiple of the two lengths, the n-byte blocks added with one's-complement (end-around carry).
* DK(Key, Constant) = random-to-key(DR(Key, Constant)) (RFC 3961 5.1); DR is the k-truncation of
  E(Key, n-fold(Constant)), E(Key, that), ... ; for AES random-to-key is the identity (RFC 3962 6).
  The derived keys of a key usage are Ke = DK(usage | 0xAA), Ki = DK(usage | 0x55) (RFC 3961 5.3).
* E is AES in CBC mode with ciphertext stealing and a zero IV (RFC 3962 5, the CBC-CS3 variant:
  the last two blocks are always swapped, the last one truncated).
* ciphertext = E(Ke, confounder(16) | plaintext) | HMAC-SHA1(Ki, confounder | plaintext)[0..11]
  (RFC 3961 5.3, h = 96 bits).

RC4-HMAC (RFC 4757):

* string-to-key is MD4 of the UTF-16LE password, without salt (RFC 4757 3; MD4 per RFC 1320 in
  :mod:`harness.capture.md4`); the AES string-to-key is PBKDF2-HMAC-SHA1 then DK(tkey, "kerberos")
  (RFC 3962 4, default 4096 iterations).
* Encryption (RFC 4757 5): K1 = HMAC-MD5(K, T) with T the 4-byte little-endian message type,
  K2 = K1, checksum = HMAC-MD5(K2, confounder(8) | data), K3 = HMAC-MD5(K1, checksum), and the
  ciphertext is checksum(16) | RC4(K3, confounder | data). T is the RFC 4120 key usage except
  that usage 3 (AS-REP encrypted part) uses T = 8 (RFC 4757 5, the key usage table). The table
  also gives T = 8 for usage 9 (TGS-REP part under the authenticator subkey), which the RFC errata
  and current implementations replaced by T = 9: encryption uses 9, decryption accepts both.
  The export variant (etype 24) is not supported.

Keys are never rendered into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import math
import os
import struct
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness.capture.md4 import md4

ETYPE_AES128 = 17
ETYPE_AES256 = 18
ETYPE_RC4_HMAC = 23
KEY_SIZES = {ETYPE_AES128: 16, ETYPE_AES256: 32}
BLOCK = 16
MAC_SIZE = 12
RC4_KEY_SIZE = 16
RC4_CHECKSUM_SIZE = 16
RC4_CONFOUNDER_SIZE = 8
#: RFC 4757 5: the message type T of a key usage where it differs from the usage number.
RC4_USAGE_T = {3: 8}
#: T values also accepted on decryption (RFC 4757 5 table: usage 9 is T = 8 there, 9 after the errata).
RC4_USAGE_T_LEGACY = {9: 8}
AES_DEFAULT_ITERATIONS = 4096
SUPPORTED_ETYPES = (ETYPE_AES128, ETYPE_AES256, ETYPE_RC4_HMAC)


class KerberosCryptoError(ValueError):
    """Kerberos ciphertext that cannot be opened: unsupported etype, bad length or integrity failure."""


def nfold(data: bytes, size: int) -> bytes:
    """RFC 3961 5.1 n-fold of ``data`` to ``size`` bytes."""
    if not data or size <= 0:
        raise KerberosCryptoError("n-fold of an empty input")
    in_bits = len(data) * 8
    lcm = len(data) * size // math.gcd(len(data), size)
    value = int.from_bytes(data, "big")
    big = bytearray()
    for i in range(lcm // len(data)):
        shift = (13 * i) % in_bits
        rotated = ((value >> shift) | (value << (in_bits - shift))) & ((1 << in_bits) - 1)
        big += rotated.to_bytes(len(data), "big")
    total = 0
    modulus = 1 << (size * 8)
    for off in range(0, lcm, size):
        total += int.from_bytes(big[off:off + size], "big")
        while total >= modulus:   # one's-complement addition: carry wraps around
            total = (total & (modulus - 1)) + (total >> (size * 8))
    return total.to_bytes(size, "big")


def _aes_ecb(key: bytes, block: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def cts_encrypt(key: bytes, plain: bytes) -> bytes:
    """AES-CBC with ciphertext stealing, zero IV (RFC 3962 5)."""
    if len(plain) < BLOCK:
        raise KerberosCryptoError("AES-CTS needs at least one block")
    pad = (-len(plain)) % BLOCK
    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(BLOCK))).encryptor()
    out = enc.update(plain + bytes(pad)) + enc.finalize()
    if len(out) == BLOCK:
        return out
    last_len = BLOCK - pad
    return out[:-2 * BLOCK] + out[-BLOCK:] + out[-2 * BLOCK:-BLOCK][:last_len]


def cts_decrypt(key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`cts_encrypt`."""
    if len(data) < BLOCK:
        raise KerberosCryptoError("AES-CTS ciphertext shorter than one block")
    if len(data) == BLOCK:
        return _aes_ecb(key, data, decrypt=True)
    blocks = (len(data) + BLOCK - 1) // BLOCK
    head = data[:BLOCK * (blocks - 2)]
    prev = head[-BLOCK:] if head else bytes(BLOCK)
    plain_head = b""
    if head:
        dec = Cipher(algorithms.AES(key), modes.CBC(bytes(BLOCK))).decryptor()
        plain_head = dec.update(head) + dec.finalize()
    stolen_full = data[BLOCK * (blocks - 2):BLOCK * (blocks - 1)]
    tail = data[BLOCK * (blocks - 1):]
    d = _aes_ecb(key, stolen_full, decrypt=True)
    last = bytes(a ^ b for a, b in zip(d[:len(tail)], tail, strict=True))
    full_prev_cipher = tail + d[len(tail):]
    before_last = bytes(a ^ b for a, b in zip(_aes_ecb(key, full_prev_cipher, decrypt=True), prev, strict=True))
    return plain_head + before_last + last


def _key_size(etype: int) -> int:
    size = KEY_SIZES.get(etype)
    if size is None:
        raise KerberosCryptoError(f"encryption type {etype} is not supported (only etypes 17, 18 and 23)")
    return size


# --- RC4-HMAC (RFC 4757) ---------------------------------------------------------------------------

def _arc4_class() -> Any:
    """cryptography's ARC4 (moved to the ``decrepit`` package in cryptography 43)."""
    try:
        module = importlib.import_module("cryptography.hazmat.decrepit.ciphers.algorithms")
    except ImportError:  # pragma: no cover - cryptography < 43 keeps it among the primitives
        module = importlib.import_module("cryptography.hazmat.primitives.ciphers.algorithms")
    return module.ARC4


class Rc4Stream:
    """One RC4 key stream; successive :meth:`apply` calls continue it (RFC 4757 7.3 runs the
    confounder and the data through the same Kcrypt stream)."""

    def __init__(self, key: bytes) -> None:
        if not 5 <= len(key) <= 256:
            raise KerberosCryptoError(f"RC4 key of {len(key)} bytes")
        self._ctx = Cipher(_arc4_class()(key), mode=None).encryptor()

    def apply(self, data: bytes) -> bytes:
        return bytes(self._ctx.update(data))


def rc4(key: bytes, data: bytes) -> bytes:
    """RC4 of ``data`` with a fresh key stream (encryption and decryption are the same)."""
    return Rc4Stream(key).apply(data)


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104), the keyed hash of RFC 4757."""
    return hmac.new(key, data, hashlib.md5).digest()


def rc4_usage_t(usage: int) -> int:
    """The RFC 4757 5 message type T for an RFC 4120 key usage (3 maps to 8)."""
    if not 0 <= usage <= 0xFFFFFFFF:
        raise KerberosCryptoError(f"key usage {usage} out of range")
    return RC4_USAGE_T.get(usage, usage)


def _rc4_key(key: bytes) -> bytes:
    if len(key) != RC4_KEY_SIZE:
        raise KerberosCryptoError(f"etype {ETYPE_RC4_HMAC} key of {len(key)} bytes ({RC4_KEY_SIZE} expected)")
    return key


def rc4_hmac_encrypt(key: bytes, usage: int, plain: bytes, confounder: bytes | None = None) -> bytes:
    """RFC 4757 5 ENCRYPT (non-export): checksum(16) | RC4(K3, confounder(8) | plain)."""
    k1 = hmac_md5(_rc4_key(key), struct.pack("<I", rc4_usage_t(usage)))
    conf = confounder if confounder is not None else os.urandom(RC4_CONFOUNDER_SIZE)
    if len(conf) != RC4_CONFOUNDER_SIZE:
        raise KerberosCryptoError(f"RC4-HMAC confounder of {len(conf)} bytes ({RC4_CONFOUNDER_SIZE} expected)")
    checksum = hmac_md5(k1, conf + plain)          # K2 = K1 for etype 23
    return checksum + rc4(hmac_md5(k1, checksum), conf + plain)


def rc4_hmac_decrypt(key: bytes, usage: int, data: bytes) -> bytes:
    """RFC 4757 5 DECRYPT; KerberosCryptoError when the HMAC-MD5 checksum does not verify."""
    if len(data) < RC4_CHECKSUM_SIZE + RC4_CONFOUNDER_SIZE:
        raise KerberosCryptoError(f"RC4-HMAC ciphertext of {len(data)} bytes is too short")
    checksum = data[:RC4_CHECKSUM_SIZE]
    values = [rc4_usage_t(usage)] + ([RC4_USAGE_T_LEGACY[usage]] if usage in RC4_USAGE_T_LEGACY else [])
    for t in values:
        k1 = hmac_md5(_rc4_key(key), struct.pack("<I", t))
        plain = rc4(hmac_md5(k1, checksum), data[RC4_CHECKSUM_SIZE:])
        if hmac.compare_digest(hmac_md5(k1, plain), checksum):
            return plain[RC4_CONFOUNDER_SIZE:]
    raise KerberosCryptoError(f"integrity check failed (key usage {usage}): wrong key or altered data")


def string_to_key(etype: int, password: str, salt: str = "", iterations: int | None = None) -> bytes:
    """The long-term key of a password.

    etype 23: MD4(UTF-16LE(password)), the salt is ignored (RFC 4757 3). etypes 17/18:
    DK(PBKDF2-HMAC-SHA1(password, salt, iterations, key size), "kerberos") (RFC 3962 4; the salt
    of a principal is normally the realm followed by the name components, RFC 4120 4).
    """
    if etype == ETYPE_RC4_HMAC:
        try:
            return md4(password.encode("utf-16-le"))
        except UnicodeEncodeError as exc:
            raise KerberosCryptoError("the password is not encodable as UTF-16") from exc
    size = _key_size(etype)
    count = AES_DEFAULT_ITERATIONS if iterations is None else iterations
    if not 1 <= count <= 1 << 24:
        raise KerberosCryptoError(f"PBKDF2 iteration count {count} out of range")
    try:
        tkey = hashlib.pbkdf2_hmac("sha1", password.encode("utf-8"), salt.encode("utf-8"), count, size)
    except UnicodeEncodeError as exc:
        raise KerberosCryptoError("the password or salt is not encodable as UTF-8") from exc
    return derive(etype, tkey, b"kerberos")


def derive(etype: int, key: bytes, constant: bytes) -> bytes:
    """DK(key, constant) for the AES etypes (RFC 3961 5.1, RFC 3962 6)."""
    size = _key_size(etype)
    if len(key) != size:
        raise KerberosCryptoError(f"etype {etype} key of {len(key)} bytes ({size} expected)")
    block = nfold(constant, BLOCK)
    out = b""
    while len(out) < size:
        block = _aes_ecb(key, block)
        out += block
    return out[:size]


def _usage_keys(etype: int, key: bytes, usage: int) -> tuple[bytes, bytes]:
    return derive(etype, key, struct.pack(">IB", usage, 0xAA)), derive(etype, key, struct.pack(">IB", usage, 0x55))


def encrypt(etype: int, key: bytes, usage: int, plain: bytes, confounder: bytes | None = None) -> bytes:
    """RFC 3961 5.3 simplified-profile encryption, or RFC 4757 5 for etype 23 (for tests and
    synthesised traffic)."""
    if etype == ETYPE_RC4_HMAC:
        return rc4_hmac_encrypt(key, usage, plain, confounder)
    ke, ki = _usage_keys(etype, key, usage)
    data = (confounder if confounder is not None else os.urandom(BLOCK)) + plain
    return cts_encrypt(ke, data) + hmac.new(ki, data, hashlib.sha1).digest()[:MAC_SIZE]


def decrypt(etype: int, key: bytes, usage: int, data: bytes) -> bytes:
    """RFC 3961 5.3 simplified-profile decryption, or RFC 4757 5 for etype 23; KerberosCryptoError
    when the checksum fails."""
    if etype == ETYPE_RC4_HMAC:
        return rc4_hmac_decrypt(key, usage, data)
    _key_size(etype)
    if len(data) < BLOCK + MAC_SIZE:
        raise KerberosCryptoError(f"Kerberos ciphertext of {len(data)} bytes is too short")
    ke, ki = _usage_keys(etype, key, usage)
    plain = cts_decrypt(ke, data[:-MAC_SIZE])
    if not hmac.compare_digest(hmac.new(ki, plain, hashlib.sha1).digest()[:MAC_SIZE], data[-MAC_SIZE:]):
        raise KerberosCryptoError(f"integrity check failed (key usage {usage}): wrong key or altered data")
    return plain[BLOCK:]


__all__ = ["ETYPE_AES128", "ETYPE_AES256", "ETYPE_RC4_HMAC", "SUPPORTED_ETYPES", "KerberosCryptoError", "Rc4Stream",
           "cts_decrypt", "cts_encrypt", "decrypt", "derive", "encrypt", "hmac_md5", "nfold", "rc4",
           "rc4_hmac_decrypt", "rc4_hmac_encrypt", "rc4_usage_t", "string_to_key"]

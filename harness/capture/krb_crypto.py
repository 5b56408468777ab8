"""Kerberos AES encryption for decrypting captures (RFC 3961, RFC 3962), sans-IO.

Only what opening a captured Kerberos session needs: the ``aes128-cts-hmac-sha1-96`` (etype 17)
and ``aes256-cts-hmac-sha1-96`` (etype 18) simplified profile.

* n-fold (RFC 3961 5.1): the input replicated with 13-bit right rotations up to the least common
  multiple of the two lengths, the n-byte blocks added with one's-complement (end-around carry).
* DK(Key, Constant) = random-to-key(DR(Key, Constant)) (RFC 3961 5.1); DR is the k-truncation of
  E(Key, n-fold(Constant)), E(Key, that), ... ; for AES random-to-key is the identity (RFC 3962 6).
  The derived keys of a key usage are Ke = DK(usage | 0xAA), Ki = DK(usage | 0x55) (RFC 3961 5.3).
* E is AES in CBC mode with ciphertext stealing and a zero IV (RFC 3962 5, the CBC-CS3 variant:
  the last two blocks are always swapped, the last one truncated).
* ciphertext = E(Ke, confounder(16) | plaintext) | HMAC-SHA1(Ki, confounder | plaintext)[0..11]
  (RFC 3961 5.3, h = 96 bits).

Keys are never rendered into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ETYPE_AES128 = 17
ETYPE_AES256 = 18
KEY_SIZES = {ETYPE_AES128: 16, ETYPE_AES256: 32}
BLOCK = 16
MAC_SIZE = 12


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
        raise KerberosCryptoError(f"encryption type {etype} is not supported (only AES etypes 17 and 18)")
    return size


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
    """RFC 3961 5.3 simplified-profile encryption (for tests and synthesised traffic)."""
    ke, ki = _usage_keys(etype, key, usage)
    data = (confounder if confounder is not None else os.urandom(BLOCK)) + plain
    return cts_encrypt(ke, data) + hmac.new(ki, data, hashlib.sha1).digest()[:MAC_SIZE]


def decrypt(etype: int, key: bytes, usage: int, data: bytes) -> bytes:
    """RFC 3961 5.3 simplified-profile decryption; KerberosCryptoError when the checksum fails."""
    if len(data) < BLOCK + MAC_SIZE:
        raise KerberosCryptoError(f"Kerberos ciphertext of {len(data)} bytes is too short")
    ke, ki = _usage_keys(etype, key, usage)
    plain = cts_decrypt(ke, data[:-MAC_SIZE])
    if not hmac.compare_digest(hmac.new(ki, plain, hashlib.sha1).digest()[:MAC_SIZE], data[-MAC_SIZE:]):
        raise KerberosCryptoError(f"integrity check failed (key usage {usage}): wrong key or altered data")
    return plain[BLOCK:]


__all__ = ["ETYPE_AES128", "ETYPE_AES256", "KerberosCryptoError", "cts_decrypt", "cts_encrypt", "decrypt",
           "derive", "encrypt", "nfold"]

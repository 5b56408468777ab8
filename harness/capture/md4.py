"""MD4 message digest (RFC 1320), sans-IO and pure Python.

The RC4-HMAC Kerberos string-to-key is MD4 over the UTF-16LE password (RFC 4757 3), and OpenSSL 3
(hence ``hashlib`` and ``cryptography``) no longer offers MD4 by default, so it is computed here.

RFC 1320 3.1-3.5: the message is padded with one 1 bit and zero bits to 448 bits modulo 512, then
the 64-bit little-endian bit length is appended (3.1, 3.2). The buffer A, B, C, D starts at
01234567 / 89abcdef / fedcba98 / 76543210 (low-order byte first, 3.3). Each 16-word block is
processed in three rounds of sixteen operations (3.4):

* round 1: ``a = (a + F(b,c,d) + X[k]) <<< s``, F(X,Y,Z) = XY v not(X) Z, k = 0..15, s = 3 7 11 19;
* round 2: ``a = (a + G(b,c,d) + X[k] + 5A827999) <<< s``, G(X,Y,Z) = XY v XZ v YZ,
  k = 0 4 8 12 1 5 9 13 2 6 10 14 3 7 11 15, s = 3 5 9 13;
* round 3: ``a = (a + H(b,c,d) + X[k] + 6ED9EBA1) <<< s``, H(X,Y,Z) = X xor Y xor Z,
  k = 0 8 4 12 2 10 6 14 1 9 5 13 3 11 7 15, s = 3 9 11 15;

with the registers taking the roles (a, b, c, d) = (A, B, C, D), (D, A, B, C), (C, D, A, B),
(B, C, D, A) in turn, and the block's result added into A, B, C, D. The digest is A, B, C, D
low-order byte first (3.5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

_MASK = 0xFFFFFFFF
_INITIAL = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_ROUND2 = 0x5A827999
_ROUND3 = 0x6ED9EBA1
_ORDER1 = tuple(range(16))
_ORDER2 = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_ORDER3 = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_SHIFTS1 = (3, 7, 11, 19)
_SHIFTS2 = (3, 5, 9, 13)
_SHIFTS3 = (3, 9, 11, 15)


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _f(x: int, y: int, z: int) -> int:
    return (x & y) | (~x & z)


def _g(x: int, y: int, z: int) -> int:
    return (x & y) | (x & z) | (y & z)


def _h(x: int, y: int, z: int) -> int:
    return x ^ y ^ z


_ROUNDS: tuple[tuple[Callable[[int, int, int], int], int, tuple[int, ...], tuple[int, ...]], ...] = (
    (_f, 0, _ORDER1, _SHIFTS1),
    (_g, _ROUND2, _ORDER2, _SHIFTS2),
    (_h, _ROUND3, _ORDER3, _SHIFTS3),
)


def _pad(message: bytes) -> bytes:
    """RFC 1320 3.1 and 3.2."""
    bits = (len(message) * 8) & 0xFFFFFFFFFFFFFFFF
    padding = b"\x80" + bytes((55 - len(message)) % 64)
    return message + padding + struct.pack("<Q", bits)


def md4(message: bytes) -> bytes:
    """The 16-byte MD4 digest of ``message`` (RFC 1320)."""
    state = list(_INITIAL)
    data = _pad(bytes(message))
    for offset in range(0, len(data), 64):
        x = struct.unpack_from("<16I", data, offset)
        regs = list(state)
        for func, constant, order, shifts in _ROUNDS:
            for step, k in enumerate(order):
                # the register updated cycles A, D, C, B; its three partners follow it in A B C D order
                target = (4 - step % 4) % 4
                a, b, c, d = (regs[(target + i) % 4] for i in range(4))
                regs[target] = _rotl((a + func(b, c, d) + x[k] + constant) & _MASK, shifts[step % 4])
        state = [(s + r) & _MASK for s, r in zip(state, regs, strict=True)]
    return struct.pack("<4I", *state)


__all__ = ["md4"]

"""Sans-IO TLS key derivation and record protection (decryption only) for capture analysis.

* TLS 1.2 PRF: RFC 5246 5 (``P_hash`` with HMAC and the cipher suite's PRF hash: SHA-256, or
  SHA-384 for the ``_SHA384`` suites, RFC 5288 3 / RFC 5289 3.2); key block: RFC 5246 6.3
  (``PRF(master_secret, "key expansion", server_random + client_random)`` cut into client MAC key,
  server MAC key, client key, server key, client IV, server IV).
* TLS 1.3: HKDF (RFC 5869 2.2 Extract, 2.3 Expand), ``HKDF-Expand-Label`` and ``Derive-Secret``
  (RFC 8446 7.1), traffic keys ``key`` / ``iv`` (RFC 8446 7.3), the next application traffic
  secret after a KeyUpdate (``"traffic upd"``, RFC 8446 7.2).
* Record protection:
  - TLS 1.3 AEAD (RFC 8446 5.2): additional data = the 5-byte record header; nonce = the IV
    XOR the 64-bit record sequence number left-padded to the IV length (5.3); the inner
    plaintext is content || ContentType || zero padding (5.4).
  - TLS 1.2 AES-GCM (RFC 5288 3): nonce = 4-byte salt (client/server_write_IV) || 8-byte
    explicit nonce carried at the start of the record; additional data = seq_num || type ||
    version || plaintext length (RFC 5246 6.2.3.3).
  - TLS 1.2 ChaCha20-Poly1305 (RFC 7905 2): nonce = the 12-byte IV XOR the padded sequence
    number, no explicit nonce; same additional data.
  - TLS 1.2 AES-CBC with HMAC (RFC 5246 6.2.3.2): explicit IV, padding check, MAC over
    seq_num || type || version || length || content (6.2.3.1); with encrypt_then_mac (RFC 7366 3)
    the MAC covers IV || ciphertext and is checked before decryption.

Everything raises :class:`TlsDecryptError` (with a reason, never a key) on bad input.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

#: TLSPlaintext / TLSCiphertext length limits: RFC 5246 6.2.3 (2^14 + 2048), RFC 8446 5.2 (2^14 + 256).
MAX_CIPHERTEXT_12 = (1 << 14) + 2048
MAX_CIPHERTEXT_13 = (1 << 14) + 256
MAX_PLAINTEXT = 1 << 14

CT_CHANGE_CIPHER_SPEC, CT_ALERT, CT_HANDSHAKE, CT_APPLICATION_DATA, CT_HEARTBEAT = 20, 21, 22, 23, 24
TLS12, TLS13 = 0x0303, 0x0304


class TlsDecryptError(Exception):
    """A TLS record, handshake message or key log that cannot be read or opened (with the reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Cipher_ = Literal["AES-GCM", "CHACHA20-POLY1305", "AES-CCM", "AES-CBC"]


@dataclass(frozen=True)
class CipherSuite:
    """What decryption needs to know of a cipher suite (IANA TLS Cipher Suites registry)."""

    code: int
    name: str
    tls13: bool
    cipher: Cipher_
    key_length: int
    #: TLS 1.3 / ChaCha20: the 12-byte IV; TLS 1.2 GCM: the 4-byte salt (RFC 5288 3); CBC: 0 (explicit IV).
    fixed_iv_length: int
    #: PRF (TLS 1.2) or HKDF (TLS 1.3) hash.
    hash_name: str
    #: HMAC hash of the CBC suites ("" for AEAD suites).
    mac_name: str = ""
    tag_length: int = 16

    @property
    def hash_length(self) -> int:
        return hashlib.new(self.hash_name).digest_size

    @property
    def mac_length(self) -> int:
        return hashlib.new(self.mac_name).digest_size if self.mac_name else 0


_SUITE_NAMES: dict[int, str] = {
    # TLS 1.3, RFC 8446 B.4
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256", 0x1305: "TLS_AES_128_CCM_8_SHA256",
    # TLS 1.2 AES-GCM, RFC 5288 3 and RFC 5289 3.2
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    # TLS 1.2 ChaCha20-Poly1305, RFC 7905 2
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    # TLS 1.2 AES-CBC, RFC 5246 A.5, RFC 4492 6 / RFC 8422 6, RFC 5289 3.1
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
}


def _suite_from_name(code: int, name: str) -> CipherSuite:
    tls13 = "_WITH_" not in name
    parts = name.split("_")
    final_hash = {"SHA": "sha1", "SHA256": "sha256", "SHA384": "sha384"}[parts[-1]]
    if "CHACHA20" in name:
        return CipherSuite(code, name, tls13, "CHACHA20-POLY1305", 32, 12, "sha256")
    key_length = 32 if "AES_256" in name else 16
    if "GCM" in name:
        return CipherSuite(code, name, tls13, "AES-GCM", key_length, 12 if tls13 else 4, final_hash)
    if "CCM" in name:
        return CipherSuite(code, name, tls13, "AES-CCM", key_length, 12, final_hash,
                           tag_length=8 if "CCM_8" in name else 16)
    # CBC: the last word is the HMAC hash; the PRF is SHA-256 unless the MAC is SHA-384 (RFC 5246 5, RFC 5289 3.2)
    return CipherSuite(code, name, False, "AES-CBC", key_length, 0,
                       "sha384" if final_hash == "sha384" else "sha256", mac_name=final_hash)


SUITES: dict[int, CipherSuite] = {code: _suite_from_name(code, name) for code, name in _SUITE_NAMES.items()}


def suite_name(code: int) -> str:
    suite = SUITES.get(code)
    return suite.name if suite is not None else f"0x{code:04X}"


# -- key derivation ---------------------------------------------------------------------------

def _p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """``P_hash`` of RFC 5246 5: HMAC(secret, A(i) + seed) for A(0) = seed, A(i) = HMAC(secret, A(i-1))."""
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return bytes(out[:length])


def tls12_prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """``PRF(secret, label, seed) = P_<hash>(secret, label + seed)`` (RFC 5246 5)."""
    if not 0 < length <= 1 << 16:
        raise TlsDecryptError(f"PRF output length {length} out of range")
    return _p_hash(hash_name, secret, label + seed, length)


def hkdf_extract(salt: bytes, ikm: bytes, hash_name: str = "sha256") -> bytes:
    """HKDF-Extract (RFC 5869 2.2); an empty salt is HashLen zero bytes."""
    return hmac.digest(salt or bytes(hashlib.new(hash_name).digest_size), ikm, hash_name)


def hkdf_expand(prk: bytes, info: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """HKDF-Expand (RFC 5869 2.3): T(i) = HMAC(PRK, T(i-1) | info | i), at most 255 blocks."""
    size = hashlib.new(hash_name).digest_size
    if not 0 < length <= 255 * size:
        raise TlsDecryptError(f"HKDF-Expand length {length} out of range")
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), hash_name)
        out += block
        counter += 1
    return bytes(out[:length])


def hkdf_expand_label(secret: bytes, label: str, context: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """HKDF-Expand-Label (RFC 8446 7.1): HkdfLabel = uint16 length || opaque label<7..255> =
    "tls13 " + Label || opaque context<0..255>."""
    full = b"tls13 " + label.encode("ascii")
    if len(full) > 255 or len(context) > 255 or not 0 <= length < 1 << 16:
        raise TlsDecryptError("HKDF-Expand-Label argument out of range")
    info = struct.pack("!H", length) + bytes((len(full),)) + full + bytes((len(context),)) + context
    return hkdf_expand(secret, info, length, hash_name)


def derive_secret(secret: bytes, label: str, messages: bytes, hash_name: str = "sha256") -> bytes:
    """Derive-Secret (RFC 8446 7.1): HKDF-Expand-Label(Secret, Label, Transcript-Hash(Messages), Hash.length)."""
    digest = hashlib.new(hash_name, messages).digest()
    return hkdf_expand_label(secret, label, digest, len(digest), hash_name)


def traffic_keys(secret: bytes, suite: CipherSuite) -> tuple[bytes, bytes]:
    """(write key, write IV) of a TLS 1.3 traffic secret (RFC 8446 7.3)."""
    return (hkdf_expand_label(secret, "key", b"", suite.key_length, suite.hash_name),
            hkdf_expand_label(secret, "iv", b"", 12, suite.hash_name))


def next_traffic_secret(secret: bytes, suite: CipherSuite) -> bytes:
    """application_traffic_secret_N+1 (RFC 8446 7.2)."""
    return hkdf_expand_label(secret, "traffic upd", b"", suite.hash_length, suite.hash_name)


@dataclass(frozen=True)
class KeyBlock:
    """The TLS 1.2 key block (RFC 5246 6.3)."""

    client_mac: bytes
    server_mac: bytes
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes

    def __repr__(self) -> str:  # never print keys
        return "KeyBlock(<redacted>)"


def tls12_key_block(master_secret: bytes, client_random: bytes, server_random: bytes,
                    suite: CipherSuite) -> KeyBlock:
    """RFC 5246 6.3: key_block = PRF(master_secret, "key expansion", server_random + client_random)."""
    if len(master_secret) != 48:
        raise TlsDecryptError(f"a TLS 1.2 master secret has 48 bytes, the key log gives {len(master_secret)}")
    m, k, i = suite.mac_length, suite.key_length, suite.fixed_iv_length
    block = tls12_prf(master_secret, b"key expansion", server_random + client_random, 2 * (m + k + i), suite.hash_name)
    parts, pos = [], 0
    for n in (m, m, k, k, i, i):
        parts.append(block[pos:pos + n])
        pos += n
    return KeyBlock(*parts)


# -- record protection ------------------------------------------------------------------------

class RecordOpener:
    """The read state of one direction: decrypts its records in order (sequence numbers from 0)."""

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes, mac_key: bytes = b"", *,
                 encrypt_then_mac: bool = False) -> None:
        if len(key) != suite.key_length or len(iv) != suite.fixed_iv_length:
            raise TlsDecryptError(f"{suite.name}: wrong key or IV length")
        self.suite = suite
        self.seq = 0
        self._iv = iv
        self._mac_key = mac_key
        self._etm = encrypt_then_mac
        self._aead: AESGCM | ChaCha20Poly1305 | AESCCM | None = None
        self._cbc_key = b""
        if suite.cipher == "AES-GCM":
            self._aead = AESGCM(key)
        elif suite.cipher == "CHACHA20-POLY1305":
            self._aead = ChaCha20Poly1305(key)
        elif suite.cipher == "AES-CCM":
            self._aead = AESCCM(key, tag_length=suite.tag_length)
        else:
            self._cbc_key = key

    def __repr__(self) -> str:
        return f"RecordOpener({self.suite.name}, seq={self.seq})"

    def _xor_nonce(self) -> bytes:
        """RFC 8446 5.3 / RFC 7905 2: the IV XOR the sequence number padded to 12 bytes."""
        padded = self.seq.to_bytes(12, "big")
        return bytes(a ^ b for a, b in zip(self._iv, padded, strict=True))

    def open(self, content_type: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        """(content type, plaintext) of the next record; TLS 1.3 returns the inner content type."""
        try:
            if self.suite.tls13:
                result = self._open13(content_type, version, fragment)
            elif self.suite.cipher == "AES-CBC":
                result = content_type, self._open_cbc(content_type, version, fragment)
            else:
                result = content_type, self._open12_aead(content_type, version, fragment)
        except InvalidTag:
            raise TlsDecryptError(f"record {self.seq} fails authentication (bad_record_mac)") from None
        self.seq += 1
        return result

    def _open13(self, content_type: int, version: int, fragment: bytes) -> tuple[int, bytes]:
        assert self._aead is not None
        if len(fragment) > MAX_CIPHERTEXT_13:
            raise TlsDecryptError(f"record of {len(fragment)} bytes exceeds 2^14 + 256 (record_overflow)")
        if len(fragment) < self.suite.tag_length + 1:
            raise TlsDecryptError(f"encrypted record of {len(fragment)} bytes is shorter than its tag")
        header = struct.pack("!BHH", content_type, version, len(fragment))
        inner = self._aead.decrypt(self._xor_nonce(), fragment, header)
        end = len(inner)
        while end and inner[end - 1] == 0:  # RFC 8446 5.4: strip the zero padding
            end -= 1
        if not end:
            raise TlsDecryptError(f"record {self.seq}: no non-zero content type (unexpected_message)")
        if end - 1 > MAX_PLAINTEXT:
            raise TlsDecryptError(f"record {self.seq}: inner plaintext exceeds 2^14 (record_overflow)")
        return inner[end - 1], inner[:end - 1]

    def _aad12(self, content_type: int, version: int, length: int) -> bytes:
        """RFC 5246 6.2.3.3: seq_num + TLSCompressed.type + version + length."""
        return struct.pack("!QBHH", self.seq, content_type, version, length)

    def _open12_aead(self, content_type: int, version: int, fragment: bytes) -> bytes:
        assert self._aead is not None
        if len(fragment) > MAX_CIPHERTEXT_12:
            raise TlsDecryptError(f"record of {len(fragment)} bytes exceeds 2^14 + 2048 (record_overflow)")
        if self.suite.cipher == "AES-GCM":
            explicit = 8  # RFC 5288 3: GCMNonce.nonce_explicit carried in the record
            if len(fragment) < explicit + self.suite.tag_length:
                raise TlsDecryptError(f"AES-GCM record of {len(fragment)} bytes is shorter than nonce and tag")
            nonce = self._iv + fragment[:explicit]
            body = fragment[explicit:]
        else:
            if len(fragment) < self.suite.tag_length:
                raise TlsDecryptError(f"AEAD record of {len(fragment)} bytes is shorter than its tag")
            nonce, body = self._xor_nonce(), fragment
        aad = self._aad12(content_type, version, len(body) - self.suite.tag_length)
        return self._aead.decrypt(nonce, body, aad)

    def _mac(self, content_type: int, version: int, data: bytes) -> bytes:
        """RFC 5246 6.2.3.1: HMAC(MAC_write_key, seq_num + type + version + length + fragment)."""
        return hmac.digest(self._mac_key, self._aad12(content_type, version, len(data)) + data, self.suite.mac_name)

    def _open_cbc(self, content_type: int, version: int, fragment: bytes) -> bytes:
        block, mac_len = 16, self.suite.mac_length
        if len(fragment) > MAX_CIPHERTEXT_12:
            raise TlsDecryptError(f"record of {len(fragment)} bytes exceeds 2^14 + 2048 (record_overflow)")
        if self._etm:  # RFC 7366 3: MAC over IV || ciphertext, checked first
            if len(fragment) < 2 * block + mac_len or (len(fragment) - mac_len) % block:
                raise TlsDecryptError(f"encrypt-then-MAC CBC record of {len(fragment)} bytes is malformed")
            body, tag = fragment[:-mac_len], fragment[-mac_len:]
            if not hmac.compare_digest(self._mac(content_type, version, body), tag):
                raise TlsDecryptError(f"record {self.seq} fails its MAC (bad_record_mac)")
            return self._cbc_decrypt_unpad(body, 0)
        if len(fragment) < 2 * block or len(fragment) % block or len(fragment) < block + mac_len + 1:
            raise TlsDecryptError(f"CBC record of {len(fragment)} bytes is not whole blocks with IV and MAC")
        plain = self._cbc_decrypt_unpad(fragment, mac_len)
        content, tag = plain[:-mac_len], plain[-mac_len:]
        if not hmac.compare_digest(self._mac(content_type, version, content), tag):
            raise TlsDecryptError(f"record {self.seq} fails its MAC (bad_record_mac)")
        return content

    def _cbc_decrypt_unpad(self, body: bytes, mac_len: int) -> bytes:
        """RFC 5246 6.2.3.2: IV || CBC(content || MAC || padding || padding_length)."""
        decryptor = Cipher(algorithms.AES(self._cbc_key), modes.CBC(body[:16])).decryptor()
        plain = decryptor.update(body[16:]) + decryptor.finalize()
        pad = plain[-1]
        if pad + 1 + mac_len > len(plain) or plain[-1 - pad:] != bytes((pad,)) * (pad + 1):
            raise TlsDecryptError(f"record {self.seq}: bad CBC padding (bad_record_mac)")
        return plain[:-1 - pad]

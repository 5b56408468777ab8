"""TLS decryption units: the NSS key log, hellos, TLS 1.3 key updates / HelloRetryRequest / ChaCha20
records (sealed here independently with ``cryptography``, RFC 8446 5.2 - 5.4), bad input and mutations."""

from __future__ import annotations

import os
import random
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from test_tls_decrypt_rfc8448 import CLIENT_BYTES, SERVER_BYTES, keylog_text

from harness.capture.tls import (
    HRR_RANDOM,
    KeyLog,
    TlsConnectionDecoder,
    decrypt_connection,
    looks_like_tls,
    parse_client_hello,
    parse_keylog,
    read_keylog,
)
from harness.capture.tls_crypto import (
    SUITES,
    RecordOpener,
    TlsDecryptError,
    hkdf_expand_label,
    tls12_key_block,
    tls12_prf,
)

CHACHA = SUITES[0x1303]


def hs(msg_type: int, body: bytes) -> bytes:
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def client_hello(rnd: bytes, suites: bytes = b"\x13\x03") -> bytes:
    ext = struct.pack("!HH", 43, 3) + b"\x02\x03\x04"
    body = b"\x03\x03" + rnd + b"\x00" + struct.pack("!H", len(suites)) + suites + b"\x01\x00" + \
        struct.pack("!H", len(ext)) + ext
    return hs(1, body)


def server_hello(rnd: bytes, suite: int = 0x1303, version: int = 0x0304) -> bytes:
    ext = struct.pack("!HHH", 43, 2, version) if version == 0x0304 else b""
    legacy = struct.pack("!H", min(version, 0x0303))
    body = legacy + rnd + b"\x00" + struct.pack("!H", suite) + b"\x00" + struct.pack("!H", len(ext)) + ext
    return hs(2, body)


class Sealer:
    """An independent TLS 1.3 ChaCha20-Poly1305 record sealer (RFC 8446 5.2, 5.3, 7.3) for the tests."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.key = hkdf_expand_label(secret, "key", b"", 32)
        self.iv = hkdf_expand_label(secret, "iv", b"", 12)
        self.seq = 0

    def seal(self, inner_type: int, content: bytes, padding: int = 0) -> bytes:
        inner = content + bytes((inner_type,)) + bytes(padding)
        header = struct.pack("!BHH", 23, 0x0303, len(inner) + 16)
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big"), strict=True))
        self.seq += 1
        return header + ChaCha20Poly1305(self.key).encrypt(nonce, inner, header)

    def update(self) -> None:
        self.__init__(hkdf_expand_label(self.secret, "traffic upd", b"", 32))  # type: ignore[misc]


def synthetic_tls13(*, hrr: bool = False) -> tuple[bytes, bytes, str]:
    rnd, srnd = os.urandom(32), os.urandom(32)
    secrets = {label: os.urandom(32) for label in ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                                   "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")}
    ch = record(22, client_hello(rnd), 0x0301)
    client = ch + (ch if hrr else b"")
    server = (record(22, server_hello(HRR_RANDOM)) if hrr else b"") + record(22, server_hello(srnd))
    s_hs, c_hs = Sealer(secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"]), Sealer(secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
    s_ap, c_ap = Sealer(secrets["SERVER_TRAFFIC_SECRET_0"]), Sealer(secrets["CLIENT_TRAFFIC_SECRET_0"])
    server += s_hs.seal(22, hs(8, b"\x00\x00") + hs(20, bytes(32)))          # EncryptedExtensions, Finished
    client += record(20, b"\x01")                                             # middlebox compatibility CCS
    client += c_hs.seal(22, hs(20, bytes(32)), padding=5)
    client += c_ap.seal(23, b"GET / HTTP/1.1\r\n") + c_ap.seal(22, hs(24, b"\x01"))   # KeyUpdate(update_requested)
    c_ap.update()
    client += c_ap.seal(23, b"Host: x\r\n\r\n")
    server += s_ap.seal(22, hs(4, bytes(13))) + s_ap.seal(23, b"HTTP/1.1 200 OK\r\n")  # NewSessionTicket
    server += s_ap.seal(22, hs(24, b"\x00"))
    s_ap.update()
    server += s_ap.seal(23, b"Content-Length: 0\r\n\r\n") + s_ap.seal(21, b"\x01\x00")
    keylog = "".join(f"{label} {rnd.hex()} {secret.hex()}\n" for label, secret in secrets.items())
    return client, server, keylog


@pytest.mark.spec("RFC 8446 4.6.3", "RFC 8446 7.2", "RFC 8446 D.4", "RFC 8446 5.4")
@pytest.mark.parametrize("hrr", [False, True])
def test_chacha20_key_updates_ccs_and_hello_retry(hrr: bool) -> None:
    client, server, keylog = synthetic_tls13(hrr=hrr)
    session = decrypt_connection(client, server, parse_keylog(keylog))
    assert session.status == "decrypted", session
    assert session.description == "TLS 1.3 TLS_CHACHA20_POLY1305_SHA256"
    assert session.client.plaintext == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert session.server.plaintext == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert session.server.alerts == ["close_notify"]
    assert sum("KeyUpdate" in n for n in session.notes) == 2
    assert ("server: HelloRetryRequest" in session.notes) == hrr


def test_keylog_format() -> None:
    rnd = bytes(range(32))
    text = (f"# comment\n\nCLIENT_RANDOM {rnd.hex()} {'ab' * 48}\nRSA 0011223344556677 {'cd' * 48}\n"
            f"CLIENT_RANDOM short {'ab' * 48}\nSERVER_TRAFFIC_SECRET_0 {rnd.hex().upper()} {'ef' * 32}\n"
            f"CLIENT_TRAFFIC_SECRET_0 {rnd.hex()} abc\ngarbage\n")
    log = parse_keylog(text)
    assert len(log) == 1 and rnd in log and log.skipped == 4
    assert log.get(rnd, "CLIENT_RANDOM") == bytes.fromhex("ab" * 48)
    assert log.labels(rnd) == {"CLIENT_RANDOM", "SERVER_TRAFFIC_SECRET_0"}
    assert "ab" * 8 not in repr(log) and "ef" * 8 not in repr(log)
    assert parse_keylog(text.encode()).get(rnd, "SERVER_TRAFFIC_SECRET_0") == bytes.fromhex("ef" * 32)
    with pytest.raises(TlsDecryptError, match="cannot read the key log"):
        read_keylog("/nonexistent-wmh/keys.log")
    with pytest.raises(TlsDecryptError):
        KeyLog().add("CLIENT_RANDOM", b"short", b"x")


def test_prf_and_key_block_shapes() -> None:
    out = tls12_prf(b"secret", b"label", b"seed", 100)
    assert len(out) == 100 and out[:32] == tls12_prf(b"secret", b"label", b"seed", 32)
    assert tls12_prf(b"secret", b"label", b"seed", 48, "sha384") != tls12_prf(b"secret", b"label", b"seed", 48)
    kb = tls12_key_block(bytes(48), bytes(32), bytes(32), SUITES[0xC02F])
    assert (len(kb.client_key), len(kb.client_iv), kb.client_mac) == (16, 4, b"")
    cbc = tls12_key_block(bytes(48), bytes(32), bytes(32), SUITES[0xC028])
    assert (len(cbc.client_mac), len(cbc.server_key), cbc.client_iv) == (48, 32, b"")
    assert "redacted" in repr(kb)
    with pytest.raises(TlsDecryptError, match="48 bytes"):
        tls12_key_block(bytes(47), bytes(32), bytes(32), SUITES[0xC02F])


def test_hellos_and_detection() -> None:
    rnd = os.urandom(32)
    assert parse_client_hello(client_hello(rnd)[4:]).random == rnd
    assert looks_like_tls(record(22, client_hello(rnd), 0x0301))
    assert looks_like_tls(record(22, server_hello(rnd)), from_client=False)
    assert not looks_like_tls(b"POST /wsman HTTP/1.1\r\n")
    assert not looks_like_tls(b"\x05\x00\x0b\x03\x10\x00\x00\x00")   # DCE/RPC bind
    for cut in (3, 10, 36, 40):
        with pytest.raises(TlsDecryptError, match="truncated"):
            parse_client_hello(client_hello(rnd)[4:4 + cut])


def test_bad_streams_stop_with_a_reason() -> None:
    keys = parse_keylog(keylog_text())
    over = decrypt_connection(CLIENT_BYTES, b"\x16\x03\x03\xff\xff" + bytes(10), keys)
    assert "record_overflow" in (over.server.error or "")
    junk = decrypt_connection(record(22, hs(1, b"\x03\x03" + bytes(10)), 0x0301), SERVER_BYTES, keys)
    assert junk.client.error and "truncated" in junk.client.error
    cut = decrypt_connection(b"\x16\x03\x01\x00\x04\x01\x00\x00\xff", SERVER_BYTES, keys)
    assert any("incomplete handshake message" in n for n in cut.notes)
    not_tls = decrypt_connection(CLIENT_BYTES[:10] + b"GET / HTTP/1.1\r\n", b"", keys)
    assert not_tls.status in ("incomplete", "failed", "cannot decrypt")
    huge = decrypt_connection(record(22, b"\x01\xff\xff\xff"), b"", keys)
    assert "handshake message" in (huge.client.error or "")
    with pytest.raises(TlsDecryptError, match="shorter"):
        RecordOpener(SUITES[0x1301], bytes(16), bytes(12)).open(23, 0x0303, bytes(10))
    with pytest.raises(TlsDecryptError, match="whole blocks"):
        RecordOpener(SUITES[0xC014], bytes(32), b"", bytes(20)).open(23, 0x0303, bytes(33))


def test_unsupported_version_and_suite_are_reported() -> None:
    rnd = os.urandom(32)
    keys = parse_keylog(f"CLIENT_RANDOM {rnd.hex()} {'00' * 48}\n")
    tls10 = decrypt_connection(record(22, client_hello(rnd), 0x0301) + record(20, b"\x01", 0x0301),
                               record(22, server_hello(os.urandom(32), 0x002F, 0x0301), 0x0301)
                               + record(20, b"\x01", 0x0301), keys)
    assert tls10.status == "unsupported" and "TLS 1.0" in (tls10.client.error or "")
    odd = decrypt_connection(record(22, client_hello(rnd)) + record(20, b"\x01"),
                             record(22, server_hello(os.urandom(32), 0x0005, 0x0303)) + record(20, b"\x01"), keys)
    assert odd.status == "unsupported" and "0x0005" in (odd.client.error or "")


@pytest.mark.parametrize("seed", range(40))
def test_random_mutations_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    keys = parse_keylog(keylog_text())
    client, server = bytearray(CLIENT_BYTES), bytearray(SERVER_BYTES)
    for _ in range(rng.randint(1, 4)):
        target = rng.choice((client, server))
        op = rng.randrange(3)
        pos = rng.randrange(len(target))
        if op == 0:
            target[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            del target[pos:pos + rng.randint(1, 40)]
        else:
            target[pos:pos] = rng.randbytes(rng.randint(1, 40))
    decoder = TlsConnectionDecoder(keys)
    for from_client, data in ((True, bytes(client)), (False, bytes(server))):
        for i in range(0, len(data), 97):
            decoder.feed(from_client, data[i:i + 97])
    session = decoder.finish()
    assert session.status in ("decrypted", "no keys", "cannot decrypt", "failed", "unsupported", "incomplete")
    assert len(session.client.plaintext) <= 50 and len(session.server.plaintext) <= 50

"""TLS 1.3 decryption against the published trace of RFC 8448 section 3 ("Simple 1-RTT Handshake",
TLS_AES_128_GCM_SHA256 with x25519): key schedule values (RFC 8446 7.1 - 7.3) and the decrypted
records of both directions. Every hex value below is from RFC 8448 section 3."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from harness.capture.tls import KeyLog, TlsConnectionDecoder, decrypt_connection, parse_keylog
from harness.capture.tls_crypto import (
    SUITES,
    RecordOpener,
    TlsDecryptError,
    derive_secret,
    hkdf_expand_label,
    hkdf_extract,
    traffic_keys,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# {client} create an ephemeral x25519 key pair / {server} create an ephemeral x25519 key pair
CLIENT_X25519_PRIVATE = h("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005")
SERVER_X25519_PUBLIC = h("c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f")
SHARED = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
DERIVED_EARLY = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
C_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
S_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
DERIVED_HS = h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
TRANSCRIPT_SERVER_FINISHED = h("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
C_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
S_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
S_HS_KEY, S_HS_IV = h("3fce516009c21727d0f2e4e86ee403bc"), h("5d313eb2671276ee13000b30")
C_HS_KEY, C_HS_IV = h("dbfaa693d1762c5b666af5d950258d01"), h("5bd3c71b836e0b76bb73265f")
S_AP_KEY, S_AP_IV = h("9f02283b6c9c07efc26bb9f2ac92e356"), h("cf782b88dd83549aadf1e984")

CLIENT_HELLO = h("""
01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12 ec 18 a2 ef 62 83
02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01
00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 23 00 00 00 33 00
26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69
1e 52 9a af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01
05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01""")
CLIENT_RANDOM = CLIENT_HELLO[6:38]
CLIENT_HELLO_RECORD = h("16 03 01 00 c4") + CLIENT_HELLO   # "{client} send handshake record" (201 octets)
SERVER_HELLO_RECORD = h("""
16 03 03 00 5a 02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14 34
da c1 55 77 2e d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b
db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04""")
SERVER_FLIGHT_RECORD = h("""
17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3 3a f3 5e df 78
69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca 07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29
ba 91 91 cd 05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b d9 ae fb 0e 57 f2
71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22
a4 cf 51 42 73 25 25 0c 7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e d6 5b 0e 3c dd 0c ba e8 bf 2d
0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92 8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0
6a a6 24 82 04 79 7e 36 a6 a7 3b 70 a2 55 9c 09 ea d6 86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc
f2 a8 94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea 52 0a 56 a8 d6 50 f5 63
aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f 44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6
54 0c 84 83 8d 89 f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3 6a c1 b6 39
c6 37 ce 34 31 17 b6 59 62 22 45 31 7b 49 ee da 0c 62 58 f1 00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae
ea 6d fa 31 c7 a8 4d c3 bd 7e 1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84
c8 b0 37 8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c f9 3b 16 49 9a 66 db 7c ca 71
e4 59 94 26 f7 d4 61 e6 6f 99 88 2b d8 9f c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d
f8 81 ed be 5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6 fa 4f 9d 62 d5 13
af bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb 56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59
77 b7 c7 a6 99 9b bf 10 dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38 eb ba
42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f 60 f0 50 4d e9 3b 5b 84 5e 27 55 92
c1 23 35 ee 34 0b bc 4f dd d5 02 78 40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af 93 98 28 fd
4a e3 79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e 75 0e dc 53 37 0d 2b""")
CLIENT_FINISHED_RECORD = h("""
17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44 d8
7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7 26 c4 05 46""")
NEW_SESSION_TICKET_RECORD = h("""
17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d 6a
f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57
53 ad 8e f1 70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0 9c 30 ba 1e 62 97
2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15 13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4
75 84 00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa c3 47 d1
43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26 97 68 7e 24 87 46 d6 df 35 30
05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b f1 59 85 68 4f""")
CLIENT_APP_RECORD = h("""
17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98
19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21
69 49 15 e4""")
SERVER_APP_RECORD = h("""
17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e
fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1
67 c2 95 5d""")
CLIENT_ALERT_RECORD = h("17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3")
SERVER_ALERT_RECORD = h("17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9")
APPLICATION_DATA = bytes(range(50))   # both sides send 00 01 02 ... 31

CLIENT_BYTES = CLIENT_HELLO_RECORD + CLIENT_FINISHED_RECORD + CLIENT_APP_RECORD + CLIENT_ALERT_RECORD
SERVER_BYTES = (SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD + NEW_SESSION_TICKET_RECORD + SERVER_APP_RECORD
                + SERVER_ALERT_RECORD)
SUITE = SUITES[0x1301]


def keylog_text(**override: bytes) -> str:
    secrets = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET": C_HS_TRAFFIC, "SERVER_HANDSHAKE_TRAFFIC_SECRET": S_HS_TRAFFIC,
               "CLIENT_TRAFFIC_SECRET_0": C_AP_TRAFFIC, "SERVER_TRAFFIC_SECRET_0": S_AP_TRAFFIC, **override}
    return "# SSL/TLS secrets log file\n" + "".join(
        f"{label} {CLIENT_RANDOM.hex()} {secret.hex()}\n" for label, secret in secrets.items() if secret)


@pytest.mark.spec("RFC 8446 7.1", "RFC 8448 3")
def test_key_schedule_reproduces_the_rfc8448_secrets() -> None:
    shared = X25519PrivateKey.from_private_bytes(CLIENT_X25519_PRIVATE).exchange(
        X25519PublicKey.from_public_bytes(SERVER_X25519_PUBLIC))
    assert shared == SHARED
    early = hkdf_extract(b"", bytes(32))
    assert early == EARLY_SECRET
    assert derive_secret(early, "derived", b"") == DERIVED_EARLY
    handshake = hkdf_extract(DERIVED_EARLY, shared)
    assert handshake == HANDSHAKE_SECRET
    hello = CLIENT_HELLO + SERVER_HELLO_RECORD[5:]
    assert derive_secret(handshake, "c hs traffic", hello) == C_HS_TRAFFIC
    assert derive_secret(handshake, "s hs traffic", hello) == S_HS_TRAFFIC
    assert derive_secret(handshake, "derived", b"") == DERIVED_HS
    assert hkdf_extract(DERIVED_HS, bytes(32)) == MASTER_SECRET


@pytest.mark.spec("RFC 8446 7.3", "RFC 8448 3")
def test_traffic_keys_and_ivs() -> None:
    assert traffic_keys(S_HS_TRAFFIC, SUITE) == (S_HS_KEY, S_HS_IV)
    assert traffic_keys(C_HS_TRAFFIC, SUITE) == (C_HS_KEY, C_HS_IV)
    assert traffic_keys(S_AP_TRAFFIC, SUITE) == (S_AP_KEY, S_AP_IV)
    assert hkdf_expand_label(S_HS_TRAFFIC, "key", b"", 16) == S_HS_KEY


@pytest.mark.spec("RFC 8446 5.2", "RFC 8446 5.3", "RFC 8448 3")
def test_server_flight_opens_and_its_transcript_gives_the_application_secrets() -> None:
    opener = RecordOpener(SUITE, S_HS_KEY, S_HS_IV)
    inner_type, flight = opener.open(SERVER_FLIGHT_RECORD[0], 0x0303, SERVER_FLIGHT_RECORD[5:])
    assert inner_type == 22 and len(flight) == 657
    assert flight[0] == 8                                       # EncryptedExtensions, then Certificate
    assert flight[4 + int.from_bytes(flight[1:4], "big")] == 11
    transcript = CLIENT_HELLO + SERVER_HELLO_RECORD[5:] + flight
    assert hashlib.sha256(transcript).digest() == TRANSCRIPT_SERVER_FINISHED
    assert derive_secret(MASTER_SECRET, "c ap traffic", transcript) == C_AP_TRAFFIC
    assert derive_secret(MASTER_SECRET, "s ap traffic", transcript) == S_AP_TRAFFIC


@pytest.mark.spec("RFC 8448 3", "RFC 8446 5.4")
def test_whole_trace_decrypts_both_directions() -> None:
    session = decrypt_connection(CLIENT_BYTES, SERVER_BYTES, parse_keylog(keylog_text()))
    assert session.status == "decrypted", session
    assert session.description == "TLS 1.3 TLS_AES_128_GCM_SHA256"
    assert session.client_random == CLIENT_RANDOM
    assert session.client.plaintext == APPLICATION_DATA
    assert session.server.plaintext == APPLICATION_DATA
    assert session.client.alerts == ["close_notify"] and session.server.alerts == ["close_notify"]
    assert (session.client.decrypted, session.server.decrypted) == (3, 4)
    # the plaintext maps to the last byte of its record in the ciphertext stream
    end = len(CLIENT_HELLO_RECORD) + len(CLIENT_FINISHED_RECORD) + len(CLIENT_APP_RECORD) - 1
    assert session.client.pieces[0][:2] == (0, end)


def test_byte_by_byte_and_server_first_feeding_give_the_same_result() -> None:
    keys = parse_keylog(keylog_text())
    decoder = TlsConnectionDecoder(keys)
    for i in range(len(CLIENT_BYTES)):      # the client's records wait for the ServerHello
        decoder.feed(True, CLIENT_BYTES[i:i + 1])
    for i in range(0, len(SERVER_BYTES), 7):
        decoder.feed(False, SERVER_BYTES[i:i + 7])
    session = decoder.finish()
    assert session.client.plaintext == session.server.plaintext == APPLICATION_DATA


def test_handshake_secrets_missing_application_data_still_opens() -> None:
    text = keylog_text(CLIENT_HANDSHAKE_TRAFFIC_SECRET=b"", SERVER_HANDSHAKE_TRAFFIC_SECRET=b"")
    session = decrypt_connection(CLIENT_BYTES, SERVER_BYTES, parse_keylog(text))
    assert session.client.plaintext == session.server.plaintext == APPLICATION_DATA
    assert session.server.skipped == 1 and session.client.skipped == 1   # the handshake records
    assert any("handshake records skipped" in n for n in session.notes)


def test_missing_and_wrong_keys_are_reported_per_direction() -> None:
    none = decrypt_connection(CLIENT_BYTES, SERVER_BYTES, KeyLog())
    assert none.status == "no keys" and CLIENT_RANDOM.hex() in (none.client.error or "")
    assert none.client.plaintext == b""
    wrong = decrypt_connection(CLIENT_BYTES, SERVER_BYTES,
                               parse_keylog(keylog_text(SERVER_HANDSHAKE_TRAFFIC_SECRET=bytes(32),
                                                        CLIENT_HANDSHAKE_TRAFFIC_SECRET=bytes(32),
                                                        CLIENT_TRAFFIC_SECRET_0=bytes(32),
                                                        SERVER_TRAFFIC_SECRET_0=bytes(32))))
    assert wrong.status == "cannot decrypt"
    assert "bad_record_mac" in (wrong.server.error or "")
    for secret in (C_HS_TRAFFIC, S_HS_TRAFFIC, C_AP_TRAFFIC, S_AP_TRAFFIC):
        assert secret.hex() not in repr(wrong) + " ".join(wrong.notes)


@pytest.mark.parametrize("where", [5, 40, 300, len(SERVER_FLIGHT_RECORD) - 1])
def test_mutated_server_flight_is_a_typed_error(where: int) -> None:
    flight = bytearray(SERVER_FLIGHT_RECORD)
    flight[where] ^= 0x01
    server = SERVER_HELLO_RECORD + bytes(flight) + NEW_SESSION_TICKET_RECORD + SERVER_APP_RECORD
    session = decrypt_connection(CLIENT_BYTES, server, parse_keylog(keylog_text()))
    assert session.status == "cannot decrypt"
    assert session.server.error and "bad_record_mac" in session.server.error
    assert session.server.plaintext == b""
    assert session.client.plaintext == APPLICATION_DATA   # the other direction is unaffected
    with pytest.raises(TlsDecryptError, match="bad_record_mac"):
        RecordOpener(SUITE, S_HS_KEY, S_HS_IV).open(23, 0x0303, bytes(flight[5:]))


def test_mutated_application_record_after_a_good_handshake_fails_the_stream() -> None:
    app = bytearray(SERVER_APP_RECORD)
    app[20] ^= 0x80
    server = SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD + NEW_SESSION_TICKET_RECORD + bytes(app)
    session = decrypt_connection(CLIENT_BYTES, server, parse_keylog(keylog_text()))
    assert session.status == "failed"
    assert session.server.decrypted == 2 and session.server.plaintext == b""

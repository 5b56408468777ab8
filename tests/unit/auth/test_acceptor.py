"""Server role: Basic and Negotiate under the listener policy (MS-WSMV 2.2.9.1, MS-NLMP, RFC 4559, RFC 5929)."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from _authkit import ADMIN_PASSWORD, READER_PASSWORD, acceptor_for, handshake, ntlm_client
from spnego.channel_bindings import GssChannelBindings

from harness.auth.acceptor import ConnectionAuth
from harness.auth.headers import basic_credentials, encode_token, offered_schemes
from harness.auth.ntlm_cbt import BindingState, channel_bindings_of
from harness.auth.policy import BASIC_CHALLENGE, NEGOTIATE_CHALLENGE, AuthPolicy, CbtHardening
from harness.auth.tls import channel_bindings, generate_self_signed
from harness.auth.users import NTLM_USER_FILE, UserDatabase

CERT_DER = generate_self_signed().cert_der
OTHER_CERT_DER = generate_self_signed().cert_der


@pytest.mark.spec("MS-WSMV 2.2.9.1")
def test_no_credentials_get_the_policy_challenges(users: UserDatabase) -> None:
    outcome = acceptor_for(users).authenticate(ConnectionAuth(), None)
    assert not outcome.ok and not outcome.attempted
    assert outcome.www_authenticate == [BASIC_CHALLENGE, NEGOTIATE_CHALLENGE]
    windows = acceptor_for(users, AuthPolicy.windows_default()).authenticate(ConnectionAuth(), None)
    assert windows.www_authenticate == [NEGOTIATE_CHALLENGE]          # Basic cannot be sealed over HTTP
    https = acceptor_for(users, AuthPolicy.windows_default(), CERT_DER)
    assert https.authenticate(ConnectionAuth(), None).www_authenticate == [NEGOTIATE_CHALLENGE]
    https.policy.allow_basic = True
    assert https.authenticate(ConnectionAuth(), None).www_authenticate == [BASIC_CHALLENGE, NEGOTIATE_CHALLENGE]


@pytest.mark.spec("RFC 7617 2", "MS-WMOD 2.9.3")
def test_basic(users: UserDatabase) -> None:
    acceptor = acceptor_for(users)
    ok = acceptor.authenticate(ConnectionAuth(), basic_credentials("WMH-MOCK01\\wmh", ADMIN_PASSWORD))
    assert ok.ok and ok.user is not None and ok.user.name == "wmh" and ok.scheme == "basic"
    reader = acceptor.authenticate(ConnectionAuth(), basic_credentials("reader", READER_PASSWORD))
    assert reader.user is not None and reader.user.read_only
    wrong = acceptor.authenticate(ConnectionAuth(), basic_credentials("wmh", "nope"))
    assert not wrong.ok and wrong.attempted and "wrong" in wrong.reason
    assert ADMIN_PASSWORD not in wrong.reason
    garbage = acceptor.authenticate(ConnectionAuth(), "Basic ###")
    assert not garbage.ok and garbage.attempted
    acceptor.policy.allow_basic = False
    refused = acceptor.authenticate(ConnectionAuth(), basic_credentials("wmh", ADMIN_PASSWORD))
    assert not refused.ok and "AllowBasic" in refused.reason
    acceptor.policy = AuthPolicy(allow_basic=True, allow_unencrypted=False)
    refused = acceptor.authenticate(ConnectionAuth(), basic_credentials("wmh", ADMIN_PASSWORD))
    assert not refused.ok and "AllowUnencrypted" in refused.reason


def test_unknown_scheme(users: UserDatabase) -> None:
    outcome = acceptor_for(users).authenticate(ConnectionAuth(), "Digest abc")
    assert not outcome.ok and "not offered" in outcome.reason


@pytest.mark.spec("MS-NLMP 3.2.5", "RFC 4559 4")
@pytest.mark.parametrize("protocol", ["ntlm", "negotiate"])
def test_negotiate_handshake_binds_the_connection(users: UserDatabase, protocol: str) -> None:
    acceptor = acceptor_for(users)
    conn = ConnectionAuth()
    client = ntlm_client("wmh", ADMIN_PASSWORD, protocol=protocol)
    outcome = handshake(acceptor, conn, client)
    assert outcome.ok and outcome.user is not None and outcome.user.name == "wmh"
    assert client.complete and conn.context is not None
    # SPNEGO ends with the acceptor's accept-completed token; raw NTLM has none
    assert bool(outcome.www_authenticate) is (protocol == "negotiate")
    # later requests on the same connection need no header
    again = acceptor.authenticate(conn, None)
    assert again.ok and again.user == outcome.user
    # another connection does not share it
    assert not acceptor.authenticate(ConnectionAuth(), None).ok


def test_negotiate_accepts_domain_qualified_read_only_user(users: UserDatabase) -> None:
    conn = ConnectionAuth()
    outcome = handshake(acceptor_for(users), conn, ntlm_client("WMH-MOCK01\\reader", READER_PASSWORD))
    assert outcome.ok and outcome.user is not None and outcome.user.read_only


@pytest.mark.parametrize("user, password", [
    ("wmh", "wrong"), ("nobody", ADMIN_PASSWORD), ("OTHERDOM\\wmh", ADMIN_PASSWORD)])
def test_negotiate_wrong_credentials_are_refused(users: UserDatabase, user: str, password: str) -> None:
    conn = ConnectionAuth()
    outcome = handshake(acceptor_for(users), conn, ntlm_client(user, password))
    assert not outcome.ok and outcome.attempted
    assert outcome.www_authenticate == [BASIC_CHALLENGE, NEGOTIATE_CHALLENGE]   # a fresh challenge
    assert conn.context is None and conn.pending is None


def test_acceptor_does_not_leak_the_credential_file_into_the_environment(users: UserDatabase,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NTLM_USER_FILE, raising=False)
    assert handshake(acceptor_for(users), ConnectionAuth(), ntlm_client("wmh", ADMIN_PASSWORD)).ok
    assert NTLM_USER_FILE not in os.environ


def test_out_of_sequence_and_garbage_tokens(users: UserDatabase) -> None:
    acceptor = acceptor_for(users)
    client = ntlm_client("wmh", ADMIN_PASSWORD)
    client.step()
    stray = b"NTLMSSP\x00\x03\x00\x00\x00" + b"\0" * 60
    lone = acceptor.authenticate(ConnectionAuth(), encode_token("Negotiate", stray))
    assert not lone.ok and "out of sequence" in lone.reason
    for junk in (b"\x60\x03\x01\x02\x03", b"NTLMSSP\x00\x01\x00\x00\x00", b"\xff" * 40):
        outcome = acceptor.authenticate(ConnectionAuth(), encode_token("Negotiate", junk))
        assert not outcome.ok
    assert not acceptor.authenticate(ConnectionAuth(), "Negotiate ***").ok


def test_negotiate_disallowed_by_policy(users: UserDatabase) -> None:
    acceptor = acceptor_for(users, AuthPolicy(allow_negotiate=False))
    outcome = handshake(acceptor, ConnectionAuth(), ntlm_client("wmh", ADMIN_PASSWORD))
    assert not outcome.ok and "AllowNegotiate" in outcome.reason
    assert outcome.www_authenticate == [BASIC_CHALLENGE]


def _legs(acceptor: Any, conn: ConnectionAuth, client: Any) -> tuple[bytes, Any]:
    """Run NEGOTIATE/CHALLENGE by hand; return the AUTHENTICATE token and the acceptor's answer to it."""
    first = acceptor.authenticate(conn, encode_token("Negotiate", client.step()))
    challenge = base64.b64decode(offered_schemes(first.www_authenticate)["negotiate"])
    auth = client.step(challenge)
    return auth, acceptor.authenticate(conn, encode_token("Negotiate", auth))


@pytest.mark.spec("RFC 5929 4.1", "MS-NLMP 3.2.5.1.2")
@pytest.mark.parametrize("level, client_cert, expect_ok", [
    (CbtHardening.STRICT, CERT_DER, True),
    (CbtHardening.STRICT, None, False),            # missing binding
    (CbtHardening.STRICT, OTHER_CERT_DER, False),  # mismatched binding (e.g. a TLS-intercepting proxy)
    (CbtHardening.RELAXED, CERT_DER, True),
    (CbtHardening.RELAXED, None, True),
    (CbtHardening.RELAXED, OTHER_CERT_DER, False),
    (CbtHardening.NONE, OTHER_CERT_DER, True),
])
def test_channel_binding_hardening(users: UserDatabase, level: CbtHardening, client_cert: bytes | None,
                                   expect_ok: bool) -> None:
    acceptor = acceptor_for(users, AuthPolicy(cbt_hardening=level), CERT_DER)
    client = ntlm_client("wmh", ADMIN_PASSWORD, cbt=channel_bindings(client_cert) if client_cert else None)
    auth, outcome = _legs(acceptor, ConnectionAuth(), client)
    expected_state = BindingState.ABSENT if client_cert is None else BindingState.PRESENT
    assert channel_bindings_of(auth)[0] is expected_state
    assert outcome.ok is expect_ok, outcome.reason


def test_bindings_are_not_checked_over_plain_http(users: UserDatabase) -> None:
    acceptor = acceptor_for(users, AuthPolicy(cbt_hardening=CbtHardening.STRICT))
    client = ntlm_client("wmh", ADMIN_PASSWORD, cbt=GssChannelBindings(application_data=b"tls-server-end-point:x"))
    assert handshake(acceptor, ConnectionAuth(), client).ok


def test_a_new_handshake_replaces_the_connection_context(users: UserDatabase) -> None:
    acceptor = acceptor_for(users)
    conn = ConnectionAuth()
    assert handshake(acceptor, conn, ntlm_client("wmh", ADMIN_PASSWORD)).ok
    outcome = handshake(acceptor, conn, ntlm_client("reader", READER_PASSWORD))
    assert outcome.ok and conn.user is not None and conn.user.name == "reader"

"""Header parsing (RFC 7235/7617/4559), the user database and its NTLM file, and NTLM channel bindings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from _authkit import ADMIN_PASSWORD, ntlm_client
from spnego.channel_bindings import GssChannelBindings

from harness.auth.errors import AuthError
from harness.auth.headers import (
    basic_credentials,
    decode_token,
    encode_token,
    offered_schemes,
    parse_basic,
    split_credentials,
)
from harness.auth.ntlm_cbt import BindingState, binding_hash, channel_bindings_of
from harness.auth.users import NTLM_USER_FILE, UserDatabase, bare_name, ntlm_user_file


def test_basic_round_trip_and_errors() -> None:
    scheme, token = split_credentials(basic_credentials("wmh", "p:ss wörd"))
    assert scheme == "basic" and parse_basic(token) == ("wmh", "p:ss wörd")
    for bad in ("!!!", "bm9jb2xvbg=="):   # not base64; no colon
        with pytest.raises(AuthError):
            parse_basic(bad)


def test_tokens() -> None:
    assert decode_token(encode_token("Negotiate", b"\x01\x02").split(" ", 1)[1]) == b"\x01\x02"
    for bad in ("", "***", "A" * 70_000):
        with pytest.raises(AuthError):
            decode_token(bad)


def test_offered_schemes_from_separate_and_joined_header_lines() -> None:
    assert offered_schemes(['Basic realm="WSMAN"', "Negotiate"]) == {"basic": 'realm="WSMAN"', "negotiate": ""}
    joined = offered_schemes(['Basic realm="a,b", charset="UTF-8", Negotiate abc=='])
    assert joined == {"basic": 'realm="a,b", charset="UTF-8"', "negotiate": "abc=="}
    assert offered_schemes([]) == {}


def test_user_lookup_accepts_local_account_forms(users: UserDatabase) -> None:
    assert bare_name("WMH-MOCK01\\WMH") == "WMH" and bare_name("wmh@host") == "wmh"
    for form in ("wmh", "WMH", ".\\wmh", "WMH-MOCK01\\wmh", "wmh@WMH-MOCK01"):
        user = users.check_password(form, ADMIN_PASSWORD)
        assert user is not None and user.name == "wmh" and not user.read_only
    assert users.check_password("wmh", "wrong") is None
    assert users.check_password("nobody", ADMIN_PASSWORD) is None
    reader = users.lookup("reader")
    assert reader is not None and reader.read_only


def test_ntlm_file_has_hashes_only_and_is_private(users: UserDatabase) -> None:
    path = Path(users.ntlm_file())
    text = path.read_text()
    assert ADMIN_PASSWORD not in text
    assert (path.stat().st_mode & 0o777) == 0o600
    assert "WMH-MOCK01\\wmh:" in text and ".\\wmh:" in text
    users.close()
    assert not path.exists()


def test_ntlm_user_file_is_scoped(users: UserDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NTLM_USER_FILE, raising=False)
    with ntlm_user_file(users):
        assert os.environ[NTLM_USER_FILE] == users.ntlm_file()
    assert NTLM_USER_FILE not in os.environ
    monkeypatch.setenv(NTLM_USER_FILE, "/elsewhere")
    with pytest.raises(RuntimeError), ntlm_user_file(users):
        raise RuntimeError("boom")
    assert os.environ[NTLM_USER_FILE] == "/elsewhere"


@pytest.mark.spec("MS-NLMP 2.2.2.1", "RFC 5929 4")
def test_binding_hash_and_absent_bindings() -> None:
    app_data = b"tls-server-end-point:" + bytes(range(32))
    assert binding_hash(app_data) == hashlib.md5(GssChannelBindings(application_data=app_data).pack()).digest()
    assert channel_bindings_of(b"not ntlm") == (BindingState.ABSENT, None)
    assert channel_bindings_of(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\x00" * 10) == (BindingState.ABSENT, None)
    client = ntlm_client("wmh", ADMIN_PASSWORD, cbt=GssChannelBindings(application_data=app_data))
    negotiate = client.step()
    assert channel_bindings_of(negotiate)[0] is BindingState.ABSENT     # only AUTHENTICATE carries it


def test_truncated_authenticate_messages_never_raise() -> None:
    blob = b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 80
    for cut in range(len(blob)):
        assert channel_bindings_of(blob[:cut])[0] is BindingState.ABSENT

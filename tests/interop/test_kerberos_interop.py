"""Kerberos with unmodified pypsrp against ``wmh serve`` in a loopback MIT realm (RFC 4120, RFC 4121, RFC 4559).

The realm (tests/kdc/mit_realm.py) is built once for this module. ``wmh serve`` gets the realm's
krb5.conf and the HTTP/localhost keytab through its environment (set only while it is started);
pypsrp gets krb5.conf and a private credential cache through a per-test ``monkeypatch``, and its TGT
from the password (pyspnego's kinit). Every SOAP message travels sealed by the Kerberos context
(MS-WSMV 2.2.9.1.1). Skipped when krb5kdc or python-gssapi is missing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _wire import WMI_CIMV2, MockServer
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.wsman import SelectorSet, WSMan

pytestmark = pytest.mark.interop

SERVICE_URI = WMI_CIMV2 + "Win32_Service"
POLICY = ("--no-basic", "--no-allow-unencrypted")
def _serve_in_realm(wmh_serve: Callable[..., MockServer], realm: Any, *options: str) -> MockServer:
    """``wmh serve`` with the realm's variables in its environment only (scoped patch while it starts)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in realm.server_env.items():
            patch.setenv(name, value)
        return wmh_serve(*POLICY, *options)


@pytest.fixture(scope="module")
def kerberos_server(wmh_serve: Callable[..., MockServer], realm: Any) -> MockServer:
    return _serve_in_realm(wmh_serve, realm, "--kerberos")


@pytest.fixture(scope="module")
def negotiate_server(wmh_serve: Callable[..., MockServer], realm: Any) -> MockServer:
    return _serve_in_realm(wmh_serve, realm)


@pytest.fixture
def client_env(realm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in realm.client_env.items():
        monkeypatch.setenv(name, value)
    return realm


@pytest.fixture
def closing() -> Iterator[list[WSMan]]:
    clients: list[WSMan] = []
    yield clients
    for client in clients:
        client.close()


def psrp(server: MockServer, realm: Any, *, password: str | None = None, auth: str = "kerberos") -> WSMan:
    # "localhost": the SPN is HTTP/localhost (the keytab's); the server listens on 127.0.0.1
    return WSMan("localhost", port=server.port, username=realm.principal,
                 password=realm.password if password is None else password, path="wsman", no_proxy=True,
                 ssl=False, auth=auth, encryption="always", connection_timeout=5, read_timeout=10,
                 operation_timeout=5)


def get_winrm_service(client: WSMan) -> ET.Element:
    selectors = SelectorSet()
    selectors.add_option("Name", "WinRM")
    body = client.get(SERVICE_URI, selector_set=selectors)
    instance = body.find(f"{{{SERVICE_URI}}}Win32_Service")
    assert instance is not None, ET.tostring(body)[:400]
    assert instance.findtext(f"{{{SERVICE_URI}}}Name") == "WinRM"
    return instance


@pytest.mark.spec("RFC 4121 4.2.6.2", "MS-WSMV 2.2.9.1.1")
def test_pypsrp_kerberos_with_message_encryption(kerberos_server: MockServer, client_env: Any,
                                                 closing: list[WSMan]) -> None:
    client = psrp(kerberos_server, client_env)
    closing.append(client)
    get_winrm_service(client)
    get_winrm_service(client)
    assert client.transport.encryption is not None
    # pypsrp takes Negotiate when both are offered (it looks for Negotiate first) and puts its
    # Kerberos token there, so the messages are labelled SPNEGO (the Kerberos scheme itself is
    # covered by tests/unit/auth/test_kerberos.py with the harness client)
    assert client.transport.encryption.protocol == "application/HTTP-SPNEGO-session-encrypted"
    assert client_env.password not in kerberos_server.log_file.read_text(errors="replace")


@pytest.mark.spec("RFC 4559 4", "RFC 4178")
def test_pypsrp_kerberos_inside_negotiate(negotiate_server: MockServer, client_env: Any,
                                          closing: list[WSMan]) -> None:
    client = psrp(negotiate_server, client_env)
    closing.append(client)
    get_winrm_service(client)
    assert client.transport.encryption is not None
    assert client.transport.encryption.protocol == "application/HTTP-SPNEGO-session-encrypted"


@pytest.mark.spec("RFC 4178 3.1")
def test_pypsrp_negotiate_picks_kerberos(negotiate_server: MockServer, client_env: Any,
                                         closing: list[WSMan]) -> None:
    client = psrp(negotiate_server, client_env, auth="negotiate")
    closing.append(client)
    get_winrm_service(client)


@pytest.mark.spec("RFC 4120 3.1.3")
def test_pypsrp_kerberos_wrong_password(kerberos_server: MockServer, client_env: Any,
                                        closing: list[WSMan]) -> None:
    client = psrp(kerberos_server, client_env, password="Not-The-Krb-Pw2")
    closing.append(client)
    with pytest.raises((AuthenticationError, WinRMTransportError, Exception)) as caught:
        get_winrm_service(client)
    assert "Not-The-Krb-Pw2" not in str(caught.value)

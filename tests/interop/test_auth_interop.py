"""NTLM, message encryption and HTTPS with unmodified pypsrp and pywinrm against ``wmh serve``.

The servers run with a Windows-like policy: Basic off, unencrypted traffic refused (MS-WMOD 4.1 <1>),
so every SOAP message below travels sealed as ``multipart/encrypted`` (MS-WSMV 2.2.9.1.1) or over
TLS with the channel bound to the certificate (``--cbt-hardening Strict``, RFC 5929).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import xmltodict
from _wire import WMI_CIMV2, MockServer
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.wsman import SelectorSet, WSMan
from winrm.exceptions import InvalidCredentialsError
from winrm.exceptions import WinRMTransportError as PywinrmTransportError
from winrm.protocol import Protocol

pytestmark = pytest.mark.interop

SERVICE_URI = WMI_CIMV2 + "Win32_Service"
TRANSFER_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
POLICY = ("--no-basic", "--no-allow-unencrypted")


@pytest.fixture(scope="module")
def sealed_server(wmh_serve: Callable[..., MockServer]) -> MockServer:
    """HTTP listener that only accepts Negotiate with sealed messages."""
    return wmh_serve(*POLICY)


@pytest.fixture(scope="module")
def https_server(wmh_serve: Callable[..., MockServer], tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[MockServer, Path]:
    """HTTPS listener with a certificate generated at start (written out as the CA to trust), Strict CBT."""
    ca = tmp_path_factory.mktemp("wmh-tls") / "ca.pem"
    server = wmh_serve(*POLICY, "--https", "--cert-out", str(ca), "--cbt-hardening", "Strict", https=True)
    return server, ca


def psrp(server: MockServer, password: str | None = None, **kwargs: object) -> WSMan:
    options: dict[str, object] = {"ssl": False, "auth": "ntlm", "encryption": "always"}
    options.update(kwargs)
    return WSMan(server.host, port=server.port, username=server.username,
                 password=server.password if password is None else password, path="wsman", no_proxy=True,
                 connection_timeout=5, read_timeout=10, operation_timeout=5, **options)  # type: ignore[arg-type]


def get_winrm_service(client: WSMan) -> ET.Element:
    selectors = SelectorSet()
    selectors.add_option("Name", "WinRM")
    body = client.get(SERVICE_URI, selector_set=selectors)
    instance = body.find(f"{{{SERVICE_URI}}}Win32_Service")
    assert instance is not None, ET.tostring(body)[:400]
    assert instance.findtext(f"{{{SERVICE_URI}}}Name") == "WinRM"
    return instance


@pytest.fixture
def closing() -> Iterator[list[WSMan]]:
    clients: list[WSMan] = []
    yield clients
    for client in clients:
        client.close()


@pytest.mark.spec("MS-WSMV 2.2.9.1.1", "MS-NLMP 3.4")
def test_pypsrp_ntlm_with_message_encryption(sealed_server: MockServer, closing: list[WSMan]) -> None:
    client = psrp(sealed_server)
    closing.append(client)
    get_winrm_service(client)
    get_winrm_service(client)   # the second message reuses the sealed session
    assert client.transport.encryption is not None
    assert client.transport.encryption.protocol == "application/HTTP-SPNEGO-session-encrypted"


@pytest.mark.spec("MS-WSMV 2.2.9.1.1")
def test_pywinrm_ntlm_with_message_encryption(sealed_server: MockServer) -> None:
    protocol = Protocol(sealed_server.endpoint, transport="ntlm", username=sealed_server.username,
                        password=sealed_server.password, message_encryption="always", read_timeout_sec=10,
                        operation_timeout_sec=5, proxy=None, ca_trust_path=None)  # type: ignore[arg-type]
    try:
        request = {"env:Envelope": protocol.build_wsman_header(action=TRANSFER_GET, resource_uri=SERVICE_URI)}
        request["env:Envelope"]["env:Header"]["w:SelectorSet"] = {"w:Selector": {"@Name": "Name", "#text": "WinRM"}}
        request["env:Envelope"].setdefault("env:Body", {})
        for _ in range(2):
            root = ET.fromstring(protocol.send_message(xmltodict.unparse(request)))
            assert root.findtext(f".//{{{SERVICE_URI}}}Name") == "WinRM"
        assert protocol.transport.encryption is not None
    finally:
        session = protocol.transport.session
        if session is not None:
            session.close()


@pytest.mark.spec("MS-WSMV 2.2.9.1")
def test_unencrypted_traffic_is_refused(sealed_server: MockServer, closing: list[WSMan]) -> None:
    """AllowUnencrypted false: plain NTLM messages get HTTP 500 (observed Windows behaviour), Basic a 401."""
    client = psrp(sealed_server, encryption="never")
    closing.append(client)
    with pytest.raises(WinRMTransportError) as err:
        get_winrm_service(client)
    assert err.value.code == 500
    basic = Protocol(sealed_server.endpoint, transport="basic", username=sealed_server.username,
                     password=sealed_server.password, read_timeout_sec=10, operation_timeout_sec=5,
                     proxy=None, ca_trust_path=None)  # type: ignore[arg-type]
    with pytest.raises((InvalidCredentialsError, PywinrmTransportError)):
        basic.send_message("<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'/>")


@pytest.mark.spec("MS-WSMV 2.2.9.1")
def test_wrong_password_is_refused(sealed_server: MockServer, closing: list[WSMan]) -> None:
    client = psrp(sealed_server, password="not-" + sealed_server.password)
    closing.append(client)
    with pytest.raises(AuthenticationError):
        get_winrm_service(client)
    protocol = Protocol(sealed_server.endpoint, transport="ntlm", username=sealed_server.username,
                        password="not-" + sealed_server.password, message_encryption="always", read_timeout_sec=10,
                        operation_timeout_sec=5, proxy=None, ca_trust_path=None)  # type: ignore[arg-type]
    with pytest.raises((InvalidCredentialsError, PywinrmTransportError, requests.HTTPError)):
        protocol.send_message("<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'/>")


@pytest.mark.spec("RFC 5929 4.1", "MS-WSMV 2.1")
def test_pypsrp_https_without_certificate_validation(https_server: tuple[MockServer, Path],
                                                     closing: list[WSMan]) -> None:
    server, _ca = https_server
    client = psrp(server, ssl=True, cert_validation=False, encryption="auto")
    closing.append(client)
    get_winrm_service(client)
    assert client.transport.encryption is None   # TLS protects the messages


@pytest.mark.spec("RFC 5929 4.1", "MS-WSMV 2.1")
def test_pypsrp_https_trusting_the_generated_certificate(https_server: tuple[MockServer, Path],
                                                         closing: list[WSMan]) -> None:
    server, ca = https_server
    client = psrp(server, ssl=True, cert_validation=str(ca), encryption="auto")
    closing.append(client)
    get_winrm_service(client)


@pytest.mark.spec("RFC 5929 4.1")
def test_strict_cbt_refuses_a_client_without_channel_binding(https_server: tuple[MockServer, Path],
                                                             closing: list[WSMan]) -> None:
    server, ca = https_server
    client = psrp(server, ssl=True, cert_validation=str(ca), encryption="auto", negotiate_send_cbt=False)
    closing.append(client)
    with pytest.raises(AuthenticationError):
        get_winrm_service(client)

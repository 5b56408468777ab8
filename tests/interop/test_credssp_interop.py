"""CredSSP (MS-CSSP) with unmodified pypsrp and pywinrm (requests-credssp) against ``wmh serve --credssp``.

The listener has a Windows-like policy (Basic off, unencrypted refused) with ServiceAuthType CredSSP
switched on (MS-WSMV 2.2.4.34): over HTTP every message travels sealed by the CredSSP TLS session
(``application/HTTP-CredSSP-session-encrypted``, MS-WSMV 2.2.9.1.1, in 16 KiB pieces beyond that
size, 2.2.9.1.2); over HTTPS it is not sealed again. The delegated password never reaches the log.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest
from _wire import WMI_CIMV2, MockServer

pytest.importorskip("requests_credssp", reason="requests-credssp (pypsrp's CredSSP) is not installed")

import winrm
from pypsrp.exceptions import AuthenticationError, WinRMTransportError
from pypsrp.wsman import SelectorSet, WSMan
from requests_credssp.exceptions import AuthenticationException, NTStatusException

pytestmark = pytest.mark.interop

SERVICE_URI = WMI_CIMV2 + "Win32_Service"
POLICY = ("--no-basic", "--no-allow-unencrypted")
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"


def psrp(server: MockServer, *, password: str | None = None, **kwargs: object) -> WSMan:
    options: dict[str, object] = {"ssl": False, "auth": "credssp", "encryption": "always",
                                  "credssp_auth_mechanism": "ntlm"}
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


@pytest.fixture(scope="module")
def credssp_server(wmh_serve: Callable[..., MockServer]) -> MockServer:
    return wmh_serve(*POLICY, "--credssp")


@pytest.mark.spec("MS-CSSP 3.1.5", "MS-WSMV 2.2.9.1.1")
def test_pypsrp_credssp_with_message_encryption(credssp_server: MockServer, closing: list[WSMan]) -> None:
    client = psrp(credssp_server)
    closing.append(client)
    get_winrm_service(client)
    get_winrm_service(client)
    assert client.transport.encryption is not None
    assert client.transport.encryption.protocol == "application/HTTP-CredSSP-session-encrypted"
    log = credssp_server.log_file.read_text(errors="replace")
    assert credssp_server.password not in log


@pytest.mark.spec("MS-WSMV 2.2.9.1.2", "DSP0226 8.2")
def test_pypsrp_credssp_long_answers_in_pieces(credssp_server: MockServer, closing: list[WSMan]) -> None:
    """A Pull of 100 services is answered with well over 16 KiB: sealed in pieces, opened by pypsrp."""
    client = psrp(credssp_server)
    closing.append(client)
    started = client.enumerate(SERVICE_URI, ET.Element(f"{{{ENUMERATION}}}Enumerate"))
    context = started.findtext(f".//{{{ENUMERATION}}}EnumerationContext")
    assert context
    pull = ET.Element(f"{{{ENUMERATION}}}Pull")
    ET.SubElement(pull, f"{{{ENUMERATION}}}EnumerationContext").text = context
    ET.SubElement(pull, f"{{{ENUMERATION}}}MaxElements").text = "100"
    answer = client.pull(SERVICE_URI, pull)
    services = answer.findall(f".//{{{SERVICE_URI}}}Win32_Service")
    assert len(ET.tostring(answer)) > 16_384 and len(services) > 5


@pytest.mark.spec("MS-CSSP 3.1.5")
def test_pypsrp_credssp_wrong_password(credssp_server: MockServer, closing: list[WSMan]) -> None:
    client = psrp(credssp_server, password="Wrong-" + "x" * 10)
    closing.append(client)
    with pytest.raises((AuthenticationError, WinRMTransportError, AuthenticationException, NTStatusException)):
        get_winrm_service(client)
    assert "Wrong-xxxxxxxxxx" not in credssp_server.log_file.read_text(errors="replace")


@pytest.mark.spec("MS-WSMV 2.2.4.34")
def test_credssp_refused_when_not_enabled(wmh_serve: Callable[..., MockServer], closing: list[WSMan]) -> None:
    server = wmh_serve(*POLICY)
    client = psrp(server)
    closing.append(client)
    with pytest.raises((AuthenticationError, WinRMTransportError, AuthenticationException),
                       match=r"CredSSP|401"):
        get_winrm_service(client)


@pytest.mark.spec("MS-CSSP 3.1.5")
def test_pypsrp_credssp_over_https(wmh_serve: Callable[..., MockServer], closing: list[WSMan]) -> None:
    server = wmh_serve(*POLICY, "--credssp", "--https", https=True)
    client = psrp(server, ssl=True, cert_validation=False, encryption="auto")
    closing.append(client)
    get_winrm_service(client)
    assert client.transport.encryption is None


@pytest.mark.spec("MS-CSSP 3.1.5", "MS-WSMV 2.2.9.1.1", "MS-WSMV 3.1.4.1.31")
def test_pywinrm_credssp_runs_a_command_sealed(credssp_server: MockServer) -> None:
    """pywinrm's own CredSSP transport (requests-credssp underneath, its own message encryption
    code): a whole WinRS shell lifecycle sealed by the CredSSP TLS session."""
    # pywinrm's Protocol has no CredSSP mechanism option: requests-credssp's "auto" (SPNEGO, NTLM inside)
    session = winrm.Session(credssp_server.endpoint, auth=(credssp_server.username, credssp_server.password),
                            transport="credssp", message_encryption="always",
                            read_timeout_sec=10, operation_timeout_sec=5)
    response = session.run_cmd("echo", ["sealed"])
    assert (response.status_code, response.std_out, response.std_err) == (0, b"sealed\r\n", b"")
    assert credssp_server.password not in credssp_server.log_file.read_text(errors="replace")


@pytest.mark.spec("MS-CSSP 3.1.5")
def test_pywinrm_credssp_wrong_password_is_refused(credssp_server: MockServer) -> None:
    session = winrm.Session(credssp_server.endpoint, auth=(credssp_server.username, "Wrong-" + "y" * 10),
                            transport="credssp", message_encryption="always",
                            read_timeout_sec=10, operation_timeout_sec=5)
    # the NTLM logon inside CredSSP fails: STATUS_LOGON_FAILURE in the TSRequest errorCode (MS-CSSP 2.2.1)
    with pytest.raises((NTStatusException, AuthenticationException)):
        session.run_cmd("echo", ["never"])
    assert "Wrong-yyyyyyyyyy" not in credssp_server.log_file.read_text(errors="replace")

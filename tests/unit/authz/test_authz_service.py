"""Namespace security enforced on every WS-Man operation of the mock (MS-WMOD 2.9.3)."""

from __future__ import annotations

import pytest
from lxml import etree

from harness.cim.mof import default_store
from harness.cim.providers import namespace_sd
from harness.cim.security import DEFAULT_NAMESPACE_SDDL, binary_to_sddl, sddl_to_binary
from harness.client.resources import wmi_uri
from harness.targets.mock import authorization as authz
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

ADMIN = Principal("wmh")
READER = Principal("reader", read_only=True)
SERVICE = wmi_uri("Win32_Service")
SECURITY = wmi_uri("__SystemSecurity")
ENVIRONMENT = wmi_uri("Win32_Environment")


@pytest.fixture
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"))


def fault(answer: tuple[int, bytes]) -> WSManFault:
    assert answer[0] == HTTP_FAULT
    return parse_fault(parse_envelope(answer[1]))


def get(service: WSManService, who: Principal) -> tuple[int, bytes]:
    return service.handle(msg.build_get_request(Header(action=Action.GET, resource_uri=SERVICE,
                                                       selectors={"Name": "WinRM"})), who)


def put(service: WSManService, who: Principal) -> tuple[int, bytes]:
    body = etree.fromstring(f'<p:Win32_Service xmlns:p="{SERVICE}"><p:DisplayName>x</p:DisplayName>'
                            f'</p:Win32_Service>'.encode())
    h = Header(action=Action.PUT, resource_uri=SERVICE, selectors={"Name": "WinRM"})
    return service.handle(msg.build_put_request(h, body), who)


def invoke(service: WSManService, who: Principal, method: str, params: dict[str, object] | None = None,
           uri: str = SECURITY) -> tuple[int, bytes]:
    return service.handle(msg.build_invoke_request(Header(action="", resource_uri=uri), method, params or {}), who)


def get_sd(service: WSManService, who: Principal) -> bytes:
    status, body = invoke(service, who, "GetSD")
    assert status == HTTP_OK, body
    out = msg.parse_invoke_response(parse_envelope(body))
    assert out.return_value == "0"
    return bytes(int(b) for b in out.out_params["SD"])


def set_sd(service: WSManService, who: Principal, sddl: str) -> tuple[int, bytes]:
    return invoke(service, who, "SetSD", {"SD": [str(b) for b in sddl_to_binary(sddl)]})


def test_get_sd_over_invoke_returns_the_namespace_descriptor(service: WSManService) -> None:
    assert binary_to_sddl(get_sd(service, ADMIN)) == DEFAULT_NAMESPACE_SDDL


def test_reader_may_not_read_or_change_the_descriptor(service: WSManService) -> None:
    assert fault(invoke(service, READER, "GetSD")).subcode.endswith("AccessDenied")
    assert fault(set_sd(service, READER, "O:BAG:BAD:(A;;GA;;;WD)")).subcode.endswith("AccessDenied")
    assert namespace_sd(service.store, "root/cimv2")[0] == DEFAULT_NAMESPACE_SDDL


def test_set_sd_removing_write_denies_put_but_not_get_then_restore(service: WSManService) -> None:
    original = get_sd(service, ADMIN)
    assert put(service, ADMIN)[0] == HTTP_OK
    status, body = set_sd(service, ADMIN, "O:BAG:BAD:(D;;LCSW;;;BA)" + DEFAULT_NAMESPACE_SDDL.split("D:", 1)[1])
    assert status == HTTP_OK, body
    denied = fault(put(service, ADMIN))
    assert denied.subcode.endswith("AccessDenied") and "0x80041003" in denied.reason
    assert get(service, ADMIN)[0] == HTTP_OK
    # WRITE_DAC is untouched: the administrator puts the original descriptor back
    status, body = invoke(service, ADMIN, "SetSD", {"SD": [str(b) for b in original]})
    assert status == HTTP_OK, body
    assert put(service, ADMIN)[0] == HTTP_OK


def test_denying_one_user_leaves_the_others_alone(service: WSManService) -> None:
    reader_sid = service.sids_of(READER) - {authz.EVERYONE, authz.NETWORK, authz.AUTHENTICATED_USERS,
                                            authz.REMOTE_MANAGEMENT_USERS}
    (sid,) = reader_sid
    other = Principal("other", read_only=True)
    assert set_sd(service, ADMIN, f"O:BAG:BAD:(D;;WP;;;{sid})" + DEFAULT_NAMESPACE_SDDL.split("D:", 1)[1])[0] == 200
    assert fault(get(service, READER)).subcode.endswith("AccessDenied")
    assert get(service, other)[0] == HTTP_OK
    assert get(service, ADMIN)[0] == HTTP_OK


def test_enumerate_and_create_and_delete_are_checked(service: WSManService) -> None:
    assert set_sd(service, ADMIN, "O:BAG:BAD:(A;;CCWPRCWD;;;BA)")[0] == HTTP_OK  # read only, even for BA
    enum = msg.build_enumerate_request(Header(action=Action.ENUMERATE, resource_uri=SERVICE), msg.EnumerateRequest())
    assert service.handle(enum, ADMIN)[0] == HTTP_OK
    assert fault(service.handle(enum, READER)).subcode.endswith("AccessDenied")
    delete = msg.build_delete_request(Header(action=Action.DELETE, resource_uri=ENVIRONMENT,
                                             selectors={"Name": "x", "UserName": "<SYSTEM>"}))
    assert fault(service.handle(delete, ADMIN)).subcode.endswith("AccessDenied")
    start = invoke(service, ADMIN, "StartService", uri=SERVICE)
    assert fault(start).subcode.endswith("AccessDenied")  # no WBEM_METHOD_EXECUTE


def test_method_execution_needs_execute_right_and_admin_provider_check(service: WSManService) -> None:
    # the reader holds WBEM_METHOD_EXECUTE, but the Win32 provider refuses non-administrators
    h = Header(action="", resource_uri=SERVICE, selectors={"Name": "WinRM"})
    assert fault(service.handle(msg.build_invoke_request(h, "StopService", {}), READER)).subcode.endswith(
        "AccessDenied")
    status, _ = invoke(service, READER, "GetCallerAccessRights")
    assert status == HTTP_OK


def test_namespace_spellings_share_one_descriptor(service: WSManService) -> None:
    assert set_sd(service, ADMIN, "O:BAG:BAD:(A;;GA;;;BA)")[0] == HTTP_OK
    assert namespace_sd(service.store, "ROOT\\CIMV2")[0] == "O:BAG:BAD:(A;;GA;;;BA)"
    assert namespace_sd(service.store, "root/default")[0] == DEFAULT_NAMESPACE_SDDL


@pytest.mark.parametrize(("who", "rights"), [(ADMIN, 0x6003F), (READER, 0x33)])
def test_get_caller_access_rights_reports_the_callers_own_rights(service: WSManService, who: Principal,
                                                                 rights: int) -> None:
    status, body = invoke(service, who, "GetCallerAccessRights")
    assert status == HTTP_OK, body
    out = msg.parse_invoke_response(parse_envelope(body))
    assert int(out.out_params["Rights"]) == rights
    assert set_sd(service, ADMIN, "O:BAG:BAD:(A;;CCWPRCWD;;;BA)(A;;CCWP;;;RM)")[0] == HTTP_OK
    status, body = invoke(service, who, "GetCallerAccessRights")
    expected = 0x60021 if who is ADMIN else 0x21
    assert int(msg.parse_invoke_response(parse_envelope(body)).out_params["Rights"]) == expected

"""The mock's winrm/config resources: Get from the live settings, Put into them, listener enumeration."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from lxml import etree

from harness.auth.policy import CbtHardening
from harness.client.winrm_config import (
    NS_CONFIG,
    URI_CLIENT,
    URI_CONFIG,
    URI_LISTENER,
    URI_SERVICE,
    URI_SERVICE_AUTH,
    URI_WINRS,
    ConfigTree,
    ConfigValue,
    config_element,
    parse_config,
)
from harness.targets.mock.root_sddl import DEFAULT_ROOT_SDDL
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import FaultDetail, WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action
from harness.wire.wsman.shell import ShellSpec, build_create_shell_request

ADMIN = Principal("wmh")
READER = Principal("reader", read_only=True)
TO = "http://127.0.0.1:5985/wsman"


def _answer(service: WSManService, data: bytes, principal: Principal = ADMIN) -> tuple[int, bytes]:
    return service.handle(data, principal)


def _fault(status: int, body: bytes) -> WSManFault:
    assert status == HTTP_FAULT, body
    env = parse_envelope(body)
    assert is_fault(env)
    return parse_fault(env)


def get(service: WSManService, uri: str, principal: Principal = ADMIN,
        selectors: dict[str, str] | None = None) -> tuple[int, bytes]:
    header = Header(action=Action.GET, to=TO, resource_uri=uri, selectors=dict(selectors or {}), locale="en-US")
    return _answer(service, msg.build_get_request(header), principal)


def get_tree(service: WSManService, uri: str) -> ConfigTree:
    status, body = get(service, uri)
    assert status == HTTP_OK, body
    item = msg.parse_get_response(parse_envelope(body)).item
    assert item is not None
    return parse_config(item)


def put(service: WSManService, uri: str, values: Mapping[str, ConfigValue] | etree._Element,
        principal: Principal = ADMIN) -> tuple[int, bytes]:
    body = values if isinstance(values, etree._Element) else config_element(uri, values)
    header = Header(action=Action.PUT, to=TO, resource_uri=uri)
    return _answer(service, msg.build_put_request(header, body), principal)


# ------------------------------------------------------------------------------ Get
def test_service_get_reflects_the_live_policy(service: WSManService) -> None:
    service.config.auth.allow_unencrypted = False
    service.config.auth.allow_basic = True
    service.config.auth.cbt_hardening = CbtHardening.STRICT
    tree = get_tree(service, URI_SERVICE)
    assert tree.name == "Service" and tree.namespace == URI_SERVICE
    assert tree.text("AllowUnencrypted") == "false"
    assert tree.text("RootSDDL") == DEFAULT_ROOT_SDDL
    auth = tree.group("Auth")
    assert auth.names() == ["Basic", "Kerberos", "Negotiate", "Certificate", "CredSSP", "CbtHardeningLevel"]
    assert auth.text("Basic") == "true" and auth.text("CbtHardeningLevel") == "Strict"
    assert tree.names()[:7] == ["RootSDDL", "MaxConcurrentOperations", "MaxConcurrentOperationsPerUser",
                                "EnumerationTimeoutms", "MaxConnections", "MaxPacketRetrievalTimeSeconds",
                                "AllowUnencrypted"]
    assert tree.group("DefaultPorts").text("HTTP") == "5985"


def test_root_get_units_and_nesting(service: WSManService) -> None:
    service.config.max_timeout = 45.5
    tree = get_tree(service, URI_CONFIG)
    assert tree.name == "Config" and tree.namespace == NS_CONFIG
    assert tree.text("MaxEnvelopeSizekb") == str(service.config.max_envelope_size // 1024)
    assert tree.text("MaxTimeoutms") == "45500"
    assert tree.names()[-3:] == ["Client", "Service", "Winrs"]
    assert tree.group("Winrs").text("MaxShellsPerUser") == str(service.config.max_shells_per_user)
    assert tree.group("Client").text("TrustedHosts") == ""


def test_winrs_get_idle_timeout_in_ms(service: WSManService) -> None:
    service.config.shell_idle_timeout = 90.0
    tree = get_tree(service, URI_WINRS)
    assert tree.text("IdleTimeout") == "90000"
    assert tree.names() == ["AllowRemoteShellAccess", "IdleTimeout", "MaxConcurrentUsers", "MaxShellRunTime",
                            "MaxProcessesPerShell", "MaxMemoryPerShellMB", "MaxShellsPerUser"]


def test_auth_resource_is_its_own_namespace(service: WSManService) -> None:
    tree = get_tree(service, URI_SERVICE_AUTH)
    assert tree.name == "Auth" and tree.namespace == URI_SERVICE_AUTH


def test_resource_uri_is_case_insensitive(service: WSManService) -> None:
    assert get_tree(service, URI_SERVICE.upper().replace("HTTP://", "http://")).name == "Service"


def test_selectors_on_a_singleton_are_refused(service: WSManService) -> None:
    fault = _fault(*get(service, URI_SERVICE, selectors={"Name": "x"}))
    assert fault.subcode == "w:InvalidSelectors" and fault.detail == FaultDetail.UNEXPECTED_SELECTORS


def test_non_admin_get_is_access_denied(service: WSManService) -> None:
    assert _fault(*get(service, URI_SERVICE, READER)).subcode == "w:AccessDenied"


def test_other_resources_still_reach_the_wmi_handlers(service: WSManService) -> None:
    from harness.client.resources import wmi_uri

    status, body = get(service, wmi_uri("Win32_Service"), selectors={"Name": "WinRM"})
    assert status == HTTP_OK and b"WinRM" in body


# ------------------------------------------------------------------------------ Put
def test_put_changes_the_live_policy_and_answers_the_new_state(service: WSManService) -> None:
    service.config.auth.allow_unencrypted = False
    status, body = put(service, URI_SERVICE, {"AllowUnencrypted": True})
    assert status == HTTP_OK, body
    assert service.config.auth.allow_unencrypted is True
    item = msg.parse_put_response(parse_envelope(body)).item
    assert item is not None and parse_config(item).text("AllowUnencrypted") == "true"


def test_put_nested_auth_and_cbt(service: WSManService) -> None:
    status, body = put(service, URI_SERVICE, {"Auth": {"Basic": False, "CbtHardeningLevel": "none"}})
    assert status == HTTP_OK, body
    assert service.config.auth.allow_basic is False
    assert service.config.auth.cbt_hardening is CbtHardening.NONE


def test_put_root_units(service: WSManService) -> None:
    assert put(service, URI_CONFIG, {"MaxTimeoutms": 30000, "MaxEnvelopeSizekb": 1024})[0] == HTTP_OK
    assert service.config.max_timeout == 30.0
    assert service.config.max_envelope_size == 1024 * 1024


def test_put_winrs_quota_refuses_a_second_shell(service: WSManService) -> None:
    assert put(service, URI_WINRS, {"MaxShellsPerUser": 1})[0] == HTTP_OK
    assert service.config.max_shells_per_user == 1
    shell_uri = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"

    def create() -> tuple[int, bytes]:
        header = Header(action=Action.CREATE, to=TO, resource_uri=shell_uri)
        return _answer(service, build_create_shell_request(header, ShellSpec()))

    assert create()[0] == HTTP_OK
    assert _fault(*create()).subcode == "w:QuotaLimit"


def test_put_allow_remote_shell_access_false_refuses_new_shells(service: WSManService) -> None:
    shell_uri = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"

    def create() -> tuple[int, bytes]:
        header = Header(action=Action.CREATE, to=TO, resource_uri=shell_uri)
        return _answer(service, build_create_shell_request(header, ShellSpec()))

    assert put(service, URI_WINRS, {"AllowRemoteShellAccess": "false"})[0] == HTTP_OK
    assert get_tree(service, URI_WINRS)["AllowRemoteShellAccess"] == "false"
    refused = _fault(*create())
    assert refused.subcode == "w:InternalError" and "not accept any remote shell requests" in refused.reason
    assert put(service, URI_WINRS, {"AllowRemoteShellAccess": "true"})[0] == HTTP_OK
    assert create()[0] == HTTP_OK


@pytest.mark.parametrize(("uri", "values", "subcode"), [
    (URI_SERVICE, {"AllowUnencrypted": "maybe"}, "w:SchemaValidationError"),
    (URI_WINRS, {"MaxShellsPerUser": "-1"}, "w:SchemaValidationError"),
    (URI_WINRS, {"MaxShellsPerUser": "ten"}, "w:SchemaValidationError"),
    (URI_WINRS, {"NoSuchSetting": "1"}, "w:SchemaValidationError"),
    # MS-WSMV 2.2.4.42: 0..0x7FFFFFFF (0 = unlimited); 2.2.4.10: MaxEnvelopeSizekb at least 32
    (URI_WINRS, {"MaxShellsPerUser": "2147483648"}, "w:InvalidParameter"),
    (URI_CONFIG, {"MaxEnvelopeSizekb": "31"}, "w:InvalidParameter"),
    (URI_CONFIG, {"MaxTimeoutms": "499"}, "w:InvalidParameter"),
    (URI_CONFIG, {"MaxProviderRequests": "25"}, "w:InvalidParameter"),
    (URI_CLIENT, {"URLPrefix": "/wsman"}, "w:InvalidParameter"),
    (URI_WINRS, {"MaxShellRunTime": "1000"}, "w:InternalError"),
    (URI_SERVICE, {"Auth": {"CbtHardeningLevel": "Paranoid"}}, "w:InvalidParameter"),
    (URI_SERVICE, {"RootSDDL": "not an sddl"}, "w:InvalidParameter"),
])
def test_bad_values_fault_and_change_nothing(service: WSManService, uri: str, values: Mapping[str, ConfigValue],
                                             subcode: str) -> None:
    before = (get(service, URI_CONFIG)[1], service.config.max_shells_per_user, service.config.root_sddl)
    # a valid setting first: nothing of a refused Put is applied
    body = {"MaxShellsPerUser": 7, **values} if uri == URI_WINRS and "MaxShellsPerUser" not in values else values
    fault = _fault(*put(service, uri, body))
    assert fault.subcode == subcode
    assert service.config.max_shells_per_user == before[1]
    assert service.config.root_sddl == before[2]


def test_put_of_another_resources_body_is_a_schema_error(service: WSManService) -> None:
    fault = _fault(*put(service, URI_SERVICE, config_element(URI_WINRS, {"MaxShellsPerUser": 3})))
    assert fault.subcode == "w:SchemaValidationError"


def test_non_admin_put_is_access_denied(service: WSManService) -> None:
    service.config.auth.allow_unencrypted = False
    assert _fault(*put(service, URI_SERVICE, {"AllowUnencrypted": True}, READER)).subcode == "w:AccessDenied"
    assert service.config.auth.allow_unencrypted is False


def test_put_of_the_client_side_round_trips(service: WSManService) -> None:
    assert put(service, URI_CLIENT, {"TrustedHosts": "host1,host2"})[0] == HTTP_OK
    assert get_tree(service, URI_CLIENT).text("TrustedHosts") == "host1,host2"


def test_enumeration_timeout_put_reaches_the_registry(service: WSManService) -> None:
    assert put(service, URI_SERVICE, {"EnumerationTimeoutms": 1500})[0] == HTTP_OK
    assert service.config.enumeration_expiry == 1.5
    assert service.enumerations._idle_expiry == 1.5


# ------------------------------------------------------------------------------ listeners
def _enumerate(service: WSManService, optimize: bool, principal: Principal = ADMIN,
               mode: str | None = None) -> tuple[int, bytes]:
    header = Header(action=Action.ENUMERATE, to=TO, resource_uri=URI_LISTENER)
    request = msg.EnumerateRequest(optimize=optimize, max_elements=10 if optimize else None, enumeration_mode=mode)
    return _answer(service, msg.build_enumerate_request(header, request), principal)


def test_listener_enumeration_reflects_the_listener(service: WSManService) -> None:
    status, body = _enumerate(service, optimize=False)
    assert status == HTTP_OK
    ctx = msg.parse_enumerate_response(parse_envelope(body)).context
    assert ctx
    pull = msg.build_pull_request(Header(action=Action.PULL, to=TO, resource_uri=URI_LISTENER),
                                  msg.PullRequest(ctx, 5))
    status, body = _answer(service, pull)
    assert status == HTTP_OK, body
    page = msg.parse_pull_response(parse_envelope(body))
    assert page.end_of_sequence and len(page.items) == 1
    listener = parse_config(page.items[0])
    assert listener.namespace == URI_LISTENER
    assert listener.text("Transport") == "HTTP" and listener.text("Port") == "5985"
    assert listener.text("URLPrefix") == "wsman" and listener.text("Enabled") == "true"
    assert listener.text("ListeningOn") == service.config.host


def test_listener_optimized_with_eprs_and_get_by_selectors(service: WSManService) -> None:
    status, body = _enumerate(service, optimize=True, mode="EnumerateObjectAndEPR")
    assert status == HTTP_OK
    page = msg.parse_enumerate_response(parse_envelope(body))
    assert page.end_of_sequence and page.epr_items[0] is not None
    selectors = {k: str(v) for k, v in page.epr_items[0].selectors.items()}
    assert selectors == {"Address": "*", "Transport": "HTTP"}
    status, body = get(service, URI_LISTENER, selectors=selectors)
    assert status == HTTP_OK


def test_listener_get_faults(service: WSManService) -> None:
    missing = _fault(*get(service, URI_LISTENER, selectors={"Address": "*"}))
    assert missing.subcode == "w:InvalidSelectors" and missing.detail == FaultDetail.INSUFFICIENT_SELECTORS
    absent = _fault(*get(service, URI_LISTENER, selectors={"Address": "*", "Transport": "HTTPS"}))
    assert absent.subcode == "a:DestinationUnreachable"


def test_listener_enumeration_needs_an_admin(service: WSManService) -> None:
    assert _fault(*_enumerate(service, optimize=True, principal=READER)).subcode == "w:AccessDenied"


def test_release_of_a_listener_context(service: WSManService) -> None:
    ctx = msg.parse_enumerate_response(parse_envelope(_enumerate(service, optimize=False)[1])).context
    assert ctx
    release = msg.build_release_request(Header(action=Action.RELEASE, to=TO, resource_uri=URI_LISTENER), ctx)
    assert _answer(service, release)[0] == HTTP_OK
    again = msg.build_release_request(Header(action=Action.RELEASE, to=TO, resource_uri=URI_LISTENER), ctx)
    assert _fault(*_answer(service, again)).subcode == "n:InvalidEnumerationContext"

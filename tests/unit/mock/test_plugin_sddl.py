"""PowerShell session configurations as WinRM plug-ins with their own SDDL (MS-WSMV 3.1.4.1.34;
MS-WMOD 2.9.3): the plug-in table, the PSRP Create check, winrm/config/plugin Get / Enumerate / Put,
and the safe engine refusing service control to non-administrators."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from harness.cim.mof import default_store
from harness.client.psrp import build_create_pool_request
from harness.client.winrm_config import (
    NS_PLUGIN,
    URI_PLUGIN,
    PluginInfo,
    parse_plugin,
    security_element,
)
from harness.targets.mock import authorization as authz
from harness.targets.mock.config import MockConfig
from harness.targets.mock.plugins import (
    DEFAULT_POWERSHELL_SDDL,
    POWERSHELL_RESOURCE_URI,
    default_plugins,
    find_plugin,
    require_plugin_shell,
)
from harness.targets.mock.ps_engine import COMPLETED, PipelineRun, Rec, Runspace, start_script
from harness.targets.mock.winrm_config import render_plugin
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.psrp.enums import ErrorCategory
from harness.wire.psrp.fragments import Fragmenter
from harness.wire.psrp.messages import ErrorRecordMessage, pack_message
from harness.wire.psrp.records import ErrorRecordInfo
from harness.wire.psrp.state import Role, RunspacePool
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import FaultDetail, WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import RESOURCE_POWERSHELL, Action

ADMIN = Principal("wmh")
READER = Principal("reader", read_only=True)
TO = "http://127.0.0.1:5985/wsman"
NO_RM = "O:NSG:BAD:P(A;;GA;;;BA)(A;;GA;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"


@pytest.fixture
def service() -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"))


def _fault(status: int, body: bytes) -> WSManFault:
    assert status == HTTP_FAULT, body
    env = parse_envelope(body)
    assert is_fault(env)
    return parse_fault(env)


def create_pool(service: WSManService, principal: Principal, uri: str = RESOURCE_POWERSHELL) -> tuple[int, bytes]:
    pool = RunspacePool(Role.CLIENT)
    pool.open()
    data = b"".join(Fragmenter.for_envelope(153_600).fragment_many(pack_message(m) for m in pool.take_outgoing()))
    header = Header(action="", to=TO, resource_uri=uri, max_envelope_size=153_600)
    return service.handle(build_create_pool_request(header, pool.rpid, data), principal)


def get_plugin(service: WSManService, principal: Principal = ADMIN,
               selectors: dict[str, str] | None = None) -> tuple[int, bytes]:
    header = Header(action=Action.GET, to=TO, resource_uri=URI_PLUGIN,
                    selectors={"Name": "microsoft.powershell"} if selectors is None else selectors, locale="en-US")
    return service.handle(msg.build_get_request(header), principal)


def put_plugin(service: WSManService, body: etree._Element, principal: Principal = ADMIN,
               name: str = "microsoft.powershell") -> tuple[int, bytes]:
    header = Header(action=Action.PUT, to=TO, resource_uri=URI_PLUGIN, selectors={"Name": name})
    return service.handle(msg.build_put_request(header, body), principal)


def plugin_of(status: int, body: bytes, *, put: bool = False) -> PluginInfo:
    assert status == HTTP_OK, body
    env = parse_envelope(body)
    item = (msg.parse_put_response(env) if put else msg.parse_get_response(env)).item
    assert item is not None
    return parse_plugin(item)


# ------------------------------------------------------------------------------ plug-in table
def test_default_table_has_the_powershell_plugin_with_the_windows_default_sddl() -> None:
    [plugin] = default_plugins()
    assert plugin.name == "microsoft.powershell"
    assert find_plugin([plugin], "HTTP://schemas.microsoft.com/powershell/Microsoft.PowerShell/") is plugin
    assert find_plugin([plugin], "http://schemas.microsoft.com/powershell/microsoft.powershell32") is None
    security = plugin.security_for(POWERSHELL_RESOURCE_URI)
    assert security is not None and security.sddl == DEFAULT_POWERSHELL_SDDL


def test_the_plugin_sddl_admits_administrators_and_rm_members_only() -> None:
    [plugin] = default_plugins()
    admin = authz.principal_sids("M", "wmh", read_only=False)
    reader = authz.principal_sids("M", "reader", read_only=True)
    require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, admin)
    require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, reader)
    with pytest.raises(authz.AccessDenied):
        require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, {authz.EVERYONE, authz.AUTHENTICATED_USERS})
    plugin.resources[0].security[0].sddl = "O:NSG:BAD:P(A;;GR;;;RM)(A;;GA;;;BA)"
    with pytest.raises(authz.AccessDenied):
        require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, reader)  # read is not execute
    plugin.resources[0].security[0].sddl = "not an sddl"
    with pytest.raises(authz.AccessDenied):
        require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, admin)  # fails closed
    plugin.resources[0].security[0].sddl = DEFAULT_POWERSHELL_SDDL
    plugin.enabled = False
    with pytest.raises(authz.AccessDenied):
        require_plugin_shell(plugin, POWERSHELL_RESOURCE_URI, admin)


# ------------------------------------------------------------------------------ PSRP Create
def test_a_read_only_rm_member_may_open_a_powershell_session(service: WSManService) -> None:
    status, body = create_pool(service, READER)
    assert status == HTTP_OK, body
    [session] = service.psrp.sessions.values()
    assert session.owner == "reader" and session.runspace.administrator is False
    status, _ = create_pool(service, ADMIN)
    assert status == HTTP_OK
    assert [s.runspace.administrator for s in service.psrp.sessions.values()] == [False, True]


def test_create_is_denied_once_rm_leaves_the_plugin_sddl(service: WSManService) -> None:
    service.config.plugins[0].resources[0].security[0].sddl = NO_RM
    fault = _fault(*create_pool(service, READER))
    assert fault.subcode_name == "AccessDenied"
    assert not service.psrp.sessions
    assert create_pool(service, ADMIN)[0] == HTTP_OK, "administrators keep their GA ACE"


def test_a_configuration_without_a_plugin_falls_back_to_root_sddl(service: WSManService) -> None:
    other = "http://schemas.microsoft.com/powershell/wmh.unregistered"
    assert _fault(*create_pool(service, READER, other)).subcode_name == "AccessDenied"
    assert create_pool(service, ADMIN, other)[0] == HTTP_OK


# ------------------------------------------------------------------------------ winrm/config/plugin
def test_get_plugin_answers_the_plugin_type(service: WSManService) -> None:
    status, body = get_plugin(service)
    info = plugin_of(status, body)
    assert (info.name, info.sdk_version, info.xml_rendering_type, info.enabled) == (
        "microsoft.powershell", "2", "text", True)
    assert info.filename.endswith("pwrshplugin.dll")
    [resource] = info.resources
    assert resource.resource_uri == POWERSHELL_RESOURCE_URI and resource.capabilities == ["Shell"]
    assert info.sddl_for(POWERSHELL_RESOURCE_URI) == DEFAULT_POWERSHELL_SDDL
    item = msg.parse_get_response(parse_envelope(body)).item
    assert item is not None and etree.QName(item) == etree.QName(NS_PLUGIN, "PlugInConfiguration")


def test_get_plugin_faults(service: WSManService) -> None:
    assert _fault(*get_plugin(service, READER)).subcode_name == "AccessDenied"
    missing = _fault(*get_plugin(service, selectors={}))
    assert missing.subcode_name == "InvalidSelectors" and missing.detail == FaultDetail.INSUFFICIENT_SELECTORS
    extra = _fault(*get_plugin(service, selectors={"Name": "microsoft.powershell", "Uri": "x"}))
    assert extra.detail == FaultDetail.UNEXPECTED_SELECTORS
    assert _fault(*get_plugin(service, selectors={"Name": "nope"})).subcode_name == "DestinationUnreachable"


def test_enumerate_plugins(service: WSManService) -> None:
    header = Header(action=Action.ENUMERATE, to=TO, resource_uri=URI_PLUGIN)
    request = msg.EnumerateRequest(optimize=True, max_elements=10, enumeration_mode="EnumerateObjectAndEPR")
    status, body = service.handle(msg.build_enumerate_request(header, request), ADMIN)
    assert status == HTTP_OK, body
    page = msg.parse_enumerate_response(parse_envelope(body))
    assert page.end_of_sequence
    assert [parse_plugin(i).name for i in page.items] == ["microsoft.powershell"]
    assert [e.selectors for e in page.epr_items] == [{"Name": "microsoft.powershell"}]
    header = Header(action=Action.ENUMERATE, to=TO, resource_uri=URI_PLUGIN)
    denied = service.handle(msg.build_enumerate_request(header, msg.EnumerateRequest()), READER)
    assert _fault(*denied).subcode_name == "AccessDenied"


def test_put_of_the_security_element_changes_the_next_create(service: WSManService) -> None:
    assert create_pool(service, READER)[0] == HTTP_OK
    info = plugin_of(*put_plugin(service, security_element(POWERSHELL_RESOURCE_URI, NO_RM)), put=True)
    assert info.sddl_for(POWERSHELL_RESOURCE_URI) == NO_RM
    assert plugin_of(*get_plugin(service)).sddl_for(POWERSHELL_RESOURCE_URI) == NO_RM
    assert _fault(*create_pool(service, READER)).subcode_name == "AccessDenied"
    assert len(service.psrp.sessions) == 1, "an open session is not closed by the change"
    plugin_of(*put_plugin(service, security_element(POWERSHELL_RESOURCE_URI, DEFAULT_POWERSHELL_SDDL)), put=True)
    assert create_pool(service, READER)[0] == HTTP_OK


def test_put_of_the_whole_plugin_configuration(service: WSManService) -> None:
    status, body = get_plugin(service)
    assert status == HTTP_OK
    item = msg.parse_get_response(parse_envelope(body)).item
    assert item is not None
    security = item.find(f"{{{NS_PLUGIN}}}Resources/{{{NS_PLUGIN}}}Resource/{{{NS_PLUGIN}}}Security")
    assert security is not None
    security.set("Sddl", NO_RM)
    assert plugin_of(*put_plugin(service, item), put=True).sddl_for(POWERSHELL_RESOURCE_URI) == NO_RM
    item.set("Enabled", "false")
    assert plugin_of(*put_plugin(service, item), put=True).enabled is False
    assert _fault(*create_pool(service, ADMIN)).subcode_name == "AccessDenied"


@pytest.mark.parametrize(("body", "subcode"), [
    (lambda: security_element(POWERSHELL_RESOURCE_URI, "O:BAD:(Q;;GA;;;BA)"), "InvalidParameter"),
    (lambda: security_element("http://schemas.microsoft.com/powershell/other", NO_RM), "InvalidParameter"),
    (lambda: etree.Element(f"{{{NS_PLUGIN}}}Security", Uri=POWERSHELL_RESOURCE_URI), "SchemaValidationError"),
    (lambda: etree.Element("{urn:x}Security", Uri=POWERSHELL_RESOURCE_URI, Sddl=NO_RM), "SchemaValidationError"),
    (lambda: etree.Element(f"{{{NS_PLUGIN}}}PlugInConfiguration", Name="microsoft.powershell",
                           Filename="C:\\x.dll"), "InvalidParameter"),
    (lambda: etree.Element(f"{{{NS_PLUGIN}}}PlugInConfiguration", Enabled="maybe"), "SchemaValidationError"),
])
def test_bad_puts_change_nothing(service: WSManService, body: Any, subcode: str) -> None:
    assert _fault(*put_plugin(service, body())).subcode_name == subcode
    plugin = service.config.plugins[0]
    assert plugin.enabled and plugin.resources[0].security[0].sddl == DEFAULT_POWERSHELL_SDDL


def test_only_administrators_may_put(service: WSManService) -> None:
    fault = _fault(*put_plugin(service, security_element(POWERSHELL_RESOURCE_URI, NO_RM), READER))
    assert fault.subcode_name == "AccessDenied"
    assert service.config.plugins[0].resources[0].security[0].sddl == DEFAULT_POWERSHELL_SDDL


def test_render_plugin_round_trips_through_the_client_codec() -> None:
    [plugin] = default_plugins()
    info = parse_plugin(render_plugin(plugin, "en-US"))
    assert info.parameters == {"PSVersion": "5.1"}
    assert info.resources[0].security[0].exact_match is True


# ------------------------------------------------------------------------------ engine rights
def _errors(run: PipelineRun) -> list[ErrorRecordInfo]:
    return [ErrorRecordInfo.from_object(s.payload.data) for s in run.produced
            if isinstance(s, Rec) and isinstance(s.payload, ErrorRecordMessage)]


def _state(runspace: Runspace, name: str) -> str:
    assert runspace.store is not None
    [svc] = [i for i in runspace.store.enumerate_instances("root/cimv2", "Win32_Service") if i["Name"] == name]
    return str(svc["State"])


def test_a_non_administrator_cannot_stop_or_start_a_service() -> None:
    runspace = Runspace(default_store(), "WMH-TEST", "reader", administrator=False)
    assert _state(runspace, "Spooler") == "Running"
    run = start_script(runspace, "Stop-Service -Name Spooler; 'after'", 0)
    assert run.state == COMPLETED, "the error is not terminating (observed Windows behaviour)"
    [error] = _errors(run)
    assert _state(runspace, "Spooler") == "Running"
    assert error.message.startswith("Service '") and error.message.endswith(
        "(Spooler)' cannot be stopped due to the following error: Cannot open Spooler service on computer '.'.")
    assert error.fully_qualified_error_id == "CouldNotStopService,Microsoft.PowerShell.Commands.StopServiceCommand"
    assert error.category == ErrorCategory.CloseError
    assert error.exception_type == "Microsoft.PowerShell.Commands.ServiceCommandException"
    assert [s.value for s in run.produced if type(s).__name__ == "Out"] == ["after"]
    read = start_script(runspace, "(Get-Service -Name Spooler).Status", 0)
    assert [s.value.to_string for s in read.produced if type(s).__name__ == "Out"] == ["Running"]
    admin = Runspace(runspace.store, "WMH-TEST", "wmh")
    assert start_script(admin, "Stop-Service -Name Spooler", 0).state == COMPLETED
    assert _state(runspace, "Spooler") == "Stopped"
    start = start_script(runspace, "Start-Service -Name Spooler", 0)
    [error] = _errors(start)
    assert error.fully_qualified_error_id == "CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand"
    assert error.category == ErrorCategory.OpenError and "cannot be started" in error.message
    assert _state(runspace, "Spooler") == "Stopped"

"""MockConfig.failing_providers: the mock's internal-failure knob (MS-WMOD 2.10.3)."""

from __future__ import annotations

from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

SERVICE = wmi_uri("Win32_Service")


def test_a_failing_provider_answers_internal_error_until_it_is_healthy_again() -> None:
    config = MockConfig(password="pw")
    service = WSManService(default_store(), config)
    get = msg.build_get_request(Header(action=Action.GET, resource_uri=SERVICE, selectors={"Name": "WinRM"}))
    config.failing_providers.add("WIN32_SERVICE")
    status, body = service.handle(get, Principal("wmh"))
    assert status == HTTP_FAULT
    fault = parse_fault(parse_envelope(body))
    assert fault.subcode_name == "InternalError" and fault.code == "s:Receiver"
    assert fault.wsman_code == 0x80041004 and "0x80041004" in fault.reason
    os_get = msg.build_get_request(Header(action=Action.GET, resource_uri=wmi_uri("Win32_OperatingSystem")))
    assert service.handle(os_get, Principal("wmh"))[0] == HTTP_OK
    config.failing_providers.clear()
    assert service.handle(get, Principal("wmh"))[0] == HTTP_OK

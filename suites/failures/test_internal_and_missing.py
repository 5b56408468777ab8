"""MS-WMOD 2.10.3 internal failure and 2.10.4 missing objects.

2.10.3: a provider that fails is answered with a fault, and the target answers normally afterwards.
The failure is injected on the built-in mock (``MockConfig.failing_providers``); Windows reports a
failing WMI provider as WBEM_E_PROVIDER_FAILURE (0x80041004, MS-WMI 2.2.11) inside w:InternalError
(DSP0226 14.6.5; observed Windows behaviour for WMI errors without a WS-Man fault of their own).
2.10.4: a missing class, namespace or instance is wsa:DestinationUnreachable (DSP0226 7.1,
MS-WSMV 3.1.4.1) carrying WBEM_E_INVALID_CLASS (0x80041010), WBEM_E_INVALID_NAMESPACE (0x8004100E)
or WBEM_E_NOT_FOUND (0x80041002) from the WMI plug-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import WSManClient
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.ns import RESOURCE_WMI_PREFIX

SERVICE = wmi_uri("Win32_Service")
OPERATING_SYSTEM = wmi_uri("Win32_OperatingSystem")
WBEM_E_PROVIDER_FAILURE = 0x80041004
WBEM_E_INVALID_CLASS = 0x80041010
WBEM_E_INVALID_NAMESPACE = 0x8004100E
WBEM_E_NOT_FOUND = 0x80041002


def carries(fault: WSManFault, status: int) -> bool:
    """The WMI status shows as the f:WSManFault Code or in the fault text (as hex)."""
    text = f"{fault.reason} {fault.message or ''}".upper()
    return fault.wsman_code == status or f"0X{status:08X}" in text or f"{status:08X}" in text


@pytest.fixture
def failing_provider(wm_mock_config: Any) -> Iterator[set[str]]:
    """The mock's set of failing providers (empty again afterwards); real targets skip."""
    failing: set[str] = wm_mock_config.failing_providers
    saved = set(failing)
    try:
        yield failing
    finally:
        failing.clear()
        failing.update(saved)


@pytest.mark.spec("MS-WMOD 2.10.3", "DSP0226 14.6.5", "MS-WMI 2.2.11")
@pytest.mark.requires("wsman", "get", "enumerate")
async def test_a_failing_provider_is_an_internal_error_and_the_target_recovers(
        wsman: WSManClient, failing_provider: set[str]) -> None:
    failing_provider.add("Win32_Service")
    with pytest.raises(WSManFault) as get_fault:
        await wsman.get(SERVICE, {"Name": "WinRM"})
    assert get_fault.value.subcode_name == "InternalError" and get_fault.value.code.endswith("Receiver")
    assert carries(get_fault.value, WBEM_E_PROVIDER_FAILURE), get_fault.value
    with pytest.raises(WSManFault) as enum_fault:
        await wsman.enumerate(SERVICE)
    assert enum_fault.value.subcode_name == "InternalError"
    # other providers are unaffected, and the failed one answers again once it is healthy
    assert (await wsman.get(OPERATING_SYSTEM, {})).properties
    failing_provider.clear()
    assert (await wsman.get(SERVICE, {"Name": "WinRM"})).properties["Name"] == "WinRM"
    assert (await wsman.enumerate_all(SERVICE)).items


@pytest.mark.spec("MS-WMOD 2.10.4", "DSP0226 7.1", "MS-WSMV 3.1.4.1")
@pytest.mark.requires("wsman", "get", "enumerate")
async def test_a_missing_class_is_destination_unreachable_with_invalid_class(wsman: WSManClient) -> None:
    uri = wmi_uri("Win32_WmhNoSuchClass")
    for op in (wsman.get(uri, {"Name": "x"}), wsman.enumerate(uri)):
        with pytest.raises(WSManFault) as fault:
            await op
        assert fault.value.subcode_name == "DestinationUnreachable", fault.value
        assert carries(fault.value, WBEM_E_INVALID_CLASS), fault.value


@pytest.mark.spec("MS-WMOD 2.10.4", "DSP0226 7.1", "MS-WSMV 3.1.4.1")
@pytest.mark.requires("wsman", "get", "enumerate")
async def test_a_missing_namespace_is_destination_unreachable_with_invalid_namespace(wsman: WSManClient) -> None:
    uri = RESOURCE_WMI_PREFIX + "root/wmhnosuchnamespace/Win32_Service"
    for op in (wsman.get(uri, {"Name": "WinRM"}), wsman.enumerate(uri)):
        with pytest.raises(WSManFault) as fault:
            await op
        assert fault.value.subcode_name == "DestinationUnreachable", fault.value
        assert carries(fault.value, WBEM_E_INVALID_NAMESPACE), fault.value


@pytest.mark.spec("MS-WMOD 2.10.4", "DSP0226 7.1", "MS-WMOD 2.5.2.7")
@pytest.mark.requires("wsman", "get", "delete")
async def test_a_missing_instance_is_destination_unreachable(wsman: WSManClient) -> None:
    for op in (wsman.get(SERVICE, {"Name": "WmhNoSuchService"}), wsman.delete(SERVICE, {"Name": "WmhNoSuchService"})):
        with pytest.raises(WSManFault) as fault:
            await op
        assert fault.value.subcode_name == "DestinationUnreachable", fault.value
        assert fault.value.code.endswith("Sender")

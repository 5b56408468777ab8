"""Association filters (DSP0227 8.2; MS-WSMV 3.1.4.8) and DMTF CIM resource URIs (MS-WSMV 2.2.4.x)."""

from __future__ import annotations

import pytest

from harness.client.resources import cim_uri, wmi_uri
from harness.wire.wsman.header import EndpointReference
from harness.wire.wsman.messages import AssociationFilter

pytestmark = [pytest.mark.requires("wsman", "enumerate")]

SERVICE = wmi_uri("Win32_Service")
ALL_CIM = "http://schemas.dmtf.org/wbem/wscim/1/*"


def _winrm_epr() -> EndpointReference:
    return EndpointReference(resource_uri=SERVICE, selectors={"Name": "WinRM"})


@pytest.mark.spec("MS-WSMV 3.1.4.8", "DSP0227 8.2", "MS-WMOD 2.5.1.4")
@pytest.mark.requires("association-filter")
async def test_associated_instances_of_winrm_include_the_services_it_depends_on(wsman):
    """Diagnosis (MS-WMOD 2.5.1.4): WinRM runs on the RPC endpoint mapper (RpcSs) on every Windows."""
    result = await wsman.enumerate_all(
        ALL_CIM, association=AssociationFilter("AssociatedInstances", _winrm_epr(),
                                               association_class="Win32_DependentService"), max_elements=20)
    names = {i.properties.get("Name", "").lower() for i in result.items}
    assert "rpcss" in names, f"WinRM's antecedents were {sorted(names)}"
    assert all(i.class_name == "Win32_Service" for i in result.items)


@pytest.mark.spec("MS-WSMV 3.1.4.8", "DSP0227 8.2")
@pytest.mark.requires("association-filter")
async def test_association_instances_of_winrm_are_dependency_objects_that_reference_it(wsman):
    result = await wsman.enumerate_all(
        ALL_CIM, association=AssociationFilter("AssociationInstances", _winrm_epr(),
                                               result_class="Win32_DependentService"), max_elements=20)
    assert result.items, "WinRM takes part in at least one Win32_DependentService association"
    for item in result.items:
        assert item.class_name == "Win32_DependentService"
        ends = [item.properties.get("Antecedent"), item.properties.get("Dependent")]
        selectors = [e.selectors.get("Name", "").lower() for e in ends if isinstance(e, EndpointReference)]
        assert "winrm" in selectors, "each association instance references WinRM at one end"


@pytest.mark.spec("MS-WSMV 2.2.4.x", "DSP0227 7")
@pytest.mark.requires("cim-schema-uri")
async def test_dmtf_resource_uri_enumerates_the_wmi_subclass_instances(wsman):
    """A DMTF class URI (cim-schema/2/CIM_Service) returns the instances of its Win32 subclasses."""
    dmtf = await wsman.enumerate_all(cim_uri("CIM_Service"), max_elements=50)
    wmi = await wsman.enumerate_all(SERVICE, max_elements=50)
    dmtf_names = {i.properties["Name"].lower() for i in dmtf.items if i.class_name == "Win32_Service"}
    assert dmtf_names == {i.properties["Name"].lower() for i in wmi.items}


@pytest.mark.spec("MS-WSMV 2.2.4.x", "DSP0227 7")
@pytest.mark.requires("cim-schema-uri")
async def test_cimnamespace_selector_names_the_namespace(wsman):
    result = await wsman.enumerate_all(cim_uri("CIM_LogicalDisk"), selectors={"__cimnamespace": "root/cimv2"},
                                       max_elements=50)
    assert result.items and all(i.properties.get("DeviceID") for i in result.items)

"""MS-WMOD 3.2 Example 2: enumeration of a large result set (Enumerate, Pull, Release).

MS-WSMV 3.1.4.10 (Enumerate), 3.1.4.11 (Pull), 3.1.4.13 (Release); DSP0226 8.
"""

from __future__ import annotations

import pytest

from harness.client.resources import wmi_uri
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "enumerate")]

SERVICE = wmi_uri("Win32_Service")
PAGE = 5


def _names(items):
    return [item.properties["Name"].lower() for item in items]


@pytest.mark.spec("MS-WMOD 3.2", "MS-WSMV 3.1.4.10", "MS-WSMV 3.1.4.11")
async def test_enumeration_needs_several_pulls_and_ends_with_end_of_sequence(wsman):
    page = await wsman.enumerate(SERVICE)
    assert page.context, "EnumerateResponse must carry an EnumerationContext (steps 8-9)"
    assert not page.items, "a non-optimized Enumerate returns no items (DSP0226 8.2)"
    items, pulls = [], 0
    context = page.context
    while True:
        page = await wsman.pull(SERVICE, context, max_elements=PAGE)
        pulls += 1
        assert len(page.items) <= PAGE, "Pull must honour MaxElements"
        items.extend(page.items)
        if page.end_of_sequence:
            break
        assert page.context, "a PullResponse without EndOfSequence carries the next context"
        context = page.context
        assert pulls < 1000, "enumeration does not terminate"
    assert pulls >= 3, f"expected at least three Pull round trips with MaxElements={PAGE}, got {pulls}"
    names = _names(items)
    assert len(names) == len(set(names)), "an instance was returned twice"
    assert "winrm" in names


@pytest.mark.spec("MS-WMOD 3.2", "MS-WSMV 3.1.4.10")
@pytest.mark.requires("optimized-enumeration")
async def test_optimized_enumeration_returns_the_same_set(wsman):
    plain = await wsman.enumerate_all(SERVICE, max_elements=PAGE)
    optimized = await wsman.enumerate_all(SERVICE, optimize=True, max_elements=PAGE)
    assert sorted(_names(optimized.items)) == sorted(_names(plain.items))
    assert optimized.round_trips >= 3


@pytest.mark.spec("MS-WMOD 3.2", "MS-WSMV 3.1.4.13")
async def test_release_ends_the_enumeration_context(wsman):
    page = await wsman.enumerate(SERVICE)
    first = await wsman.pull(SERVICE, page.context, max_elements=1)
    assert not first.end_of_sequence
    await wsman.release(SERVICE, first.context)
    with pytest.raises(WSManFault) as info:
        await wsman.pull(SERVICE, first.context, max_elements=1)
    assert info.value.subcode_name == "InvalidEnumerationContext", info.value


@pytest.mark.spec("MS-WMOD 3.2", "MS-WMOD 2.5.2.4", "MS-WSMV 3.1.4.10")
@pytest.mark.requires("wql")
async def test_wql_filter_selects_matching_instances_only(wsman):
    everything = await wsman.enumerate_all(SERVICE, max_elements=50)
    running = {i.properties["Name"].lower() for i in everything.items if i.properties["State"] == "Running"}
    filtered = await wsman.enumerate_all(
        SERVICE, wql="SELECT * FROM Win32_Service WHERE State = 'Running'", max_elements=PAGE)
    assert {i.properties["State"] for i in filtered.items} <= {"Running"}
    assert set(_names(filtered.items)) == running


@pytest.mark.spec("MS-WSMV 3.1.4.10", "MS-WSMV 2.2.4.39")
@pytest.mark.requires("wql")
async def test_wql_projection_returns_only_the_selected_properties(wsman):
    result = await wsman.enumerate_all(SERVICE, wql="SELECT Name, State FROM Win32_Service", max_elements=50)
    assert result.items
    for item in result.items:
        present = {k for k, v in item.properties.items() if v is not None}
        assert present <= {"Name", "State"}, f"projection leaked {sorted(present - {'Name', 'State'})}"


@pytest.mark.spec("MS-WSMV 3.1.4.10")
@pytest.mark.requires("wql")
async def test_malformed_wql_is_a_cannot_process_filter_fault(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.enumerate(SERVICE, wql="SELECT FROM WHERE")
    assert info.value.subcode_name in {"CannotProcessFilter", "InvalidParameter"}, info.value


@pytest.mark.spec("MS-WSMV 3.1.4.10", "DSP0226 8.7")
async def test_enumerate_epr_mode_returns_references(wsman):
    result = await wsman.enumerate_all(SERVICE, mode="EnumerateEPR", max_elements=50)
    assert result.eprs, "EnumerateEPR returns endpoint references"
    names = {epr.selectors.get("Name", "").lower() for epr in result.eprs}
    assert "winrm" in names
    epr = next(e for e in result.eprs if e.selectors.get("Name", "").lower() == "winrm")
    got = await wsman.get(epr.resource_uri, epr.selectors)
    assert got.properties["Name"].lower() == "winrm", "an EPR from the enumeration addresses its instance"


@pytest.mark.spec("MS-WSMV 3.1.4.10", "DSP0226 8.7")
async def test_enumerate_object_and_epr_mode_pairs_objects_with_references(wsman):
    result = await wsman.enumerate_all(SERVICE, mode="EnumerateObjectAndEPR", max_elements=50)
    assert result.items and len(result.items) == len(result.eprs)
    for item, epr in zip(result.items, result.eprs, strict=True):
        assert epr.selectors.get("Name", "").lower() == item.properties["Name"].lower()


@pytest.mark.spec("MS-WSMV 3.1.4.10", "DSP0226 8.3")
@pytest.mark.requires("selector-filter")
async def test_selector_filter_enumerates_the_named_instance(wsman):
    result = await wsman.enumerate_all(SERVICE, selector_filter={"Name": "WinRM"}, max_elements=10)
    assert _names(result.items) == ["winrm"]


@pytest.mark.spec("MS-WSMV 3.1.4.11")
async def test_pull_with_a_forged_context_is_a_fault(wsman):
    with pytest.raises(WSManFault) as info:
        await wsman.pull(SERVICE, "uuid:00000000-0000-0000-0000-000000000000", max_elements=1)
    assert info.value.subcode_name == "InvalidEnumerationContext", info.value

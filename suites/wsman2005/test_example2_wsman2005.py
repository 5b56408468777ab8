"""MS-WMOD 3.2 Example 2 in the Windows Server 2003 R2 dialect (MS-WSMAN, WS-Management 2005/06):
Enumerate, Pull, Release (MS-WSMAN 3.1.4.8 - 3.1.4.10; the WS-Enumeration 2004/09 actions are
the same as in MS-WSMV, only the wsman namespace differs).
"""

from __future__ import annotations

import pytest
from lxml import etree

from harness.client.resources import wmi_uri
from harness.wire.wsman import messages as msg
from harness.wire.wsman.dialect import NS_WSMAN_2005, WSMAN2005, WSMV, DialectError, convert, detect
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, is_fault
from harness.wire.wsman.ns import FILTER_WQL, NS_ENUMERATION, NS_WSMAN, Action

pytestmark = [pytest.mark.requires("wsman2005", "enumerate")]

SERVICE = wmi_uri("Win32_Service")
PAGE = 5


def _names(items):
    return [item.properties["Name"].lower() for item in items]


@pytest.mark.spec("MS-WMOD 3.2", "MS-WSMAN 3.1.4.8", "MS-WSMAN 3.1.4.9")
async def test_enumerate_and_pull_in_the_2005_dialect_return_every_instance(wsman, wsman2005):
    page = await wsman2005.enumerate(SERVICE)
    assert page.context and not page.items, "a non-optimized Enumerate returns only a context"
    items, pulls, context = [], 0, page.context
    while True:
        page = await wsman2005.pull(SERVICE, context, max_elements=PAGE)
        assert detect(wsman2005.last_response) == WSMAN2005
        assert NS_WSMAN.encode() not in wsman2005.last_response
        pulls += 1
        assert len(page.items) <= PAGE, "Pull must honour MaxElements"
        items.extend(page.items)
        if page.end_of_sequence:
            break
        assert page.context, "a PullResponse without EndOfSequence carries the next context"
        context = page.context
        assert pulls < 1000, "enumeration does not terminate"
    assert pulls >= 3
    names = _names(items)
    assert len(names) == len(set(names)), "an instance was returned twice"
    reference = await wsman.enumerate_all(SERVICE, max_elements=50)
    assert sorted(names) == sorted(_names(reference.items)), "both dialects see the same instances"


@pytest.mark.spec("MS-WMOD 3.2", "MS-WSMAN 3.1.4.10")
async def test_release_in_the_2005_dialect_ends_the_context(wsman2005):
    page = await wsman2005.enumerate(SERVICE)
    first = await wsman2005.pull(SERVICE, page.context, max_elements=1)
    assert not first.end_of_sequence
    await wsman2005.release(SERVICE, first.context)
    assert detect(wsman2005.last_request) == WSMAN2005
    with pytest.raises(WSManFault) as info:
        await wsman2005.pull(SERVICE, first.context, max_elements=1)
    assert info.value.subcode_name == "InvalidEnumerationContext", info.value


@pytest.mark.spec("MS-WSMAN 3.1.4.1.13")
async def test_a_filtered_enumeration_cannot_be_written_in_the_2005_dialect(wsman2005):
    """MS-WSMAN 3.1.4.1.13: Windows Server 2003 servers MUST fault any request with wsman:Filter.
    The client refuses to write one; written by hand and sent anyway, the target faults it."""
    with pytest.raises(DialectError) as info:
        await wsman2005.enumerate(SERVICE, wql="SELECT * FROM Win32_Service")
    assert info.value.fault == "FilteringNotSupported"
    plain = msg.build_enumerate_request(wsman2005.header(Action.ENUMERATE, SERVICE), msg.EnumerateRequest())
    root = etree.fromstring(convert(plain, WSMV, WSMAN2005))
    enumerate_el = root.find(f".//{{{NS_ENUMERATION}}}Enumerate")
    assert enumerate_el is not None
    wql = etree.SubElement(enumerate_el, f"{{{NS_WSMAN_2005}}}Filter", Dialect=FILTER_WQL)
    wql.text = "SELECT * FROM Win32_Service"
    reply = await wsman2005.send_raw(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    assert reply.status in (400, 500), f"HTTP {reply.status}: a filtered 2005/06 Enumerate must be faulted"
    assert is_fault(parse_envelope(reply.body)), reply.body[:300]

"""build_* -> parse_* round trips of every message (DSP0226 7, 8, 11; DSP0227 9; MS-WSMV 3.1.4.x)."""

from __future__ import annotations

import pytest
import pywbem
from lxml import etree

from harness.validate import default_validator
from harness.wire.wsman import messages as m
from harness.wire.wsman.cimxml import element_to_properties, instance_to_element
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import (
    FILTER_ASSOCIATION,
    FILTER_SELECTOR,
    FILTER_WQL,
    NS_WSMID,
    RESOURCE_WMI_PREFIX,
    Action,
)

URI = RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service"
EPR = EndpointReference("http://server:5985/wsman", URI, {"Name": "Spooler"})


def hdr(**kw: object) -> Header:
    return Header(action="", resource_uri=URI, max_envelope_size=512000, operation_timeout=60, locale="en-US",
                  **kw)  # type: ignore[arg-type]


def inst_elem(name: str = "Spooler") -> etree._Element:
    return instance_to_element(pywbem.CIMInstance("Win32_Service", properties={"Name": name, "Started": True}), URI)


def check(data: bytes) -> Envelope:
    assert default_validator().validate(data) == []
    return parse_envelope(data)


def test_identify() -> None:
    env = check(m.build_identify_request())
    assert m.parse_identify_request(env) == m.IdentifyRequest()
    assert env.header.action == ""
    resp = m.IdentifyResponse(security_profiles=["http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"])
    data = m.build_identify_response(resp)
    assert b"OS: 10.0.20348 SP: 0.0 Stack: 3.0" in data and b"Microsoft Corporation" in data
    assert m.parse_identify_response(check(data)) == resp
    payload = check(data).payload
    assert payload is not None and etree.QName(payload).namespace == NS_WSMID


def test_get() -> None:
    h = hdr(selectors={"Name": "Spooler"})
    env = check(m.build_get_request(h))
    req = m.parse_get_request(env)
    assert req.header.action == Action.GET and req.header.selectors == {"Name": "Spooler"}
    env = check(m.build_get_response(h.message_id, inst_elem()))
    resp = m.parse_get_response(env)
    assert resp.header.relates_to == h.message_id
    assert resp.item is not None and element_to_properties(resp.item) == {"Name": "Spooler", "Started": "true"}


def test_put() -> None:
    h = hdr(selectors={"Name": "Spooler"})
    req = m.parse_put_request(check(m.build_put_request(h, inst_elem())))
    assert req.item is not None and element_to_properties(req.item)["Name"] == "Spooler"
    assert m.parse_put_response(check(m.build_put_response("uuid:1", inst_elem()))).item is not None
    assert m.parse_put_response(check(m.build_put_response("uuid:1"))).item is None


def test_create() -> None:
    req = m.parse_create_request(check(m.build_create_request(hdr(), inst_elem("New"))))
    assert req.item is not None and element_to_properties(req.item)["Name"] == "New"
    resp = m.parse_create_response(check(m.build_create_response("uuid:1", EPR)))
    assert resp.epr == EPR and resp.item is None


def test_delete() -> None:
    h = hdr(selectors={"Name": "Spooler"})
    assert m.parse_delete_request(check(m.build_delete_request(h))).header.selectors == {"Name": "Spooler"}
    assert m.parse_delete_response(check(m.build_delete_response(h.message_id))).header.relates_to == h.message_id


@pytest.mark.parametrize("req", [
    m.EnumerateRequest(),
    m.EnumerateRequest(filter_dialect=FILTER_WQL, filter_text="select * from Win32_Service where Name='a<b'",
                       enumeration_mode="EnumerateObjectAndEPR", optimize=True, max_elements=32000, expires="PT10M"),
    m.EnumerateRequest(filter_dialect=FILTER_SELECTOR, selector_filter={"State": "Running"},
                       enumeration_mode="EnumerateEPR"),
    m.EnumerateRequest(filter_dialect=FILTER_ASSOCIATION, association_filter=m.AssociationFilter(
        "AssociatedInstances", EPR, "Win32_DependentService", "Antecedent", "Win32_Service", "Dependent",
        ["Name", "State"])),
    m.EnumerateRequest(filter_dialect=FILTER_ASSOCIATION, association_filter=m.AssociationFilter(
        "AssociationInstances", EPR, role="Antecedent", result_class="Win32_DependentService")),
])
def test_enumerate_request(req: m.EnumerateRequest) -> None:
    assert m.parse_enumerate_request(check(m.build_enumerate_request(hdr(), req))) == req


def test_enumerate_request_rejects_unknown_mode() -> None:
    data = m.build_enumerate_request(hdr(), m.EnumerateRequest(enumeration_mode="EnumerateEPR"))
    with pytest.raises(WSManDecodeError):
        m.parse_enumerate_request(parse_envelope(data.replace(b">EnumerateEPR<", b">Bogus<")))
    assert default_validator().validate(data.replace(b">EnumerateEPR<", b">Bogus<")) != []


def _norm(items: m.EnumerationItems) -> tuple[object, ...]:
    return (items.context, items.end_of_sequence, [element_to_properties(i) for i in items.items], items.epr_items)


@pytest.mark.parametrize("kind", ["objects", "eprs", "both", "empty"])
@pytest.mark.parametrize("op", ["enumerate", "pull"])
def test_enumeration_items(kind: str, op: str) -> None:
    def make() -> m.EnumerationItems:
        objs = [inst_elem("A"), inst_elem("B")]
        eprs: list[EndpointReference | None] = [EPR, EndpointReference("x", URI, {"Name": "B"})]
        ctx = None if op == "pull" and kind == "empty" else "uuid:ctx"
        if kind == "objects":
            return m.EnumerationItems(objs, [], ctx, False)
        if kind == "eprs":
            return m.EnumerationItems([], eprs, ctx, True)
        if kind == "both":
            return m.EnumerationItems(objs, [EPR, None], ctx, True)
        return m.EnumerationItems([], [], ctx, True)

    expected = _norm(make())
    if op == "enumerate":
        got = m.parse_enumerate_response(check(m.build_enumerate_response("uuid:r", make())))
    else:
        got = m.parse_pull_response(check(m.build_pull_response("uuid:r", make())))
    assert _norm(got) == expected


def test_unoptimized_enumerate_response_has_only_context() -> None:
    data = m.build_enumerate_response("uuid:r", context="uuid:c")
    assert m.parse_enumerate_response(check(data)) == m.EnumerationItems(context="uuid:c")


def test_pull_and_release() -> None:
    req = m.PullRequest("uuid:c", max_elements=20, max_time="PT5S", max_characters=1000)
    assert m.parse_pull_request(check(m.build_pull_request(hdr(), req))) == req
    assert m.parse_release_request(check(m.build_release_request(hdr(), "uuid:c"))) == m.ReleaseRequest("uuid:c")
    m.parse_release_response(check(m.build_release_response("uuid:r")))


def test_invoke() -> None:
    h = hdr(selectors={"Name": "Spooler"})
    params = {"Flag": True, "Count": pywbem.Uint32(3), "Names": ["a", "b"], "When": pywbem.CIMDateTime(
        "20231001120000.000000+000"), "Nothing": None}
    env = check(m.build_invoke_request(h, "StartService", params))
    assert env.header.action == URI + "/StartService"
    req = m.parse_invoke_request(env)
    assert req.method == "StartService"
    assert req.params == {"Flag": "true", "Count": "3", "Names": ["a", "b"], "When": "2023-10-01T12:00:00Z",
                          "Nothing": None}
    env = check(m.build_invoke_response(h.message_id, URI, "StartService", pywbem.Uint32(0), {"Out": "x"}))
    assert env.header.action == URI + "/StartServiceResponse"
    resp = m.parse_invoke_response(env)
    assert (resp.method, resp.return_value, resp.out_params) == ("StartService", "0", {"Out": "x"})


def test_parsers_check_action_and_body() -> None:
    env = parse_envelope(m.build_get_request(hdr()))
    with pytest.raises(WSManDecodeError) as ei:
        m.parse_delete_request(env)
    assert ei.value.fault == "ActionNotSupported"
    env = parse_envelope(m.build_release_response("uuid:x").replace(
        Action.RELEASE_RESPONSE.encode(), Action.PULL_RESPONSE.encode()))
    with pytest.raises(WSManDecodeError):
        m.parse_pull_response(env)
    bad = m.build_invoke_request(hdr(), "StopService", {}).replace(b"/StopService<", b"/Other<")
    with pytest.raises(WSManDecodeError):
        m.parse_invoke_request(parse_envelope(bad))

"""The example messages of [MS-WSMV] section 4 ("Protocol Examples"), transcribed from the
specification text into ``fixtures/golden/wsman/spec/`` (each file names its section and every
typesetting repair), checked against our codec and our schemas.

* every request parses (``parse_envelope`` + the typed ``parse_*`` of its action) to the values the
  example states, and our builder, given those values, writes an equivalent envelope: same header
  values and the same body infoset once MessageID, namespace prefixes, comments and
  insignificant whitespace are normalised (:func:`infoset`);
* every response parses to the items it states;
* every file passes our XSD validator, except where the example contradicts the specification's
  own schema text (:data:`SPEC_INCONSISTENT`) or libxml2 misjudges a valid value
  (:data:`LIBXML2_LIMITATION`). Those are explicit expectations: the test fails if the listed error
  disappears (fix the list) or another appears.

Expected values are written out from the example text (not from the codec's constants), so a codec
that agrees with itself but not with the specification fails here. MS-WSMV examples may be used in
implementations under the document's Intellectual Property Rights Notice.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from harness.validate import default_validator
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as m
from harness.wire.wsman import shell as sh
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.faults import is_fault, parse_fault
from harness.wire.wsman.header import EndpointReference, Header, Option

SPEC = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wsman" / "spec"
FILES = sorted(SPEC.glob("wsmv-*.xml"))

ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
MYCLASS = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/mynamespace/myclass"
CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
COMMAND_ID = "77df7bb6-b5a0-4777-abd9-9823c0774074"

_Element = etree._Element


def load(name: str) -> Envelope:
    return parse_envelope((SPEC / f"wsmv-{name}.xml").read_bytes())


# =============================================================================== comparison helper
Infoset = tuple[str, tuple[tuple[str, str], ...], str, tuple[Any, ...]]


def infoset(el: _Element) -> Infoset:
    """An element as (expanded name, attributes, text, children), independent of namespace prefixes
    and declarations, comments and whitespace-only text; text is stripped of surrounding XML
    whitespace (the examples break values over lines, e.g. ``<wsa:To>\\n...\\n</wsa:To>``)."""
    kids = [c for c in el if isinstance(c.tag, str)]
    text = " ".join(t.strip() for t in [el.text, *(c.tail for c in el)] if t and t.strip())
    attrs = tuple(sorted((str(k), str(v).strip()) for k, v in el.attrib.items()))
    return (str(el.tag), attrs, text, tuple(infoset(c) for c in kids))


def body_infoset(env: Envelope) -> tuple[Infoset, ...]:
    return tuple(infoset(c) for c in env.body if isinstance(c.tag, str))


def header_values(h: Header) -> dict[str, Any]:
    """The header values an example states; selector values compared without surrounding whitespace
    (ShellId is xs:anyURI, MS-WSMV 2.2.4.37, whose whitespace facet is collapse)."""
    sel = {k: v.strip() if isinstance(v, str) else v for k, v in h.selectors.items()}
    return {"action": h.action, "to": h.to, "resource_uri": h.resource_uri, "reply_to": h.reply_to,
            "relates_to": h.relates_to, "selectors": sel,
            "options": [(o.name, o.value) for o in h.options],
            "max_envelope_size": h.max_envelope_size, "operation_timeout": h.operation_timeout,
            "locale": h.locale, "data_locale": h.data_locale, "session_id": h.session_id}


def assert_equivalent(example: Envelope, built_bytes: bytes) -> Envelope:
    """Our builder's envelope states the same header values and the same body as the example."""
    built = parse_envelope(built_bytes)
    assert header_values(built.header) == header_values(example.header)
    assert body_infoset(built) == body_infoset(example)
    return built


def same_header(env: Envelope, **changes: Any) -> Header:
    """The example's header as the builder's input: the values it states, nothing derived."""
    h = copy.deepcopy(env.header)
    return replace(h, **changes)


# =============================================================================== the file set
def test_every_section_4_example_is_transcribed() -> None:
    sections = sorted({p.name.split("-")[1] for p in FILES})
    assert sections == sorted(["4.1.1", "4.1.2.1", "4.1.2.2", "4.1.2.3", "4.1.2.4", "4.1.2.5", "4.1.2.6",
                               "4.1.3", "4.1.4", "4.4", "4.6.1", "4.6.2", "4.6.3", "4.6.4", "4.6.5",
                               "4.7.1", "4.7.2", "4.7.3", "4.7.4", "4.7.5", "4.7.6", "4.7.7", "4.7.8",
                               "4.7.9", "4.7.10", "4.9", "4.10"])
    assert len(FILES) == 43


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_provenance_comment(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    comment = root.getprevious()
    assert comment is not None and comment.tag is etree.Comment
    section = path.name.split("-")[1]
    assert "[MS-WSMV]" in comment.text and f"section {section} " in comment.text
    assert "Changes:" in comment.text


# =============================================================================== XSD validation
# example -> (error fragment, why the example and not our XSD is at fault)
SPEC_INCONSISTENT: dict[str, tuple[str, str]] = {
    "wsmv-4.10-fault-response.xml": (
        "'a:DestinationUnreachable' has no corresponding namespace declaration",
        "the example writes the subcode QName with prefix 'a' but declares WS-Addressing as 'wsa' "
        "(SOAP 1.2 part 1 5.4.1.3: s:Value is an xs:QName)"),
    "wsmv-4.7.3-receive-response.xml": (
        "attribute 'SequenceId': The attribute 'SequenceId' is not allowed",
        "MS-WSMV 2.2.4.27 ReceiveResponse declares the attribute 'SequenceID'; the example writes "
        "'SequenceId' (the spelling of rsp:Receive, 2.2.4.26)"),
    "wsmv-4.7.6-pull-shells-response.xml": (
        "rsp:CommandLine line 39: Element '{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}CommandLine': "
        "This element is not expected",
        "MS-WSMV 2.2.4.37 Shell has no CommandLine element and its open content is namespace='##other'"),
    "wsmv-4.7.7-get-shell-response.xml": (
        "rsp:CommandLine line 34: Element '{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}CommandLine': "
        "This element is not expected",
        "MS-WSMV 2.2.4.37 Shell has no CommandLine element and its open content is namespace='##other'"),
}
# example -> error libxml2 reports for a value XML Schema 1.0 accepts (the xmlschema fallback agrees)
LIBXML2_LIMITATION: dict[str, str] = {
    # XML Schema part 2 3.2.6: xs:duration has whiteSpace collapse, so "\nPT60.000S\n" is PT60S;
    # libxml2 2.14 accepts leading but not trailing whitespace in a duration.
    "wsmv-4.7.7-get-shell-request.xml": "'\nPT60.000S\n' is not a valid value of the atomic type 'xs:duration'",
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_xsd(path: Path) -> None:
    errors = default_validator().validate(path.read_bytes())
    if path.name in SPEC_INCONSISTENT:
        fragment, _why = SPEC_INCONSISTENT[path.name]
        assert errors and all(fragment in e or "xs:QName" in e for e in errors), errors
        assert any(fragment in e for e in errors)
    elif path.name in LIBXML2_LIMITATION:
        assert len(errors) == 1 and LIBXML2_LIMITATION[path.name] in errors[0], errors
    else:
        assert errors == []


@pytest.mark.parametrize("name", sorted(LIBXML2_LIMITATION))
def test_libxml2_limitation_is_valid_for_xml_schema(name: str) -> None:
    schema = default_validator().schema  # xmlschema (pure XSD 1.0 processor) over the same XSDs
    root = etree.parse(str(SPEC / name)).getroot()
    header = root.find("{http://www.w3.org/2003/05/soap-envelope}Header")
    assert header is not None
    timeout = header.find(f"{{{WSMAN}}}OperationTimeout")
    assert timeout is not None
    assert list(schema.iter_errors(etree.tostring(timeout).decode())) == []


@pytest.mark.parametrize("name", ["wsmv-4.4-subscribe-request.xml", "wsmv-4.6.2-enumerate-subscriptions-response.xml"])
def test_delivery_max_envelope_size_policy_is_schema_valid(name: str) -> None:
    """DSP0226 10.2.9: wse:Delivery/wsman:MaxEnvelopeSize carries Policy (our XSD lacked it)."""
    data = (SPEC / name).read_bytes()
    assert b'Policy="Notify"' in data and default_validator().validate(data) == []
    assert default_validator().validate(data.replace(b'Policy="Notify"', b'Policy="Notify" Bogus="1"')) != []


def test_provider_fault_provider_id_is_schema_valid() -> None:
    """MS-WSMV 2.2.4.43 ProviderFaultType: providerId is a GUIDType (our XSD lacked it)."""
    data = (SPEC / "wsmv-4.10-fault-response.xml").read_bytes()
    fixed = data.replace(b"<s:Value>a:DestinationUnreachable", b"<s:Value>wsa:DestinationUnreachable")
    assert default_validator().validate(fixed) == []
    bad = fixed.replace(b'providerId="D9A2A039-A4B3-4A70-8CB9-8D7714EAD776"', b'providerId="not-a-guid"')
    assert any("providerId" in e for e in default_validator().validate(bad))


# =============================================================================== 4.1 CIM examples
def test_4_1_1_get() -> None:
    env = load("4.1.1-get-request")
    req = m.parse_get_request(env)
    assert header_values(req.header) == {
        "action": "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", "to": "http://server:80/wsman",
        "resource_uri": MYCLASS, "reply_to": ANON, "relates_to": None, "selectors": {"id": "1"},
        "options": [], "max_envelope_size": 51200, "operation_timeout": 60.0, "locale": None,
        "data_locale": None, "session_id": None}
    assert req.header.message_id == "uuid:5E6FD101-710A-4EEA-A50D-70C0BF863AA3"
    assert env.unknown_must_understand == []
    assert_equivalent(env, m.build_get_request(same_header(env)))

    resp = m.parse_get_response(load("4.1.1-get-response"))
    assert resp.header.relates_to == "uuid:5E6FD101-710A-4EEA-A50D-70C0BF863AA3"
    assert resp.header.to == ANON
    assert resp.item is not None and resp.item.tag == f"{{{MYCLASS}}}myclass"
    props = element_to_properties(resp.item)
    assert props["Data1"] == "Hello World" and props["id"] == "1"
    location = props["Location"]  # cim:Location, the instance's EPR (DSP0230)
    assert isinstance(location, EndpointReference)
    assert location.resource_uri == MYCLASS and location.selectors == {"id": "1"}


ENUM_SEQUENCE = [  # 4.1.2.1 - 4.1.2.6: (request MessageID, context sent, context returned, Data1, id, end)
    ("uuid:54E3FD6C-A83E-454C-A2F6-0BDABF5F14D7", "uuid:22EB9809-5543-4020-A75C-FD95FF06217B",
     "uuid:2504CA0D-94B9-4F91-B2F7-9F4CD9A2A96C", "Test Message", "1", False),
    ("uuid:2C2D261E-D2C3-4A5D-80DE-BB1A48E90BD2", "uuid:2504CA0D-94B9-4F91-B2F7-9F4CD9A2A96C",
     None, '"Hello again"', "2", True),
]


def test_4_1_2_enumerate_and_pulls() -> None:
    env = load("4.1.2.1-enumerate-request")
    req = m.parse_enumerate_request(env)
    assert req == m.EnumerateRequest()  # an empty wsen:Enumerate: no filter, mode, optimization
    assert env.header.action == "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
    assert env.header.resource_uri == MYCLASS and env.header.max_envelope_size == 51200
    assert_equivalent(env, m.build_enumerate_request(same_header(env), req))

    er = m.parse_enumerate_response(load("4.1.2.2-enumerate-response"))
    assert er == m.EnumerationItems(context="uuid:22EB9809-5543-4020-A75C-FD95FF06217B")

    for n, (mid, sent, returned, data1, ident, end) in enumerate(ENUM_SEQUENCE, start=1):
        renv = load(f"4.1.2.{1 + 2 * n}-pull-request-{n}")
        assert renv.header.message_id == mid
        pull = m.parse_pull_request(renv)
        assert pull == m.PullRequest(context=sent, max_elements=1)
        assert_equivalent(renv, m.build_pull_request(same_header(renv), pull))
        penv = load(f"4.1.2.{2 + 2 * n}-pull-response-{n}")
        assert penv.header.relates_to == mid
        pr = m.parse_pull_response(penv)
        assert (pr.context, pr.end_of_sequence, len(pr.items), pr.epr_items) == (returned, end, 1, [])
        props = element_to_properties(pr.items[0])
        assert (props["Data1"], props["id"]) == (data1, ident)
        built = m.parse_pull_response(parse_envelope(m.build_pull_response(mid, pr)))
        assert (built.context, built.end_of_sequence) == (returned, end)
        assert [infoset(i) for i in built.items] == [infoset(i) for i in pr.items]


def test_4_1_3_put() -> None:
    env = load("4.1.3-put-request")
    req = m.parse_put_request(env)
    assert req.header.selectors == {"id": "1"} and req.header.resource_uri == MYCLASS
    assert req.header.action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
    assert req.item is not None and element_to_properties(req.item)["Data1"] == "Test Message"
    # deepcopy: lxml moves an appended element out of its tree, and the builder appends the item
    assert_equivalent(env, m.build_put_request(same_header(env), copy.deepcopy(req.item)))
    resp = m.parse_put_response(load("4.1.3-put-response"))
    assert resp.header.relates_to == "uuid:D1408048-E0F6-4C6D-8B8A-515B9F7B641C"
    assert resp.item is not None and element_to_properties(resp.item)["Data1"] == "Test Message"


def test_4_1_4_invoke() -> None:
    env = load("4.1.4-invoke-request")
    win32_process = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Process"
    assert env.header.action == win32_process + "/Create" and env.header.resource_uri == win32_process
    req = m.parse_invoke_request(env)
    assert (req.method, req.params) == ("Create", {"CommandLine": "notepad.exe", "CurrentDirectory": "C:\\"})
    built = parse_envelope(m.build_invoke_request(same_header(env), req.method, req.params))
    assert header_values(built.header) == header_values(env.header)
    # Spec inconsistency (kept as published): the example's Create_INPUT is in namespace
    # ".../wmi/root/cim/Win32_Process", not the class resource URI ".../root/cimv2/Win32_Process" its
    # own ResourceURI, Action and Create_OUTPUT (4.1.4 response) use. DSP0227 9 (and our builder)
    # put the method input in the class resource URI namespace. Everything else is equal.
    misprinted = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cim/Win32_Process"
    assert req.element is not None and etree.QName(req.element).namespace == misprinted
    example_body = copy.deepcopy(req.element)
    for el in example_body.iter():
        if isinstance(el.tag, str) and el.tag.startswith(f"{{{misprinted}}}"):
            el.tag = el.tag.replace(misprinted, win32_process)
    assert body_infoset(built) == (infoset(example_body),)

    out = m.parse_invoke_response(load("4.1.4-invoke-response"))
    assert (out.method, out.return_value, out.out_params) == ("Create", "0", {"ProcessId": "4000"})
    rebuilt = m.parse_invoke_response(parse_envelope(m.build_invoke_response(
        "uuid:9A989269-283B-4624-BAC5-BC291F72E854", win32_process, "Create", "0", {"ProcessId": "4000"})))
    assert (rebuilt.method, rebuilt.return_value, rebuilt.out_params) == ("Create", "0", {"ProcessId": "4000"})


# =============================================================================== 4.4 / 4.6 events
def test_4_4_subscribe() -> None:
    env = load("4.4-subscribe-request")
    h = env.header
    assert (h.action, h.resource_uri, h.to) == ("http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe",
                                                 "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog",
                                                 "http://RAVIBPERF59D.MIG.NET:80/wsman")
    assert [(o.name, o.value) for o in h.options] == [
        ("Compression", "SLDC"), ("CDATA", None), ("ContentFormat", "RenderedText"), ("IgnoreChannelError", None)]
    assert h.max_envelope_size == 153600 and h.locale == "en-US"
    req = ev.parse_subscribe_request(env)
    sink = "HTTP://RAVIBPERF90D.MIG.NET:80/wsman/subscriptions/07C41EF8-1EE6-4519-86C5-47A78FB16DEC"
    d = req.delivery
    assert (d.mode, d.heartbeats, d.max_elements, d.max_time) == (
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events", 3600.0, 20, 30.0)
    assert d.notify_to is not None and d.notify_to.address == sink
    assert req.end_to is not None and req.end_to.address == sink
    assert (req.expires, req.filter_dialect, req.filter_text, req.send_bookmarks) == (
        "PT3960732748.184S", None, None, True)
    assert req.filter_element is not None and infoset(req.filter_element) == (
        "QueryList", (), "", (("Query", (("Id", "0"),), "", (("Select", (("Path", "Application"),), "*", ()),)),))

    # The builder, given these values, writes the same wse:Subscribe except for what SubscribeRequest
    # does not model (explicit list; a new field would shorten it): the wse:Identifier reference
    # properties of EndTo/NotifyTo and wsman:MaxEnvelopeSize/Locale/ContentEncoding of wse:Delivery.
    built = parse_envelope(ev.build_subscribe_request(same_header(env), req))
    assert header_values(built.header) == header_values(env.header)
    again = ev.parse_subscribe_request(built)
    assert again.filter_element is not None and infoset(again.filter_element) == infoset(req.filter_element)
    assert replace(again, filter_element=None) == replace(req, filter_element=None)
    example_names = {etree.QName(e).localname for e in env.body.iter() if isinstance(e.tag, str)}
    built_names = {etree.QName(e).localname for e in built.body.iter() if isinstance(e.tag, str)}
    assert example_names - built_names == {"ReferenceProperties", "Identifier", "MaxEnvelopeSize", "Locale",
                                           "ContentEncoding"}
    assert built_names <= example_names


def test_4_6_publisher_initiated() -> None:
    env = load("4.6.1-enumerate-subscriptions-request")
    assert env.header.resource_uri == "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription"
    assert env.header.to == "https://rmacktest0.MIG.NET:443/wsman/SubscriptionManager/WEC"
    req = m.parse_enumerate_request(env)
    assert req == m.EnumerateRequest(optimize=True, max_elements=20)
    # m:MachineID (s:mustUnderstand="false") is a header our Header does not model: compare the rest
    built = parse_envelope(m.build_enumerate_request(same_header(env), req))
    assert header_values(built.header) == header_values(env.header)
    assert body_infoset(built) == body_infoset(env)

    items = m.parse_enumerate_response(load("4.6.2-enumerate-subscriptions-response"))
    assert items.end_of_sequence and items.context is None and len(items.items) == 1
    published = ev.parse_subscription_item(items.items[0])
    assert published.version == "uuid:BB8CD0E7-46F4-40E4-B74C-A0C7B509F669"
    inner = ev.parse_subscribe_request(published.envelope)
    assert published.envelope.header.resource_uri == "wsmawsen:microsoft.test/testresource/subscribe"  # as published
    assert inner.delivery.heartbeats == 300.0 and inner.delivery.max_elements == 5
    assert inner.delivery.notify_to is not None and inner.delivery.notify_to.address == (
        "HTTPS://RMACKTEST0.MIG.NET:443/wsman/subscriptions/633E146A-17F7-46CF-A149-50B29DB90692")
    assert (inner.filter_dialect, inner.filter_text) == ("dialect", "dialect")

    # 4.6.3: the example's wsman:Event has no payload (the listing elides it); our EventMessage needs
    # one event element per wsman:Event (DSP0226 10.2.9.3), so the codec refuses it - explicit.
    events = load("4.6.3-events")
    assert events.header.action == "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
    assert ev.identifier_of(events) == "BB8CD0E7-46F4-40E4-B74C-A0C7B509F669"
    with pytest.raises(Exception, match="exactly one event element"):
        ev.parse_event_message(events)

    assert ev.parse_ack(load("4.6.4-ack")) == "uuid:0111C890-857C-498F-B00A-7011EBD34064"

    end_env = load("4.6.5-subscription-end")
    assert end_env.header.operation_timeout == 0.5
    end = ev.parse_subscription_end(end_env)
    assert end.status == "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceShuttingDown"
    assert end.manager.identifier == "F04857FA-DB89-40D2-9A7F-8AF5EBBA6FA6"
    assert end.manager.address == "https://RMACKTEST0.MIG.NET:443/wsman/subscriptions/633E146A-17F7-46CF-A149-50B29DB90692"


# =============================================================================== 4.7 remote shell
SHELL_REQUESTS: list[tuple[str, str, str | None]] = [  # name, action, ShellId selector
    ("4.7.1-create-shell-request", "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", None),
    ("4.7.2-command-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
     "uuid:0A442A7F-4627-43AE-8751-900B509F0A1F"),
    ("4.7.3-receive-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
     "uuid:0A442A7F-4627-43AE-8751-900B509F0A1F"),
    ("4.7.4-send-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
     "uuid:0A442A7F-4627-43AE-8751-900B509F0A1F"),
    ("4.7.5-signal-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
     "uuid:BEF9B5F1-BC59-46C9-A48F-BF55973B9D7B"),
    ("4.7.6-enumerate-shells-request", "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", None),
    ("4.7.6-pull-shells-request", "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", None),
    ("4.7.7-get-shell-request", "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
     "uuid:5B666291-0910-4E8F-B802-B697ACD7953D"),
    ("4.7.8-delete-shell-request", "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
     "uuid:1C5CCAB0-F418-44D8-9C43-E42AA1D5150C"),
    ("4.7.9-disconnect-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect",
     "C776791F-76FE-4F4E-9FAD-36BD17E152B0"),
    ("4.7.10-reconnect-request", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect",
     "E4BA8E35-ECB9-4932-855B-0239067918C9"),
]


@pytest.mark.parametrize(("name", "action", "shell_id"), SHELL_REQUESTS, ids=[r[0] for r in SHELL_REQUESTS])
def test_4_7_shell_request_headers(name: str, action: str, shell_id: str | None) -> None:
    env = load(name)
    assert env.header.action == action and env.header.resource_uri == CMD
    assert sh.shell_id_of(env.header.selectors) == shell_id
    assert env.unknown_must_understand == []


def _build(name: str) -> tuple[Envelope, bytes]:
    env = load(name)
    h = same_header(env)
    builders: dict[str, Callable[[], bytes]] = {
        "4.7.1-create-shell-request": lambda: sh.build_create_shell_request(
            replace(h, options=[]), sh.ShellSpec(environment={"test": "1"}, working_directory="d:\\windows",
                                                 lifetime=1000.0),
            sh.ShellOptions(no_profile=True, codepage=437)),
        "4.7.2-command-request": lambda: sh.build_command_request(
            replace(h, options=[]), sh.CommandRequest("del", ["/p", "\nd:\\temp\\out.txt\n"]),
            sh.ShellOptions(console_mode_stdin=True, skip_cmd_shell=False)),
        "4.7.3-receive-request": lambda: sh.build_receive_request(
            h, sh.ReceiveRequest(["stdout", "stderr"], COMMAND_ID, sequence_id=0)),
        "4.7.4-send-request": lambda: sh.build_send_request(h, [sh.StreamData("stdin", b"y\r\n", COMMAND_ID)]),
        "4.7.5-signal-request": lambda: sh.build_signal_request(h, sh.SignalRequest(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
            "3cb05d74-af20-4ff1-b318-2c6cc0f99045")),
        "4.7.6-enumerate-shells-request": lambda: m.build_enumerate_request(h, m.EnumerateRequest()),
        "4.7.6-pull-shells-request": lambda: m.build_pull_request(
            h, m.PullRequest("uuid:F2EF0F83-D6E5-4F70-8E6B-D870551A5D9A", max_elements=5)),
        "4.7.7-get-shell-request": lambda: m.build_get_request(h),
        "4.7.8-delete-shell-request": lambda: m.build_delete_request(h),
        "4.7.9-disconnect-request": lambda: sh.build_disconnect_request(h, sh.DisconnectRequest(idle_timeout=180.0)),
        "4.7.10-reconnect-request": lambda: sh.build_reconnect_request(h),
    }
    return env, builders[name]()


@pytest.mark.parametrize("name", [r[0] for r in SHELL_REQUESTS])
def test_4_7_builder_writes_the_example(name: str) -> None:
    env, data = _build(name)
    if name == "4.7.4-send-request":
        # Explicit difference: our Send writes End="false" on every rsp:Stream, the example omits the
        # optional attribute (MS-WSMV 2.2.4.40: End is an optional xs:boolean). Same meaning; the
        # rest must match exactly.
        assert data.count(b'End="false"') == 1
        data = data.replace(b' End="false"', b"")
    assert_equivalent(env, data)


def test_4_7_shell_request_bodies() -> None:
    assert sh.parse_create_shell_request(load("4.7.1-create-shell-request")) == sh.ShellSpec(
        environment={"test": "1"}, working_directory="d:\\windows", lifetime=1000.0,
        input_streams=["stdin"], output_streams=["stdout", "stderr"])
    assert sh.shell_options(load("4.7.1-create-shell-request").header) == sh.ShellOptions(no_profile=True, codepage=437)
    cmd = load("4.7.2-command-request")
    assert sh.shell_options(cmd.header) == sh.ShellOptions(console_mode_stdin=True, skip_cmd_shell=False)
    c = sh.parse_command_request(cmd)
    # rsp:Arguments is xs:string (2.2.4.7): the example's line breaks around the path are content
    assert (c.command, [a.strip() for a in c.arguments]) == ("del", ["/p", "d:\\temp\\out.txt"])
    assert sh.parse_receive_request(load("4.7.3-receive-request")) == sh.ReceiveRequest(
        ["stdout", "stderr"], COMMAND_ID, sequence_id=0)
    assert sh.parse_send_request(load("4.7.4-send-request")) == [sh.StreamData("stdin", b"y\r\n", COMMAND_ID)]
    sig = sh.parse_signal_request(load("4.7.5-signal-request"))
    assert sh.signal_name(sig.code) == "ctrl_c" and sig.command_id == "3cb05d74-af20-4ff1-b318-2c6cc0f99045"
    disc = load("4.7.9-disconnect-request")
    assert sh.parse_disconnect_request(disc) == sh.DisconnectRequest(idle_timeout=180.0)
    assert (disc.header.session_id, disc.header.data_locale, disc.header.operation_timeout) == (
        "uuid:4E41EC11-0D07-4465-8F84-2D463098A1C5", "en-US", 10.0)
    sh.parse_reconnect_request(load("4.7.10-reconnect-request"))


def test_4_7_shell_responses() -> None:
    created = sh.parse_create_shell_response(load("4.7.1-create-shell-response"))
    assert created.shell_id == "uuid:C443F44F-28E4-486F-A5A1-12745F90CF5A"
    assert created.epr.address == ANON and created.epr.resource_uri == CMD and created.shell is None
    assert load("4.7.1-create-shell-response").header.relates_to == "uuid:AF6A2E07-BA33-496E-8AFA-E77D241A2F2F"

    assert sh.parse_command_response(load("4.7.2-command-response")) == COMMAND_ID

    got = sh.parse_receive_response(load("4.7.3-receive-response"))
    assert [(s.name, s.command_id) for s in got.streams] == [("stdout", COMMAND_ID)]
    assert got.data("stdout") == base64.b64decode("ZDpcdGVtcFxvdXQudHh0LCBEZWxldGUgKFkvTik/IA==")
    assert got.data("stdout") == b"d:\\temp\\out.txt, Delete (Y/N)? "
    assert got.state == sh.CommandState(
        COMMAND_ID, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running", 0)
    assert not got.state.done
    rebuilt = sh.parse_receive_response(parse_envelope(sh.build_receive_response(
        "uuid:D384DEF8-351E-41F0-B3DA-C91BE1A58A09", got)))
    assert rebuilt == got

    for name, parse in [("4.7.4-send-response", sh.parse_send_response),
                        ("4.7.5-signal-response", sh.parse_signal_response),
                        ("4.7.9-disconnect-response", sh.parse_disconnect_response),
                        ("4.7.10-reconnect-response", sh.parse_reconnect_response)]:
        assert parse(load(name)) is None
    assert m.parse_delete_response(load("4.7.8-delete-shell-response")).header.relates_to == (
        "uuid:B1C2D82D-A3BC-42A8-9A61-0664003AA97C")

    er = m.parse_enumerate_response(load("4.7.6-enumerate-shells-response"))
    assert er == m.EnumerationItems(context="uuid:F2EF0F83-D6E5-4F70-8E6B-D870551A5D9A")
    for name, lifetime in [("4.7.6-pull-shells-response", 28737.0), ("4.7.7-get-shell-response", 27993.0)]:
        env = load(name)
        item = (m.parse_pull_response(env).items if "pull" in name else [m.parse_get_response(env).item])[0]
        assert item is not None
        shell = sh.read_shell(item)
        assert (shell.shell_id, shell.lifetime, shell.input_streams, shell.output_streams) == (
            "uuid:5B666291-0910-4E8F-B802-B697ACD7953D", lifetime, ["stdin"], ["stdout", "stderr"])
    assert m.parse_pull_response(load("4.7.6-pull-shells-response")).end_of_sequence


# =============================================================================== 4.9, 4.10
def test_4_9_selector_filter() -> None:
    env = load("4.9-selector-filter-enumerate-request")
    req = m.parse_enumerate_request(env)
    assert req == m.EnumerateRequest(filter_dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter",
                                     selector_filter={"StartMode": "Auto", "State": "Stopped"})
    assert env.header.max_envelope_size is None and env.header.operation_timeout is None
    assert_equivalent(env, m.build_enumerate_request(same_header(env), req))


def test_4_10_fault_detail() -> None:
    env = load("4.10-fault-get-request")
    req = m.parse_get_request(env)
    assert req.header.resource_uri == "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/win32_nosuchclass"
    assert_equivalent(env, m.build_get_request(same_header(env)))

    fenv = load("4.10-fault-response")
    assert is_fault(fenv)
    assert fenv.header.action == "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
    assert fenv.header.relates_to == "uuid:B2C3F241-1C90-4B91-9D66-EEA0DEB81879"
    f = parse_fault(fenv)
    # the subcode is kept as written: its prefix 'a' is not declared in the example (SPEC_INCONSISTENT)
    assert (f.code, f.subcode) == ("s:Sender", "a:DestinationUnreachable")
    assert " ".join(f.reason.split()) == ("The WS-Management service cannot process the request. The service "
                                          "cannot find the resource identified by the resource URI and selectors.")
    assert f.detail == "wsman:faultDetail/ResourceNotFound"  # abbreviated in the example, as published
    assert (f.wsman_code, f.machine) == (32768, "http://localhost:80/wsman")
    assert f.message is not None and " ".join(f.message.split()).startswith(
        "The WS-Management service cannot process the request.")


def test_expected_values_are_not_vacuous() -> None:
    """The comparison helper notices a changed value, a changed name and a changed namespace."""
    env = load("4.7.5-signal-request")
    data = sh.build_signal_request(same_header(env), sh.SignalRequest(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
        "3cb05d74-af20-4ff1-b318-2c6cc0f99045"))
    with pytest.raises(AssertionError):
        assert_equivalent(env, data)
    with pytest.raises(AssertionError):
        assert_equivalent(env, m.build_get_request(same_header(env, options=[Option("X", "1")])))
    a = etree.fromstring(f'<a:x xmlns:a="{RSP}"> v </a:x>')
    b = etree.fromstring(f'<x xmlns="{RSP}">v</x>')
    c = etree.fromstring(f'<x xmlns="{WSMAN}">v</x>')
    assert infoset(a) == infoset(b) != infoset(c)

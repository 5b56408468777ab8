"""Header/envelope round trips and xs:duration (DSP0226 5-6, MS-WSMV 2.2.4.x)."""

from __future__ import annotations

import pytest

from harness.wire.wsman.duration import format_duration, parse_duration
from harness.wire.wsman.envelope import build_envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference, Header, Option
from harness.wire.wsman.ns import RESOURCE_WMI_PREFIX, Action


def full_header() -> Header:
    return Header(
        action=Action.GET,
        to="http://server:5985/wsman",
        resource_uri=RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Service",
        message_id="uuid:11111111-2222-3333-4444-555555555555",
        relates_to="uuid:0",
        reply_to="http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous",
        fault_to="http://client/faults",
        selectors={
            "Name": "Spooler",
            "Ref": EndpointReference("http://x/wsman", RESOURCE_WMI_PREFIX + "root/cimv2/Win32_Foo",
                                     {"K": "v", "Inner": EndpointReference("a", "b", {"z": "1"})}),
        },
        options=[Option("WMI_QUERY", "select", "xs:string", True), Option("Nil", None)],
        options_must_comply=True,
        max_envelope_size=512000,
        operation_timeout=60.5,
        locale="en-US",
        data_locale="de-DE",
        session_id="uuid:s",
        operation_id="uuid:o",
        sequence_id=3,
        fragment_transfer="Name",
        request_total_items_count_estimate=True,
        total_items_count_estimate=42,
        must_understand={"Action", "ResourceURI", "ReplyTo", "MaxEnvelopeSize", "OptionSet", "To",
                         "FragmentTransfer", "RequestTotalItemsCountEstimate", "OperationTimeout", "SelectorSet",
                         "Locale"},
    )


def test_header_round_trip_every_field() -> None:
    h = full_header()
    env = parse_envelope(build_envelope(h))
    assert env.header == h
    assert env.unknown_must_understand == []


def test_default_header_round_trip() -> None:
    h = Header(action=Action.DELETE, resource_uri="urn:r")
    env = parse_envelope(build_envelope(h))
    assert env.header.action == Action.DELETE
    assert env.header.message_id == h.message_id
    assert env.header.must_understand == {"Action", "ResourceURI", "ReplyTo"}


def test_locale_is_written_must_understand_false() -> None:
    data = build_envelope(Header(action="a", locale="fr-FR", data_locale="fr-FR"))
    assert b'<w:Locale s:mustUnderstand="false" xml:lang="fr-FR"/>' in data
    assert b'<p:DataLocale s:mustUnderstand="false" xml:lang="fr-FR"/>' in data


def test_unknown_must_understand_headers_are_reported() -> None:
    data = build_envelope(Header(action="a")).replace(
        b"</s:Header>",
        b'<x:Foo xmlns:x="urn:x" s:mustUnderstand="true"/><x:Bar xmlns:x="urn:x" s:mustUnderstand="false"/>'
        b'<x:Baz xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header>')
    env = parse_envelope(data)
    assert env.unknown_must_understand == ["{urn:x}Foo", "{urn:x}Baz"]
    assert [e.tag for e in env.extra_headers] == ["{urn:x}Foo", "{urn:x}Bar", "{urn:x}Baz"]
    env2 = parse_envelope(data, understood_headers=frozenset({"{urn:x}Foo"}))
    assert env2.unknown_must_understand == ["{urn:x}Baz"]


def test_duplicate_selector_is_rejected() -> None:
    data = build_envelope(Header(action="a", selectors={"A": "1"})).replace(
        b'<w:Selector Name="A">1</w:Selector>',
        b'<w:Selector Name="A">1</w:Selector><w:Selector Name="A">2</w:Selector>')
    with pytest.raises(WSManDecodeError) as ei:
        parse_envelope(data)
    assert ei.value.fault == "InvalidSelectors"


def test_duplicate_action_header_is_rejected() -> None:
    data = build_envelope(Header(action="a")).replace(b"</s:Header>", b"<a:Action>b</a:Action></s:Header>")
    with pytest.raises(WSManDecodeError, match="duplicate Action"):
        parse_envelope(data)


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT60.000S", 60.0), ("PT60S", 60.0), ("P1DT2H", 93600.0), ("PT0.5S", 0.5), ("PT1M30.25S", 90.25),
    ("P0D", 0.0), ("-PT5S", -5.0), ("P1Y", 365 * 86400.0), ("P2M", 60 * 86400.0), ("PT.5S", 0.5),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "60", "PT1.S", "P1H", "PTS", "P1DT", "PT-5S", "P" + "9" * 30 + "D"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(WSManDecodeError):
        parse_duration(text)


def test_format_duration_like_windows() -> None:
    assert format_duration(60) == "PT60.000S"
    assert format_duration(0.25) == "PT0.250S"
    assert parse_duration(format_duration(12.345)) == pytest.approx(12.345)

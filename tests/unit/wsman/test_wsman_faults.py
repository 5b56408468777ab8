"""Fault catalogue: every fault builds, validates and parses back (DSP0226 14; MS-WSMV 2.2.4.x)."""

from __future__ import annotations

import pytest

from harness.validate import default_validator
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import FAULTS, FaultDetail, build_fault, is_fault, make_fault, parse_fault
from harness.wire.wsman.messages import build_get_response, build_identify_request
from harness.wire.wsman.ns import Action


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_every_fault_round_trips(name: str) -> None:
    nu = ["{urn:x}Foo"] if name in ("MustUnderstand", "NotUnderstood") else []
    fault = make_fault(name, machine="server", not_understood=nu)
    data = build_fault(fault, "uuid:req")
    assert default_validator().validate(data) == []
    env = parse_envelope(data)
    assert is_fault(env)
    assert env.header.relates_to == "uuid:req"
    assert parse_fault(env) == fault


def test_known_windows_codes() -> None:
    assert FAULTS["InvalidSelectors"].wsman_code == 2150858843
    assert FAULTS["DestinationUnreachable"].wsman_code == 2150858752
    assert FAULTS["TimedOut"].wsman_code == 2150858793
    assert FAULTS["SchemaValidationError"].wsman_code == 2150858817
    assert FAULTS["AccessDenied"].wsman_code == 5
    assert FAULTS["DestinationUnreachable"].action == Action.FAULT_ADDRESSING
    assert FAULTS["InvalidSelectors"].action == Action.FAULT_WSMAN


def test_encoding_limit_detail() -> None:
    f = make_fault("EncodingLimit")
    assert f.detail == FaultDetail.MAX_ENVELOPE_SIZE
    f2 = make_fault("InvalidSelectors", "missing key", detail=FaultDetail.INSUFFICIENT_SELECTORS, wsman_code=1)
    back = parse_fault(parse_envelope(build_fault(f2, None)))
    assert (back.detail, back.wsman_code, back.reason) == (FaultDetail.INSUFFICIENT_SELECTORS, 1, "missing key")


def test_version_mismatch_has_upgrade_header() -> None:
    data = build_fault(make_fault("VersionMismatch"), None)
    assert b"<s:Upgrade><s:SupportedEnvelope qname=\"s:Envelope\"/></s:Upgrade>" in data


def test_subcode_prefix_is_resolved() -> None:
    data = build_fault(make_fault("InvalidSelectors"), None).replace(
        b"<s:Value>w:InvalidSelectors</s:Value>",
        b'<s:Value xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">wsman:InvalidSelectors</s:Value>')
    assert parse_fault(parse_envelope(data)).subcode == "w:InvalidSelectors"


def test_not_a_fault() -> None:
    env = parse_envelope(build_identify_request())
    assert not is_fault(env)
    with pytest.raises(WSManDecodeError):
        parse_fault(env)
    from lxml import etree
    env2 = parse_envelope(build_get_response("u", etree.Element("{urn:x}X")))
    assert not is_fault(env2)


def test_bad_wsman_code_is_decode_error() -> None:
    data = build_fault(make_fault("TimedOut"), None).replace(b'Code="2150858793"', b'Code="abc"')
    with pytest.raises(WSManDecodeError):
        parse_fault(parse_envelope(data))

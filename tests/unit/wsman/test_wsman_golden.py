"""Golden Windows messages (MS-WSMV section 4 examples, transcribed) parse and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.validate import default_validator
from harness.wire.wsman import messages as m
from harness.wire.wsman.cimxml import element_to_properties
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.faults import is_fault, parse_fault
from harness.wire.wsman.ns import FILTER_WQL

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wsman"
FILES = sorted(GOLDEN.glob("*.xml"))


def test_golden_set_is_present() -> None:
    assert len(FILES) >= 14


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_parses_and_validates(path: Path) -> None:
    data = path.read_bytes()
    assert b"source: MS-WSMV" in data
    assert default_validator().validate(data) == []
    env = parse_envelope(data)
    assert env.unknown_must_understand == []


def load(name: str) -> Envelope:
    return parse_envelope((GOLDEN / name).read_bytes())


def test_golden_contents() -> None:
    assert m.parse_identify_response(load("identify-response.xml")).product_vendor == "Microsoft Corporation"
    m.parse_identify_request(load("identify-request.xml"))
    get = m.parse_get_request(load("get-request.xml"))
    assert get.header.selectors == {"Name": "Spooler"} and get.header.operation_timeout == 60.0
    assert get.header.sequence_id == 1 and get.header.data_locale == "en-US"
    resp = m.parse_get_response(load("get-response.xml"))
    assert resp.item is not None and element_to_properties(resp.item)["InstallDate"] is None
    enum = m.parse_enumerate_request(load("enumerate-request.xml"))
    assert enum.filter_dialect == FILTER_WQL and enum.optimize and enum.max_elements == 32000
    er = m.parse_enumerate_response(load("enumerate-response.xml"))
    assert er.end_of_sequence and len(er.items) == 1
    assert m.parse_pull_request(load("pull-request.xml")).max_elements == 20
    pr = m.parse_pull_response(load("pull-response.xml"))
    assert pr.context is None and pr.end_of_sequence and pr.epr_items[0] is not None
    assert m.parse_release_request(load("release-request.xml")).context.startswith("uuid:")
    assert m.parse_invoke_request(load("invoke-request.xml")).method == "StartService"
    assert m.parse_invoke_response(load("invoke-response.xml")).return_value == "10"
    cr = m.parse_create_response(load("create-response-shell.xml"))
    assert cr.epr.selectors == {"ShellId": "0D1F2E3C-4B5A-6978-8796-A5B4C3D2E1F0"} and cr.item is not None
    du = load("fault-destination-unreachable.xml")
    assert is_fault(du)
    f = parse_fault(du)
    assert (f.subcode, f.wsman_code) == ("a:DestinationUnreachable", 2150858752)
    assert f.message is not None and "CIMWin32" in f.message
    assert parse_fault(load("fault-invalid-selectors.xml")).wsman_code == 2150858843
    assert parse_fault(load("fault-timed-out.xml")).code == "s:Receiver"

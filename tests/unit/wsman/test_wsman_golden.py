"""Golden WS-Man messages that are NOT transcribed from the specification text.

These files were reconstructed from memory of Windows messages; no [MS-WSMV] example covers them
(Identify, a WQL-filtered optimized Enumerate, an EnumerateObjectAndEPR PullResponse, Release and two
Windows faults), so their values are unverified (observed Windows behaviour at best). The messages
that MS-WSMV section 4 does show are in ``spec/`` and tested by ``test_wsman_golden_spec.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.validate import default_validator
from harness.wire.wsman import messages as m
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.faults import parse_fault
from harness.wire.wsman.ns import FILTER_WQL

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wsman"
FILES = sorted(GOLDEN.glob("*.xml"))


def test_golden_set_is_present() -> None:
    assert [p.name for p in FILES] == [
        "enumerate-request.xml", "fault-invalid-selectors.xml", "fault-timed-out.xml",
        "identify-request.xml", "identify-response.xml", "pull-response.xml", "release-request.xml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_parses_and_validates(path: Path) -> None:
    data = path.read_bytes()
    assert b"NOT FROM THE SPECIFICATION TEXT" in data  # provenance is stated, not implied
    assert default_validator().validate(data) == []
    env = parse_envelope(data)
    assert env.unknown_must_understand == []


def load(name: str) -> Envelope:
    return parse_envelope((GOLDEN / name).read_bytes())


def test_golden_contents() -> None:
    assert m.parse_identify_response(load("identify-response.xml")).product_vendor == "Microsoft Corporation"
    m.parse_identify_request(load("identify-request.xml"))
    enum = m.parse_enumerate_request(load("enumerate-request.xml"))
    assert enum.filter_dialect == FILTER_WQL and enum.optimize and enum.max_elements == 32000
    pr = m.parse_pull_response(load("pull-response.xml"))
    assert pr.context is None and pr.end_of_sequence and pr.epr_items[0] is not None
    assert m.parse_release_request(load("release-request.xml")).context.startswith("uuid:")
    assert parse_fault(load("fault-invalid-selectors.xml")).wsman_code == 2150858843
    assert parse_fault(load("fault-timed-out.xml")).code == "s:Receiver"

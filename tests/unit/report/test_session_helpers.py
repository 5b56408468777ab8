"""Expected-failure matching, sanity ordering, outcome notes, shards and xdist target groups."""

from __future__ import annotations

from pathlib import Path

from harness.report import CaseResult
from harness.report.fleet import target_of
from harness.report.session import (
    OutcomeRecorder,
    clear_shards,
    expected_failure_entry,
    read_shards,
    sanity_rank,
    write_shard,
)

NODE = "suites/wsman/test_identify.py::test_unauthenticated_identify_is_answered[win-a]"


def test_expected_failures_match_by_requirement_or_node_id():
    assert expected_failure_entry(["WSMV-IDENT-2"], NODE, ["WSMV-IDENT-2"]) == "WSMV-IDENT-2"
    assert expected_failure_entry(["WSMV-IDENT-1"], NODE, ["WSMV-IDENT-2"]) is None
    base = "suites/wsman/test_identify.py::test_unauthenticated_identify_is_answered"
    assert expected_failure_entry([base], NODE, []) == base
    assert expected_failure_entry([NODE], NODE, []) == NODE
    assert expected_failure_entry([base + "[other]"], NODE, []) is None
    assert expected_failure_entry(["wsman/test_identify.py::test_unauthenticated_identify_is_answered"], NODE, [])
    assert expected_failure_entry(["test_unauthenticated_identify_is_answered"], NODE, []) is None
    assert expected_failure_entry([base], NODE + "@win-a", []) == base


def test_sanity_cases_open_and_close_the_run():
    assert sanity_rank("suites/test_000_sanity.py::test_x[mock]") == 0
    assert sanity_rank("suites/test_zzz_sanity.py::test_y[mock]") == 2
    assert sanity_rank("suites/wsman/test_identify.py::test_z[mock]") == 1


def test_outcome_recorder_is_bounded():
    rec = OutcomeRecorder(max_notes=2)
    rec("CannotProcessFilter", "malformed WQL")
    rec("InvalidParameter")
    rec("dropped")
    assert rec.notes == ["CannotProcessFilter: malformed WQL", "InvalidParameter"]


def test_shards_are_written_per_worker_and_merged(tmp_path: Path):
    a = CaseResult("suites/t.py::test_a[m1]", "test_a[m1]", "m1", "passed", worker="gw0")
    b = CaseResult("suites/t.py::test_a[m2]", "test_a[m2]", "m2", "failed", worker="gw1")
    write_shard([a], tmp_path, "gw0")
    write_shard([b], tmp_path, "gw/1")
    merged = read_shards(tmp_path)
    assert [(c.target, c.verdict, c.worker) for c in merged] == [("m1", "PASS", "gw0"), ("m2", "FAIL", "gw1")]
    clear_shards(tmp_path)
    assert read_shards(tmp_path) == []
    assert read_shards(tmp_path / "missing") == []


def test_xdist_groups_are_the_targets():
    targets = ["mock", "mock-b", "win"]
    assert target_of("suites/a.py::test_x[mock-b]", targets) == "mock-b"
    assert target_of("suites/a.py::test_x[mock]", targets) == "mock"
    assert target_of("suites/a.py::test_x[win-basic]", targets) == "win"
    assert target_of("suites/a.py::test_x[ntlm-mock-b]", targets) == "mock-b"
    assert target_of("suites/a.py::test_x[mock]@grp", targets) == "grp"
    assert target_of("tests/a.py::test_plain", targets) is None
    assert target_of("tests/a.py::test_x[other]", targets) is None

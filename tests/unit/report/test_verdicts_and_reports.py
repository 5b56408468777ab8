"""Verdicts (levels, expected failures), merging, HTML, JUnit and ``wmh report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree, html

from harness.cli import main as wmh
from harness.report import CaseResult, merge_result_files, read_bundle, render_junit, render_matrix, write_reports
from harness.report.catalogue import Requirement
from harness.report.results import merge_results, verdict_of, worst
from harness.transport.tap import Exchange

REQS = {
    "T-MUST-1": Requirement("T-MUST-1", "MUST", "must statement", ("MS-WSMV 3.1.4.10",)),
    "T-SHOULD-1": Requirement("T-SHOULD-1", "SHOULD", "should statement", ("MS-WSMV 3.1.4.16",)),
}


def _case(name: str, outcome: str, target: str = "mock", *, reqs: tuple[str, ...] = ("T-MUST-1",),
          level: str | None = "MUST", xfail: bool = False, message: str | None = None) -> CaseResult:
    body = b"<s:Envelope xmlns:s='urn:x'><s:Body>" + name.encode() + b"</s:Body></s:Envelope>"
    wire = [Exchange(test_id=name, protocol="wsman", direction="request", peer="p", timestamp=1.0,
                     headers={}, body=body)]
    return CaseResult(nodeid=f"suites/t.py::{name}[{target}]", name=name, target=target, outcome=outcome,  # type: ignore[arg-type]
                      specs=["MS-WSMV 3.1.4.10"], message=message, wire=wire, requirements=list(reqs),
                      level=level, expected_failure=xfail, observations=["CannotProcessFilter: subcode seen"])


@pytest.mark.parametrize(("outcome", "level", "xfail", "message", "expected"), [
    ("passed", "MUST", False, None, "PASS"),
    ("passed", "MUST", True, None, "XPASS-ALARM"),
    ("failed", "MUST", False, None, "FAIL"),
    ("failed", None, False, None, "FAIL"),
    ("failed", "SHOULD", False, None, "NON-STRICT"),
    ("failed", "OBSERVED", False, None, "NON-STRICT"),
    ("failed", "MAY", False, None, "INFORMATIONAL"),
    ("failed", "MUST", True, None, "XFAIL"),
    ("error", "SHOULD", False, None, "ERROR"),
    ("skipped", "MUST", False, "not supported: target x lacks put", "NOT-SUPPORTED"),
    ("skipped", "MUST", False, "other reason", "SKIPPED"),
])
def test_verdict_rules(outcome: str, level: str | None, xfail: bool, message: str | None, expected: str):
    assert verdict_of(outcome, level, xfail, message) == expected


def test_worst_verdict_order():
    assert worst(["PASS", "NON-STRICT", "XFAIL"]) == "NON-STRICT"
    assert worst(["FAIL", "XPASS-ALARM"]) == "XPASS-ALARM"
    assert worst(["PASS", "NOT-SUPPORTED"]) == "PASS"
    assert worst([]) == "SKIPPED"


def test_merge_keeps_the_worst_verdict_of_a_repeated_case():
    a = [_case("x", "passed"), _case("y", "passed", target="win")]
    b = [_case("x", "failed", message="boom")]
    merged = merge_results([a, b])
    assert [(c.target, c.name, c.verdict) for c in merged] == [("mock", "x", "FAIL"), ("win", "y", "PASS")]


def test_html_has_a_requirement_by_target_matrix_with_levels_and_case_sections(tmp_path: Path):
    results = [
        _case("a", "passed"),
        _case("b", "failed", target="win", message="<script>x</script>"),
        _case("c", "failed", reqs=("T-SHOULD-1",), level="SHOULD"),
        _case("d", "failed", target="win", reqs=("T-SHOULD-1",), level="SHOULD", xfail=True),
        _case("e", "passed", target="win", reqs=()),
    ]
    doc = html.fromstring(render_matrix(results, requirements=REQS))
    assert doc.xpath("//table[@id='requirements']/thead/tr/th[@class='target']/text()") == ["mock", "win"]
    rows = {r.xpath("th")[0].text: r for r in doc.xpath("//table[@id='requirements']/tbody/tr")}
    assert list(rows) == ["T-MUST-1", "T-SHOULD-1", "(unmapped)"]
    must = rows["T-MUST-1"].xpath("td")
    assert must[0].text == "MUST" and must[1].text == "must statement"
    assert [td.get("class") for td in must[3:]] == ["PASS", "FAIL"]
    assert [td.get("class") for td in rows["T-SHOULD-1"].xpath("td")[3:]] == ["NON-STRICT", "XFAIL"]
    link = rows["T-MUST-1"].xpath("td[5]/a/@href")[0]
    section = doc.xpath(f"//div[@id='{link[1:]}']")[0]
    assert "FAIL" in section.text_content() and "<script>" in section.text_content()
    assert "<script>" not in render_matrix(results, requirements=REQS).split("<body>", 1)[1].replace(
        "&lt;script&gt;", "")
    assert "Observed: CannotProcessFilter" in doc.text_content()
    assert doc.xpath("//table[@id='matrix']/tbody/tr/th/text()") == ["MS-WSMV 3.1.4.10"]


def test_junit_maps_verdicts_per_target():
    results = [_case("a", "passed"), _case("b", "failed", message="m"), _case("c", "passed", target="win", xfail=True),
               _case("d", "failed", target="win", reqs=("T-SHOULD-1",), level="SHOULD")]
    root = etree.fromstring(render_junit(results))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["mock"].get("failures") == "1" and suites["mock"].get("tests") == "2"
    assert suites["win"].get("failures") == "1"  # XPASS-ALARM
    win_cases = suites["win"].findall("testcase")
    assert win_cases[0].find("failure").get("message").startswith("XPASS-ALARM")
    assert win_cases[1].find("failure") is None  # NON-STRICT passes in JUnit, verdict kept as a property
    assert win_cases[1].find("properties/property[@name='verdict']").get("value") == "NON-STRICT"


def test_bundle_round_trip_merge_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_reports([_case("a", "passed"), _case("c", "failed", reqs=("T-SHOULD-1",), level="SHOULD")],
                  tmp_path / "s1", REQS)
    write_reports([_case("a", "passed", target="win")], tmp_path / "s2", REQS)
    bundle = read_bundle(tmp_path / "s1" / "results.json")
    assert set(bundle.requirements) == {"T-MUST-1", "T-SHOULD-1"}
    assert bundle.results[1].observations == ["CannotProcessFilter: subcode seen"]
    merged = merge_result_files([tmp_path / "s1" / "results.json", tmp_path / "s2" / "results.json"])
    assert {r.target for r in merged.results} == {"mock", "win"} and not merged.failed

    out = tmp_path / "merged"
    code = wmh(["report", "merge", str(tmp_path / "s1" / "results.json"), str(tmp_path / "s2" / "results.json"),
                "--out", str(out), "--allure"])
    assert code == 0  # NON-STRICT does not fail the run
    assert "allure generate skipped" in capsys.readouterr().err
    doc = html.fromstring((out / "matrix.html").read_text())
    assert doc.xpath("//table[@id='requirements']/thead/tr/th[@class='target']/text()") == ["mock", "win"]
    assert json.loads((out / "results.json").read_text())["requirements"]["T-SHOULD-1"]["level"] == "SHOULD"

    write_reports([_case("z", "failed")], tmp_path / "s3", REQS)
    assert wmh(["report", "html", str(tmp_path / "s3" / "results.json"), "--out", str(tmp_path / "r3")]) == 1
    assert (tmp_path / "r3" / "junit-conformance.xml").is_file()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not a wm-harness results file"):
        wmh(["report", "html", str(tmp_path / "bad.json"), "--out", str(tmp_path / "r4")])

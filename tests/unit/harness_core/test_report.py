from __future__ import annotations

from pathlib import Path

from lxml import html

from harness.report import CaseResult, read_results_json, write_reports
from harness.transport.tap import Exchange


def _case(name: str, outcome: str, target: str = "mock", message: str | None = None) -> CaseResult:
    wire = [Exchange(test_id=name, protocol="wsman", direction="request", peer="p", timestamp=1.0,
                     headers={}, body=b"<a><b>&lt;x</b></a>")]
    return CaseResult(nodeid=f"suites/t.py::{name}", name=name, target=target, outcome=outcome,  # type: ignore[arg-type]
                      specs=["MS-WMOD 3.2", "MS-WSMV 3.1.4.10"], message=message, wire=wire)


def test_matrix_shows_the_worst_verdict_per_section_and_target(tmp_path: Path):
    results = [
        _case("a", "passed"),
        _case("b", "failed", message="boom <script>"),
        _case("c", "skipped", target="win", message="not supported: target win lacks put"),
    ]
    write_reports(results, tmp_path)
    doc = html.fromstring((tmp_path / "matrix.html").read_text())
    rows = doc.xpath("//table[@id='matrix']/tbody/tr")
    assert [r.xpath("th")[0].text for r in rows] == ["MS-WMOD 3.2", "MS-WSMV 3.1.4.10"]
    cells = rows[0].xpath("td")
    assert cells[0].get("class") == "FAIL"          # mock: one pass, one fail
    assert cells[1].get("class") == "NOT-SUPPORTED"  # win: capability missing
    assert "<script>" not in (tmp_path / "matrix.html").read_text()
    assert doc.xpath("//pre")[0].text_content().strip().startswith("<a>")


def test_results_json_round_trips(tmp_path: Path):
    results = [_case("a", "passed"), _case("b", "failed", message="m")]
    write_reports(results, tmp_path)
    back = read_results_json(tmp_path / "results.json")
    assert [(r.name, r.outcome, r.wire[0].body) for r in back] == [(r.name, r.outcome, r.wire[0].body) for r in results]

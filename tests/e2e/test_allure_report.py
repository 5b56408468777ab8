"""The allure HTML report: ``wmh run --allure-report`` on a few suite cases writes allure results with
requirement, level and severity labels, the allure command line turns them into a report whose data
counts every case, and ``wmh report html --allure`` regenerates it. Skips when the allure command
line (``.ci/run`` installs the npm package allure-commandline into ``.tools/``) or Java is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main as wmh
from harness.report.allure import (
    REPORT_DIR,
    RESULTS_DIR,
    SEVERITY,
    find_allure,
    generate_report,
    requirement_labels,
    severity_of,
)
from harness.report.catalogue import LEVELS

REPO = Path(__file__).resolve().parents[2]
SELECTION = "identify or enumeration"


def _need_allure() -> Path:
    exe = find_allure([REPO])
    if exe is None:
        pytest.skip("the allure command line is not installed (.ci/run: npm install --prefix .tools "
                    "allure-commandline@2)")
    if shutil.which("java") is None:
        pytest.skip("allure needs a Java runtime (Debian: apt-get install -y default-jre-headless)")
    return exe


def _labels(case: dict[str, object], name: str) -> list[str]:
    labels = case.get("labels", [])
    assert isinstance(labels, list)
    return [str(lbl["value"]) for lbl in labels if lbl["name"] == name]


def test_severity_follows_the_requirement_level():
    assert set(SEVERITY) == set(LEVELS)
    assert [severity_of(level) for level in ("MUST", "SHOULD", "MAY", "OBSERVED")] == [
        "critical", "normal", "minor", "minor"]
    assert severity_of(None) is None
    assert requirement_labels(["A-B-1", "A-B-2"], "SHOULD") == [
        ("requirement", "A-B-1"), ("requirement", "A-B-2"), ("level", "SHOULD"), ("severity", "normal")]
    assert requirement_labels([], None) == []


def test_generation_skips_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = generate_report(tmp_path / RESULTS_DIR, tmp_path / REPORT_DIR)
    assert not run.generated and "no allure-results/" in run.reason
    (tmp_path / RESULTS_DIR).mkdir()
    monkeypatch.setattr("harness.report.allure.find_allure", lambda roots=(): None)
    run = generate_report(tmp_path / RESULTS_DIR, tmp_path / REPORT_DIR)
    assert not run.generated and "not installed" in run.reason
    assert not (tmp_path / REPORT_DIR).exists()


def test_allure_report_counts_the_cases_and_carries_requirement_labels(tmp_path: Path):
    _need_allure()
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--reports", str(reports), "--allure-report",
         "--", "-k", SELECTION],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "allure report written" in proc.stdout, proc.stdout[-2000:]

    cases = json.loads((reports / "results.json").read_text())["cases"]
    assert len(cases) >= 5
    expected = {c["name"]: c for c in cases}

    report = reports / REPORT_DIR
    summary = json.loads((report / "widgets" / "summary.json").read_text())
    assert summary["statistic"]["total"] == len(cases)
    assert summary["statistic"]["passed"] == sum(c["verdict"] == "PASS" for c in cases)

    generated = [json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json")]
    assert sorted(g["name"] for g in generated) == sorted(expected)
    for case in generated:
        want = expected[case["name"]]
        assert _labels(case, "requirement") == want["requirements"], case["name"]
        level = want["level"]
        assert _labels(case, "level") == ([level] if level else []), case["name"]
        assert _labels(case, "severity") == ([SEVERITY[level]] if level else ["normal"]), case["name"]
        assert _labels(case, "spec") == want["specs"], case["name"]
    assert {"critical", "normal"} <= {_labels(c, "severity")[0] for c in generated}

    # the severity widget is built from the same labels
    widget = json.loads((report / "widgets" / "severity.json").read_text())
    assert {w["name"]: w["severity"] for w in widget} == {
        n: SEVERITY[c["level"]] if c["level"] else "normal" for n, c in expected.items()}

    # ``wmh report html --allure`` regenerates the report from the same directory
    shutil.rmtree(report)
    assert wmh(["report", "html", str(reports / "results.json"), "--out", str(reports), "--allure"]) == 0
    again = json.loads((report / "widgets" / "summary.json").read_text())
    assert again["statistic"]["total"] == len(cases)


def _result(results: Path, name: str, status: str, start: int) -> None:
    """One allure result as allure-pytest writes it (the fields the trend needs)."""
    case = {"uuid": f"{name}-{start}", "historyId": name, "testCaseId": name, "fullName": name, "name": name,
            "status": status, "stage": "finished", "start": start, "stop": start + 5, "labels": []}
    (results / f"{name}-{start}-result.json").write_text(json.dumps(case))


def test_trend_carries_over_between_runs_into_the_same_report(tmp_path: Path):
    exe = _need_allure()
    results, report = tmp_path / RESULTS_DIR, tmp_path / REPORT_DIR
    for run, statuses in enumerate([("passed", "failed"), ("passed", "passed")]):
        shutil.rmtree(results, ignore_errors=True)
        results.mkdir()
        for name, status in zip(("case_a", "case_b"), statuses, strict=True):
            _result(results, name, status, 1_700_000_000_000 + run * 1000)
        generated = generate_report(results, report, exe=exe)
        assert generated.generated, generated.reason
    trend = json.loads((report / "widgets" / "history-trend.json").read_text())
    assert [entry["data"]["passed"] for entry in trend] == [2, 1], "newest run first, then the earlier one"
    assert [entry["data"]["failed"] for entry in trend] == [0, 1]

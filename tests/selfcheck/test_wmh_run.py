"""The README's main job: ``wmh run`` against the built-in mock writes every report and passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from lxml import html

REPO = Path(__file__).resolve().parents[2]


def test_wmh_run_against_the_mock_passes_and_writes_reports(tmp_path: Path):
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--reports", str(reports)],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((reports / "results.json").read_text())["cases"]
    assert len(results) >= 20
    assert {c["verdict"] for c in results} == {"PASS"}, [c["name"] for c in results if c["verdict"] != "PASS"]
    assert all(c["wire"] for c in results), "every case carries its wire evidence"
    wire_text = json.dumps(results)
    assert "Basic [REDACTED]" in wire_text or "Authorization" not in wire_text

    junit = ElementTree.parse(reports / "junit.xml").getroot()
    suite = junit if junit.tag == "testsuite" else junit.find("testsuite")
    assert suite is not None and int(suite.get("failures", "1")) == 0 and int(suite.get("tests", "0")) >= 20

    allure = list((reports / "allure-results").glob("*-result.json"))
    assert len(allure) == len(results)
    labelled = [json.loads(p.read_text()) for p in allure]
    assert all(any(lbl["name"] == "spec" for lbl in r["labels"]) for r in labelled)

    doc = html.fromstring((reports / "matrix.html").read_text())
    sections = doc.xpath("//table[@id='matrix']/tbody/tr/th/text()")
    for expected in ("MS-WMOD 3.1", "MS-WMOD 3.2", "MS-WMOD 2.5.2.1", "MS-WMOD 2.5.2.7"):
        assert expected in sections
    assert set(doc.xpath("//table[@id='matrix']/tbody/tr/td/@class")) == {"PASS"}


def test_no_credentials_leak_into_reports(tmp_path: Path):
    reports = tmp_path / "reports"
    env = {"WMH_MOCK_PASSWORD": "Leak-Canary-1234", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--reports", str(reports), "--", "-k", "identify or get"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for path in reports.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Leak-Canary-1234" not in data, f"password leaked into {path.name}"
            assert b"d21oOkxlYWstQ2FuYXJ5LTEyMzQ" not in data, f"Basic token leaked into {path.name}"

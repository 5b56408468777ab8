"""The HTML report renders in a real browser: headless Chromium dumps the DOM of matrix.html and the
conformance tables are there with the expected rows (no scripts or external assets are needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import html

from harness.report import CaseResult, write_reports
from harness.transport.tap import Exchange

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium found (Debian: apt-get install -y chromium; .ci/run installs it)")


def _results() -> list[CaseResult]:
    wire = [Exchange(test_id="t", protocol="wsman", direction="request", peer="127.0.0.1:5985", timestamp=1.0,
                     headers={}, body=b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'/>")]
    enum = "suites/wsman/test_example2_enumeration.py::"
    return [
        CaseResult(enum + "test_pull_with_a_forged_context_is_a_fault[mock]", "forged", "mock", "passed",
                   specs=["MS-WSMV 3.1.4.11"], requirements=["WSMV-ENUM-3"], level="MUST", wire=wire),
        CaseResult(enum + "test_pull_with_a_forged_context_is_a_fault[win]", "forged", "win", "failed",
                   specs=["MS-WSMV 3.1.4.11"], requirements=["WSMV-ENUM-3"], level="MUST", message="boom"),
        CaseResult(enum + "test_optimized_enumeration_returns_the_same_set[win]", "opt", "win", "failed",
                   specs=["MS-WSMV 3.1.4.10"], requirements=["WSMV-ENUM-2"], level="SHOULD", message="x"),
        CaseResult(enum + "test_optimized_enumeration_returns_the_same_set[mock]", "opt", "mock", "passed",
                   specs=["MS-WSMV 3.1.4.10"], requirements=["WSMV-ENUM-2"], level="SHOULD",
                   observations=["optimized: 3 round trips"]),
    ]


def test_matrix_renders_in_headless_chromium(tmp_path: Path):
    browser = _browser()
    write_reports(_results(), tmp_path / "reports")
    page = (tmp_path / "reports" / "matrix.html").resolve()
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = html.fromstring(proc.stdout)
    rows = doc.xpath("//table[@id='requirements']/tbody/tr")
    assert [r.xpath("th")[0].text_content() for r in rows] == ["WSMV-ENUM-2", "WSMV-ENUM-3"]
    assert doc.xpath("//table[@id='requirements']/thead/tr/th[@class='target']/text()") == ["mock", "win"]
    cells = {r.xpath("th")[0].text_content(): [td.get("class") for td in r.xpath("td")[3:]] for r in rows}
    assert cells == {"WSMV-ENUM-2": ["PASS", "NON-STRICT"], "WSMV-ENUM-3": ["PASS", "FAIL"]}
    assert [r.xpath("th")[0].text_content() for r in doc.xpath("//table[@id='matrix']/tbody/tr")] == [
        "MS-WSMV 3.1.4.10", "MS-WSMV 3.1.4.11"]
    assert len(doc.xpath("//div[@class='case']")) == 4

"""--wm-reports writes captures/<test>.pcapng per suite case and captures/all.pcapng, linked from the reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.capture.check import check_capture
from harness.report.html import render_matrix
from harness.report.results import CaseResult, results_from_json, results_to_json

SUITE = '''
import pytest

@pytest.mark.spec("MS-WSMV 3.1.4.16")
async def test_identify(wsman):
    await wsman.identify()

@pytest.mark.spec("MS-WSMV 3.1.4.8")
async def test_missing_instance_is_a_fault(wsman):
    from harness.client.resources import wmi_uri
    from harness.wire.wsman.faults import WSManFault
    with pytest.raises(WSManFault):
        await wsman.get(wmi_uri("Win32_Service"), {"Name": "NoSuchService_WMH"})
'''


def test_reports_dir_gets_one_capture_per_case_and_the_session(tmp_path: Path):
    (tmp_path / "test_tiny_suite.py").write_text(SUITE)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_tiny_suite.py", "-q", "-p", "no:cacheprovider",
                           "-o", "asyncio_mode=auto", f"--wm-reports={reports}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cases = json.loads((reports / "results.json").read_text())["cases"]
    assert len(cases) == 2
    html = (reports / "matrix.html").read_text()
    for case in cases:
        capture = case["capture"]
        assert capture.startswith("captures/") and capture.endswith(".pcapng")
        assert f"href='{capture}'" in html
        report = check_capture(reports / capture)
        assert report.passed and len(report.messages) == len(case["wire"]) == 2
    session = check_capture(reports / "captures" / "all.pcapng")
    assert session.passed and len(session.messages) == 4 and session.streams == 2


def test_capture_field_round_trips_and_old_results_still_load():
    result = CaseResult("a::b[mock]", "b", "mock", "passed", capture="captures/x.pcapng")
    [back] = results_from_json(results_to_json([result]))
    assert back.capture == "captures/x.pcapng"
    data = results_to_json([CaseResult("a::c[mock]", "c", "mock", "passed")])
    del data["cases"][0]["capture"]
    assert results_from_json(data)[0].capture is None
    assert "captures/x.pcapng" in render_matrix([result])

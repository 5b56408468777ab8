"""The plugin end to end on a small throw-away suite: requirement levels, expected failures per
target (XFAIL, XPASS-ALARM with a non-zero exit), ``wm_outcome`` notes and ``url = "mock"`` fleets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SUITE = '''
import pytest

def test_passes(wm_target, wm_outcome):
    wm_outcome("variant-A", "the first of two allowed outcomes")
    assert wm_target.is_mock and wm_target.url.startswith("http://127.0.0.1:")

def test_fails(wm_target):
    assert False, "known defect"

@pytest.mark.requirement("WSMV-IDENT-2")
def test_should(wm_target):
    assert False, "a SHOULD is not met"
'''

INVENTORY = '''
[[target]]
name = "m1"
url = "mock"
expected_failures = ["test_mod.py::test_fails"]

[[target]]
name = "m2"
url = "mock"
expected_failures = ["test_mod.py::test_passes"]
'''


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[tuple[str, str], dict]]:
    (tmp_path / "test_mod.py").write_text(SUITE)
    (tmp_path / "inv.toml").write_text(INVENTORY)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mod.py",
                           "--wm-inventory", "inv.toml", "--wm-reports", str(reports), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    cases = {}
    if (reports / "results.json").is_file():
        cases = {(c["target"], c["name"].split("[")[0]): c
                 for c in json.loads((reports / "results.json").read_text())["cases"]}
    return proc, cases


def test_expected_failures_levels_and_outcome_notes(tmp_path: Path):
    proc, cases = _run(tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    verdicts = {k: c["verdict"] for k, c in cases.items()}
    assert verdicts == {
        ("m1", "test_passes"): "PASS", ("m1", "test_fails"): "XFAIL", ("m1", "test_should"): "NON-STRICT",
        ("m2", "test_passes"): "XPASS-ALARM", ("m2", "test_fails"): "FAIL", ("m2", "test_should"): "NON-STRICT",
    }
    assert cases[("m1", "test_passes")]["observations"] == ["variant-A: the first of two allowed outcomes"]
    assert cases[("m1", "test_should")]["requirements"] == ["WSMV-IDENT-2"]
    assert cases[("m1", "test_should")]["level"] == "SHOULD"
    assert "known defect" in cases[("m1", "test_fails")]["message"]
    assert cases[("m1", "test_passes")]["wire"] == []  # no messages were sent by this case
    html = (tmp_path / "reports" / "matrix.html").read_text()
    assert "XPASS-ALARM" in html and "WSMV-IDENT-2" in html


def test_a_run_whose_only_failures_are_expected_passes(tmp_path: Path):
    proc, cases = _run(tmp_path, "-k", "not should", "--deselect", "test_mod.py::test_passes[m2]",
                       "--deselect", "test_mod.py::test_fails[m2]")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {c["verdict"] for c in cases.values()} == {"PASS", "XFAIL"}


def test_unknown_requirement_ids_are_a_usage_error(tmp_path: Path):
    (tmp_path / "test_bad.py").write_text(
        "import pytest\n@pytest.mark.requirement('NOPE-1')\ndef test_x(wm_target):\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bad.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "unknown requirement 'NOPE-1'" in proc.stderr


def test_unknown_profile_is_a_usage_error(tmp_path: Path):
    (tmp_path / "test_ok.py").write_text("def test_x(wm_target):\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ok.py",
                           "--wm-profile", "nope"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 4 and "unknown capability profile" in proc.stderr


def test_profile_narrows_the_capabilities_of_a_url_target(tmp_path: Path):
    (tmp_path / "test_caps.py").write_text(
        "import pytest\n"
        "@pytest.mark.requires('put')\n"
        "def test_needs_put(wm_target):\n    pass\n")
    reports = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_caps.py",
                           "--wm-target", "http://127.0.0.1:9/wsman", "--wm-profile", "read-only",
                           "--wm-reports", str(reports)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:]
    case = json.loads((reports / "results.json").read_text())["cases"][0]
    assert case["verdict"] == "NOT-SUPPORTED" and "lacks put" in case["message"]

"""A fleet of two mock targets (``url = "mock"``) runs in parallel under pytest-xdist
(``-n 2 --dist loadgroup``): one worker per target, each with its own mock, one merged report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import html

from harness.capture.reader import read_frames

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("xdist", reason="pytest-xdist is not installed (pip install -e '.[test]')")

INVENTORY = '''
[[target]]
name = "fleet-a"
url = "mock"

[[target]]
name = "fleet-b"
url = "mock"
'''


def test_two_mock_targets_run_on_two_workers_into_one_report(tmp_path: Path):
    (tmp_path / "fleet.toml").write_text(INVENTORY)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
         "--wm-inventory", str(tmp_path / "fleet.toml"), "--wm-reports", str(reports),
         "-k", "identify or sanity or forged_context or release_ends"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    cases = json.loads((reports / "results.json").read_text())["cases"]
    by_target: dict[str, list[dict]] = {}
    for c in cases:
        by_target.setdefault(c["target"], []).append(c)
    assert set(by_target) == {"fleet-a", "fleet-b"}
    assert len(by_target["fleet-a"]) == len(by_target["fleet-b"]) >= 5
    workers = {t: {c["worker"] for c in cs} for t, cs in by_target.items()}
    assert all(len(w) == 1 for w in workers.values()), workers  # a target stays on one worker
    assert workers["fleet-a"] != workers["fleet-b"], workers    # the two targets ran in parallel
    assert {c["verdict"] for c in cases} == {"PASS"}
    assert all(c["wire"] for c in cases), "every case carries its own mock's traffic"
    assert sorted(p.name for p in (reports / "shards").glob("*.json")) == ["gw0.json", "gw1.json"]

    # each worker wrote its own whole-session capture; the controller merged them in time order
    captures = reports / "captures"
    worker_files = sorted(p.name for p in captures.glob("all-*.pcapng"))
    assert worker_files == ["all-gw0.pcapng", "all-gw1.pcapng"], worker_files
    merged = read_frames(captures / "all.pcapng")
    assert len(merged) == sum(len(read_frames(captures / name)) for name in worker_files) > 0
    assert [f.timestamp_us for f in merged] == sorted(f.timestamp_us for f in merged)
    check = subprocess.run([sys.executable, "-m", "harness.cli", "check-pcap", str(captures / "all.pcapng")],
                           cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]

    doc = html.fromstring((reports / "matrix.html").read_text())
    assert doc.xpath("//table[@id='requirements']/thead/tr/th[@class='target']/text()") == ["fleet-a", "fleet-b"]
    sanity = doc.xpath("//table[@id='requirements']/tbody/tr[@id='req-WMH-SANITY-1']/td/@class")
    assert sanity == ["PASS", "PASS"]


def test_sanity_cases_run_first_and_last_for_every_target(tmp_path: Path):
    (tmp_path / "fleet.toml").write_text(INVENTORY)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "--collect-only",
         "--wm-inventory", str(tmp_path / "fleet.toml")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    for target in ("fleet-a", "fleet-b"):
        mine = [i for i in ids if i.endswith(f"[{target}]") or f"-{target}]" in i or f"[{target}-" in i]
        assert "test_000_sanity.py" in mine[0] and "test_zzz_sanity.py" in mine[-1], (mine[0], mine[-1])
        assert len(mine) > 10

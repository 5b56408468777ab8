"""``wmh report merge --allure`` collects the allure-results next to each shard before generating."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main as wmh
from harness.report import CaseResult, write_reports
from harness.report.allure import AllureRun
from harness.report.allure_collect import allure_dirs_near, collect_allure_results
from harness.report.session import write_shard


def _case(name: str) -> CaseResult:
    return CaseResult(nodeid=f"suites/t.py::{name}[mock]", name=name, target="mock", outcome="passed",
                      specs=["MS-WSMV 3.1.4.10"])


def _results(run: Path, files: dict[str, str]) -> None:
    d = run / "allure-results"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)


def test_merge_with_allure_copies_both_runs_results_before_generating(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]):
    # run 1: a plain reports directory; run 2: an xdist shard under reports/shards/
    write_reports([_case("a")], tmp_path / "run1")
    _results(tmp_path / "run1", {"1111-result.json": '{"name": "a"}', "1111-attachment.txt": "wire a",
                                 "environment.properties": "target=mock\n"})
    shard = write_shard([_case("b")], tmp_path / "run2", "gw0")
    _results(tmp_path / "run2", {"2222-result.json": '{"name": "b"}', "2222-container.json": "{}",
                                 "environment.properties": "target=mock\n", "categories.json": "[]"})
    (tmp_path / "run2" / "allure-results" / "subdir").mkdir()  # not a result file: ignored

    seen: dict[str, list[str]] = {}

    def fake_generate(results: Path, out: Path, **_: object) -> AllureRun:
        seen["files"] = sorted(p.name for p in results.iterdir())
        return AllureRun(False, "fake: not generated")

    monkeypatch.setattr("harness.report.allure.generate_report", fake_generate)
    out = tmp_path / "merged"
    code = wmh(["report", "merge", str(tmp_path / "run1" / "results.json"), str(shard), "--out", str(out),
                "--allure"])
    assert code == 0
    assert seen["files"] == ["1111-attachment.txt", "1111-result.json", "2222-container.json", "2222-result.json",
                             "categories.json", "environment.properties"]
    assert (out / "allure-results" / "1111-attachment.txt").read_text() == "wire a"
    err = capsys.readouterr().err
    assert "6 allure result files collected from 2 directories" in err and "fake: not generated" in err


def test_without_allure_nothing_is_collected(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_reports([_case("a")], tmp_path / "run1")
    _results(tmp_path / "run1", {"1111-result.json": "{}"})
    assert wmh(["report", "merge", str(tmp_path / "run1" / "results.json"), "--out", str(tmp_path / "m")]) == 0
    assert not (tmp_path / "m" / "allure-results").exists()


def test_conflicting_run_wide_file_keeps_the_first_copy(tmp_path: Path):
    _results(tmp_path / "r1", {"environment.properties": "host=a\n"})
    _results(tmp_path / "r2", {"environment.properties": "host=b\n"})
    dest = tmp_path / "out" / "allure-results"
    done = collect_allure_results([tmp_path / "r1" / "results.json", tmp_path / "r2" / "results.json"], dest)
    assert done.copied == 1 and len(done.conflicts) == 1
    assert (dest / "environment.properties").read_text() == "host=a\n"


def test_destination_and_repeated_directories_are_not_sources(tmp_path: Path):
    _results(tmp_path / "r1", {"1-result.json": "{}"})
    shard_a, shard_b = tmp_path / "r1" / "shards" / "gw0.json", tmp_path / "r1" / "shards" / "gw1.json"
    assert allure_dirs_near(shard_a) == [tmp_path / "r1" / "allure-results"]
    done = collect_allure_results([shard_a, shard_b], tmp_path / "r1" / "allure-results")  # merging in place
    assert done.sources == [] and done.copied == 0
    done = collect_allure_results([shard_a, shard_b], tmp_path / "o")
    assert len(done.sources) == 1 and done.copied == 1
    assert allure_dirs_near(tmp_path / "nowhere" / "results.json") == []

"""Reports: results JSON, the HTML conformance matrix, JUnit XML, allure labels."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.catalogue import CatalogueError, Requirement, requirement_from_entry, requirements_or_default
from harness.report.html import render_matrix, write_matrix
from harness.report.junit import render_junit, write_junit
from harness.report.results import (
    FAILING_VERDICTS,
    CaseResult,
    merge_results,
    read_results_json,
    results_from_json,
    write_results_json,
)

__all__ = [
    "JUNIT_NAME",
    "CaseResult",
    "ReportBundle",
    "merge_result_files",
    "read_bundle",
    "read_results_json",
    "render_junit",
    "render_matrix",
    "write_junit",
    "write_matrix",
    "write_reports",
    "write_results_json",
]

JUNIT_NAME = "junit-conformance.xml"


@dataclass
class ReportBundle:
    """The cases of a results file and the requirements they refer to."""

    results: list[CaseResult]
    requirements: dict[str, Requirement] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when a case is FAIL, ERROR or XPASS-ALARM (the run must not pass)."""
        return any(r.verdict in FAILING_VERDICTS for r in self.results)


def _requirements_of(results: Sequence[CaseResult],
                     requirements: Mapping[str, Requirement] | None) -> dict[str, Requirement]:
    used = {rid for r in results for rid in r.requirements}
    return {rid: req for rid, req in requirements_or_default(requirements).items() if rid in used}


def _requirement_json(req: Requirement) -> dict[str, Any]:
    return {"id": req.id, "level": req.level, "text": req.text, "specs": list(req.specs)}


def write_reports(results: Sequence[CaseResult], out_dir: Path,
                  requirements: Mapping[str, Requirement] | None = None) -> None:
    """Write ``results.json``, ``matrix.html`` and ``junit-conformance.xml`` into ``out_dir``.

    ``requirements`` defaults to the catalogue of ``fixtures/requirements``; the ones the
    cases refer to are embedded in ``results.json`` so that it can be re-rendered anywhere.
    """
    reqs = _requirements_of(results, requirements)
    write_results_json(results, out_dir / "results.json", {k: _requirement_json(v) for k, v in reqs.items()})
    write_matrix(results, out_dir / "matrix.html", requirements=reqs)
    write_junit(results, out_dir / JUNIT_NAME)


def read_bundle(path: Path) -> ReportBundle:
    """A ``results.json`` (or shard) with its embedded requirements; ValueError if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read results file {path.name}: {exc}") from exc
    results = results_from_json(data)
    reqs: dict[str, Requirement] = {}
    for rid, entry in dict(data.get("requirements") or {}).items():
        try:
            reqs[rid] = requirement_from_entry(dict(entry), path.name)
        except CatalogueError as exc:
            raise ValueError(str(exc)) from exc
    return ReportBundle(results, reqs)


def merge_result_files(paths: Sequence[Path]) -> ReportBundle:
    """Merge results shards (xdist workers, CI fan-out jobs) into one bundle (:func:`merge_results`)."""
    bundles = [read_bundle(p) for p in paths]
    requirements: dict[str, Requirement] = {}
    for b in bundles:
        requirements.update(b.requirements)
    return ReportBundle(merge_results(b.results for b in bundles), requirements)

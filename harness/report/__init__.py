"""Reports: results JSON, the HTML conformance matrix, allure labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.report.html import render_matrix, write_matrix
from harness.report.results import CaseResult, read_results_json, write_results_json

__all__ = ["CaseResult", "read_results_json", "render_matrix", "write_matrix", "write_reports", "write_results_json"]


def write_reports(results: Sequence[CaseResult], out_dir: Path) -> None:
    """Write ``results.json`` and ``matrix.html`` into ``out_dir``."""
    write_results_json(results, out_dir / "results.json")
    write_matrix(results, out_dir / "matrix.html")

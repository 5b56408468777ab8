"""``wmh report``: merge results shards and re-render reports.

``wmh report merge SHARD.json... --out DIR``  one report from several runs (xdist workers, CI fan-out
                                             jobs); exit 1 when a case is FAIL, ERROR or XPASS-ALARM
``wmh report html RESULTS.json --out DIR``    re-render matrix.html and junit-conformance.xml
``--allure``                                  also run ``allure generate`` on DIR/allure-results when
                                             the allure command line exists (skipped with a reason if not)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.report import JUNIT_NAME, ReportBundle, merge_result_files, write_reports


def _allure(out: Path) -> None:
    """``allure generate DIR/allure-results -o DIR/allure-report`` (harness.report.allure)."""
    from harness.report.allure import REPORT_DIR, RESULTS_DIR, generate_report

    run = generate_report(out / RESULTS_DIR, out / REPORT_DIR)
    if run.generated:
        print(f"wmh report: {run.reason}", file=sys.stderr)
    else:
        print(f"wmh report: allure generate skipped: {run.reason}", file=sys.stderr)


def _write(bundle: ReportBundle, out: Path, allure: bool) -> int:
    write_reports(bundle.results, out, bundle.requirements)
    if allure:
        _allure(out)
    counts: dict[str, int] = {}
    for r in bundle.results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    print(f"wmh report: {len(bundle.results)} cases ({summary}) -> {out / 'matrix.html'}, "
          f"{out / 'results.json'}, {out / JUNIT_NAME}")
    return 1 if bundle.failed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    try:
        bundle = merge_result_files([Path(p) for p in args.shards])
    except ValueError as exc:
        raise SystemExit(f"wmh report merge: {exc}") from None
    return _write(bundle, Path(args.out), args.allure)


def cmd_html(args: argparse.Namespace) -> int:
    try:
        bundle = merge_result_files([Path(args.results)])
    except ValueError as exc:
        raise SystemExit(f"wmh report html: {exc}") from None
    return _write(bundle, Path(args.out), args.allure)


def add_report_parser(sub: Any) -> None:
    """Add ``report merge`` and ``report html`` to the ``wmh`` sub-command parser."""
    report = sub.add_parser("report", help="merge results shards, re-render reports")
    rsub = report.add_subparsers(dest="report_command", required=True)
    merge = rsub.add_parser("merge", help="merge results.json shards of several runs into one report")
    merge.add_argument("shards", nargs="+", help="results.json files (shards)")
    merge.add_argument("--out", required=True, help="output directory")
    merge.add_argument("--allure", action="store_true", help="also run allure generate when available")
    merge.set_defaults(func=cmd_merge)
    html = rsub.add_parser("html", help="re-render matrix.html and JUnit from a results.json")
    html.add_argument("results", help="results.json")
    html.add_argument("--out", required=True, help="output directory")
    html.add_argument("--allure", action="store_true", help="also run allure generate when available")
    html.set_defaults(func=cmd_html)

"""``wmh report``: merge results shards and re-render reports.

``wmh report merge SHARD.json... --out DIR``  one report from several runs (xdist workers, CI fan-out
                                             jobs); exit 1 when a case is FAIL, ERROR or XPASS-ALARM
``wmh report html RESULTS.json --out DIR``    re-render matrix.html and junit-conformance.xml
``--allure``                                  also run ``allure generate`` on DIR/allure-results when
                                             the allure command line exists (skipped with a reason if not);
                                             ``merge`` first copies into DIR/allure-results the files of the
                                             allure-results directories next to each shard
                                             (harness.report.allure_collect)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
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


def _collect_allure(shards: Sequence[Path], out: Path) -> None:
    """The allure-results of every shard's run copied into DIR/allure-results (harness.report.allure_collect)."""
    from harness.report.allure import RESULTS_DIR
    from harness.report.allure_collect import collect_allure_results

    try:
        done = collect_allure_results(shards, out / RESULTS_DIR)
    except OSError as exc:
        raise SystemExit(f"wmh report merge: allure results not collected: {exc}") from None
    if done.sources:
        print(f"wmh report: {done.copied} allure result files collected from {len(done.sources)} "
              f"directories into {out / RESULTS_DIR}", file=sys.stderr)
    for conflict in done.conflicts:
        print(f"wmh report: kept the first copy: {conflict}", file=sys.stderr)


def _write(bundle: ReportBundle, out: Path, allure: bool, shards: Sequence[Path] = ()) -> int:
    write_reports(bundle.results, out, bundle.requirements)
    if allure:
        if shards:
            _collect_allure(shards, out)
        _allure(out)
    counts: dict[str, int] = {}
    for r in bundle.results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    print(f"wmh report: {len(bundle.results)} cases ({summary}) -> {out / 'matrix.html'}, "
          f"{out / 'results.json'}, {out / JUNIT_NAME}")
    return 1 if bundle.failed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    shards = [Path(p) for p in args.shards]
    try:
        bundle = merge_result_files(shards)
    except ValueError as exc:
        raise SystemExit(f"wmh report merge: {exc}") from None
    return _write(bundle, Path(args.out), args.allure, shards)


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
    merge.add_argument("--allure", action="store_true",
                       help="also collect the allure-results next to each shard and run allure generate "
                            "when available")
    merge.set_defaults(func=cmd_merge)
    html = rsub.add_parser("html", help="re-render matrix.html and JUnit from a results.json")
    html.add_argument("results", help="results.json")
    html.add_argument("--out", required=True, help="output directory")
    html.add_argument("--allure", action="store_true", help="also run allure generate when available")
    html.set_defaults(func=cmd_html)

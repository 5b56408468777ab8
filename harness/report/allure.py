"""Allure: requirement labels for the per-test results and ``allure generate`` of the HTML report.

Labels (added by the pytest plugin next to the spec / feature / story / protocol labels)
    ``requirement``  every catalogue requirement id the test checks (harness.report.catalogue)
    ``level``        the strictest RFC 2119 level of those requirements (MUST, SHOULD, MAY, OBSERVED)
    ``severity``     allure's severity for that level: MUST -> critical, SHOULD -> normal,
                     MAY and OBSERVED -> minor (RFC 2119 section 1 to 5: an absolute requirement is
                     the most severe finding, a recommendation less, an option the least)

Report generation runs the allure command line (``allure generate RESULTS -o OUT --clean``). It is
found on ``PATH`` or in the project-local tools directory that ``.ci/run`` fills with the npm
package ``allure-commandline`` (``.tools/node_modules/.bin/allure``); it needs a Java runtime.
When either is missing, or there are no results, generation is skipped and the reason returned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS_DIR = ".tools"
ALLURE_BIN = Path(TOOLS_DIR) / "node_modules" / ".bin" / "allure"
# the package's own launcher script, which needs no node at run time
ALLURE_DIST = Path(TOOLS_DIR) / "node_modules" / "allure-commandline" / "dist" / "bin" / "allure"
REPORT_DIR = "allure-report"
RESULTS_DIR = "allure-results"

#: keys are harness.report.catalogue.LEVELS
SEVERITY: dict[str, str] = {"MUST": "critical", "SHOULD": "normal", "MAY": "minor", "OBSERVED": "minor"}


def severity_of(level: str | None) -> str | None:
    """Allure severity of a requirement level (None when the test maps to no requirement)."""
    if level is None:
        return None
    return SEVERITY.get(level, "minor")


def requirement_labels(ids: Sequence[str], level: str | None) -> list[tuple[str, str]]:
    """``(name, value)`` allure labels for a test's requirement ids and their strictest level."""
    labels = [("requirement", rid) for rid in ids]
    severity = severity_of(level)
    if level is not None and severity is not None:
        labels.append(("level", level))
        labels.append(("severity", severity))
    return labels


def find_allure(roots: Sequence[Path] = ()) -> Path | None:
    """The allure command line: ``PATH`` first, then ``<root>/.tools/node_modules/.bin/allure`` (a node
    wrapper) or the package's ``dist/bin/allure`` script for each of ``roots``, the current directory
    and the checkout this module is in."""
    found = shutil.which("allure")
    if found:
        return Path(found)
    node = shutil.which("node") is not None
    for root in (*roots, Path.cwd(), REPO_ROOT):
        for candidate in ((root / ALLURE_BIN, root / ALLURE_DIST) if node else (root / ALLURE_DIST,)):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def _java_missing() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return False
    return shutil.which("java") is None


@dataclass(frozen=True)
class AllureRun:
    """What ``generate_report`` did: ``generated`` with the report directory, or skipped with a reason."""

    generated: bool
    reason: str
    report_dir: Path | None = None


def carry_history(report: Path, results: Path) -> int:
    """Copy the previous report's ``history/`` into the results (allure's trend mechanism: the
    next ``allure generate`` appends this run to the trend, retry and duration graphs); returns
    the number of files carried. Nothing to carry on a first run."""
    previous = report / "history"
    if not previous.is_dir():
        return 0
    target = results / "history"
    target.mkdir(parents=True, exist_ok=True)
    carried = 0
    for item in previous.iterdir():
        if item.is_file() and item.suffix == ".json":
            shutil.copyfile(item, target / item.name)
            carried += 1
    return carried


def generate_report(results: Path, out: Path, *, exe: Path | None = None, timeout: float = 600.0) -> AllureRun:
    """Run ``allure generate RESULTS -o OUT --clean``; skip (with the reason) when the command line,
    Java or the results are missing, and report a failed run with its exit status and output tail.
    The trend of earlier runs written to the same OUT is kept (:func:`carry_history`)."""
    if not results.is_dir():
        return AllureRun(False, f"no {results.name}/ in {results.parent}")
    if exe is None:
        exe = find_allure()
    if exe is None:
        return AllureRun(False, "the allure command line is not installed (PATH or .tools/node_modules/.bin/allure; "
                                ".ci/run installs the npm package allure-commandline)")
    if _java_missing():
        return AllureRun(False, "allure needs a Java runtime and none was found (java on PATH or JAVA_HOME)")
    carry_history(out, results)
    try:
        proc = subprocess.run([str(exe), "generate", str(results), "-o", str(out), "--clean"],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return AllureRun(False, f"allure generate could not run: {exc}")
    if proc.returncode != 0 or not (out / "index.html").is_file():
        tail = (proc.stderr or proc.stdout).strip()[-500:]
        return AllureRun(False, f"allure generate exited with status {proc.returncode}: {tail}")
    return AllureRun(True, f"allure report written to {out}", out)

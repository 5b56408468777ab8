"""Run-time helpers of the pytest plugin for certification reports.

* expected failures of a target (inventory ``expected_failures``) matched by node id or requirement id;
* the sanity cases that open and close every target's run (``suites/test_000_sanity.py`` first,
  ``suites/test_zzz_sanity.py`` last);
* :class:`OutcomeRecorder` behind the ``wm_outcome`` fixture (which of several acceptable
  outcomes a test saw: INFORMATIONAL detail);
* per-worker result shards under pytest-xdist and their merge on the controller.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.report.catalogue import base_nodeid
from harness.report.results import CaseResult, merge_results, read_results_json, write_results_json

SANITY_FIRST = "test_000_sanity.py"
SANITY_LAST = "test_zzz_sanity.py"
SHARDS_DIR = "shards"


def expected_failure_entry(expected: Sequence[str], nodeid: str, requirement_ids: Sequence[str]) -> str | None:
    """The inventory entry that makes this case an expected failure, or None.

    An entry is a requirement id, a node id with or without its ``[target]`` parameter, or a
    node id relative to ``suites/`` (``wsman/test_identify.py::test_x``).
    """
    base = base_nodeid(nodeid)
    full = nodeid.split("@", 1)[0] if "@" in nodeid.rsplit("::", 1)[-1] else nodeid
    for entry in expected:
        if entry in requirement_ids or entry in (base, full):
            return entry
        if "::" in entry and (base.endswith("/" + entry) or full.endswith("/" + entry)):
            return entry
    return None


def sanity_rank(nodeid: str) -> int:
    """0 for the opening sanity case, 2 for the closing one, 1 for everything else."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    if module == SANITY_FIRST:
        return 0
    if module == SANITY_LAST:
        return 2
    return 1


@dataclass
class OutcomeRecorder:
    """Notes which of the outcomes the specification allows a test observed.

    ``wm_outcome("CannotProcessFilter", "fault subcode for malformed WQL")``: the note goes into
    the case's ``observations`` and is shown as INFORMATIONAL detail in the reports.
    """

    notes: list[str] = field(default_factory=list)
    max_notes: int = 50

    def __call__(self, outcome: str, detail: str = "") -> None:
        if len(self.notes) < self.max_notes:
            text = f"{outcome}: {detail}" if detail else outcome
            self.notes.append(text[:500])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "worker"


def write_shard(results: Sequence[CaseResult], reports_dir: Path, worker: str) -> Path:
    """``<reports>/shards/<worker>.json``: one xdist worker's (or one CI job's) results."""
    path = reports_dir / SHARDS_DIR / f"{_safe(worker)}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    write_results_json(results, tmp)
    tmp.replace(path)
    return path


def clear_shards(reports_dir: Path) -> None:
    """Remove shards a previous run left behind (the controller does this before workers start)."""
    shard_dir = reports_dir / SHARDS_DIR
    if shard_dir.is_dir():
        for path in shard_dir.glob("*.json"):
            path.unlink(missing_ok=True)


def read_shards(reports_dir: Path) -> list[CaseResult]:
    """Every shard of ``<reports>/shards`` merged (worst verdict wins for a repeated case)."""
    shard_dir = reports_dir / SHARDS_DIR
    paths = sorted(shard_dir.glob("*.json")) if shard_dir.is_dir() else []
    return merge_results(read_results_json(p) for p in paths)

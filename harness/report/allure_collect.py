"""Collect the allure-results directories of several runs into one, for ``wmh report merge --allure``.

Each run (an xdist worker, a CI fan-out job) leaves ``<reports>/results.json`` (or a shard
``<reports>/shards/<worker>.json``) and, when allure-pytest ran, ``<reports>/allure-results/``.
The allure-results directory "next to" a shard is looked up beside it and, for a file in a
``shards/`` directory, beside that directory.

allure-results is a flat directory of files whose names are unique per run: ``<uuid>-result.json``,
``<uuid>-container.json``, ``<uuid>-attachment.<ext>``; only the run-wide files
(``environment.properties``, ``categories.json``, ``executor.json``) can repeat across runs. So the
files are copied side by side; a name already present with the same content is skipped, one with
other content keeps the first copy and is reported as a conflict (never overwritten).
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.report.allure import RESULTS_DIR
from harness.report.session import SHARDS_DIR


@dataclass
class CollectedResults:
    """What :func:`collect_allure_results` did: source directories, files copied, name conflicts kept out."""

    sources: list[Path] = field(default_factory=list)
    copied: int = 0
    conflicts: list[str] = field(default_factory=list)


def allure_dirs_near(shard: Path) -> list[Path]:
    """The allure-results directories next to ``shard`` (beside it, and beside its ``shards/`` directory)."""
    candidates = [shard.parent / RESULTS_DIR]
    if shard.parent.name == SHARDS_DIR:
        candidates.append(shard.parent.parent / RESULTS_DIR)
    return [c for c in candidates if c.is_dir()]


def collect_allure_results(shards: Sequence[Path], dest: Path) -> CollectedResults:
    """Copy the files of every allure-results directory next to ``shards`` into ``dest`` (created);
    ``dest`` itself is never a source. Raises ``OSError`` when a file cannot be copied."""
    done = CollectedResults()
    target = dest.resolve()
    seen: set[Path] = set()
    for shard in shards:
        for source in allure_dirs_near(shard):
            real = source.resolve()
            if real in seen or real == target:
                continue
            seen.add(real)
            done.sources.append(source)
            dest.mkdir(parents=True, exist_ok=True)
            for path in sorted(source.iterdir()):
                if not path.is_file():
                    continue
                there = dest / path.name
                if there.exists():
                    if not filecmp.cmp(path, there, shallow=False):
                        done.conflicts.append(f"{path.name} of {source} differs from the one collected first")
                    continue
                shutil.copy2(path, there)
                done.copied += 1
    return done

"""Timing shared by the benchmarks: the best of several runs (the least disturbed by the machine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_time(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The shortest wall time of ``repeat`` calls of ``func`` and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result

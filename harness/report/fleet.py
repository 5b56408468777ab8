"""Fleets under pytest-xdist: every target's cases run on one worker (``--dist loadgroup``).

The plugin marks each target's cases with ``xdist_group(<target>)``. pytest-xdist groups by a
``@group`` suffix it appends to node ids, which pytest 9.2 no longer honours (node ids are built
from ``Node._id``), so the plugin supplies this scheduler instead: it takes the group from the
``@`` suffix when present and otherwise from the ``[target]`` parameter of the node id. A target
then keeps its order (sanity case first and last) and its session fixtures (one mock per worker).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling


def target_of(nodeid: str, targets: Sequence[str]) -> str | None:
    """The target a parametrised node id runs against (longest matching name), or None."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[-1]
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    ids = nodeid[nodeid.index("[") + 1:-1]
    for name in sorted(targets, key=len, reverse=True):
        if ids == name or ids.startswith(name + "-") or ids.endswith("-" + name) or f"-{name}-" in ids:
            return name
    return None


class TargetGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist is untyped
    """LoadGroupScheduling whose groups are the wm-harness targets."""

    def __init__(self, config: pytest.Config, targets: Sequence[str], log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.targets = list(targets)

    def _split_scope(self, nodeid: str) -> str:
        target = target_of(nodeid, self.targets)
        return f"wm-target:{target}" if target is not None else nodeid

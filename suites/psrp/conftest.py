"""Fixtures of the PowerShell Remoting suites: RunspacePools that are closed after the test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from harness.client.psrp import PsrpRunspacePool
from harness.wire.wsman.faults import WSManFault


@pytest.fixture
async def new_pool(wsman: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await new_pool(**kwargs)`` -> an opened :class:`PsrpRunspacePool`; every pool is closed at teardown."""
    made: list[PsrpRunspacePool] = []

    async def factory(*, open_pool: bool = True, **kwargs: Any) -> PsrpRunspacePool:
        pool = PsrpRunspacePool(wsman, **kwargs)
        made.append(pool)
        if open_pool:
            await pool.open()
        return pool

    yield factory
    for pool in made:
        if pool.shell_id is not None:
            with contextlib.suppress(WSManFault):
                await pool.close()

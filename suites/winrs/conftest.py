"""Fixtures of the WinRS suites: shells that are deleted after the test, whatever happened."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from harness.client.shell import WinRSShell
from harness.wire.wsman.faults import WSManFault


@pytest.fixture
async def new_shell(wsman: Any) -> AsyncIterator[Callable[..., Any]]:
    """``await new_shell(**create_kwargs)`` -> a created :class:`WinRSShell`; all deleted at teardown."""
    made: list[WinRSShell] = []

    async def factory(**kwargs: Any) -> WinRSShell:
        shell = WinRSShell(wsman)
        made.append(shell)
        await shell.create(**kwargs)
        return shell

    yield factory
    for shell in made:
        if shell.shell_id is not None:
            with contextlib.suppress(WSManFault):
                await shell.delete()

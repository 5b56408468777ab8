"""Waiting with a time limit, without ever losing a cancellation.

``asyncio.wait_for`` in Python 3.11 returns the inner result instead of raising
``CancelledError`` when the outer task is cancelled in the same loop iteration as the inner
awaitable completes (CPython gh-86296, fixed in 3.12 by rebuilding ``wait_for`` on
``asyncio.timeout``). A long-running task that loops on ``wait_for(event.wait(), t)`` then misses
its ``cancel()`` and runs on forever, and whoever awaits it after cancelling hangs. The helpers here
wait through ``asyncio.wait``, which never swallows a cancellation of the waiting task.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass (``None``: no limit); True when set.

    A cancellation of the calling task always propagates, whatever else happens in the same
    loop iteration."""
    if event.is_set():
        return True
    if timeout is not None and timeout <= 0:
        return False
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        if not waiter.done():
            waiter.cancel()
    return event.is_set()


__all__ = ["wait_event"]

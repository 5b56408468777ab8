"""harness.aio.wait_event: a timed wait that never loses the caller's cancellation (the Python 3.11
``asyncio.wait_for`` race, CPython gh-86296, hung a CI run in the event pusher's teardown)."""

from __future__ import annotations

import asyncio

import pytest

from harness.aio import wait_event
from harness.cim.mof import default_store
from harness.targets.mock.event_pusher import EventPusher
from harness.targets.mock.events import EventSource


async def test_returns_true_when_set_and_false_on_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True
    assert await wait_event(event, 0) is True, "an event already set needs no wait"


async def test_no_waiter_is_left_behind() -> None:
    event = asyncio.Event()
    before = len(asyncio.all_tasks())
    await wait_event(event, 0.01)
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before


async def _loop_on(event: asyncio.Event) -> None:
    while True:
        await wait_event(event, 0.5)
        event.clear()


async def test_cancel_in_the_same_iteration_as_the_wake_is_not_lost() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_loop_on(event))
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait((task,), timeout=2)
    assert done, "the looping task swallowed its cancellation"
    assert task.cancelled()


async def test_event_pusher_stops_when_cancelled_during_a_wake() -> None:
    """The CI hang: the pusher is woken (a subscription ended) in the loop iteration where the
    fixture cancels it; it must still stop."""
    source = EventSource(default_store())
    pusher = EventPusher(source)
    task = asyncio.create_task(pusher.run())
    try:
        for _ in range(20):
            await asyncio.sleep(0.01)
            pusher._wake.set()
            if _ == 10:
                task.cancel()
                break
        done, _ = await asyncio.wait((task,), timeout=2)
        assert done, "EventPusher.run ignored cancel()"
        with pytest.raises(asyncio.CancelledError):
            task.result()
    finally:
        source.close()

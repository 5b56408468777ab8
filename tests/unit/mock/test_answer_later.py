"""harness.targets.mock.answer_later: the one "answer later" mechanism of the mock's long polls
(MS-WSMV 3.1.4.14 Receive; DSP0226 10.2.9.4 Pull), sans-IO decisions and the async driver."""

from __future__ import annotations

import asyncio
import threading

import pytest

from harness.targets.mock.answer_later import (
    FALLBACK_POLL,
    AnswerLater,
    Attempt,
    WakeSignal,
    Wakeups,
    answer_later,
    answer_when_ready,
    attempt,
)
from harness.targets.mock.wsman_service import Principal

USER = Principal("wmh")
TIMED_OUT = (500, b"timed out")


# ---------------------------------------------------------------------------------- sans-IO
def test_outside_an_attempt_a_handler_cannot_wait() -> None:
    assert answer_later(5.0) is False


def test_decide_bounds_the_wait_by_budget_max_timeout_and_recheck() -> None:
    with attempt(1.0) as box:
        assert answer_later(5.0, recheck=10.0) is True
    assert box.decide(60.0) == AnswerLater(4.0), "budget counts from the request's arrival"
    assert box.decide(3.0) == AnswerLater(2.0), "capped by the service's MaxTimeout"
    assert Attempt(1.0, budget=5.0, recheck=0.5).decide(60.0) == AnswerLater(0.5)
    assert Attempt(1.0, budget=5.0, recheck=-1.0).decide(60.0) == AnswerLater(0.0)
    assert Attempt(5.0, budget=5.0).decide(60.0) is None, "budget used up: the handler's answer is final"
    assert Attempt(0.0).decide(60.0) is None, "nobody asked to answer later"


def test_several_requests_in_one_attempt_keep_the_tightest_bounds() -> None:
    with attempt(0.0) as box:
        answer_later(5.0, recheck=3.0)
        answer_later(8.0, recheck=1.0)
        answer_later(2.0)
    assert (box.budget, box.recheck, box.signalled) == (2.0, 1.0, True)


def test_a_producer_that_cannot_signal_is_re_asked_on_the_bounded_fallback_poll() -> None:
    with attempt(0.0) as box:
        answer_later(5.0, signalled=False)
    assert box.decide(60.0) == AnswerLater(FALLBACK_POLL)


def test_attempts_nest_and_unwind() -> None:
    with attempt(0.0) as outer:
        with attempt(2.0) as inner:
            answer_later(3.0)
        assert inner.budget == 3.0 and outer.budget is None
    assert answer_later(1.0) is False


def test_wakeups_fan_out_and_remove() -> None:
    wakeups = Wakeups()
    seen: list[str] = []
    remove_a = wakeups.add(lambda: seen.append("a"))
    wakeups.add(lambda: seen.append("b"))
    wakeups.notify()
    remove_a()
    remove_a()  # twice is harmless
    wakeups.notify()
    assert seen == ["a", "b", "b"]


# ---------------------------------------------------------------------------------- async driver
class Scripted:
    """An answerer that answers later (budget ``budget``, optional recheck) until ``ready`` is set."""

    def __init__(self, budget: float, recheck: float | None = None, signalled: bool = True) -> None:
        self.budget = budget
        self.recheck = recheck
        self.signalled = signalled
        self.ready = False
        self.asked = 0

    def handle_or_wait(self, data: bytes, principal: Principal,
                       waited: float = 0.0) -> tuple[int, bytes] | AnswerLater:
        self.asked += 1
        if self.ready:
            return 200, data
        with attempt(waited) as box:
            answer_later(self.budget, recheck=self.recheck, signalled=self.signalled)
        return box.decide(60.0) or TIMED_OUT


async def test_driver_answers_the_timed_out_answer_after_the_budget_without_polling() -> None:
    answerer = Scripted(0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.wait_for(answer_when_ready(answerer, b"x", USER, WakeSignal()), 2.0) == TIMED_OUT
    assert 0.2 <= loop.time() - start < 0.5
    assert answerer.asked <= 3, "no wake-up, so no re-asking on a polling tick"


async def test_driver_is_woken_by_the_signal_at_once() -> None:
    answerer = Scripted(30.0)
    signal = WakeSignal()
    wakeups = Wakeups()
    signal.follow(wakeups)
    pending = asyncio.ensure_future(answer_when_ready(answerer, b"ok", USER, signal))
    await asyncio.sleep(0.05)
    assert not pending.done()
    loop = asyncio.get_running_loop()
    start = loop.time()
    answerer.ready = True
    wakeups.notify()
    assert await asyncio.wait_for(pending, 2.0) == (200, b"ok")
    assert loop.time() - start < 0.05


async def test_a_wake_from_another_thread_reaches_the_loop() -> None:
    answerer = Scripted(30.0)
    signal = WakeSignal()
    pending = asyncio.ensure_future(answer_when_ready(answerer, b"ok", USER, signal))
    await asyncio.sleep(0.05)

    def produce() -> None:
        answerer.ready = True
        signal.notify()

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join(2.0)
    assert await asyncio.wait_for(pending, 2.0) == (200, b"ok")


async def test_a_wake_between_asking_and_waiting_is_not_missed() -> None:
    signal = WakeSignal()
    signal.bind(asyncio.get_running_loop())
    generation = signal.generation
    signal.notify()  # on the loop: counted at once
    assert await asyncio.wait_for(signal.wait_after(generation, 30.0), 1.0) is True
    assert await signal.wait_after(signal.generation, 0.01) is False


async def test_driver_rechecks_a_timer_driven_producer_when_it_is_due() -> None:
    answerer = Scripted(30.0, recheck=0.1)
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, lambda: setattr(answerer, "ready", True))
    start = loop.time()
    assert await asyncio.wait_for(answer_when_ready(answerer, b"ok", USER, WakeSignal()), 2.0) == (200, b"ok")
    assert loop.time() - start < 0.2


async def test_driver_without_a_signal_falls_back_to_a_bounded_poll() -> None:
    answerer = Scripted(30.0)
    pending = asyncio.ensure_future(answer_when_ready(answerer, b"ok", USER, None))
    await asyncio.sleep(0.02)
    answerer.ready = True
    assert await asyncio.wait_for(pending, 1.0) == (200, b"ok")


@pytest.mark.parametrize("signal", [True, False])
async def test_a_cancelled_waiting_request_stops(signal: bool) -> None:
    pending = asyncio.ensure_future(answer_when_ready(Scripted(30.0), b"x", USER, WakeSignal() if signal else None))
    await asyncio.sleep(0.05)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(pending, 1.0)

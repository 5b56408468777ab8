"""Answer later: the one mechanism by which a request of the mock may wait before it is answered.

Two WS-Man requests are long polls: a shell Receive with nothing to send yet waits up to its
OperationTimeout for output (MS-WSMV 3.1.4.14; observed Windows behaviour: then w:TimedOut), and a
Pull on a Pull-mode event subscription with nothing queued waits up to its MaxTime (else
OperationTimeout) for events (DSP0226 10.2.9.4, 8.3; then w:TimedOut, or a heartbeat when the
Heartbeats interval passes first, DSP0226 10.2.5). Both are bounded by the service's MaxTimeout.

The sans-IO half
    A handler with nothing to answer yet calls :func:`answer_later` with the seconds the request
    may wait in total (counted from its arrival) and, when a timer-driven producer will change
    the answer by itself (a simulated program's next output, the next heartbeat), the seconds
    until then. It then raises or returns the answer that is due when the wait ends (the
    w:TimedOut fault). :meth:`WSManService.handle_or_wait` runs the handler inside
    :func:`attempt` and turns such a request into :class:`AnswerLater` while the budget lasts;
    plain ``WSManService.handle`` never waits (no attempt: :func:`answer_later` is a no-op).

    Producers that change what a waiting request would be answered -- the event source (an event
    queued, a subscription ended, the event clock moved), the shell host (stdin arrived, a
    Signal, a Delete, a Disconnect, room made in a full buffer) and the PowerShell host (pipeline
    output or state messages queued) -- call :meth:`Wakeups.notify` of the service.

The async half
    :func:`answer_when_ready` is the single driver the HTTP layer uses: ask
    ``handle_or_wait``; on :class:`AnswerLater` wait on a :class:`WakeSignal` (a generation
    counter fed by :class:`Wakeups`) at most ``seconds``, then ask again with the seconds waited
    so far. Nothing polls while a producer can signal; a handler whose producer cannot signal
    says so (``signalled=False``) and is re-asked every :data:`FALLBACK_POLL` seconds, as is every
    wait of a driver without a signal. Waits are bounded (never ``wait_for`` on an event in a
    loop: see :mod:`harness.aio`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from harness.aio import wait_event
from harness.listeners import Listeners

if TYPE_CHECKING:
    from harness.targets.mock.wsman_service import Principal

#: Re-ask interval when a producer cannot signal a change (or the driver has no signal).
FALLBACK_POLL: Final = 0.05
#: Added to every timed wait so that a timer-driven producer is past its wake time when re-asked
#: (the event loop may fire a timer up to its clock resolution early).
WAKE_MARGIN: Final = 0.001


@dataclass(frozen=True)
class AnswerLater:
    """Answer of :meth:`WSManService.handle_or_wait`: nothing to answer yet; wait at most
    ``seconds`` (or until woken), then ask again."""

    seconds: float


@dataclass
class Attempt:
    """One asking of the service for a request that may wait (see :func:`attempt`)."""

    waited: float
    budget: float | None = None
    recheck: float | None = None
    signalled: bool = True

    def decide(self, max_timeout: float) -> AnswerLater | None:
        """:class:`AnswerLater` when a handler asked to answer later and its budget (capped by the
        service's ``max_timeout``, DSP0226 8.3 / MS-WSMV 3.1.4.14) is not used up; else None:
        the answer the handler gave now is final."""
        if self.budget is None:
            return None
        remaining = min(self.budget, max_timeout) - self.waited
        if remaining <= 0:
            return None
        seconds = remaining
        if self.recheck is not None:
            seconds = min(seconds, max(0.0, self.recheck))
        if not self.signalled:
            seconds = min(seconds, FALLBACK_POLL)
        return AnswerLater(seconds)


_ATTEMPT: ContextVar[Attempt | None] = ContextVar("wmh_answer_later", default=None)


@contextlib.contextmanager
def attempt(waited: float) -> Iterator[Attempt]:
    """Within this block handlers may ask to answer later (:func:`answer_later`); ``waited`` is how
    long the request has waited so far."""
    box = Attempt(max(0.0, waited))
    token = _ATTEMPT.set(box)
    try:
        yield box
    finally:
        _ATTEMPT.reset(token)


def answer_later(budget: float, *, recheck: float | None = None, signalled: bool = True) -> bool:
    """From a handler with nothing to answer yet: the request may wait up to ``budget`` seconds in
    total (from its arrival) before the answer the handler gives now (its w:TimedOut) is sent.

    ``recheck``: seconds after which the answer changes without any :meth:`Wakeups.notify` (a
    timer-driven producer); ``signalled=False``: the producer cannot notify at all, re-ask every
    :data:`FALLBACK_POLL` seconds. Several calls in one attempt keep the tightest bounds.
    Returns True when the request runs under a driver that may wait (inside :func:`attempt`)."""
    box = _ATTEMPT.get()
    if box is None:
        return False
    box.budget = budget if box.budget is None else min(box.budget, budget)
    if recheck is not None:
        box.recheck = recheck if box.recheck is None else min(box.recheck, recheck)
    box.signalled = box.signalled and signalled
    return True


class Wakeups(Listeners):
    """Sans-IO, thread-safe fan-out of "something a waiting request may care about changed"
    (:meth:`add` a listener, :meth:`notify` from any thread, typically inside a handler)."""


class WakeSignal:
    """A generation counter bumped on the event loop on every wake-up; waiters compare
    generations, so a wake between asking the service and starting to wait is never missed."""

    def __init__(self) -> None:
        self.generation = 0
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self) -> None:
        """From any thread: at once on the signal's loop, else scheduled onto it (a signal not
        yet bound has no waiters to wake)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._bump()
        else:
            loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_after(self, generation: int, timeout: float) -> bool:
        """Until the generation moves past ``generation`` (True) or ``timeout`` seconds pass."""
        if self.generation != generation:
            return True
        return await wait_event(self._changed, max(0.0, timeout))

    def follow(self, wakeups: Wakeups) -> Callable[[], None]:
        """Be notified by ``wakeups``; returns the function that stops it."""
        return wakeups.add(self.notify)


class Answerer(Protocol):
    """What the driver needs of the service (:class:`~harness.targets.mock.wsman_service.WSManService`)."""

    def handle_or_wait(self, data: bytes, principal: Principal, waited: float = 0.0) -> tuple[int, bytes] | AnswerLater:
        ...


async def answer_when_ready(service: Answerer, data: bytes, principal: Principal,
                            signal: WakeSignal | None = None) -> tuple[int, bytes]:
    """The service's answer to one request, waiting -- without blocking the loop -- while a handler
    asks to answer later (MS-WSMV 3.1.4.14 Receive; DSP0226 10.2.9.4 Pull): woken by ``signal``,
    at the latest after the :class:`AnswerLater` seconds, then asked again. Without a signal it
    re-asks every :data:`FALLBACK_POLL` seconds. Every wait is bounded by the handler's budget."""
    loop = asyncio.get_running_loop()
    if signal is not None:
        signal.bind(loop)
    started = loop.time()
    while True:
        generation = signal.generation if signal is not None else 0
        result = service.handle_or_wait(data, principal, loop.time() - started)
        if not isinstance(result, AnswerLater):
            return result
        if signal is None:
            await asyncio.sleep(min(result.seconds, FALLBACK_POLL) + WAKE_MARGIN)
        else:
            await signal.wait_after(generation, result.seconds + WAKE_MARGIN)


__all__ = ["FALLBACK_POLL", "WAKE_MARGIN", "AnswerLater", "Answerer", "Attempt", "WakeSignal", "Wakeups",
           "answer_later", "answer_when_ready", "attempt"]

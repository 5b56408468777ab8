"""Push delivery of the mock's event subscriptions (DSP0226 10.2.9.1 - 10.2.9.3; MS-WMOD 3.4).

The I/O half of :class:`~harness.targets.mock.events.EventSource`: a task on the mock's event loop
that POSTs queued events to each subscription's NotifyTo address.

- Push (DSP0226 10.2.9.1): one event per message; the sink's HTTP answer is not an acknowledgement.
- PushWithAck (DSP0226 10.2.9.2, 10.7): one event per message with ``wsman:AckRequested``; the next
  event is sent only after the sink answered with a ``wsman:Ack`` whose RelatesTo is the event's
  MessageID. Without the Ack the event stays at the head of the queue and is sent again.
- Events (DSP0226 10.2.9.3): up to wsman:MaxElements events in one ``wsman:Events`` message, with
  AckRequested like PushWithAck.

A delivery that fails (no connection, HTTP error, no Ack) is retried after ``retry_delay``; after
``wsman:ConnectionRetry Total`` + 1 failed attempts in a row (DSP0226 10.2.3) the subscription ends.
Every wait is bounded; the loop never blocks the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import aiohttp
from lxml import etree

from harness.targets.mock.events import EventSource, LoggedEvent, Subscription, make_bookmark
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.cimxml import instance_to_element
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import ANONYMOUS, RESOURCE_WMI_PREFIX, Action

log = logging.getLogger("wmh.mock.events")

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
#: Wake-up interval when nothing signals new events (bounds the latency of retries).
IDLE_WAIT = 0.5
DEFAULT_RETRY_DELAY = 0.2
POST_TIMEOUT = 10.0
MAX_ACK_BYTES = 64 * 1024


class EventPusher:
    """Delivers push-mode subscriptions of one :class:`EventSource` (run as one asyncio task)."""

    def __init__(self, source: EventSource, *, retry_delay: float = DEFAULT_RETRY_DELAY) -> None:
        self.source = source
        self.retry_delay = retry_delay
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    def _signal(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Deliver until cancelled."""
        self._loop = asyncio.get_running_loop()
        self.source.add_waker(self._signal)
        timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_WAIT)
                self._wake.clear()
                now = self._loop.time()
                for sub in self.source.pending_push():
                    if self._retry_at.get(sub.identifier, 0.0) > now:
                        continue
                    try:
                        await self._deliver(session, sub)
                    except Exception:  # a defect must not stop delivery to other subscriptions
                        log.exception("event delivery to %s failed", sub.delivery.notify_to)

    def _batch_size(self, sub: Subscription) -> int:
        if sub.delivery.mode == ev.DELIVERY_EVENTS:
            return max(1, sub.delivery.max_elements or 1)
        return 1

    def _message(self, sub: Subscription, events: list[LoggedEvent], message_id: str) -> bytes:
        notify = sub.delivery.notify_to
        assert notify is not None
        header = Header(action="", to=notify.address, resource_uri=notify.resource_uri or None,
                        selectors=dict(notify.selectors), reply_to=ANONYMOUS, must_understand=set())
        header.message_id = message_id
        delivered = [ev.DeliveredEvent(Action.EVENT, _render(sub, e)) for e in events]
        ack = sub.delivery.mode in (ev.DELIVERY_PUSH_WITH_ACK, ev.DELIVERY_EVENTS)
        bookmark = make_bookmark(self.source.source_id, events[-1].sequence) if sub.send_bookmarks else None
        if sub.delivery.mode == ev.DELIVERY_EVENTS:
            return ev.build_events(header, delivered, bookmark=bookmark, ack_requested=ack)
        return ev.build_event(header, delivered[0], bookmark=bookmark, ack_requested=ack)

    async def _deliver(self, session: aiohttp.ClientSession, sub: Subscription) -> None:
        events = self.source.take(sub, self._batch_size(sub))
        if not events:
            return
        notify = sub.delivery.notify_to
        assert notify is not None
        message_id = "uuid:" + str(uuid.uuid4()).upper()
        body = self._message(sub, events, message_id)
        ok = False
        try:
            async with session.post(notify.address, data=body,
                                    headers={"Content-Type": SOAP_CONTENT_TYPE}) as resp:
                answer = await resp.content.read(MAX_ACK_BYTES + 1)
                ok = 200 <= resp.status < 300
                if ok and sub.delivery.mode != ev.DELIVERY_PUSH:
                    ok = _is_ack(answer, message_id)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("event sink %s unreachable: %s", notify.address, exc)
        if ok:
            self._failures.pop(sub.identifier, None)
            self._retry_at.pop(sub.identifier, None)
            if sub.queue:
                self._wake.set()
            return
        # Not delivered (or not acknowledged): the events go back, in order (DSP0226 10.2.9.2).
        self.source.put_back(sub, events)
        failures = self._failures.get(sub.identifier, 0) + 1
        self._failures[sub.identifier] = failures
        retry = sub.delivery.connection_retry
        allowed = (retry.total if retry is not None else 0) + 1
        if retry is None or failures < allowed:
            delay = retry.interval if retry is not None else self.retry_delay
            self._retry_at[sub.identifier] = asyncio.get_running_loop().time() + max(self.retry_delay, delay)
        if retry is not None and failures >= allowed:
            log.info("ending subscription %s after %d failed deliveries (DSP0226 10.2.3)", sub.identifier,
                     failures)
            self.source.unsubscribe(sub.identifier)
            self._failures.pop(sub.identifier, None)
            self._retry_at.pop(sub.identifier, None)


def _render(sub: Subscription, event: LoggedEvent) -> etree._Element:
    return instance_to_element(event.instance, RESOURCE_WMI_PREFIX + sub.namespace + "/" + event.event_class)


def _is_ack(data: bytes, message_id: str) -> bool:
    """True when ``data`` is a wsman:Ack relating to ``message_id`` (DSP0226 10.7)."""
    if len(data) > MAX_ACK_BYTES or not data.strip():
        return False
    try:
        return ev.parse_ack(parse_envelope(data)) == message_id
    except WSManDecodeError:
        return False


__all__ = ["EventPusher"]

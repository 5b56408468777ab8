"""The I/O half of the mock's event source (DSP0226 10.2.9.1 - 10.2.9.4; MS-WMOD 3.3, 3.4, 3.5).

:class:`EventPusher` is a task on the mock's event loop that POSTs to each push-mode
subscription's NotifyTo address:

- Push (DSP0226 10.2.9.1): one event per message; the sink's HTTP answer is not an acknowledgement.
- PushWithAck (DSP0226 10.2.9.2, 10.7): one event per message with ``wsman:AckRequested``; the next
  event is sent only after the sink answered with a ``wsman:Ack`` whose RelatesTo is the event's
  MessageID. Without the Ack the event stays at the head of the queue and is sent again.
- Events (DSP0226 10.2.9.3): up to wsman:MaxElements events in one ``wsman:Events`` message, with
  AckRequested like PushWithAck.
- Heartbeats (DSP0226 10.2.5): a ``wsman:Heartbeat`` message when nothing was delivered for the
  subscription's Heartbeats interval, measured on the source's (injectable) event clock; none while
  events flow.
- DroppedEvents (DSP0226 10.9): before the next delivery, the number of events the bounded queue
  lost.
- SubscriptionEnd (DSP0226 10.6; WS-Eventing 2004/08 3.5) to EndTo when the source ends a
  subscription: expiry or cancellation (SourceCancelling), shutdown (SourceShuttingDown), or
  failed delivery (DeliveryFailure).

A delivery that fails (no connection, HTTP error, no Ack) is retried after ``retry_delay``; after
``wsman:ConnectionRetry Total`` + 1 failed attempts in a row (DSP0226 10.2.3) the subscription ends
with DeliveryFailure.

:func:`install_event_tasks` wires the pusher and the publisher-initiated role
(:mod:`harness.targets.mock.publisher`) into the mock's aiohttp app. An empty Pull on a Pull-mode
subscription waits for events (DSP0226 10.2.9.4) through the mock's one answer-later mechanism
(:mod:`harness.targets.mock.answer_later`): the event source wakes the service's ``wakeups``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import aiohttp
from aiohttp import web
from lxml import etree

from harness.aio import wait_event
from harness.targets.mock.config import MockConfig
from harness.targets.mock.events import EndedSubscription, EventSource, LoggedEvent, Subscription, make_bookmark
from harness.targets.mock.publisher import Publisher
from harness.targets.mock.wsman_service import WSManService
from harness.transport.body import read_body
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.cimxml import instance_to_element
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import ANONYMOUS, RESOURCE_WMI_PREFIX, SOAP_CONTENT_TYPE, Action

log = logging.getLogger("wmh.mock.events")

#: Wake-up interval when nothing signals new events (bounds the latency of retries and of
#: heartbeats on a real-time clock).
IDLE_WAIT = 0.5
DEFAULT_RETRY_DELAY = 0.2
POST_TIMEOUT = 10.0
MAX_ACK_BYTES = 64 * 1024
#: Bound on sending SubscriptionEnd messages when the mock stops.
SHUTDOWN_WAIT = 2.0


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
        remove = self.source.add_waker(self._signal)
        timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    await wait_event(self._wake, IDLE_WAIT)
                    self._wake.clear()
                    await self.step(session)
        finally:
            remove()

    async def step(self, session: aiohttp.ClientSession) -> None:
        """One round: SubscriptionEnd for ended subscriptions, then per live push subscription
        DroppedEvents, the next delivery, or a heartbeat that is due."""
        for ended in self.source.take_ended():
            await self._send_end(session, ended)
        now = asyncio.get_running_loop().time()
        for sub in self.source.push_subscriptions():
            if self._retry_at.get(sub.identifier, 0.0) > now:
                continue
            try:
                if sub.dropped and not await self._send_dropped(session, sub):
                    continue
                if sub.queue:
                    await self._deliver(session, sub)
                else:
                    due = self.source.heartbeat_due(sub)
                    if due is not None and due <= 0:
                        await self._send_heartbeat(session, sub)
            except Exception:  # a defect must not stop delivery to other subscriptions
                log.exception("event delivery to %s failed", sub.delivery.notify_to)

    # ------------------------------------------------------------------------------ messages
    @staticmethod
    def _header(target: EndpointReference, message_id: str) -> Header:
        header = Header(action="", to=target.address, resource_uri=target.resource_uri or None,
                        selectors=dict(target.selectors), reply_to=ANONYMOUS, must_understand=set())
        header.message_id = message_id
        return header

    def _message(self, sub: Subscription, events: list[LoggedEvent], message_id: str) -> bytes:
        notify = sub.delivery.notify_to
        assert notify is not None
        header = self._header(notify, message_id)
        delivered = [ev.DeliveredEvent(Action.EVENT, _render(sub, e)) for e in events]
        ack = sub.delivery.mode in (ev.DELIVERY_PUSH_WITH_ACK, ev.DELIVERY_EVENTS)
        bookmark = make_bookmark(self.source.source_id, events[-1].sequence) if sub.send_bookmarks else None
        if sub.delivery.mode == ev.DELIVERY_EVENTS:
            return ev.build_events(header, delivered, bookmark=bookmark, ack_requested=ack)
        return ev.build_event(header, delivered[0], bookmark=bookmark, ack_requested=ack)

    def _batch_size(self, sub: Subscription) -> int:
        if sub.delivery.mode == ev.DELIVERY_EVENTS:
            return max(1, sub.delivery.max_elements or 1)
        return 1

    async def _post(self, session: aiohttp.ClientSession, address: str, body: bytes,
                    ack_for: str | None) -> bool:
        """POST one message; True on a 2xx answer (and, with ``ack_for``, a wsman:Ack to it)."""
        try:
            async with session.post(address, data=body, headers={"Content-Type": SOAP_CONTENT_TYPE}) as resp:
                answer = await read_body(resp.content, MAX_ACK_BYTES + 1)
                ok = 200 <= resp.status < 300
                return ok and (ack_for is None or _is_ack(answer, ack_for))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("event sink %s unreachable: %s", address, exc)
            return False

    async def _deliver(self, session: aiohttp.ClientSession, sub: Subscription) -> None:
        events = self.source.take(sub, self._batch_size(sub))
        if not events:
            return
        notify = sub.delivery.notify_to
        assert notify is not None
        message_id = "uuid:" + str(uuid.uuid4()).upper()
        body = self._message(sub, events, message_id)
        needs_ack = sub.delivery.mode != ev.DELIVERY_PUSH
        sent_at = self.source.now()
        if await self._post(session, notify.address, body, message_id if needs_ack else None):
            self._delivered(sub, sent_at)
            if sub.queue:
                self._wake.set()
            return
        # Not delivered (or not acknowledged): the events go back, in order (DSP0226 10.2.9.2).
        self.source.put_back(sub, events)
        self._failed(sub)

    async def _send_heartbeat(self, session: aiohttp.ClientSession, sub: Subscription) -> None:
        """wsman:Heartbeat (DSP0226 10.2.5): nothing was delivered for the Heartbeats interval."""
        notify = sub.delivery.notify_to
        assert notify is not None
        header = self._header(notify, "uuid:" + str(uuid.uuid4()).upper())
        bookmark = self.source.bookmark(sub) if sub.send_bookmarks else None
        sent_at = self.source.now()
        if await self._post(session, notify.address, ev.build_heartbeat(header, bookmark=bookmark), None):
            self._delivered(sub, sent_at)
        else:
            self._failed(sub)

    async def _send_dropped(self, session: aiohttp.ClientSession, sub: Subscription) -> bool:
        """wsman:DroppedEvents (DSP0226 10.9) before the next delivery; False when it failed."""
        notify = sub.delivery.notify_to
        assert notify is not None
        count = self.source.take_dropped(sub)
        if not count:
            return True
        header = self._header(notify, "uuid:" + str(uuid.uuid4()).upper())
        body = ev.build_dropped_events(header, ev.DroppedEvents(Action.EVENT, count))
        if await self._post(session, notify.address, body, None):
            return True
        sub.dropped += count
        self._failed(sub)
        return False

    async def _send_end(self, session: aiohttp.ClientSession, ended: EndedSubscription) -> None:
        """wse:SubscriptionEnd to EndTo (DSP0226 10.6): one attempt; the subscription is gone anyway."""
        sub = ended.subscription
        end_to = sub.end_to
        self._failures.pop(sub.identifier, None)
        self._retry_at.pop(sub.identifier, None)
        if end_to is None:
            return
        header = self._header(end_to, "uuid:" + str(uuid.uuid4()).upper())
        manager = ev.SubscriptionManager(address=ANONYMOUS, identifier=sub.identifier, resource_uri=sub.resource_uri)
        body = ev.build_subscription_end(header, ev.SubscriptionEnd(manager, ended.status, ended.reason or None))
        if not await self._post(session, end_to.address, body, None):
            log.info("SubscriptionEnd for %s not delivered to %s", sub.identifier, end_to.address)

    def _delivered(self, sub: Subscription, sent_at: float) -> None:
        self.source.mark_activity(sub, sent_at)
        self._failures.pop(sub.identifier, None)
        self._retry_at.pop(sub.identifier, None)

    def _failed(self, sub: Subscription) -> None:
        failures = self._failures.get(sub.identifier, 0) + 1
        self._failures[sub.identifier] = failures
        retry = sub.delivery.connection_retry
        allowed = (retry.total if retry is not None else 0) + 1
        if retry is not None and failures >= allowed:
            log.info("ending subscription %s after %d failed deliveries (DSP0226 10.2.3)", sub.identifier, failures)
            self._failures.pop(sub.identifier, None)
            self._retry_at.pop(sub.identifier, None)
            self.source.delivery_failed(sub.identifier, f"{failures} deliveries to the NotifyTo address failed.")
            return
        delay = retry.interval if retry is not None else self.retry_delay
        self._retry_at[sub.identifier] = asyncio.get_running_loop().time() + max(self.retry_delay, delay)


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


_TASKS_KEY: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("wmh_event_tasks")


def install_event_tasks(app: web.Application, service: WSManService, config: MockConfig) -> None:
    """Run the pusher and the publisher beside the listener (see module doc)."""
    pusher = EventPusher(service.events)

    async def start(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        app[_TASKS_KEY] = [loop.create_task(pusher.run()), loop.create_task(Publisher(service, config).run())]

    async def stop(app: web.Application) -> None:
        # The source shuts down: SubscriptionEnd (SourceShuttingDown) to every EndTo, bounded in time
        # (WS-Eventing 2004/08 3.5).
        if service.events.shutdown():
            with contextlib.suppress(Exception):
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SHUTDOWN_WAIT)) as session:
                    await asyncio.wait_for(pusher.step(session), SHUTDOWN_WAIT)
        tasks = app.get(_TASKS_KEY, [])
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT)
            for task in stuck:
                log.warning("event task %s did not stop within %s s", task.get_name(), SHUTDOWN_WAIT)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


__all__ = ["EventPusher", "install_event_tasks"]

"""The mock as the publisher of publisher-initiated (source-initiated) subscriptions (MS-WSMV
3.1.4.1.30; MS-WMOD 3.5; the Windows Event Forwarding source-initiated model).

The publisher is configured with the collector's WS-Man URL (``MockConfig.subscription_manager_url``;
on Windows the "Configure target Subscription Manager" policy). It Enumerates the resource
``http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription`` there, asking for an
optimized enumeration (MS-WSMV 3.1.4.1.30; DSP0226 8.2.3) and Pulling the rest (MS-WMOD 3.5 steps
1-4). Every item is a ``SubscriptionType`` (MS-WSMV 2.2.4.41): a Version GUID and a complete
Subscribe envelope. The publisher registers each new version with its own WS-Man service exactly as
if that Subscribe had arrived over the wire (MS-WMOD 3.5 steps 5-6), so the delivery mode, NotifyTo,
EndTo, Heartbeats, filter and bookmark of the collector's request are honoured by the same code as a
collector-initiated subscription; events, heartbeats and SubscriptionEnd then flow to the collector
(steps 7-14) through the :class:`~harness.targets.mock.event_pusher.EventPusher`.

The collector is enumerated again every ``subscription_manager_refresh`` seconds of the event clock
(a ManualClock in tests). A version that disappears from the list ends its subscription with
SourceCancelling; pointing the publisher elsewhere (or at nothing) ends them all with
SourceShuttingDown (WS-Eventing 2004/08 3.5). The enumeration is sent without authentication;
Windows would authenticate with Kerberos or a client certificate (not modelled).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from lxml import etree

from harness.aio import wait_event
from harness.targets.mock.config import MockConfig
from harness.targets.mock.events import EventSource, ManualClock
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.transport.body import read_body
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import SOAP_CONTENT_TYPE, Action

log = logging.getLogger("wmh.mock.publisher")

IDLE_WAIT = 0.5
REQUEST_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: Bounds on one refresh: round trips and subscriptions taken from the collector.
MAX_ROUND_TRIPS = 100
MAX_SUBSCRIPTIONS = 256
MIN_REFRESH = 1.0
PAGE_SIZE = 32
#: The principal the collector's Subscribe requests run as inside the mock.
PUBLISHER_PRINCIPAL = Principal(name="publisher")


class PublisherError(Exception):
    """The collector answered something the publisher cannot use."""


class Publisher:
    """Polls the configured subscription manager and keeps the mock's subscriptions in step."""

    def __init__(self, service: WSManService, config: MockConfig) -> None:
        self.service = service
        self.config = config
        self.source = service.events
        #: Version of each subscription item -> identifier of the subscription it created.
        self.active: dict[str, str] = {}
        #: Version -> the fault the mock's service answered to its Subscribe.
        self.refused: dict[str, str] = {}
        self.refreshes = 0
        self._url: str | None = None
        self._next_refresh: float | None = None

    async def run(self) -> None:
        """Follow ``config.subscription_manager_url`` until cancelled."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def signal() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(wake.set)

        remove = self.source.add_waker(signal)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    await self.step(session)
                    await wait_event(wake, IDLE_WAIT)
                    wake.clear()
        finally:
            remove()
            self.end_all(ev.END_SOURCE_SHUTTING_DOWN)

    async def step(self, session: aiohttp.ClientSession) -> None:
        """Notice a new collector URL, and refresh when the refresh interval has passed."""
        url = self.config.subscription_manager_url
        if url != self._url:
            self.end_all(ev.END_SOURCE_SHUTTING_DOWN)
            self._url = url
            self._next_refresh = None
        if url is None:
            return
        now = self.source.now()
        if self._next_refresh is not None and now < self._next_refresh:
            return
        self._next_refresh = now + max(MIN_REFRESH, self.config.subscription_manager_refresh)
        try:
            await self.refresh(session, url)
        except (PublisherError, WSManDecodeError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("cannot get the subscriptions from %s: %s", url, exc)

    def end_all(self, status: str) -> None:
        """End every subscription this publisher created (SubscriptionEnd with ``status``)."""
        while self.active:
            _, identifier = self.active.popitem()
            self.source.end(identifier, status)

    async def refresh(self, session: aiohttp.ClientSession, url: str) -> None:
        """Enumerate the collector's subscriptions once and apply them (MS-WMOD 3.5 steps 1-6)."""
        items = await self._enumerate(session, url)
        self.refreshes += 1
        seen: set[str] = set()
        for element in items:
            try:
                item = ev.parse_subscription_item(element)
            except WSManDecodeError as exc:
                log.info("ignoring a malformed subscription item: %s", exc.reason)
                continue
            seen.add(item.version)
            if item.version in self.active or item.version in self.refused:
                continue  # same version: the same, unchanged subscription (MS-WSMV 2.2.4.41)
            _, body = self.service.handle(item.raw, PUBLISHER_PRINCIPAL)
            env = parse_envelope(body)
            if is_fault(env):
                self.refused[item.version] = str(parse_fault(env))
                log.info("the collector's subscription %s is refused: %s", item.version, self.refused[item.version])
                continue
            self.active[item.version] = ev.parse_subscribe_response(env).manager.identifier
        for version in [v for v in self.active if v not in seen]:
            self.source.end(self.active.pop(version), ev.END_SOURCE_CANCELLING,
                            "The subscription manager no longer lists the subscription.")
        for version in [v for v in self.refused if v not in seen]:
            del self.refused[version]

    async def _exchange(self, session: aiohttp.ClientSession, url: str, body: bytes) -> Envelope:
        async with session.post(url, data=body, headers={"Content-Type": SOAP_CONTENT_TYPE}) as resp:
            data = await read_body(resp.content, MAX_RESPONSE_BYTES + 1)
        if len(data) > MAX_RESPONSE_BYTES:
            raise PublisherError("the subscription manager's answer is too large")
        env = parse_envelope(data, max_size=MAX_RESPONSE_BYTES)
        if is_fault(env):
            raise PublisherError(f"the subscription manager answered a fault: {parse_fault(env)}")
        return env

    async def _enumerate(self, session: aiohttp.ClientSession, url: str) -> list[etree._Element]:
        """Enumerate (optimized) then Pull until EndOfSequence, bounded (DSP0226 8.2.3, 8.4)."""
        header = Header(Action.ENUMERATE, to=url, resource_uri=ev.RESOURCE_SUBSCRIPTION_MANAGER)
        page = msg.parse_enumerate_response(await self._exchange(session, url, msg.build_enumerate_request(
            header, msg.EnumerateRequest(optimize=True, max_elements=PAGE_SIZE))))
        items = list(page.items)
        trips = 1
        while not page.end_of_sequence:
            if not page.context:
                raise PublisherError("an enumeration answer without EnumerationContext or EndOfSequence")
            if trips >= MAX_ROUND_TRIPS or len(items) > MAX_SUBSCRIPTIONS:
                raise PublisherError("the subscription manager lists too many subscriptions")
            pull = Header(Action.PULL, to=url, resource_uri=ev.RESOURCE_SUBSCRIPTION_MANAGER)
            page = msg.parse_pull_response(await self._exchange(session, url, msg.build_pull_request(
                pull, msg.PullRequest(page.context, PAGE_SIZE))))
            items.extend(page.items)
            trips += 1
        return items[:MAX_SUBSCRIPTIONS]


class MockEventing:
    """What a test may do to the mock's eventing (mock-only; real targets have no such handle):
    advance its event clock and point its publisher at a subscription manager."""

    def __init__(self, config: MockConfig, source: EventSource | None = None) -> None:
        self.config = config
        self.source = source

    @property
    def clock(self) -> ManualClock:
        clock = self.config.event_clock
        if not isinstance(clock, ManualClock):
            raise RuntimeError("the mock runs on a real-time event clock (MockConfig.event_clock is not a ManualClock)")
        return clock

    def advance(self, seconds: float) -> None:
        """Move the event clock forward: heartbeats fall due and subscriptions expire, no sleeping."""
        self.clock.advance(seconds)

    def limit_queue(self, events: int) -> int:
        """Bound every subscription's queue to ``events`` (so that a burst overflows it and the
        service must report wsman:DroppedEvents, DSP0226 10.9); returns the previous bound."""
        if self.source is None:
            raise RuntimeError("this handle has no event source (MockEventing built without one)")
        previous = self.source.queue_size
        self.source.queue_size = events
        return previous

    def point_publisher(self, url: str | None, *, refresh: float | None = None) -> None:
        """Point the publisher at a subscription manager URL (None: at none, ending its subscriptions)."""
        if refresh is not None:
            self.config.subscription_manager_refresh = refresh
        self.config.subscription_manager_url = url


__all__ = ["MockEventing", "Publisher", "PublisherError"]

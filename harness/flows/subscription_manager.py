"""The harness as collector of publisher-initiated subscriptions (MS-WSMV 3.1.4.1.30; MS-WMOD 3.5).

In the source-initiated model (Windows Event Forwarding) the event publisher -- the target under
test -- asks the collector for its subscriptions: it Enumerates the resource
``http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription`` and receives one
``SubscriptionType`` item per subscription (MS-WSMV 2.2.4.41): a Version GUID and a complete
Subscribe envelope (MS-WSMV 3.1.4.6) naming the delivery mode, NotifyTo (the harness's
:class:`~harness.transport.event_sink.EventSink`), EndTo, Heartbeats and the filter. The publisher
then delivers events, heartbeats and finally SubscriptionEnd to the sink.

:class:`SubscriptionManagerServer` is that WS-Man endpoint: an aiohttp listener answering Enumerate
(optimized, DSP0226 8.2.3), Pull (DSP0226 8.4) and Release (DSP0226 8.5) on the SubscriptionManager
resource with the sans-IO codecs; anything else is a SOAP fault. Requests are not authenticated
(Windows collectors use Kerberos or client certificates; not modelled). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from lxml import etree

from harness.transport.body import read_body
from harness.transport.http_listener import start_listener
from harness.transport.tap import Direction, Tap
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import Envelope, parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import FAULTS, WSManFault, build_fault, make_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import SOAP_CONTENT_TYPE, Action

MAX_MESSAGE_BYTES = 512 * 1024
DEFAULT_HOST = "127.0.0.1"
#: Items per EnumerateResponse / PullResponse when the publisher names no MaxElements.
DEFAULT_PAGE = 10
MAX_CONTEXTS = 64
PATH = "/wsman/SubscriptionManager/WEC"


@dataclass
class CollectorSubscription:
    """One subscription the collector hands out: the Subscribe request and the resource it names."""

    resource_uri: str
    request: ev.SubscribeRequest
    version: str = field(default_factory=lambda: "uuid:" + str(uuid.uuid4()).upper())

    def envelope(self, to: str) -> bytes:
        """The Subscribe envelope of the item (MS-WSMV 2.2.4.41: a SubscribeMsg, MS-WSMV 3.1.4.6.1)."""
        return ev.build_subscribe_request(Header(Action.SUBSCRIBE, to=to, resource_uri=self.resource_uri),
                                          self.request)


@dataclass
class ManagerRecord:
    """What publishers asked: Enumerate and Pull counts, and any malformed request."""

    enumerations: int = 0
    optimized: int = 0
    pulls: int = 0
    malformed: list[str] = field(default_factory=list)


class SubscriptionManagerServer:
    """The collector's subscription manager endpoint. Use ``async with``; :attr:`url` is what the
    publisher is configured with."""

    def __init__(self, *, host: str | None = None, port: int = 0, tap: Tap | None = None) -> None:
        self.host = host or os.environ.get("WMH_EVENT_SINK_HOST", DEFAULT_HOST)
        self.port = port
        self.tap = tap
        self.url = ""
        self.record = ManagerRecord()
        self._subscriptions: OrderedDict[str, CollectorSubscription] = OrderedDict()
        self._contexts: OrderedDict[str, list[etree._Element]] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    # ------------------------------------------------------------------------------ subscriptions
    def add(self, subscription: CollectorSubscription) -> str:
        """Offer a subscription to publishers; returns its Version."""
        self._subscriptions[subscription.version] = subscription
        return subscription.version

    def remove(self, version: str) -> bool:
        """Stop offering a subscription (the publisher ends it at its next refresh)."""
        return self._subscriptions.pop(version, None) is not None

    @property
    def subscriptions(self) -> list[CollectorSubscription]:
        return list(self._subscriptions.values())

    # ------------------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> SubscriptionManagerServer:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_post(PATH, self._handle)
        self._runner, self.port = await start_listener(app, self.host, self.port)
        self.url = f"http://{self.host}:{self.port}{PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_enumerated(self, count: int = 1, timeout: float = 10.0) -> None:
        """Until publishers sent ``count`` Enumerate requests; TimeoutError otherwise."""
        await self._wait(lambda: self.record.enumerations >= count, timeout)

    async def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)

    # ------------------------------------------------------------------------------ HTTP
    def _tap(self, direction: Direction, body: bytes, peer: str, status: int | None = None) -> None:
        if self.tap is not None:
            self.tap.record(protocol="wsman-subscription-manager", direction=direction, peer=peer, headers={},
                            body=body, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        data = await read_body(request.content, MAX_MESSAGE_BYTES + 1)
        peer = request.remote or ""
        self._tap("request", data, peer)
        status, body = self.answer(data)
        self._tap("response", body, peer, status)
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=status, body=body, headers={"Content-Type": SOAP_CONTENT_TYPE})

    # ------------------------------------------------------------------------------ sans-IO core
    def answer(self, data: bytes) -> tuple[int, bytes]:
        """One request in, (HTTP status, envelope) out; faults with HTTP 500 like WinRM."""
        relates_to: str | None = None
        try:
            if len(data) > MAX_MESSAGE_BYTES:
                raise make_fault("EncodingLimit", "The request is too large for the subscription manager.")
            env = parse_envelope(data, max_size=MAX_MESSAGE_BYTES)
            relates_to = env.header.message_id or None
            return 200, self._dispatch(env)
        except WSManDecodeError as exc:
            self.record.malformed.append(exc.reason)
            name = exc.fault if exc.fault in FAULTS else "SchemaValidationError"
            return 500, build_fault(make_fault(name, exc.reason), relates_to)
        except WSManFault as fault:
            return 500, build_fault(fault, relates_to)

    def _dispatch(self, env: Envelope) -> bytes:
        h = env.header
        if h.resource_uri != ev.RESOURCE_SUBSCRIPTION_MANAGER:
            raise make_fault("DestinationUnreachable",
                             f"The subscription manager serves only {ev.RESOURCE_SUBSCRIPTION_MANAGER}.")
        if h.action == Action.ENUMERATE:
            return self._enumerate(env)
        if h.action == Action.PULL:
            return self._pull(env)
        if h.action == Action.RELEASE:
            request = msg.parse_release_request(env)
            if self._contexts.pop(request.context, None) is None:
                raise make_fault("InvalidEnumerationContext")
            return msg.build_release_response(h.message_id)
        raise make_fault("ActionNotSupported", f"The action {h.action} is not supported by the subscription manager.")

    def _items(self) -> list[etree._Element]:
        address = self.url or "http://localhost" + PATH
        return [ev.build_subscription_item(s.version, s.envelope(address)) for s in self._subscriptions.values()]

    def _page(self, items: list[etree._Element], max_elements: int | None) -> msg.EnumerationItems:
        n = max(1, max_elements or DEFAULT_PAGE)
        page = msg.EnumerationItems(items=items[:n])
        rest = items[n:]
        if rest:
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts.popitem(last=False)
            context = "uuid:" + str(uuid.uuid4()).upper()
            self._contexts[context] = rest
            page.context = context
        else:
            page.end_of_sequence = True
        return page

    def _enumerate(self, env: Envelope) -> bytes:
        """Enumerate of the subscriptions (MS-WSMV 3.1.4.1.30): optimized when asked (DSP0226 8.2.3)."""
        request = msg.parse_enumerate_request(env)
        self.record.enumerations += 1
        self.record.optimized += int(request.optimize)
        items = self._items()
        if not request.optimize:
            context = "uuid:" + str(uuid.uuid4()).upper()
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts.popitem(last=False)
            self._contexts[context] = items
            return msg.build_enumerate_response(env.header.message_id, context=context)
        page = self._page(items, request.max_elements)
        return msg.build_enumerate_response(env.header.message_id, page)

    def _pull(self, env: Envelope) -> bytes:
        request = msg.parse_pull_request(env)
        self.record.pulls += 1
        items = self._contexts.pop(request.context, None)
        if items is None:
            raise make_fault("InvalidEnumerationContext")
        return msg.build_pull_response(env.header.message_id, self._page(items, request.max_elements))


__all__ = ["CollectorSubscription", "ManagerRecord", "SubscriptionManagerServer"]

"""An HTTP event sink for push-mode WS-Man subscriptions (DSP0226 10.2.9.1-10.2.9.3; MS-WMOD 3.4).

The harness subscribes with NotifyTo = :attr:`EventSink.url`; the target POSTs events here. Each
delivery is decoded with the sans-IO codec (:mod:`harness.wire.wsman.eventing`), recorded, and, when
the message carries ``wsman:AckRequested`` (PushWithAck, batched Events), answered with a
``wsman:Ack`` relating to its MessageID (DSP0226 10.7) -- unless :attr:`EventSink.acknowledge` is
False, in which case the sink answers HTTP 503 so that the source must keep the event and send it
again (the "must not advance until Ack" rule of DSP0226 10.2.9.2). Heartbeats (10.2.5),
DroppedEvents (10.9) and SubscriptionEnd (10.6) are recorded separately. Waiting for events is
bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from harness.transport.body import read_body
from harness.transport.http_listener import start_listener
from harness.transport.tap import Direction, Tap
from harness.wire.wsman import eventing as ev
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.ns import ANONYMOUS, SOAP_CONTENT_TYPE, Action

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Address the sink binds to; a real target must reach it (env WMH_EVENT_SINK_HOST).
DEFAULT_HOST = "127.0.0.1"


@dataclass
class SinkRecord:
    """Everything the sink received, in arrival order per kind."""

    messages: list[ev.EventMessage] = field(default_factory=list)
    heartbeats: int = 0
    dropped: list[ev.DroppedEvents] = field(default_factory=list)
    ends: list[ev.SubscriptionEnd] = field(default_factory=list)
    refused: int = 0
    malformed: list[str] = field(default_factory=list)
    #: The kind of every accepted message in arrival order: "event", "heartbeat", "dropped", "end".
    kinds: list[str] = field(default_factory=list)

    @property
    def events(self) -> list[ev.DeliveredEvent]:
        return [e for m in self.messages for e in m.events]


class EventSink:
    """One HTTP listener on ``/events``. Use ``async with``."""

    def __init__(self, *, host: str | None = None, port: int = 0, tap: Tap | None = None) -> None:
        self.host = host or os.environ.get("WMH_EVENT_SINK_HOST", DEFAULT_HOST)
        self.port = port
        self.tap = tap
        self.acknowledge = True
        self.record = SinkRecord()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> EventSink:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
        app.router.add_post("/events", self._handle)
        self._runner, port = await start_listener(app, self.host, self.port)
        self.url = f"http://{self.host}:{port}/events"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _tap(self, direction: Direction, body: bytes, peer: str, status: int | None = None) -> None:
        if self.tap is not None:
            self.tap.record(protocol="wsman-event", direction=direction, peer=peer, headers={}, body=body,
                            status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        data = await read_body(request.content, MAX_MESSAGE_BYTES + 1)
        self._tap("request", data, request.remote or "")
        try:
            env = parse_envelope(data, max_size=MAX_MESSAGE_BYTES, understood_headers=ev.EVENTING_HEADERS)
            action = env.header.action
            if action == Action.HEARTBEAT:
                ev.parse_heartbeat(env)
                self.record.heartbeats += 1
                self.record.kinds.append("heartbeat")
                return await self._done(web.Response(status=200), request)
            if action == Action.DROPPED_EVENTS:
                self.record.dropped.append(ev.parse_dropped_events(env))
                self.record.kinds.append("dropped")
                return await self._done(web.Response(status=200), request)
            if action == Action.SUBSCRIPTION_END:
                self.record.ends.append(ev.parse_subscription_end(env))
                self.record.kinds.append("end")
                return await self._done(web.Response(status=200), request)
            message = ev.parse_event_message(env)
        except WSManDecodeError as exc:
            self.record.malformed.append(exc.reason)
            return await self._done(web.Response(status=400, text=exc.reason), request)
        if message.ack_requested and not self.acknowledge:
            self.record.refused += 1
            return await self._done(web.Response(status=503, text="not acknowledging"), request)
        self.record.messages.append(message)
        self.record.kinds.extend("event" for _ in message.events)
        if not message.ack_requested:
            return await self._done(web.Response(status=200), request)
        ack = ev.build_ack(message.message_id or "", to=ANONYMOUS)
        return await self._done(web.Response(status=200, body=ack, headers={"Content-Type": SOAP_CONTENT_TYPE}),
                                request)

    async def _done(self, response: web.Response, request: web.Request) -> web.Response:
        """Record the answer (with its HTTP status, as the capture synthesiser needs) and wake waiters."""
        body = response.body if isinstance(response.body, bytes) else b""
        self._tap("response", body, request.remote or "", response.status)
        async with self._changed:
            self._changed.notify_all()
        return response

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ev.DeliveredEvent]:
        """The first ``count`` delivered events; TimeoutError if they do not arrive in time."""
        await self._wait(lambda: len(self.record.events) >= count, timeout)
        return self.record.events[:count]

    async def wait_refused(self, count: int, timeout: float = 10.0) -> None:
        """Until the source has tried (and been refused) ``count`` deliveries."""
        await self._wait(lambda: self.record.refused >= count, timeout)

    async def wait_heartbeats(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` heartbeats (DSP0226 10.2.5) arrived; TimeoutError otherwise."""
        await self._wait(lambda: self.record.heartbeats >= count, timeout)

    async def wait_ends(self, count: int = 1, timeout: float = 10.0) -> list[ev.SubscriptionEnd]:
        """The first ``count`` SubscriptionEnd messages (DSP0226 10.6); TimeoutError otherwise."""
        await self._wait(lambda: len(self.record.ends) >= count, timeout)
        return self.record.ends[:count]

    async def wait_dropped(self, count: int = 1, timeout: float = 10.0) -> list[ev.DroppedEvents]:
        """The first ``count`` DroppedEvents messages (DSP0226 10.9); TimeoutError otherwise."""
        await self._wait(lambda: len(self.record.dropped) >= count, timeout)
        return self.record.dropped[:count]

    async def _wait(self, done: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)


__all__ = ["EventSink", "SinkRecord"]

"""The mock target's event source: WS-Eventing subscriptions over the CIM store (MS-WMOD 3.3;
DSP0226 10; MS-WSMV 3.1.4.6), sans-IO.

Every successful write of the shared :class:`~harness.cim.store.CimStore` becomes an intrinsic
event (``__InstanceCreationEvent``, ``__InstanceModificationEvent``, ``__InstanceDeletionEvent``,
subclasses of ``__InstanceOperationEvent``, MS-WMI 2.2.x / WMI system classes) carrying
``TargetInstance``, ``PreviousInstance`` (modification only) and ``TIME_CREATED`` (FILETIME, 100 ns
units since 1601-01-01 UTC). Each event gets a global sequence number and is kept in a bounded log,
so a subscription that names a bookmark (DSP0226 10.2.6) replays the logged events after it: a Pull
client that restarts resumes exactly where it stopped.

A subscription selects events with a WQL event query (``SELECT * FROM __InstanceCreationEvent
WITHIN 1 WHERE TargetInstance ISA 'Win32_Environment'``). ``WITHIN`` is accepted and recorded: WMI
polls at that interval for classes without an event provider, but this source observes every store
change directly when it happens, so the polling interval is an upper bound on the delay that is
always met. Subscriptions expire (WS-Eventing 2004/08 3.1 Expires) by an injectable monotonic clock,
so tests never sleep.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.store import CimStore, StoreChange
from harness.cim.wql import WqlQuery, evaluate_where, parse_wql
from harness.wire.wsman.eventing import BOOKMARK_EARLIEST, DELIVERY_PULL, Delivery

#: Intrinsic event classes and their ancestors (WMI system classes: __Event <- __InstanceOperationEvent).
EVENT_ANCESTRY: dict[str, tuple[str, ...]] = {
    "__instancecreationevent": ("__InstanceCreationEvent", "__InstanceOperationEvent", "__Event"),
    "__instancemodificationevent": ("__InstanceModificationEvent", "__InstanceOperationEvent", "__Event"),
    "__instancedeletionevent": ("__InstanceDeletionEvent", "__InstanceOperationEvent", "__Event"),
    "__instanceoperationevent": ("__InstanceOperationEvent", "__Event"),
}
_EVENT_OF_KIND = {
    "create": "__InstanceCreationEvent",
    "modify": "__InstanceModificationEvent",
    "delete": "__InstanceDeletionEvent",
}
#: FILETIME epoch offset: seconds from 1601-01-01 to 1970-01-01.
_FILETIME_EPOCH = 11_644_473_600
_BOOKMARK_PREFIX = "wmh-bookmark:"

DEFAULT_EXPIRY = 3600.0
MAX_EXPIRY = 7 * 86400.0
DEFAULT_LOG_SIZE = 4096
DEFAULT_QUEUE_SIZE = 4096
DEFAULT_MAX_SUBSCRIPTIONS = 256


class EventSourceError(Exception):
    """A subscription request the source refuses; ``fault`` names the WS-Man fault to answer."""

    def __init__(self, fault: str, reason: str) -> None:
        super().__init__(reason)
        self.fault = fault
        self.reason = reason


@dataclass(frozen=True)
class LoggedEvent:
    """One intrinsic event with its global sequence number."""

    sequence: int
    namespace: str
    event_class: str
    instance: pywbem.CIMInstance


@dataclass
class Subscription:
    """Server-side state of one subscription."""

    identifier: str
    namespace: str
    query: WqlQuery
    query_text: str
    delivery: Delivery
    resource_uri: str
    expires_at: float | None
    send_bookmarks: bool = False
    context: str | None = None
    queue: deque[LoggedEvent] = field(default_factory=deque)
    dropped: int = 0
    last_sequence: int = 0

    @property
    def within(self) -> float | None:
        """The WQL WITHIN interval (seconds), recorded; always met (see module docstring)."""
        return self.query.within


def filetime(seconds_since_epoch: float) -> int:
    """FILETIME (100 ns intervals since 1601-01-01 UTC) of a POSIX time (MS-DTYP 2.3.3)."""
    return round((seconds_since_epoch + _FILETIME_EPOCH) * 10_000_000)


def make_bookmark(source_id: str, sequence: int) -> str:
    """Opaque bookmark text naming the last delivered sequence number (DSP0226 10.2.6)."""
    return f"{_BOOKMARK_PREFIX}{source_id}:{sequence}"


class EventSource:
    """Subscriptions, the event log and per-subscription queues. Thread-safe."""

    def __init__(self, store: CimStore, *, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time, log_size: int = DEFAULT_LOG_SIZE,
                 queue_size: int = DEFAULT_QUEUE_SIZE, max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS) -> None:
        self.store = store
        self.source_id = uuid.uuid4().hex[:16]
        self._clock = clock
        self._wallclock = wallclock
        self._log: deque[LoggedEvent] = deque(maxlen=log_size)
        self._queue_size = queue_size
        self._max = max_subscriptions
        self._sequence = 0
        self._subs: OrderedDict[str, Subscription] = OrderedDict()
        self._by_context: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []
        self._unlisten = store.add_listener(self._on_change)

    def close(self) -> None:
        """Stop listening to the store."""
        self._unlisten()

    # ------------------------------------------------------------------------------ events
    def _event_instance(self, change: StoreChange) -> pywbem.CIMInstance:
        """The intrinsic event object of a store change (WMI __InstanceOperationEvent subclasses)."""
        event = pywbem.CIMInstance(_EVENT_OF_KIND[change.kind])
        target = change.current if change.kind != "delete" else change.previous
        if target is not None:
            event["TargetInstance"] = pywbem.CIMProperty("TargetInstance", target.copy(), type="string",
                                                         embedded_object="instance")
        if change.kind == "modify" and change.previous is not None:
            event["PreviousInstance"] = pywbem.CIMProperty("PreviousInstance", change.previous.copy(),
                                                           type="string", embedded_object="instance")
        event["TIME_CREATED"] = pywbem.Uint64(filetime(self._wallclock()))
        return event

    def _on_change(self, change: StoreChange) -> None:
        instance = self._event_instance(change)
        pushed = False
        with self._lock:
            self._sequence += 1
            logged = LoggedEvent(self._sequence, change.namespace, instance.classname, instance)
            self._log.append(logged)
            self._expire(self._clock())
            for sub in self._subs.values():
                if self._matches(sub, logged):
                    self._enqueue(sub, logged)
                    pushed = pushed or sub.delivery.mode != DELIVERY_PULL
            wakers = list(self._wakers) if pushed else []
        for wake in wakers:
            wake()

    def add_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from the writing thread) whenever a push-mode subscription gets an event."""
        with self._lock:
            self._wakers.append(wake)

    def pending_push(self) -> list[Subscription]:
        """Live push-mode subscriptions (Push, PushWithAck, Events) with queued events."""
        with self._lock:
            self._expire(self._clock())
            return [s for s in self._subs.values() if s.delivery.mode != DELIVERY_PULL and s.queue]

    def _isa(self, namespace: str, classname: str, ancestor: str) -> bool:
        chain = EVENT_ANCESTRY.get(classname.lower())
        if chain is not None:
            return ancestor.lower() in (c.lower() for c in chain)
        try:
            return self.store.is_subclass(namespace, classname, ancestor)
        except CimError:
            return False

    def _matches(self, sub: Subscription, event: LoggedEvent) -> bool:
        """Event class ISA the query class, same namespace, WHERE true (WQL event queries)."""
        if self.store.normalize_namespace(event.namespace) != sub.namespace:
            return False
        if not self._isa(sub.namespace, event.event_class, sub.query.classname):
            return False
        if sub.query.where is None:
            return True
        return evaluate_where(sub.query.where, event.instance,
                              lambda cls, anc: self._isa(sub.namespace, cls, anc))

    def _enqueue(self, sub: Subscription, event: LoggedEvent) -> None:
        if len(sub.queue) >= self._queue_size:
            sub.queue.popleft()
            sub.dropped += 1  # DSP0226 10.9: reported as wsman:DroppedEvents
        sub.queue.append(event)

    # ------------------------------------------------------------------------------ subscriptions
    def subscribe(self, namespace: str, resource_uri: str, query_text: str, delivery: Delivery, *,
                  expires: float | None = None, bookmark: str | None = None,
                  send_bookmarks: bool = False) -> Subscription:
        """Register a subscription (DSP0226 10.2). ``expires`` in seconds (None: the source's
        default). A bookmark replays the logged events after it (DSP0226 10.2.6)."""
        query = self._event_query(namespace, query_text)
        start = self._bookmark_sequence(bookmark)
        now = self._clock()
        granted = self.grant(expires)
        sub = Subscription(identifier="uuid:" + str(uuid.uuid4()).upper(),
                           namespace=self.store.normalize_namespace(namespace), query=query,
                           query_text=query_text, delivery=delivery, resource_uri=resource_uri,
                           expires_at=now + granted, send_bookmarks=send_bookmarks)
        if delivery.mode == DELIVERY_PULL:
            sub.context = "uuid:" + str(uuid.uuid4()).upper()
        with self._lock:
            self._expire(now)
            if len(self._subs) >= self._max:
                raise EventSourceError("QuotaLimit", f"the source holds {self._max} subscriptions already")
            if start is not None:
                sub.last_sequence = start
                if self._log and self._log[0].sequence > start + 1:
                    sub.dropped += self._log[0].sequence - start - 1
                for logged in self._log:
                    if logged.sequence > start and self._matches(sub, logged):
                        self._enqueue(sub, logged)
            else:
                sub.last_sequence = self._sequence
            self._subs[sub.identifier] = sub
            if sub.context is not None:
                self._by_context[sub.context] = sub.identifier
        return sub

    @staticmethod
    def grant(expires: float | None) -> float:
        """The expiry the source grants: the request, bounded to (0, MAX_EXPIRY]."""
        if expires is None:
            return DEFAULT_EXPIRY
        if expires <= 0:
            raise EventSourceError("InvalidParameter", "Expires must lie in the future (WS-Eventing 2004/08 3.1)")
        return min(expires, MAX_EXPIRY)

    def _event_query(self, namespace: str, text: str) -> WqlQuery:
        query = parse_wql(text)  # WqlSyntaxError (INVALID_QUERY) for the caller to map
        if query.kind != "select" or query.classname.lower() not in EVENT_ANCESTRY:
            raise EventSourceError("CannotProcessFilter",
                                   f"{query.classname or query.kind} is not an intrinsic instance event class")
        if not self.store.has_namespace(namespace):
            raise CimError(CimStatus.INVALID_NAMESPACE, f"namespace {namespace} does not exist")
        return query

    def _bookmark_sequence(self, bookmark: str | None) -> int | None:
        if bookmark is None:
            return None
        if bookmark.strip() == BOOKMARK_EARLIEST:
            return 0
        text = bookmark.strip()
        source, _, seq = text.removeprefix(_BOOKMARK_PREFIX).rpartition(":")
        if not text.startswith(_BOOKMARK_PREFIX) or source != self.source_id or not seq.isdigit() \
                or len(seq) > 18:
            raise EventSourceError("InvalidParameter", "the bookmark was not issued by this event source")
        return int(seq)

    def _expire(self, now: float) -> None:
        dead = [i for i, s in self._subs.items() if s.expires_at is not None and now >= s.expires_at]
        for ident in dead:
            self._remove(ident)

    def _remove(self, identifier: str) -> Subscription | None:
        sub = self._subs.pop(identifier, None)
        if sub is not None and sub.context is not None:
            self._by_context.pop(sub.context, None)
        return sub

    def get(self, identifier: str) -> Subscription | None:
        """The live subscription, or None when unknown or expired."""
        with self._lock:
            self._expire(self._clock())
            return self._subs.get(identifier)

    def by_context(self, context: str) -> Subscription | None:
        """The live Pull-mode subscription owning an enumeration context."""
        with self._lock:
            self._expire(self._clock())
            ident = self._by_context.get(context)
            return None if ident is None else self._subs.get(ident)

    def renew(self, identifier: str, expires: float | None) -> float:
        """Extend a live subscription (DSP0226 10.5); returns the granted seconds."""
        granted = self.grant(expires)
        with self._lock:
            now = self._clock()
            self._expire(now)
            sub = self._subs.get(identifier)
            if sub is None:
                raise EventSourceError("DestinationUnreachable", "the subscription does not exist or has expired")
            sub.expires_at = now + granted
        return granted

    def remaining(self, sub: Subscription) -> float | None:
        """Seconds until ``sub`` expires (GetStatus, DSP0226 10.3)."""
        return None if sub.expires_at is None else max(0.0, sub.expires_at - self._clock())

    def unsubscribe(self, identifier: str) -> bool:
        """End a subscription (DSP0226 10.4); False if it was unknown or already expired."""
        with self._lock:
            self._expire(self._clock())
            return self._remove(identifier) is not None

    def take(self, sub: Subscription, max_items: int) -> list[LoggedEvent]:
        """Remove and return up to ``max_items`` queued events of ``sub`` in order."""
        out: list[LoggedEvent] = []
        with self._lock:
            while sub.queue and len(out) < max_items:
                event = sub.queue.popleft()
                out.append(event)
                sub.last_sequence = event.sequence
        return out

    def put_back(self, sub: Subscription, events: list[LoggedEvent]) -> None:
        """Return events that could not be sent (e.g. the envelope budget) to the head of the queue."""
        with self._lock:
            for event in reversed(events):
                sub.queue.appendleft(event)
            if sub.queue:
                sub.last_sequence = sub.queue[0].sequence - 1

    def bookmark(self, sub: Subscription) -> str:
        """Bookmark after the last event taken from ``sub`` (DSP0226 10.2.6)."""
        return make_bookmark(self.source_id, sub.last_sequence)

    def __len__(self) -> int:
        with self._lock:
            return len(self._subs)


__all__ = ["EVENT_ANCESTRY", "EventSource", "EventSourceError", "LoggedEvent", "Subscription", "filetime",
           "make_bookmark"]

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
so tests never sleep: :class:`ManualClock` is advanced by the test, and every advance wakes the
I/O half (heartbeats, DSP0226 10.2.5; expiry, SubscriptionEnd, DSP0226 10.6).

A subscription that ends without the client asking (expiry, cancellation by the source, failed
delivery) is kept in an "ended" list with its WS-Eventing status (WS-Eventing 2004/08 3.5:
DeliveryFailure, SourceShuttingDown, SourceCancelling) until the I/O half has sent SubscriptionEnd
to its EndTo. Events that overflow a subscription's bounded queue are counted and reported as
``wsman:DroppedEvents`` before the next delivery (DSP0226 10.9).
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
from harness.listeners import Listeners
from harness.wire.wsman.eventing import (
    BOOKMARK_EARLIEST,
    DELIVERY_PULL,
    END_DELIVERY_FAILURE,
    END_SOURCE_CANCELLING,
    END_SOURCE_SHUTTING_DOWN,
    Delivery,
)
from harness.wire.wsman.faults import FaultDetail
from harness.wire.wsman.header import EndpointReference

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


class ManualClock:
    """A monotonic clock that only moves when told to (``advance``), optionally on top of a base
    clock (``ManualClock(base=time.monotonic)`` runs in real time and can also be jumped forward).
    Listeners are called after every advance, from the advancing thread."""

    def __init__(self, start: float = 0.0, *, base: Callable[[], float] | None = None) -> None:
        self._offset = start
        self._base = base
        self._lock = threading.Lock()
        self._listeners = Listeners()

    def __call__(self) -> float:
        with self._lock:
            offset = self._offset
        return offset + (self._base() if self._base is not None else 0.0)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0) and notify the listeners."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        with self._lock:
            self._offset += seconds
        self._listeners.notify()

    def add_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every advance; returns the function that removes it."""
        return self._listeners.add(listener)


class EventSourceError(Exception):
    """A subscription request the source refuses; ``fault`` names the WS-Man fault to answer."""

    def __init__(self, fault: str, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.fault = fault
        self.reason = reason
        self.detail = detail


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
    #: Where SubscriptionEnd goes (WS-Eventing 2004/08 3.1 EndTo); None: nowhere.
    end_to: EndpointReference | None = None
    #: Event-clock time of the last delivery or heartbeat (DSP0226 10.2.5 counts from it).
    last_activity: float = 0.0
    #: Event-clock time of the last event that entered the queue.
    last_event: float = 0.0

    @property
    def within(self) -> float | None:
        """The WQL WITHIN interval (seconds), recorded; always met (see module docstring)."""
        return self.query.within


@dataclass(frozen=True)
class EndedSubscription:
    """A subscription the source ended on its own, with the SubscriptionEnd status and reason
    (WS-Eventing 2004/08 3.5; DSP0226 10.6)."""

    subscription: Subscription
    status: str
    reason: str


def filetime(seconds_since_epoch: float) -> int:
    """FILETIME (100 ns intervals since 1601-01-01 UTC) of a POSIX time (MS-DTYP 2.3.3)."""
    return round((seconds_since_epoch + _FILETIME_EPOCH) * 10_000_000)


def intrinsic_event(change: StoreChange, now: float) -> pywbem.CIMInstance:
    """The intrinsic event of a store change: __InstanceCreationEvent / __InstanceModificationEvent /
    __InstanceDeletionEvent with TargetInstance (the new instance, or the deleted one),
    PreviousInstance on a modification, and TIME_CREATED as a FILETIME of the POSIX time ``now``
    (WMI's __InstanceOperationEvent classes; MS-WMI 3.1.4.3.20 delivers them)."""
    event = pywbem.CIMInstance(_EVENT_OF_KIND[change.kind])
    target = change.current if change.kind != "delete" else change.previous
    if target is not None:
        event["TargetInstance"] = pywbem.CIMProperty("TargetInstance", target.copy(), type="string",
                                                     embedded_object="instance")
    if change.kind == "modify" and change.previous is not None:
        event["PreviousInstance"] = pywbem.CIMProperty("PreviousInstance", change.previous.copy(),
                                                       type="string", embedded_object="instance")
    event["TIME_CREATED"] = pywbem.Uint64(filetime(now))
    return event


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
        self._wakers = Listeners()
        self._ended: list[EndedSubscription] = []
        self._unlisten = store.add_listener(self._on_change)
        self._unlisten_extrinsic = store.add_extrinsic_listener(self._on_extrinsic)
        add_listener = getattr(clock, "add_listener", None)
        self._unclock: Callable[[], None] | None = add_listener(self._wake_all) if callable(add_listener) else None

    @property
    def queue_size(self) -> int:
        """Bound of each subscription's queue; older events beyond it are dropped (DSP0226 10.9)."""
        return self._queue_size

    @queue_size.setter
    def queue_size(self, value: int) -> None:
        if value < 1:
            raise ValueError("the queue must hold at least one event")
        self._queue_size = value

    def now(self) -> float:
        """The source's (event) clock."""
        return self._clock()

    def close(self) -> None:
        """Stop listening to the store and the clock."""
        self._unlisten()
        self._unlisten_extrinsic()
        if self._unclock is not None:
            self._unclock()

    def _wake_all(self) -> None:
        self._wakers.notify()

    # ------------------------------------------------------------------------------ events
    def _event_instance(self, change: StoreChange) -> pywbem.CIMInstance:
        """The intrinsic event object of a store change (WMI __InstanceOperationEvent subclasses)."""
        return intrinsic_event(change, self._wallclock())

    def _on_change(self, change: StoreChange) -> None:
        self._publish(change.namespace, self._event_instance(change))

    def _on_extrinsic(self, namespace: str, event: pywbem.CIMInstance) -> None:
        """Extrinsic events raised by providers (subclasses of __ExtrinsicEvent) flow like intrinsic ones."""
        self._publish(namespace, event)

    def _publish(self, namespace: str, instance: pywbem.CIMInstance) -> None:
        queued = False
        with self._lock:
            self._sequence += 1
            logged = LoggedEvent(self._sequence, namespace, instance.classname, instance)
            self._log.append(logged)
            now = self._clock()
            self._expire(now)
            for sub in self._subs.values():
                if self._matches(sub, logged):
                    self._enqueue(sub, logged)
                    sub.last_event = now
                    queued = True
        if queued:
            self._wakers.notify()

    def add_waker(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from the writing thread) whenever a subscription gets an event, ends, or
        the event clock advances; returns the function that removes it."""
        return self._wakers.add(wake)

    def push_subscriptions(self) -> list[Subscription]:
        """Every live push-mode subscription (for heartbeats and DroppedEvents, DSP0226 10.2.5, 10.9)."""
        with self._lock:
            self._expire(self._clock())
            return [s for s in self._subs.values() if s.delivery.mode != DELIVERY_PULL]

    def heartbeat_due(self, sub: Subscription) -> float | None:
        """Seconds (event clock) until ``sub`` owes a heartbeat: <= 0 when one is due now, None when
        it asked for none. A heartbeat is due when nothing was delivered for the Heartbeats interval
        (DSP0226 10.2.5)."""
        interval = sub.delivery.heartbeats
        if interval is None or interval <= 0:
            return None
        return sub.last_activity + interval - self._clock()

    def mark_activity(self, sub: Subscription, at: float | None = None) -> None:
        """Record a delivery or heartbeat to ``sub`` sent at ``at`` (default now; restarts the
        heartbeat interval)."""
        sub.last_activity = self._clock() if at is None else at

    def take_dropped(self, sub: Subscription) -> int:
        """The number of events dropped since the last report, and reset it (DSP0226 10.9)."""
        with self._lock:
            count, sub.dropped = sub.dropped, 0
        return count

    def take_ended(self) -> list[EndedSubscription]:
        """Subscriptions ended by the source since the last call (for SubscriptionEnd, DSP0226 10.6)."""
        with self._lock:
            self._expire(self._clock())
            out, self._ended = self._ended, []
        return out

    def end(self, identifier: str, status: str = END_SOURCE_SHUTTING_DOWN, reason: str = "") -> bool:
        """End a subscription on the source's side (WS-Eventing 2004/08 3.5): it is removed and a
        SubscriptionEnd with ``status`` goes to its EndTo. False when it was not live."""
        with self._lock:
            sub = self._remove(identifier)
            if sub is None:
                return False
            if sub.end_to is not None:  # without EndTo no SubscriptionEnd is sent (WS-Eventing 2004/08 3.1)
                self._ended.append(EndedSubscription(sub, status, reason or _END_REASONS.get(status, "")))
        self._wake_all()
        return True

    def delivery_failed(self, identifier: str, reason: str) -> bool:
        """End a push subscription whose deliveries failed (DSP0226 10.2.3; SubscriptionEnd with
        DeliveryFailure, WS-Eventing 2004/08 3.5)."""
        return self.end(identifier, END_DELIVERY_FAILURE, reason)

    def shutdown(self) -> int:
        """End every subscription with SourceShuttingDown; returns how many."""
        with self._lock:
            idents = list(self._subs)
        return sum(1 for i in idents if self.end(i, END_SOURCE_SHUTTING_DOWN))

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
                  send_bookmarks: bool = False, end_to: EndpointReference | None = None) -> Subscription:
        """Register a subscription (DSP0226 10.2). ``expires`` in seconds (None: the source's
        default). A bookmark replays the logged events after it (DSP0226 10.2.6); one this source
        did not issue, or one older than its log, is refused with wsman:InvalidBookmark."""
        query = self._event_query(namespace, query_text)
        start = self._bookmark_sequence(bookmark)
        now = self._clock()
        granted = self.grant(expires)
        sub = Subscription(identifier="uuid:" + str(uuid.uuid4()).upper(),
                           namespace=self.store.normalize_namespace(namespace), query=query,
                           query_text=query_text, delivery=delivery, resource_uri=resource_uri,
                           expires_at=now + granted, send_bookmarks=send_bookmarks, end_to=end_to,
                           last_activity=now)
        if delivery.mode == DELIVERY_PULL:
            sub.context = "uuid:" + str(uuid.uuid4()).upper()
        with self._lock:
            self._expire(now)
            if len(self._subs) >= self._max:
                raise EventSourceError("QuotaLimit", f"the source holds {self._max} subscriptions already")
            if start is not None:
                sub.last_sequence = start
                if self._log and self._log[0].sequence > start + 1 and bookmark != BOOKMARK_EARLIEST:
                    raise EventSourceError("InvalidBookmark",
                                           "the events after the bookmark are no longer kept (DSP0226 10.2.6)",
                                           FaultDetail.EXPIRED)
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
            raise EventSourceError("InvalidExpirationTime",
                                   "Expires must lie in the future (WS-Eventing 2004/08 3.1)")
        return min(expires, MAX_EXPIRY)

    def _event_query(self, namespace: str, text: str) -> WqlQuery:
        query = parse_wql(text)  # WqlSyntaxError (INVALID_QUERY) for the caller to map
        extrinsic = query.kind == "select" and self._isa(namespace, query.classname, "__ExtrinsicEvent")
        if query.kind != "select" or (query.classname.lower() not in EVENT_ANCESTRY and not extrinsic):
            raise EventSourceError("CannotProcessFilter",
                                   f"{query.classname or query.kind} is not an event class (intrinsic "
                                   "__Instance*Event or a subclass of __ExtrinsicEvent)")
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
            raise EventSourceError("InvalidBookmark", "the bookmark was not issued by this event source",
                                   FaultDetail.INVALID)
        return int(seq)

    def _expire(self, now: float) -> None:
        dead = [i for i, s in self._subs.items() if s.expires_at is not None and now >= s.expires_at]
        for ident in dead:
            sub = self._remove(ident)
            if sub is not None and sub.end_to is not None:
                # Expiry is announced like a cancellation by the source (WS-Eventing 2004/08 3.5).
                self._ended.append(EndedSubscription(sub, END_SOURCE_CANCELLING, "The subscription expired."))

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
                # WS-Eventing 2004/08 3.2: a subscription that cannot be renewed is wse:UnableToRenew.
                raise EventSourceError("UnableToRenew", "the subscription does not exist or has expired")
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


_END_REASONS = {
    END_SOURCE_SHUTTING_DOWN: "The event source is shutting down.",
    END_SOURCE_CANCELLING: "The event source cancelled the subscription.",
    END_DELIVERY_FAILURE: "The events could not be delivered.",
}

__all__ = ["EVENT_ANCESTRY", "EndedSubscription", "EventSource", "EventSourceError", "LoggedEvent", "ManualClock",
           "Subscription", "filetime", "intrinsic_event", "make_bookmark"]

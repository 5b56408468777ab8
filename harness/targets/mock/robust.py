"""Robust connection support of the mock (MS-WSMV 3.1.4.1.39, 3.1.4.18, 3.1.4.19, 3.1.5.5, 3.1.6.5,
3.1.6.6), sans-IO.

The OperationMessages table (MS-WSMV 3.1.1) keeps, per OperationID, the response messages the
server sent for the operation, so that a client whose TCP connection broke can retransmit the
request (``s:mustUnderstand="true"`` on its OperationID) on a new connection and receive the
retained answer instead of running the operation a second time (MS-WMOD 2.10.1: a retried
Create must not create twice).

Which resources (MS-WSMV 3.1.4.1.39: a server SHOULD support robust connections for "each
ResourceURI that refers to a Custom Remote Shell or to a CIM object"): the mock supports them for
its CIM object resources -- the WMI plug-in's URIs (``.../wsman/1/wmi/...``) and the DMTF CIM
schema URIs (``.../wscim/1/...``) -- for Get, Put, Create, Delete, Enumerate, Pull and Release of
an enumeration, and custom actions (methods). Everything else (WinRS and PowerShell shells, the
winrm/config resources, eventing, and a Pull on an event subscription, which is a long poll of
the event source) ignores OperationID and answers without OperationID / SequenceId headers, as
3.1.4.1.39 requires of a server that does not support them for the resource. Not implemented:
robust connections for Custom Remote Shells.

Streaming (StreamingOutput, 3.1.4.1.39 / 3.1.6.6) is not implemented: every operation of the
mock produces exactly one response message, sent as the HTTP answer of its request (a normal
Content-Length response). A retransmission is answered as 3.1.4.1.39 lists: an Acknowledge with
the number of client messages received, then every retained message not yet acknowledged, each
one a chunk of a chunked HTTP response (the HTTP layer writes the chunks; see
:class:`RequestScope`). The Connection KeepAlive timer (3.1.5.5) therefore never fires: there is
no open response stream to keep alive. KeepAlive and End messages from the client are accepted
(3.2.4.2.1.1, 3.2.4.2.1.2, 3.1.4.19).

Timers: the Response Retention timer (3 min 15 s, MS-WSMV 3.1.2) starts when the row's primary
connection ends (3.1.6.5) and is suspended by a retransmission; an expired row is deleted. The
table learns that a connection ended when it next looks (every request of the service sweeps
it; :meth:`OperationMessages.connection_closed` tells it at once). Bounds of the mock (observed
Windows behaviour for the size of one Messages list, <44>: 3 MB): a message larger than that is
not retained, at most :data:`MAX_ROWS` rows and :data:`MAX_TOTAL_BYTES` bytes are kept (the
oldest rows go first).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from lxml import etree

from harness.wire.wsman.envelope import Envelope
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import WSManFault, make_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import (
    RESOURCE_CIM_ALL,
    RESOURCE_FULL_DUPLEX,
    RESOURCE_ROBUST_CONNECTION,
    RESOURCE_WMI_PREFIX,
    Action,
)
from harness.wire.wsman.robust import (
    KEEPALIVE_ACTIONS,
    build_acknowledge,
    format_operation_id,
    is_retransmission,
    parse_acknowledge,
    parse_empty_message,
    parse_operation_id,
    stamp,
)

if TYPE_CHECKING:
    from harness.targets.mock.wsman_service import Principal, WSManService

#: Response Retention timer: "The interval is 3 minutes and 15 seconds" (MS-WSMV 3.1.2).
RESPONSE_RETENTION: Final = 195.0
#: Length of one Messages list (observed Windows behaviour, MS-WSMV <44>: 3 megabytes).
MAX_MESSAGES_BYTES: Final = 3 * 1024 * 1024
#: Mock bounds on the whole table (the oldest rows are dropped first).
MAX_ROWS: Final = 1024
MAX_TOTAL_BYTES: Final = 64 * 1024 * 1024
#: Resource URI prefixes of CIM objects (MS-WSMV 3.1.4.1.39): the WMI plug-in and the DMTF CIM schema.
ROBUST_PREFIXES: Final = (RESOURCE_WMI_PREFIX.lower(), RESOURCE_CIM_ALL.rstrip("*").lower())
#: Actions of a CIM object resource that run as one robust operation (custom actions too).
ROBUST_ACTIONS: Final = frozenset({Action.GET, Action.PUT, Action.CREATE, Action.DELETE, Action.ENUMERATE,
                                   Action.PULL, Action.RELEASE})


class Connection(Protocol):
    """The HTTP connection a request came on (PrimaryConnection, MS-WSMV 3.1.1). Two requests of
    one TCP connection give equal objects."""

    def closed(self) -> bool: ...


class TransportConnection:
    """A :class:`Connection` over an asyncio transport, held weakly (a row never keeps a closed
    connection alive); equal for the same transport."""

    __slots__ = ("_id", "_ref")

    def __init__(self, transport: Any) -> None:
        self._ref: Callable[[], Any] = weakref.ref(transport)
        self._id = id(transport)

    def closed(self) -> bool:
        transport = self._ref()
        return transport is None or bool(transport.is_closing())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransportConnection) and self._id == other._id and self._ref() is other._ref()

    def __hash__(self) -> int:
        return self._id


@dataclass
class RequestScope:
    """What the HTTP layer and the service share about the request being answered: its
    connection, and -- set by the service -- the messages of a multi-message answer, to be written
    one HTTP chunk each (MS-WSMV 3.1.4.1.39, 3.2.4.2.1)."""

    connection: Connection | None = None
    parts: list[bytes] | None = None


_SCOPE: ContextVar[RequestScope | None] = ContextVar("wmh_robust_scope", default=None)


@contextmanager
def request_scope(connection: Connection | None) -> Iterator[RequestScope]:
    """Run the answering of one request in a :class:`RequestScope` (used by the HTTP layer)."""
    scope = RequestScope(connection)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def current_scope() -> RequestScope | None:
    """The scope of the request being answered (None outside :func:`request_scope`)."""
    return _SCOPE.get()


@dataclass(frozen=True)
class RetainedMessage:
    """One response message of an operation, as sent (with its OperationID and SequenceId)."""

    sequence_id: int
    body: bytes


@dataclass
class OperationRow:
    """A row of OperationMessages with its RobustConnection data (MS-WSMV 3.1.1)."""

    key: uuid.UUID
    #: The OperationID as the client wrote it; every response carries "the same value" (3.1.4.1.39).
    operation_id: str
    principal: str
    created: float
    #: What a retransmission must repeat (3.1.4.1.39: the options "MUST be the same").
    signature: tuple[Any, ...]
    primary: Connection | None = None
    messages: list[RetainedMessage] = field(default_factory=list)
    #: SequenceId of the next response message (initially 1).
    sequence_id: int = 1
    #: The last SequenceId received from the client (what an Acknowledge reports, 3.1.4.1.39).
    received: int = 1
    streaming: bool = False
    response_begun: bool = False
    response_complete: bool = False
    retention_started: float | None = None

    @property
    def retained_bytes(self) -> int:
        return sum(len(m.body) for m in self.messages)


@dataclass(frozen=True)
class Replay:
    """The answer to a retransmission of a known operation: the Acknowledge, then the retained
    messages not yet acknowledged (3.1.4.1.39)."""

    row: OperationRow
    messages: list[bytes]


def supports_resource(resource_uri: str | None) -> bool:
    """Whether the mock supports robust connections for ``resource_uri`` (CIM objects; see the
    module text)."""
    return bool(resource_uri) and (resource_uri or "").lower().startswith(ROBUST_PREFIXES)


def supports_action(header: Header) -> bool:
    """A CIM operation the mock runs robustly (the caller still rules out event-subscription Pulls)."""
    if not supports_resource(header.resource_uri):
        return False
    if header.action in ROBUST_ACTIONS:
        return True
    uri = (header.resource_uri or "").rstrip("/").lower()
    return header.action.lower().startswith(uri + "/")   # custom action (MS-WSMV 3.1.4.15)


def _signature(header: Header, body_digest: str) -> tuple[Any, ...]:
    options = tuple(sorted((o.name, o.value or "", o.type or "", o.must_comply) for o in header.options))
    selectors = tuple(sorted((k, str(v)) for k, v in header.selectors.items()))
    return (header.action, (header.resource_uri or "").lower(), selectors, options, body_digest)


def body_digest(env: Envelope) -> str:
    """A digest of the request's s:Body (exclusive C14N), so that a retransmission carrying another
    body is told apart from a repetition of the original request."""
    return hashlib.sha256(etree.tostring(env.body, method="c14n", exclusive=True)).hexdigest()


def _invalid_header(reason: str) -> WSManFault:
    return make_fault("InvalidMessageInformationHeader", reason)


class OperationMessages:
    """The OperationMessages table (MS-WSMV 3.1.1) and its rules (3.1.4.1.39, 3.1.4.18, 3.1.4.19,
    3.1.6.5, 3.1.6.6). Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, retention: float = RESPONSE_RETENTION,
                 max_rows: int = MAX_ROWS, max_messages_bytes: int = MAX_MESSAGES_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.clock = clock
        self.retention = retention
        self.max_rows = max_rows
        self.max_messages_bytes = max_messages_bytes
        self.max_total_bytes = max_total_bytes
        self._rows: dict[uuid.UUID, OperationRow] = {}
        self._lock = threading.RLock()
        #: Operations run (new rows), replays answered and rows expired: counters for tests and probes.
        self.started = 0
        self.replayed = 0
        self.expired = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def get(self, operation_id: str) -> OperationRow | None:
        """The row of ``operation_id`` (any spelling of the GUID), or None."""
        try:
            key = parse_operation_id(operation_id)
        except WSManDecodeError:
            return None
        with self._lock:
            return self._rows.get(key)

    def rows(self) -> list[OperationRow]:
        with self._lock:
            return list(self._rows.values())

    # ------------------------------------------------------------------------------ timers and connections
    def sweep(self) -> int:
        """Notice primary connections that ended (3.1.6.5) and delete the rows whose Response
        Retention timer expired ("discard the data", 3.1.5.6). Returns how many rows were deleted."""
        now = self.clock()
        with self._lock:
            for row in self._rows.values():
                if row.primary is not None and row.primary.closed():
                    self._terminated(row, now)
            dead = [k for k, r in self._rows.items()
                    if r.retention_started is not None and now - r.retention_started >= self.retention]
            for key in dead:
                del self._rows[key]
            self.expired += len(dead)
            return len(dead)

    def _terminated(self, row: OperationRow, now: float) -> None:
        # MS-WSMV 3.1.6.5: PrimaryConnection NULL, ResponseBegun false, start the ResponseRetentionTimer.
        row.primary = None
        row.response_begun = False
        row.retention_started = now

    def connection_closed(self, connection: Connection) -> int:
        """The TCP connection ``connection`` ended (MS-WSMV 3.1.6.5). Returns the rows it was primary for."""
        now = self.clock()
        with self._lock:
            rows = [r for r in self._rows.values() if r.primary is not None and r.primary == connection]
            for row in rows:
                self._terminated(row, now)
            return len(rows)

    def end(self, connection: Connection | None) -> int:
        """End (MS-WSMV 3.1.4.19): remove the rows whose PrimaryConnection is ``connection``."""
        if connection is None:
            return 0
        with self._lock:
            dead = [k for k, r in self._rows.items() if r.primary is not None and r.primary == connection]
            for key in dead:
                del self._rows[key]
            return len(dead)

    # ------------------------------------------------------------------------------ requests
    def begin(self, header: Header, principal: str, connection: Connection | None,
              digest: str = "") -> OperationRow | Replay:
        """Apply MS-WSMV 3.1.4.1.39 to a request carrying an OperationID: a new operation gets a row
        (then run it and pass its answer to :meth:`respond`); a retransmission of a known operation
        gets the :class:`Replay` to send instead of running it again (``digest``: :func:`body_digest` of
        the request, compared with the original's). Raises WSManFault
        (wsa:InvalidMessageInformationHeader) for a reused OperationID or a SequenceId other than 1."""
        assert header.operation_id is not None
        try:
            key = parse_operation_id(header.operation_id)
        except WSManDecodeError as exc:
            raise _invalid_header(exc.reason) from None
        self.sweep()
        retransmission = is_retransmission(header)
        with self._lock:
            row = self._rows.get(key)
            if row is not None and row.principal != principal:
                # Mock choice: an operation belongs to the user who started it (its answer is theirs).
                raise make_fault("AccessDenied", "The operation belongs to another user.")
            if row is None or not retransmission:
                if row is not None:
                    raise _invalid_header(f"The OperationID {header.operation_id} is already in use.")
                if header.sequence_id != 1:
                    raise _invalid_header("The first message of an operation must have SequenceId 1.")
                if connection is not None:
                    # "If any rows ... have the same PrimaryConnection value as the current request's
                    # connection, the server MUST delete all state associated with those rows."
                    for old in [k for k, r in self._rows.items()
                                if r.primary is not None and r.primary == connection]:
                        del self._rows[old]
                row = OperationRow(key, header.operation_id, principal, self.clock(), _signature(header, digest),
                                   primary=connection, received=1)
                self._rows[key] = row
                self.started += 1
                self._bound()
                return row
            # A retransmission of a known operation.
            row.primary = connection
            if header.sequence_id != 1:
                raise _invalid_header("A retransmitted request must have SequenceId 1.")
            if _signature(header, digest) != row.signature:
                # 3.1.4.1.39: a retransmission repeats the original request; otherwise "server
                # behavior is implementation-dependent". Mock choice: refused.
                raise _invalid_header("The retransmission differs from the original request.")
            row.retention_started = None   # "Suspend the Response Retention Timer."
            row.response_begun = True
            ack = build_acknowledge(format_operation_id(key), row.received, relates_to=header.message_id or None)
            self.replayed += 1
            return Replay(row, [ack, *(m.body for m in row.messages)])

    def respond(self, row: OperationRow, body: bytes, *, complete: bool = True) -> bytes:
        """The response message ``body`` of ``row``'s operation as sent: with the operation's
        OperationID and the next SequenceId, kept in the Messages list (MS-WSMV 3.1.6.6). A message
        larger than the list's capacity is sent but not retained."""
        with self._lock:
            sent = stamp(body, row.operation_id, row.sequence_id)
            if len(sent) + row.retained_bytes <= self.max_messages_bytes:
                row.messages.append(RetainedMessage(row.sequence_id, sent))
            row.sequence_id += 1
            row.response_begun = True
            row.response_complete = complete
            self._bound()
            return sent

    def acknowledge(self, operation_id: str, last_sequence_id: int, principal: str) -> int:
        """Acknowledge (MS-WSMV 3.1.4.18): delete the messages of the operation "with a sequence
        number less than or equal to the LastSequenceIdReceived". Returns how many went; an unknown
        operation has nothing to delete."""
        try:
            key = parse_operation_id(operation_id)
        except WSManDecodeError as exc:
            raise _invalid_header(exc.reason) from None
        self.sweep()
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return 0
            if row.principal != principal:
                raise make_fault("AccessDenied", "The operation belongs to another user.")
            before = len(row.messages)
            row.messages = [m for m in row.messages if m.sequence_id > last_sequence_id]
            return before - len(row.messages)

    def _bound(self) -> None:
        total = sum(r.retained_bytes for r in self._rows.values())
        while self._rows and (len(self._rows) > self.max_rows or total > self.max_total_bytes):
            oldest = min(self._rows.values(), key=lambda r: r.created)
            total -= oldest.retained_bytes
            del self._rows[oldest.key]


class RobustHandlers:
    """The service's handlers of the robust-connection and full-duplex messages a client sends.
    Each answers HTTP 200 with an empty body: these messages have no output (MS-WSMV 3.1.4.18:
    Acknowledge's output data type is None; 3.2.4.2.1: End and KeepAlive are one-way, as the
    InteractiveResponse of 4.11.1 is answered "HTTP status 200 and an empty HTTP body")."""

    def __init__(self, table: OperationMessages) -> None:
        self.table = table

    def install(self, handlers: dict[str, Callable[[Envelope, Principal], bytes]]) -> None:
        handlers[Action.ACKNOWLEDGE] = self.acknowledge
        for action in KEEPALIVE_ACTIONS:
            handlers[action] = self.keepalive
        handlers[Action.END] = self.end

    def acknowledge(self, env: Envelope, principal: Principal) -> bytes:
        """Acknowledge (MS-WSMV 3.1.4.18) on the RobustConnection resource (or a CIM resource that
        supports robust connections): delete the acknowledged messages of the operation."""
        uri = env.header.resource_uri
        if uri != RESOURCE_ROBUST_CONNECTION and not supports_resource(uri):
            raise make_fault("ActionNotSupported", f"Acknowledge is not supported by the resource {uri}.")
        ack = parse_acknowledge(env)
        self.table.acknowledge(ack.operation_id, ack.last_sequence_id, principal.name)
        return b""

    def keepalive(self, env: Envelope, principal: Principal) -> bytes:
        """KeepAlive (MS-WSMV 3.2.4.2.1.2) on the FullDuplex resource: keeps the connection in use."""
        self._full_duplex(env)
        parse_empty_message(env, KEEPALIVE_ACTIONS)
        return b""

    def end(self, env: Envelope, principal: Principal) -> bytes:
        """End (MS-WSMV 3.1.4.19): remove the rows whose PrimaryConnection is this connection."""
        self._full_duplex(env)
        parse_empty_message(env, frozenset({Action.END}))
        scope = current_scope()
        self.table.end(scope.connection if scope is not None else None)
        return b""

    @staticmethod
    def _full_duplex(env: Envelope) -> None:
        if env.header.resource_uri != RESOURCE_FULL_DUPLEX:
            raise make_fault("ActionNotSupported",
                             f"{env.header.action} is only supported by the resource {RESOURCE_FULL_DUPLEX}.")


def install_robust_handlers(service: WSManService, clock: Callable[[], float] | None = None) -> OperationMessages:
    """Create the service's OperationMessages table and install the Acknowledge, KeepAlive and End
    handlers (called once in WSManService.__init__)."""
    table = OperationMessages(clock if clock is not None else time.monotonic)
    RobustHandlers(table).install(service._handlers)
    return table


__all__ = [
    "MAX_MESSAGES_BYTES",
    "MAX_ROWS",
    "MAX_TOTAL_BYTES",
    "RESPONSE_RETENTION",
    "ROBUST_ACTIONS",
    "ROBUST_PREFIXES",
    "Connection",
    "OperationMessages",
    "OperationRow",
    "Replay",
    "RequestScope",
    "RetainedMessage",
    "RobustHandlers",
    "TransportConnection",
    "body_digest",
    "current_scope",
    "install_robust_handlers",
    "request_scope",
    "supports_action",
    "supports_resource",
]

"""Robust connections and full duplex, sans-IO (MS-WSMV 3.1.4.1.39, 3.1.4.18, 3.1.6.6,
3.2.4.2.1, 3.2.7; types 2.2.4.44 - 2.2.4.46).

Headers
    ``p:OperationID`` (MS-WSMV 2.2.4.45) is a GUID, which "MAY be prefixed with the string uuid:";
    ``s:mustUnderstand="true"`` on it marks a retransmission of a request the client sent before
    (3.1.4.1.39, 3.2.5.3). ``p:SequenceId`` (2.2.4.46) numbers the messages of one operation on
    each side from 1. Both live on :class:`~harness.wire.wsman.header.Header` (``operation_id``,
    ``sequence_id``; ``"OperationID" in must_understand`` is the retransmission flag); this module
    checks and writes them (:func:`parse_operation_id`, :func:`robust_header`, :func:`stamp`).

Messages
    Acknowledge (3.1.4.18): Action ``.../wsman/Acknowledge``, ResourceURI
    ``.../wsman/RobustConnection``, the operation's OperationID header, and a body of
    AcknowledgeType (2.2.4.44) carrying ``LastSequenceIdReceived``. The spec names the type, not
    the body element; this codec writes ``p:Acknowledge`` (the action's name) and reads any body
    element of that namespace whose child is ``p:LastSequenceIdReceived`` (a project decision,
    documented in fixtures/schemas/wsman-ms.xsd). AcknowledgeRequest (3.1.6.6), KeepAlive
    (3.2.4.2.1.2, 3.2.5.2) and End (3.2.4.2.1.1, 3.2.6.6) are EmptyMessages (2.2.2.1).

Streams
    A retransmission is answered with several SOAP envelopes in one chunked HTTP response, "each
    chunk MUST contain a full SOAP envelope" (3.2.4.2.1). An HTTP client library hands over the
    de-chunked body; :func:`split_envelopes` cuts it back into envelopes.

Every parser raises only :class:`~harness.wire.wsman.errors.WSManDecodeError`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from lxml import etree

from ._xml import children, sub
from ._xml import text as _text
from .envelope import S_HEADER, Envelope, build_envelope, parse_xml
from .errors import WSManDecodeError
from .header import (
    MAX_SEQUENCE_ID,
    P_OPERATION_ID,
    P_OPERATION_ID_ALT,
    P_SEQUENCE_ID,
    P_SEQUENCE_ID_SCHEMA,
    Header,
)
from .ns import ANONYMOUS, NS_SOAP, NS_WSMAN_MS, RESOURCE_FULL_DUPLEX, RESOURCE_ROBUST_CONNECTION, Action, qn

_Element = etree._Element
_MU = qn(NS_SOAP, "mustUnderstand")

#: Body of Acknowledge (MS-WSMV 2.2.4.44; the element name is this codec's, see the module text).
P_ACKNOWLEDGE: Final = qn(NS_WSMAN_MS, "Acknowledge")
P_LAST_SEQUENCE_ID: Final = qn(NS_WSMAN_MS, "LastSequenceIdReceived")
#: The header QNames of the two headers in every spelling (see harness.wire.wsman.header).
OPERATION_ID_TAGS: Final = frozenset({P_OPERATION_ID, P_OPERATION_ID_ALT})
SEQUENCE_ID_TAGS: Final = frozenset({P_SEQUENCE_ID, P_SEQUENCE_ID_SCHEMA})
#: The KeepAlive action in both spellings of MS-WSMV (2.2.2.1 table; 3.2.4.2.1.2 message).
KEEPALIVE_ACTIONS: Final = frozenset({Action.KEEPALIVE, Action.KEEPALIVE_TABLE})
#: How many envelopes :func:`split_envelopes` accepts in one body (a bound on the work it does).
MAX_STREAM_MESSAGES: Final = 4096

_ENVELOPE_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?Envelope\s*>")


# ----------------------------------------------------------------------------------- identifiers
def parse_operation_id(value: str) -> uuid.UUID:
    """The GUID of an OperationID header value, with or without the ``uuid:`` prefix (MS-WSMV
    2.2.4.45). Anything else is ``wsa:InvalidMessageInformationHeader`` (the fault 3.1.4.1.39
    gives for a bad robust-connection header)."""
    text = value.strip()
    if text[:5].lower() == "uuid:":
        text = text[5:]
    try:
        if len(text) != 36:
            raise ValueError(text)
        return uuid.UUID(text)
    except ValueError:
        raise WSManDecodeError(f"OperationID must be a GUID, got {value[:60]!r}",
                               fault="InvalidMessageInformationHeader") from None


def format_operation_id(op: uuid.UUID, *, prefixed: bool = True) -> str:
    """``uuid:`` + the upper-case GUID, as the Windows client writes it (MS-WSMV 4.11.1; the prefix
    is optional per 2.2.4.45, <38>: Windows 8 / Server 2012 and later prefix it)."""
    return ("uuid:" if prefixed else "") + str(op).upper()


def new_operation_id() -> str:
    """A fresh OperationID, unique among the operations sent to an endpoint (MS-WSMV 3.2.1)."""
    return format_operation_id(uuid.uuid4())


def is_retransmission(header: Header) -> bool:
    """A request whose OperationID carries ``s:mustUnderstand="true"`` is a retransmission of a
    previous request (MS-WSMV 3.1.4.1.39)."""
    return header.operation_id is not None and "OperationID" in header.must_understand


def robust_header(header: Header, operation_id: str, sequence_id: int = 1, *,
                  retransmission: bool = False) -> Header:
    """A copy of ``header`` with the OperationID (``s:mustUnderstand`` false, or true for a
    retransmission) and SequenceId headers of a robust request (MS-WSMV 3.2.6.5: a new operation
    sends SequenceID 1; 3.2.5.3: a retransmission sets mustUnderstand on OperationID)."""
    if not 1 <= sequence_id <= MAX_SEQUENCE_ID:
        raise ValueError(f"SequenceId must be within 1..{MAX_SEQUENCE_ID}")
    mu = set(header.must_understand) - {"OperationID", "SequenceId"}
    if retransmission:
        mu.add("OperationID")
    return replace(header, operation_id=operation_id, sequence_id=sequence_id, must_understand=mu)


# ----------------------------------------------------------------------------------- envelopes
def _header_of(root: _Element) -> _Element:
    hdr = root.find(S_HEADER)
    if hdr is None:
        raise WSManDecodeError("missing s:Header", fault="MessageInformationHeaderRequired")
    return hdr


def _serialize(root: _Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def stamp(data: bytes, operation_id: str, sequence_id: int) -> bytes:
    """``data`` (a response envelope) with the operation's OperationID and this message's
    SequenceId headers, replacing any there (MS-WSMV 3.1.6.6: "adds a wsmv:SequenceID header
    element using the current SequenceID value, and a wsmv:OperationID element"). Written as in
    the MS-WSMV 4.11.1 responses: ``<p:OperationID s:mustUnderstand="false">`` and a plain
    ``<p:SequenceId>``."""
    root = parse_xml(data)
    hdr = _header_of(root)
    for old in [c for c in hdr if c.tag in OPERATION_ID_TAGS or c.tag in SEQUENCE_ID_TAGS]:
        hdr.remove(old)
    op = sub(hdr, P_OPERATION_ID, operation_id)
    op.set(_MU, "false")
    sub(hdr, P_SEQUENCE_ID, str(sequence_id))
    return _serialize(root)


def unstamp(data: bytes) -> bytes:
    """``data`` without OperationID / SequenceId headers (MS-WSMV 3.1.4.1.39: a server that does not
    support robust connections for the resource omits both from its responses)."""
    root = parse_xml(data)
    hdr = _header_of(root)
    found = [c for c in hdr if c.tag in OPERATION_ID_TAGS or c.tag in SEQUENCE_ID_TAGS]
    if not found:
        return data
    for old in found:
        hdr.remove(old)
    return _serialize(root)


def mark_retransmission(data: bytes) -> bytes:
    """The request ``data`` as its retransmission: ``s:mustUnderstand="true"`` on its OperationID
    header (MS-WSMV 3.2.5.3), everything else unchanged (the options of 2.2.10 "MUST be the same
    as those in the original request", 3.1.4.1.39). WSManDecodeError if it has no OperationID."""
    root = parse_xml(data)
    hdr = _header_of(root)
    ops = [c for c in hdr if c.tag in OPERATION_ID_TAGS]
    if len(ops) != 1:
        raise WSManDecodeError("a robust request has exactly one OperationID header",
                               fault="InvalidMessageInformationHeader")
    ops[0].set(_MU, "true")
    return _serialize(root)


def split_envelopes(data: bytes, *, max_messages: int = MAX_STREAM_MESSAGES) -> list[bytes]:
    """The SOAP envelopes of a full-duplex HTTP body, in order (MS-WSMV 3.2.4.2.1: each chunk a
    full envelope; the HTTP layer has joined the chunks). A body that is one envelope comes back
    as ``[data]``. Each cut is made after an Envelope end tag where what precedes it is a
    well-formed document, so an envelope nested in a body (or text that looks like an end tag in
    a CDATA section) never splits a message. WSManDecodeError: not well-formed, or more than
    ``max_messages`` envelopes."""
    parts: list[bytes] = []
    begin = 0
    size = len(data)
    for match in _ENVELOPE_END.finditer(data):
        end = match.end()
        candidate = data[begin:end]
        if not _well_formed(candidate):
            continue
        parts.append(candidate)
        if len(parts) > max_messages:
            raise WSManDecodeError(f"more than {max_messages} envelopes in one response")
        begin = end
        while begin < size and data[begin:begin + 1].isspace():
            begin += 1
    if begin < size:
        rest = data[begin:]
        if parts or rest.strip():
            parse_xml(rest)  # raises with the reason: trailing garbage, or not XML at all
            parts.append(rest)
    if not parts:
        raise WSManDecodeError("empty message")
    return parts


def _well_formed(candidate: bytes) -> bool:
    try:
        parse_xml(candidate)
    except WSManDecodeError:
        return False
    return True


# ----------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Acknowledge:
    """An Acknowledge message (MS-WSMV 3.1.4.18, 2.2.4.44): the operation and the sequence number
    of the last message its sender received."""

    operation_id: str
    last_sequence_id: int
    header: Header


def _empty_message_header(action: str, resource_uri: str, operation_id: str, to: str,
                          relates_to: str | None) -> Header:
    # The MS-WSMV 3.2.4.2.1.x examples: To, ResourceURI and Action (both mustUnderstand),
    # MessageID and OperationID; no ReplyTo.
    return Header(action=action, to=to, resource_uri=resource_uri, reply_to=None, relates_to=relates_to,
                  operation_id=operation_id, must_understand={"Action", "ResourceURI"})


def build_acknowledge(operation_id: str, last_sequence_id: int, *, to: str = ANONYMOUS,
                      relates_to: str | None = None, sequence_id: int | None = None) -> bytes:
    """Acknowledge (MS-WSMV 3.1.4.18): ``last_sequence_id`` is the SequenceId of the last message
    received for the operation (2.2.4.44). A server writes it first in a retransmission's answer
    with the number of client messages received (3.1.4.1.39); a client sends it to let the server
    delete the messages it holds (3.2.7)."""
    if not 0 <= last_sequence_id <= MAX_SEQUENCE_ID:
        raise ValueError("LastSequenceIdReceived must be an xs:unsignedLong")
    header = _empty_message_header(Action.ACKNOWLEDGE, RESOURCE_ROBUST_CONNECTION, operation_id, to, relates_to)
    header.sequence_id = sequence_id
    body = etree.Element(P_ACKNOWLEDGE, nsmap={"p": NS_WSMAN_MS})
    sub(body, P_LAST_SEQUENCE_ID, str(last_sequence_id))
    return build_envelope(header, [body])


def parse_acknowledge(env: Envelope) -> Acknowledge:
    """Decode an Acknowledge: the action, an OperationID header (a GUID) and an AcknowledgeType
    body with one LastSequenceIdReceived (xs:unsignedLong)."""
    if env.header.action != Action.ACKNOWLEDGE:
        raise WSManDecodeError(f"expected action {Action.ACKNOWLEDGE}, got {env.header.action or '(none)'}",
                               fault="ActionNotSupported")
    op = env.header.operation_id
    if op is None:
        raise WSManDecodeError("Acknowledge without an OperationID header", fault="InvalidMessageInformationHeader")
    parse_operation_id(op)
    payload = env.payload
    if payload is None or etree.QName(payload).namespace != NS_WSMAN_MS:
        raise WSManDecodeError("Acknowledge needs an AcknowledgeType body (MS-WSMV 2.2.4.44)", fault="InvalidBody")
    items = children(payload)
    if len(items) != 1 or items[0].tag != P_LAST_SEQUENCE_ID:
        raise WSManDecodeError("AcknowledgeType holds exactly one LastSequenceIdReceived",
                               fault="SchemaValidationError")
    t = _text(items[0])
    if not t.isdigit() or len(t) > 20 or int(t) > MAX_SEQUENCE_ID:
        raise WSManDecodeError(f"LastSequenceIdReceived must be an xs:unsignedLong, got {t[:40]!r}",
                               fault="SchemaValidationError")
    return Acknowledge(op, int(t), env.header)


def build_acknowledge_request(operation_id: str, *, to: str = ANONYMOUS, relates_to: str | None = None,
                              sequence_id: int | None = None) -> bytes:
    """AcknowledgeRequest (MS-WSMV 3.1.6.6, 2.2.2.1 EmptyMessage): the server asks the client to
    acknowledge what it received when its Messages list is full."""
    header = _empty_message_header(Action.ACKNOWLEDGE_REQUEST, RESOURCE_ROBUST_CONNECTION, operation_id, to,
                                   relates_to)
    header.sequence_id = sequence_id
    return build_envelope(header)


def build_keepalive(operation_id: str, *, to: str = ANONYMOUS, relates_to: str | None = None,
                    sequence_id: int | None = None) -> bytes:
    """KeepAlive (MS-WSMV 3.2.4.2.1.2 from the client on the secondary connection, 3.2.5.2; 3.1.5.5
    from the server in a response stream): an EmptyMessage on the FullDuplex resource."""
    header = _empty_message_header(Action.KEEPALIVE, RESOURCE_FULL_DUPLEX, operation_id, to, relates_to)
    header.sequence_id = sequence_id
    return build_envelope(header)


def build_end(operation_id: str, *, to: str = ANONYMOUS) -> bytes:
    """End (MS-WSMV 3.2.4.2.1.1, 3.2.6.6, 3.1.4.19): the client is done with the connection."""
    return build_envelope(_empty_message_header(Action.END, RESOURCE_FULL_DUPLEX, operation_id, to, None))


def is_keepalive(env: Envelope) -> bool:
    """A KeepAlive message (either spelling of its action, MS-WSMV 2.2.2.1 / 3.2.4.2.1.2)."""
    return env.header.action in KEEPALIVE_ACTIONS


def parse_empty_message(env: Envelope, actions: frozenset[str]) -> str:
    """The OperationID of an EmptyMessage (MS-WSMV 2.2.2.1) whose action is one of ``actions``:
    KeepAlive, End, AcknowledgeRequest. WSManDecodeError: another action, no or a malformed
    OperationID, or a body that is not empty."""
    if env.header.action not in actions:
        raise WSManDecodeError(f"unexpected action {env.header.action or '(none)'}", fault="ActionNotSupported")
    op = env.header.operation_id
    if op is None:
        raise WSManDecodeError(f"{env.header.action} without an OperationID header",
                               fault="InvalidMessageInformationHeader")
    parse_operation_id(op)
    if env.payload is not None:
        raise WSManDecodeError(f"{env.header.action} is an EmptyMessage (MS-WSMV 2.2.2.1)", fault="InvalidBody")
    return op




# ----------------------------------------------------------------------------------- client timers
#: Request Retry timer (MS-WSMV 3.2.2): no retry starts later than RetryStartTime + 180 s, the first
#: random wait is at most 15 s (doubling with every attempt), forced retry points at 55, 115 and
#: 175 s, and a wait of 0 becomes 10 ms; 3.2.5.3: no resend later than RetryStartTime + 185 s.
RETRY_WINDOW: Final = 180.0
RETRY_DEADLINE: Final = 185.0
FIRST_RETRY_BOUND: Final = 15.0
FORCED_RETRY_POINTS: Final = (55.0, 115.0, 175.0)
MIN_RETRY_WAIT: Final = 0.01


def retry_wait(attempt: int, elapsed: float, draw: Callable[[float], float], *, window: float = RETRY_WINDOW,
               first_bound: float = FIRST_RETRY_BOUND,
               forced_points: Sequence[float] = FORCED_RETRY_POINTS) -> float | None:
    """Seconds until the next retransmission by the Request Retry timer algorithm of MS-WSMV 3.2.2,
    or None when no further retry is made. ``attempt`` is CurrentRetryAttemptCount (1 for the first
    retry), ``elapsed`` the seconds since RetryStartTime (the first interruption), ``draw(bound)``
    a random number in [0, bound] (RetryWaitSeed). ``window``, ``first_bound`` and
    ``forced_points`` default to the spec's values; a test may scale them down."""
    if attempt < 1:
        raise ValueError("the first retry is attempt 1")
    if elapsed > window:
        return None
    seed = min(max(draw(first_bound * 2 ** (attempt - 1)), 0.0), first_bound * 2 ** (attempt - 1))
    if elapsed + seed > window:
        seed = window - elapsed
    for point in sorted(forced_points):
        if point > elapsed:
            if elapsed + seed > point:
                seed = point - elapsed
            break
    return seed if seed > 0 else MIN_RETRY_WAIT


__all__ = [
    "FIRST_RETRY_BOUND",
    "FORCED_RETRY_POINTS",
    "KEEPALIVE_ACTIONS",
    "MAX_STREAM_MESSAGES",
    "MIN_RETRY_WAIT",
    "OPERATION_ID_TAGS",
    "P_ACKNOWLEDGE",
    "P_LAST_SEQUENCE_ID",
    "RETRY_DEADLINE",
    "RETRY_WINDOW",
    "SEQUENCE_ID_TAGS",
    "Acknowledge",
    "build_acknowledge",
    "build_acknowledge_request",
    "build_end",
    "build_keepalive",
    "format_operation_id",
    "is_keepalive",
    "is_retransmission",
    "mark_retransmission",
    "new_operation_id",
    "parse_acknowledge",
    "parse_empty_message",
    "parse_operation_id",
    "retry_wait",
    "robust_header",
    "split_envelopes",
    "stamp",
    "unstamp",
]

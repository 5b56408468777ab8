"""Build and parse WS-Eventing (2004/08) messages as WS-Management profiles them (DSP0226 10).

Subscribe / SubscribeResponse (DSP0226 10.2; MS-WSMV 3.1.4.6, which adds nothing to DSP0226 10.2
except the common rules of MS-WSMV 3.1.4.1), GetStatus (DSP0226 10.3), Unsubscribe (DSP0226 10.4),
Renew (DSP0226 10.5), SubscriptionEnd (DSP0226 10.6), acknowledgement of delivery (DSP0226 10.7),
heartbeats (DSP0226 10.2.5), bookmarks (DSP0226 10.2.6), delivery modes (DSP0226 10.2.9.x) and
dropped events (DSP0226 10.9), and the ``SubscriptionType`` enumeration items of publisher-initiated
subscriptions (MS-WSMV 2.2.4.41, 3.1.4.1.30).

The subscription manager EPR carries the subscription identifier as a reference parameter
``wse:Identifier``; by WS-Addressing 2004/08 3.3 the client copies it into the header of Renew,
GetStatus and Unsubscribe. The builders write it there and the parsers read it back from
:attr:`Envelope.extra_headers`. Like :mod:`messages`, every parser raises only
:class:`WSManDecodeError`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from ._xml import children as _children
from ._xml import expect_action as _expect
from ._xml import payload as _payload
from ._xml import sub as _sub
from ._xml import text as _text
from ._xml import uint as _uint
from ._xml import with_action as _with_action
from .duration import format_duration, parse_duration
from .envelope import S_ENVELOPE, Envelope, build_envelope, parse_envelope
from .errors import WSManDecodeError
from .header import (
    A_ADDRESS,
    A_REFERENCE_PARAMETERS,
    A_REFERENCE_PROPERTIES,
    W_RESOURCE_URI,
    EndpointReference,
    Header,
    read_epr,
    write_epr,
)
from .messages import response_header
from .ns import NS_ENUMERATION, NS_EVENTING, NS_WSMAN, NS_XML, Action, qn

_Element = etree._Element

# --- delivery modes (DSP0226 10.2.9.1) and well-known URIs ------------------------------------
DELIVERY_PUSH = "http://schemas.xmlsoap.org/ws/2004/08/eventing/DeliveryModes/Push"
DELIVERY_PUSH_WITH_ACK = "http://schemas.dmtf.org/wbem/wsman/1/wsman/PushWithAck"
DELIVERY_EVENTS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
DELIVERY_PULL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"
DELIVERY_MODES = frozenset({DELIVERY_PUSH, DELIVERY_PUSH_WITH_ACK, DELIVERY_EVENTS, DELIVERY_PULL})
#: DSP0226 10.2.6: the bookmark asking for every event the service still has.
BOOKMARK_EARLIEST = "http://schemas.dmtf.org/wbem/wsman/1/wsman/bookmark/earliest"
#: SubscriptionEnd status URIs (WS-Eventing 2004/08 3.5; DSP0226 10.6).
END_DELIVERY_FAILURE = "http://schemas.xmlsoap.org/ws/2004/08/eventing/DeliveryFailure"
END_SOURCE_SHUTTING_DOWN = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceShuttingDown"
END_SOURCE_CANCELLING = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling"
#: Publisher-initiated subscriptions (MS-WSMV 3.1.4.1.30): the resource the publisher enumerates on
#: the collector, and the namespace of the SubscriptionType items (MS-WSMV 2.2.4.41).
RESOURCE_SUBSCRIPTION_MANAGER = "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription"
NS_SUBSCRIPTION = "http://schemas.microsoft.com/wbem/wsman/1/subscription"

# --- element names ----------------------------------------------------------------------------
E_SUBSCRIBE = qn(NS_EVENTING, "Subscribe")
E_SUBSCRIBE_RESPONSE = qn(NS_EVENTING, "SubscribeResponse")
E_END_TO = qn(NS_EVENTING, "EndTo")
E_DELIVERY = qn(NS_EVENTING, "Delivery")
E_NOTIFY_TO = qn(NS_EVENTING, "NotifyTo")
E_EXPIRES = qn(NS_EVENTING, "Expires")
E_FILTER = qn(NS_EVENTING, "Filter")
E_SUBSCRIPTION_MANAGER = qn(NS_EVENTING, "SubscriptionManager")
E_IDENTIFIER = qn(NS_EVENTING, "Identifier")
E_RENEW = qn(NS_EVENTING, "Renew")
E_RENEW_RESPONSE = qn(NS_EVENTING, "RenewResponse")
E_GET_STATUS = qn(NS_EVENTING, "GetStatus")
E_GET_STATUS_RESPONSE = qn(NS_EVENTING, "GetStatusResponse")
E_UNSUBSCRIBE = qn(NS_EVENTING, "Unsubscribe")
E_SUBSCRIPTION_END = qn(NS_EVENTING, "SubscriptionEnd")
E_STATUS = qn(NS_EVENTING, "Status")
E_REASON = qn(NS_EVENTING, "Reason")
W_FILTER = qn(NS_WSMAN, "Filter")
W_HEARTBEATS = qn(NS_WSMAN, "Heartbeats")
W_SEND_BOOKMARKS = qn(NS_WSMAN, "SendBookmarks")
W_BOOKMARK = qn(NS_WSMAN, "Bookmark")
W_MAX_ELEMENTS = qn(NS_WSMAN, "MaxElements")
W_MAX_TIME = qn(NS_WSMAN, "MaxTime")
W_CONNECTION_RETRY = qn(NS_WSMAN, "ConnectionRetry")
W_EVENTS = qn(NS_WSMAN, "Events")
W_EVENT = qn(NS_WSMAN, "Event")
W_DROPPED_EVENTS = qn(NS_WSMAN, "DroppedEvents")
W_ACK_REQUESTED = qn(NS_WSMAN, "AckRequested")
N_CONTEXT = qn(NS_ENUMERATION, "EnumerationContext")
N_PULL_RESPONSE = qn(NS_ENUMERATION, "PullResponse")
N_ITEMS = qn(NS_ENUMERATION, "Items")
_LANG = qn(NS_XML, "lang")
M_SUBSCRIPTION = qn(NS_SUBSCRIPTION, "Subscription")
M_VERSION = qn(NS_SUBSCRIPTION, "Version")
#: Bound on the Subscribe envelope carried by one SubscriptionType item.
MAX_SUBSCRIPTION_BYTES = 256 * 1024

#: Bound on events decoded from one message (no unbounded allocation on hostile input).
MAX_EVENTS_PER_MESSAGE = 10_000


# ================================================================================ dataclasses
@dataclass
class ConnectionRetry:
    """``wsman:ConnectionRetry Total="n"`` with the interval between retries (DSP0226 10.2.3)."""

    total: int
    interval: float


@dataclass
class Delivery:
    """``wse:Delivery`` (DSP0226 10.2.9): Mode, NotifyTo (absent in Pull mode, DSP0226 10.2.9.4),
    wsman:Heartbeats (10.2.5), wsman:ConnectionRetry (10.2.3) and, for batched Events mode
    (10.2.9.3), wsman:MaxElements / wsman:MaxTime."""

    mode: str = DELIVERY_PUSH
    notify_to: EndpointReference | None = None
    heartbeats: float | None = None
    connection_retry: ConnectionRetry | None = None
    max_elements: int | None = None
    max_time: float | None = None


@dataclass
class SubscribeRequest:
    """``wse:Subscribe`` (DSP0226 10.2). ``bookmark`` is the text of wsman:Bookmark (an opaque token
    or :data:`BOOKMARK_EARLIEST`, DSP0226 10.2.6); ``expires`` an xs:duration or xs:dateTime."""

    delivery: Delivery = field(default_factory=Delivery)
    expires: str | None = None
    filter_dialect: str | None = None
    filter_text: str | None = None
    bookmark: str | None = None
    send_bookmarks: bool = False
    end_to: EndpointReference | None = None
    filter_element: _Element | None = None  # XML filter content (DSP0226 10.2.2), e.g. an event-log
    # QueryList (MS-WSMV 4.4); then ``filter_text`` is None. Whether a service accepts it is its business.


@dataclass
class SubscriptionManager:
    """``wse:SubscriptionManager`` EPR: Address and the ``wse:Identifier`` reference parameter
    (WS-Eventing 2004/08 3.1; DSP0226 10.2.4); Windows also carries the ResourceURI."""

    address: str
    identifier: str
    resource_uri: str | None = None


@dataclass
class SubscribeResponse:
    """``wse:SubscribeResponse`` (DSP0226 10.2.4); ``context`` is the wsen:EnumerationContext of a
    Pull-mode subscription (DSP0226 10.2.9.4)."""

    manager: SubscriptionManager
    expires: str | None = None
    context: str | None = None


@dataclass
class ManagerRequest:
    """Renew, GetStatus or Unsubscribe addressed to a subscription manager (DSP0226 10.3-10.5):
    the subscription identifier from the header, and for Renew the requested expiry."""

    identifier: str
    expires: str | None = None
    header: Header | None = None


@dataclass
class ExpiresResponse:
    """RenewResponse or GetStatusResponse: the (new) expiry (DSP0226 10.3, 10.5)."""

    expires: str | None = None


@dataclass
class SubscriptionEnd:
    """``wse:SubscriptionEnd`` (DSP0226 10.6): sent to EndTo when the source ends a subscription."""

    manager: SubscriptionManager
    status: str
    reason: str | None = None


@dataclass
class DeliveredEvent:
    """One event: its action URI and its body (the event element)."""

    action: str
    element: _Element


@dataclass
class EventMessage:
    """One event delivery: a Push or PushWithAck message with one event (DSP0226 10.2.9.1, 10.2.9.2),
    a batched ``wsman:Events`` message (10.2.9.3), or the items of a Pull-mode PullResponse
    (10.2.9.4). ``bookmark`` is the wsman:Bookmark header (10.2.6), ``ack_requested`` the
    wsman:AckRequested header (10.7)."""

    events: list[DeliveredEvent] = field(default_factory=list)
    bookmark: str | None = None
    ack_requested: bool = False
    identifier: str | None = None
    message_id: str | None = None
    context: str | None = None
    batched: bool = False
    #: A Pull-mode heartbeat: PullResponse without items, wsa:Action wsman:Heartbeat (DSP0226 10.2.5).
    heartbeat: bool = False
    #: wsman:DroppedEvents reported among the items of a Pull-mode PullResponse (DSP0226 10.9).
    dropped: list[DroppedEvents] = field(default_factory=list)


@dataclass
class DroppedEvents:
    """``wsman:DroppedEvents Action="..."`` count (DSP0226 10.9)."""

    action: str
    count: int


# ================================================================================ helpers
def _duration(el: _Element, what: str) -> float:
    value = parse_duration(_text(el))
    if value < 0:
        raise WSManDecodeError(f"{what} must not be negative")
    return value


def _identifier_header(identifier: str) -> _Element:
    el = etree.Element(E_IDENTIFIER)
    el.text = identifier
    return el


def _extra(env: Envelope, tag: str) -> _Element | None:
    found = [h for h in env.extra_headers if h.tag == tag]
    if len(found) > 1:
        raise WSManDecodeError(f"duplicate {etree.QName(tag).localname} header",
                               fault="InvalidMessageInformationHeader")
    return found[0] if found else None


def identifier_of(env: Envelope) -> str | None:
    """The ``wse:Identifier`` header of a request to a subscription manager, if any."""
    el = _extra(env, E_IDENTIFIER)
    return None if el is None or not _text(el) else _text(el)


def bookmark_of(env: Envelope) -> str | None:
    """The ``wsman:Bookmark`` header of an event delivery (DSP0226 10.2.6), if any."""
    el = _extra(env, W_BOOKMARK)
    return None if el is None else _text(el)


def expires_in(text: str, now: datetime | None = None) -> float:
    """Seconds until an ``wse:Expires`` value (xs:duration or xs:dateTime, WS-Eventing 2004/08 3.1)
    is reached; WSManDecodeError when it is neither."""
    value = text.strip()
    if value.startswith(("P", "-P")):
        return parse_duration(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WSManDecodeError(f"Expires is neither xs:duration nor xs:dateTime: {value[:64]!r}",
                               fault="UnsupportedExpirationType") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


def format_expires(seconds: float) -> str:
    """Expiry written as an xs:duration (WS-Eventing 2004/08 3.1 allows either form)."""
    return format_duration(seconds)


def _write_manager(target: _Element, manager: SubscriptionManager) -> _Element:
    _sub(target, A_ADDRESS, manager.address)
    params = _sub(target, A_REFERENCE_PARAMETERS)
    if manager.resource_uri is not None:
        _sub(params, W_RESOURCE_URI, manager.resource_uri)
    _sub(params, E_IDENTIFIER, manager.identifier)
    return target


def _read_manager(el: _Element) -> SubscriptionManager:
    address = el.find(A_ADDRESS)
    params = el.find(A_REFERENCE_PARAMETERS)
    if params is None:
        params = el.find(A_REFERENCE_PROPERTIES)
    ident = params.find(E_IDENTIFIER) if params is not None else None
    if address is None or ident is None or not _text(ident):
        raise WSManDecodeError("SubscriptionManager needs an Address and a wse:Identifier reference parameter")
    ruri = params.find(W_RESOURCE_URI) if params is not None else None
    return SubscriptionManager(_text(address), _text(ident), _text(ruri) if ruri is not None else None)


# ================================================================================ Subscribe
def build_subscribe_request(header: Header, req: SubscribeRequest) -> bytes:
    """``wse:Subscribe`` (DSP0226 10.2): EndTo, Delivery, Expires, wsman:Filter, wsman:Bookmark,
    wsman:SendBookmarks in the WS-Eventing 2004/08 order (extensions after the wse elements)."""
    d = req.delivery
    if d.mode not in DELIVERY_MODES:
        raise ValueError(f"unknown delivery mode {d.mode!r}")
    if d.mode != DELIVERY_PULL and d.notify_to is None:
        raise ValueError("push delivery modes need a NotifyTo EPR (DSP0226 10.2.9)")
    root = etree.Element(E_SUBSCRIBE, nsmap={"e": NS_EVENTING, "w": NS_WSMAN})
    if req.end_to is not None:
        write_epr(_sub(root, E_END_TO), req.end_to)
    delivery = _sub(root, E_DELIVERY)
    delivery.set("Mode", d.mode)
    if d.notify_to is not None:
        write_epr(_sub(delivery, E_NOTIFY_TO), d.notify_to)
    if d.max_elements is not None:
        _sub(delivery, W_MAX_ELEMENTS, str(d.max_elements))
    if d.max_time is not None:
        _sub(delivery, W_MAX_TIME, format_duration(d.max_time))
    if d.heartbeats is not None:
        _sub(delivery, W_HEARTBEATS, format_duration(d.heartbeats))
    if d.connection_retry is not None:
        cr = _sub(delivery, W_CONNECTION_RETRY, format_duration(d.connection_retry.interval))
        cr.set("Total", str(d.connection_retry.total))
    if req.expires is not None:
        _sub(root, E_EXPIRES, req.expires)
    if req.filter_text is not None or req.filter_element is not None:
        f = _sub(root, W_FILTER, req.filter_text)
        if req.filter_element is not None:
            f.append(copy.deepcopy(req.filter_element))
        if req.filter_dialect is not None:
            f.set("Dialect", req.filter_dialect)
    if req.bookmark is not None:
        _sub(root, W_BOOKMARK, req.bookmark)
    if req.send_bookmarks:
        _sub(root, W_SEND_BOOKMARKS)
    return build_envelope(_with_action(header, Action.SUBSCRIBE), [root])


def _read_delivery(el: _Element) -> Delivery:
    mode = (el.get("Mode") or DELIVERY_PUSH).strip()  # WS-Eventing 3.1: Push is the default
    if mode not in DELIVERY_MODES:
        raise WSManDecodeError(f"unsupported delivery mode {mode[:80]!r}", fault="DeliveryModeRequestedUnavailable")
    d = Delivery(mode=mode)
    for c in _children(el):
        if c.tag == E_NOTIFY_TO:
            d.notify_to = read_epr(c)
        elif c.tag == W_HEARTBEATS:
            d.heartbeats = _duration(c, "Heartbeats")
        elif c.tag == W_MAX_ELEMENTS:
            d.max_elements = _uint(c, "MaxElements")
        elif c.tag == W_MAX_TIME:
            d.max_time = _duration(c, "MaxTime")
        elif c.tag == W_CONNECTION_RETRY:
            d.connection_retry = ConnectionRetry(_uint(c.get("Total") or "", "ConnectionRetry Total"),
                                                 _duration(c, "ConnectionRetry"))
    if mode != DELIVERY_PULL and (d.notify_to is None or not d.notify_to.address):
        raise WSManDecodeError("push delivery without a NotifyTo address (DSP0226 10.2.9)",
                               fault="InvalidMessageInformationHeader")
    return d


def parse_subscribe_request(env: Envelope) -> SubscribeRequest:
    """Decode ``wse:Subscribe`` (DSP0226 10.2)."""
    _expect(env, Action.SUBSCRIBE)
    p = _payload(env, E_SUBSCRIBE)
    delivery: Delivery | None = None
    out = SubscribeRequest()
    for c in _children(p):
        if c.tag == E_DELIVERY:
            if delivery is not None:
                raise WSManDecodeError("Subscribe with two Delivery elements")
            delivery = _read_delivery(c)
        elif c.tag == E_END_TO:
            out.end_to = read_epr(c)
        elif c.tag == E_EXPIRES:
            out.expires = _text(c)
            expires_in(out.expires)  # well-formed or WSManDecodeError
        elif c.tag in (W_FILTER, E_FILTER):
            content = _children(c)
            if len(content) > 1:
                raise WSManDecodeError("wsman:Filter holds more than one element", fault="CannotProcessFilterWsman")
            out.filter_dialect = c.get("Dialect")
            if content:  # XML filter (DSP0226 10.2.2; MS-WSMV 4.4 event-log QueryList)
                out.filter_element = content[0]
            else:
                out.filter_text = c.text or ""
        elif c.tag == W_BOOKMARK:
            out.bookmark = _text(c)
        elif c.tag == W_SEND_BOOKMARKS:
            out.send_bookmarks = True
    if delivery is None:
        raise WSManDecodeError("Subscribe without wse:Delivery (WS-Eventing 2004/08 3.1)", fault="InvalidMessage")
    out.delivery = delivery
    return out


def build_subscribe_response(relates_to: str | None, resp: SubscribeResponse, *,
                             message_id: str | None = None) -> bytes:
    """``wse:SubscribeResponse`` (DSP0226 10.2.4): SubscriptionManager EPR, Expires and, in Pull
    mode, the wsen:EnumerationContext (DSP0226 10.2.9.4)."""
    root = etree.Element(E_SUBSCRIBE_RESPONSE, nsmap={"e": NS_EVENTING, "n": NS_ENUMERATION, "w": NS_WSMAN})
    _write_manager(_sub(root, E_SUBSCRIPTION_MANAGER), resp.manager)
    if resp.expires is not None:
        _sub(root, E_EXPIRES, resp.expires)
    if resp.context is not None:
        _sub(root, N_CONTEXT, resp.context)
    return build_envelope(response_header(Action.SUBSCRIBE_RESPONSE, relates_to, message_id=message_id), [root])


def parse_subscribe_response(env: Envelope) -> SubscribeResponse:
    _expect(env, Action.SUBSCRIBE_RESPONSE)
    p = _payload(env, E_SUBSCRIBE_RESPONSE)
    manager: SubscriptionManager | None = None
    out_expires: str | None = None
    context: str | None = None
    for c in _children(p):
        if c.tag == E_SUBSCRIPTION_MANAGER:
            manager = _read_manager(c)
        elif c.tag == E_EXPIRES:
            out_expires = _text(c)
            expires_in(out_expires)
        elif c.tag == N_CONTEXT:
            context = _text(c) or None
    if manager is None:
        raise WSManDecodeError("SubscribeResponse without SubscriptionManager")
    return SubscribeResponse(manager, out_expires, context)


# ================================================================================ manager requests
def _manager_request(header: Header, action: str, identifier: str, body: _Element) -> bytes:
    return build_envelope(_with_action(header, action), [body], extra_headers=[_identifier_header(identifier)])


def _parse_manager_request(env: Envelope, action: str, tag: str) -> ManagerRequest:
    _expect(env, action)
    p = _payload(env, tag)
    ident = identifier_of(env)
    if ident is None:
        raise WSManDecodeError(f"{etree.QName(tag).localname} without a wse:Identifier header",
                               fault="InvalidMessageInformationHeader")
    out = ManagerRequest(ident, header=env.header)
    exp = p.find(E_EXPIRES)
    if exp is not None:
        out.expires = _text(exp)
        expires_in(out.expires)
    return out


def build_renew_request(header: Header, identifier: str, expires: str | None = None) -> bytes:
    """``wse:Renew`` with the new Expires (DSP0226 10.5)."""
    root = etree.Element(E_RENEW, nsmap={"e": NS_EVENTING})
    if expires is not None:
        _sub(root, E_EXPIRES, expires)
    return _manager_request(header, Action.EVENTING_RENEW, identifier, root)


def parse_renew_request(env: Envelope) -> ManagerRequest:
    return _parse_manager_request(env, Action.EVENTING_RENEW, E_RENEW)


def build_get_status_request(header: Header, identifier: str) -> bytes:
    """``wse:GetStatus`` (DSP0226 10.3)."""
    return _manager_request(header, Action.EVENTING_GET_STATUS, identifier,
                            etree.Element(E_GET_STATUS, nsmap={"e": NS_EVENTING}))


def parse_get_status_request(env: Envelope) -> ManagerRequest:
    return _parse_manager_request(env, Action.EVENTING_GET_STATUS, E_GET_STATUS)


def build_unsubscribe_request(header: Header, identifier: str) -> bytes:
    """``wse:Unsubscribe`` (DSP0226 10.4)."""
    return _manager_request(header, Action.UNSUBSCRIBE, identifier,
                            etree.Element(E_UNSUBSCRIBE, nsmap={"e": NS_EVENTING}))


def parse_unsubscribe_request(env: Envelope) -> ManagerRequest:
    return _parse_manager_request(env, Action.UNSUBSCRIBE, E_UNSUBSCRIBE)


def _expires_response(action: str, tag: str, relates_to: str | None, expires: str | None,
                      message_id: str | None) -> bytes:
    root = etree.Element(tag, nsmap={"e": NS_EVENTING})
    if expires is not None:
        _sub(root, E_EXPIRES, expires)
    return build_envelope(response_header(action, relates_to, message_id=message_id), [root])


def _parse_expires_response(env: Envelope, action: str, tag: str) -> ExpiresResponse:
    _expect(env, action)
    p = _payload(env, tag)
    exp = p.find(E_EXPIRES)
    if exp is None:
        return ExpiresResponse()
    expires_in(_text(exp))
    return ExpiresResponse(_text(exp))


def build_renew_response(relates_to: str | None, expires: str | None, *, message_id: str | None = None) -> bytes:
    """``wse:RenewResponse`` with the granted expiry (DSP0226 10.5)."""
    return _expires_response(Action.EVENTING_RENEW_RESPONSE, E_RENEW_RESPONSE, relates_to, expires, message_id)


def parse_renew_response(env: Envelope) -> ExpiresResponse:
    return _parse_expires_response(env, Action.EVENTING_RENEW_RESPONSE, E_RENEW_RESPONSE)


def build_get_status_response(relates_to: str | None, expires: str | None, *,
                              message_id: str | None = None) -> bytes:
    """``wse:GetStatusResponse`` with the current expiry (DSP0226 10.3)."""
    return _expires_response(Action.EVENTING_GET_STATUS_RESPONSE, E_GET_STATUS_RESPONSE, relates_to, expires,
                             message_id)


def parse_get_status_response(env: Envelope) -> ExpiresResponse:
    return _parse_expires_response(env, Action.EVENTING_GET_STATUS_RESPONSE, E_GET_STATUS_RESPONSE)


def build_unsubscribe_response(relates_to: str | None, *, message_id: str | None = None) -> bytes:
    """``UnsubscribeResponse``: empty body (DSP0226 10.4)."""
    return build_envelope(response_header(Action.UNSUBSCRIBE_RESPONSE, relates_to, message_id=message_id), [])


def parse_unsubscribe_response(env: Envelope) -> None:
    _expect(env, Action.UNSUBSCRIBE_RESPONSE)
    if env.payload is not None:
        raise WSManDecodeError("UnsubscribeResponse must have an empty body", fault="InvalidBody")


# ================================================================================ SubscriptionEnd
def build_subscription_end(header: Header, end: SubscriptionEnd) -> bytes:
    """``wse:SubscriptionEnd`` sent to the EndTo EPR (DSP0226 10.6)."""
    root = etree.Element(E_SUBSCRIPTION_END, nsmap={"e": NS_EVENTING})
    _write_manager(_sub(root, E_SUBSCRIPTION_MANAGER), end.manager)
    _sub(root, E_STATUS, end.status)
    if end.reason is not None:
        r = _sub(root, E_REASON, end.reason)
        r.set(_LANG, "en-US")
    return build_envelope(_with_action(header, Action.SUBSCRIPTION_END), [root])


def parse_subscription_end(env: Envelope) -> SubscriptionEnd:
    _expect(env, Action.SUBSCRIPTION_END)
    p = _payload(env, E_SUBSCRIPTION_END)
    manager_el, status_el, reason_el = p.find(E_SUBSCRIPTION_MANAGER), p.find(E_STATUS), p.find(E_REASON)
    if manager_el is None or status_el is None or not _text(status_el):
        raise WSManDecodeError("SubscriptionEnd needs SubscriptionManager and Status")
    return SubscriptionEnd(_read_manager(manager_el), _text(status_el),
                           _text(reason_el) if reason_el is not None else None)


# ================================================================================ event delivery
def _delivery_headers(bookmark: str | None, ack_requested: bool, identifier: str | None) -> list[_Element]:
    out: list[_Element] = []
    if identifier is not None:
        out.append(_identifier_header(identifier))
    if bookmark is not None:
        bm = etree.Element(W_BOOKMARK)
        bm.text = bookmark
        out.append(bm)
    if ack_requested:
        out.append(etree.Element(W_ACK_REQUESTED))
    return out


def build_event(header: Header, event: DeliveredEvent, *, bookmark: str | None = None,
                ack_requested: bool = False, identifier: str | None = None) -> bytes:
    """One event in Push / PushWithAck mode (DSP0226 10.2.9.1, 10.2.9.2): the event's action as
    wsa:Action, the event as the body; wsman:AckRequested for PushWithAck (DSP0226 10.7)."""
    return build_envelope(_with_action(header, event.action), [event.element],
                          extra_headers=_delivery_headers(bookmark, ack_requested, identifier))


def build_events(header: Header, events: Sequence[DeliveredEvent], *, bookmark: str | None = None,
                 ack_requested: bool = False, identifier: str | None = None) -> bytes:
    """Batched delivery (DSP0226 10.2.9.3): ``wsman:Events`` holding one ``wsman:Event Action=``
    per event."""
    root = etree.Element(W_EVENTS, nsmap={"w": NS_WSMAN})
    _write_event_list(root, events)
    return build_envelope(_with_action(header, Action.EVENTS), [root],
                          extra_headers=_delivery_headers(bookmark, ack_requested, identifier))


def _write_event_list(parent: _Element, events: Sequence[DeliveredEvent]) -> None:
    for ev in events:
        box = _sub(parent, W_EVENT)
        box.set("Action", ev.action)
        box.append(ev.element)


def _read_event_list(parent: _Element) -> list[DeliveredEvent]:
    out: list[DeliveredEvent] = []
    for c in _children(parent):
        if c.tag != W_EVENT:
            raise WSManDecodeError(f"unexpected {c.tag!r} in an event list, expected wsman:Event")
        action = (c.get("Action") or "").strip()
        inner = _children(c)
        if not action or len(inner) != 1:
            raise WSManDecodeError("wsman:Event needs an Action attribute and exactly one event element")
        out.append(DeliveredEvent(action, inner[0]))
        if len(out) > MAX_EVENTS_PER_MESSAGE:
            raise WSManDecodeError(f"more than {MAX_EVENTS_PER_MESSAGE} events in one message",
                                   fault="EncodingLimit")
    return out


def parse_event_message(env: Envelope) -> EventMessage:
    """Decode a pushed event: a batched ``wsman:Events`` message or a single event whose action is
    the wsa:Action (DSP0226 10.2.9.x). Heartbeats, DroppedEvents and SubscriptionEnd are not
    events and raise WSManDecodeError."""
    action = env.header.action
    if action in (Action.HEARTBEAT, Action.DROPPED_EVENTS, Action.SUBSCRIPTION_END, Action.ACK, ""):
        raise WSManDecodeError(f"{action or 'a message without Action'} is not an event delivery")
    out = EventMessage(bookmark=bookmark_of(env), ack_requested=_extra(env, W_ACK_REQUESTED) is not None,
                       identifier=identifier_of(env), message_id=env.header.message_id or None)
    p = env.payload
    if action == Action.EVENTS:
        out.events = _read_event_list(_payload(env, W_EVENTS))
        out.batched = True
    else:
        if p is None:
            raise WSManDecodeError("event delivery with an empty body", fault="InvalidBody")
        out.events = [DeliveredEvent(action, p)]
    return out


def build_event_pull_response(relates_to: str | None, context: str | None, events: Sequence[DeliveredEvent], *,
                              bookmark: str | None = None, message_id: str | None = None) -> bytes:
    """PullResponse of a Pull-mode subscription (DSP0226 10.2.9.4): the events as wsen:Items, each
    a ``wsman:Event Action=``; the context stays valid (no EndOfSequence, the subscription goes on);
    the bookmark after the last event as a wsman:Bookmark header (DSP0226 10.2.6)."""
    root = etree.Element(N_PULL_RESPONSE, nsmap={"n": NS_ENUMERATION, "w": NS_WSMAN})
    if context is not None:
        _sub(root, N_CONTEXT, context)
    if events:
        _write_event_list(_sub(root, N_ITEMS), events)
    header = response_header(Action.PULL_RESPONSE, relates_to, message_id=message_id)
    return build_envelope(header, [root], extra_headers=_delivery_headers(bookmark, False, None))


def build_pull_heartbeat(relates_to: str | None, context: str | None, *, bookmark: str | None = None,
                         message_id: str | None = None) -> bytes:
    """Heartbeat of a Pull-mode subscription (DSP0226 10.2.5, which applies heartbeats to every
    delivery mode): the answer to a Pull during which no event arrived for the Heartbeats interval
    -- a PullResponse with the context and no items whose wsa:Action is wsman:Heartbeat. This wire
    form is the harness's reading of DSP0226 10.2.5; it has not been compared with a Windows
    capture (Windows collectors use push modes)."""
    root = etree.Element(N_PULL_RESPONSE, nsmap={"n": NS_ENUMERATION, "w": NS_WSMAN})
    if context is not None:
        _sub(root, N_CONTEXT, context)
    header = response_header(Action.HEARTBEAT, relates_to, message_id=message_id)
    return build_envelope(header, [root], extra_headers=_delivery_headers(bookmark, False, None))


def dropped_events_item(dropped: DroppedEvents) -> DeliveredEvent:
    """``wsman:DroppedEvents`` as one item of a Pull-mode PullResponse (DSP0226 10.9)."""
    root = etree.Element(W_DROPPED_EVENTS, nsmap={"w": NS_WSMAN})
    root.set("Action", dropped.action)
    root.text = str(dropped.count)
    return DeliveredEvent(Action.DROPPED_EVENTS, root)


def parse_event_pull_response(env: Envelope) -> EventMessage:
    """Decode a Pull-mode PullResponse (DSP0226 10.2.9.4), or its heartbeat form (DSP0226 10.2.5);
    ``wsman:DroppedEvents`` items (DSP0226 10.9) go to :attr:`EventMessage.dropped`."""
    heartbeat = env.header.action == Action.HEARTBEAT
    if not heartbeat:
        _expect(env, Action.PULL_RESPONSE)
    p = _payload(env, N_PULL_RESPONSE)
    out = EventMessage(bookmark=bookmark_of(env), message_id=env.header.message_id or None, heartbeat=heartbeat)
    for c in _children(p):
        if c.tag == N_CONTEXT:
            out.context = _text(c) or None
        elif c.tag == N_ITEMS:
            for event in _read_event_list(c):
                if event.action == Action.DROPPED_EVENTS and event.element.tag == W_DROPPED_EVENTS:
                    out.dropped.append(DroppedEvents((event.element.get("Action") or "").strip(),
                                                     _uint(event.element, "DroppedEvents")))
                else:
                    out.events.append(event)
    if heartbeat and out.events:
        raise WSManDecodeError("a Pull-mode heartbeat carries no events (DSP0226 10.2.5)")
    return out


# ================================================================================ publisher-initiated
@dataclass
class PublishedSubscription:
    """One ``SubscriptionType`` enumeration item (MS-WSMV 2.2.4.41): a Version GUID that changes
    whenever the subscription changes, and a complete SOAP envelope holding the Subscribe request the
    publisher honours (MS-WSMV 3.1.4.1.30; the Subscribe message of MS-WSMV 3.1.4.6)."""

    version: str
    envelope: Envelope
    raw: bytes = b""


def build_subscription_item(version: str, subscribe_envelope: bytes) -> _Element:
    """``<m:Subscription><m:Version/><s:Envelope>Subscribe...</s:Envelope></m:Subscription>``
    (MS-WSMV 2.2.4.41), from a Subscribe envelope built with :func:`build_subscribe_request`."""
    if len(subscribe_envelope) > MAX_SUBSCRIPTION_BYTES:
        raise ValueError("the Subscribe envelope is too large for one subscription item")
    inner = etree.fromstring(subscribe_envelope, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    if inner.tag != S_ENVELOPE:
        raise ValueError("a subscription item must carry a SOAP envelope")
    root = etree.Element(M_SUBSCRIPTION, nsmap={"m": NS_SUBSCRIPTION})
    _sub(root, M_VERSION, version)
    root.append(inner)
    return root


def parse_subscription_item(el: _Element) -> PublishedSubscription:
    """Decode one SubscriptionType item (MS-WSMV 2.2.4.41); the embedded envelope must be a
    Subscribe request (checked with :func:`parse_subscribe_request`)."""
    if el.tag != M_SUBSCRIPTION:
        raise WSManDecodeError(f"expected a subscription item, got {el.tag!r}")
    version_el = el.find(M_VERSION)
    inner = el.find(S_ENVELOPE)
    if version_el is None or not _text(version_el) or inner is None:
        raise WSManDecodeError("a subscription item needs Version and a SOAP Envelope (MS-WSMV 2.2.4.41)")
    raw = etree.tostring(inner)
    if len(raw) > MAX_SUBSCRIPTION_BYTES:
        raise WSManDecodeError("the subscription item's envelope is too large", fault="EncodingLimit")
    env = parse_envelope(raw, max_size=MAX_SUBSCRIPTION_BYTES, understood_headers=EVENTING_HEADERS)
    parse_subscribe_request(env)
    return PublishedSubscription(_text(version_el), env, raw)


# ================================================================================ Heartbeat, DroppedEvents, Ack
def build_heartbeat(header: Header, *, bookmark: str | None = None, identifier: str | None = None) -> bytes:
    """Heartbeat: action wsman:Heartbeat, empty body (DSP0226 10.2.5)."""
    return build_envelope(_with_action(header, Action.HEARTBEAT), [],
                          extra_headers=_delivery_headers(bookmark, False, identifier))


def parse_heartbeat(env: Envelope) -> EventMessage:
    _expect(env, Action.HEARTBEAT)
    if env.payload is not None:
        raise WSManDecodeError("a Heartbeat has an empty body (DSP0226 10.2.5)", fault="InvalidBody")
    return EventMessage(bookmark=bookmark_of(env), identifier=identifier_of(env),
                        message_id=env.header.message_id or None)


def build_dropped_events(header: Header, dropped: DroppedEvents, *, identifier: str | None = None) -> bytes:
    """``wsman:DroppedEvents Action="..."`` with the number of lost events (DSP0226 10.9)."""
    root = etree.Element(W_DROPPED_EVENTS, nsmap={"w": NS_WSMAN})
    root.set("Action", dropped.action)
    root.text = str(dropped.count)
    return build_envelope(_with_action(header, Action.DROPPED_EVENTS), [root],
                          extra_headers=_delivery_headers(None, False, identifier))


def parse_dropped_events(env: Envelope) -> DroppedEvents:
    _expect(env, Action.DROPPED_EVENTS)
    p = _payload(env, W_DROPPED_EVENTS)
    action = (p.get("Action") or "").strip()
    if not action:
        raise WSManDecodeError("DroppedEvents without an Action attribute")
    return DroppedEvents(action, _uint(p, "DroppedEvents"))


def build_ack(relates_to: str, *, to: str, message_id: str | None = None) -> bytes:
    """Acknowledgement of a PushWithAck delivery: action wsman:Ack, RelatesTo = the event message's
    MessageID, empty body (DSP0226 10.7)."""
    return build_envelope(response_header(Action.ACK, relates_to, to=to, message_id=message_id), [])


def parse_ack(env: Envelope) -> str:
    """The MessageID of the acknowledged event message (DSP0226 10.7)."""
    _expect(env, Action.ACK)
    if not env.header.relates_to:
        raise WSManDecodeError("Ack without RelatesTo", fault="MessageInformationHeaderRequired")
    return env.header.relates_to


#: Clark names of the header blocks this module reads (for ``parse_envelope(understood_headers=)``).
EVENTING_HEADERS: frozenset[str] = frozenset({E_IDENTIFIER, W_BOOKMARK, W_ACK_REQUESTED})

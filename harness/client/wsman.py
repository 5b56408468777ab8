"""Async WS-Management client (MS-WSMV client role) used by the suites.

The same code talks to the mock and to a real Windows host. A target's fault comes back as a
:class:`~harness.wire.wsman.faults.WSManFault` (data, DESIGN: Conventions); a malformed answer
raises :class:`ProtocolViolation` with the reason, which fails the test cleanly. With a validator,
every message sent and received is checked against the XSDs first.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

import aiohttp
from lxml import etree

from harness.targets.inventory import Target
from harness.transport.http_client import HttpReply, HttpTransport, TransportError
from harness.transport.tap import Tap, default_tap
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman import robust as rc
from harness.wire.wsman.cimxml import class_name_of, element_to_properties, params_element
from harness.wire.wsman.dialect import WSMV, DialectError, check_dialect, convert_tree, detect_dialect, from_codec
from harness.wire.wsman.duration import format_duration
from harness.wire.wsman.envelope import Envelope, parse_envelope, parse_xml
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import EndpointReference, Header, Option
from harness.wire.wsman.ns import (
    FILTER_ASSOCIATION,
    FILTER_SELECTOR,
    FILTER_WQL,
    RESOURCE_CIM_ALL,
    RESOURCE_ROBUST_CONNECTION,
    RESOURCE_WMI_PREFIX,
    Action,
)

#: MaxEnvelopeSize the Windows client sends by default (observed Windows behaviour: 512000).
DEFAULT_MAX_ENVELOPE = 512_000
DEFAULT_OPERATION_TIMEOUT = 60.0

_T = TypeVar("_T")


def _serialize(root: etree._Element) -> bytes:
    """UTF-8 with XML declaration, as ``build_envelope`` writes."""
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class ProtocolViolation(AssertionError):
    """The target answered something that is not valid WS-Man for the request (a test failure)."""


class MessageValidator(Protocol):
    """What :meth:`WSManClient.exchange` needs of a validator (harness.validate.WSManValidator)."""

    def assert_valid(self, data: bytes, direction: str) -> None: ...

    def assert_valid_tree(self, root: etree._Element, direction: str, data: bytes | None = None) -> None: ...


@dataclass
class IdentifyInfo:
    """wsmid:IdentifyResponse (DSP0226 11.3)."""

    protocol_version: str
    product_vendor: str | None
    product_version: str | None
    security_profiles: list[str] | None


@dataclass
class Instance:
    """A resource representation: class name and untyped property values (strings, lists, None, EPRs)."""

    class_name: str
    properties: dict[str, Any]
    element: etree._Element = field(repr=False)

    @classmethod
    def from_element(cls, element: etree._Element) -> Instance:
        return cls(class_name_of(element), element_to_properties(element), element)


@dataclass
class Page:
    """One EnumerateResponse or PullResponse."""

    items: list[Instance]
    eprs: list[EndpointReference]
    context: str | None
    end_of_sequence: bool


@dataclass
class EnumerationResult:
    """Everything an enumeration returned, and how many round trips it took (Enumerate + Pulls)."""

    items: list[Instance]
    eprs: list[EndpointReference]
    round_trips: int


@dataclass
class EventSubscription:
    """A subscription as the client knows it (DSP0226 10.2.4): the manager EPR's identifier and
    address, the granted expiry and, in Pull mode, the enumeration context."""

    resource_uri: str
    identifier: str
    manager_address: str
    expires: str | None
    context: str | None


@dataclass
class EventPage:
    """The events of one Pull on a subscription (DSP0226 10.2.9.4), in delivery order."""

    events: list[Instance]
    actions: list[str]
    bookmark: str | None
    context: str | None
    #: The answer was a Pull-mode heartbeat (DSP0226 10.2.5): no event for the Heartbeats interval.
    heartbeat: bool = False
    #: Events the target's queue lost before these (wsman:DroppedEvents counts, DSP0226 10.9).
    dropped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RobustOptions:
    """The client side of robust connections (MS-WSMV 3.2.1, 3.2.2, 3.2.5.3, 3.2.6.5, 3.2.7), opt-in
    with ``WSManClient(robust=True)`` or ``robust=RobustOptions(...)``.

    A CIM operation (Get, Put, Create, Delete, Enumerate, Pull, Release, a method) is sent with a
    new OperationID (``s:mustUnderstand="false"``) and SequenceId 1 (3.2.6.5). When the connection
    fails before the answer is read (reset, closed, timed out), the request is resent on a new
    connection with ``s:mustUnderstand="true"`` on its OperationID (3.2.5.3), after the wait of
    the Request Retry timer (3.2.2; :func:`harness.wire.wsman.robust.retry_wait`): the server
    answers from the messages it retained instead of running the operation again.
    ``window``/``first_bound``/``forced_points`` are the timer's 180 s, 15 s and 55/115/175 s
    (scaled down by tests); ``draw(bound)`` picks the random wait in [0, bound]."""

    window: float = rc.RETRY_WINDOW
    first_bound: float = rc.FIRST_RETRY_BOUND
    forced_points: tuple[float, ...] = rc.FORCED_RETRY_POINTS
    draw: Callable[[float], float] = field(default=lambda bound: random.uniform(0.0, bound))
    clock: Callable[[], float] = time.monotonic


@dataclass
class RobustOperation:
    """What the client knows of the last robust operation (CimOperations row, MS-WSMV 3.2.1)."""

    operation_id: str
    #: Retransmissions sent (the original request is not counted).
    retransmissions: int = 0
    #: ReceiveSequenceID: the SequenceId expected next from the server.
    receive_sequence_id: int = 1
    #: The server's LastSequenceIdReceived of each Acknowledge it sent (3.1.4.1.39).
    acknowledged_by_server: list[int] = field(default_factory=list)
    #: Duplicates ignored (3.2.7: a SequenceId below ReceiveSequenceID).
    duplicates: int = 0
    #: Whether the answer carried OperationID (the server supports robust connections for the resource).
    server_supports: bool = False


#: Resource URI prefixes of CIM objects and the actions the client sends robustly (MS-WSMV 3.2.6.5).
_ROBUST_PREFIXES = (RESOURCE_WMI_PREFIX.lower(), RESOURCE_CIM_ALL.rstrip("*").lower())
_ROBUST_ACTIONS = frozenset({Action.GET, Action.PUT, Action.CREATE, Action.DELETE, Action.ENUMERATE,
                             Action.PULL, Action.RELEASE, ""})


def _connection_failure(exc: TransportError) -> bool:
    """A broken or timed-out connection (MS-WSMV 3.2.7.10), not a refusal (authentication, policy)."""
    return isinstance(exc.__cause__, aiohttp.ClientError | TimeoutError | OSError)


class WSManClient:
    """One target, one HTTP session. Use ``async with``."""

    def __init__(self, target: Target, *, tap: Tap | None = None, validator: MessageValidator | None = None,
                 max_envelope_size: int = DEFAULT_MAX_ENVELOPE, locale: str | None = "en-US",
                 dialect: str | None = None, robust: bool | RobustOptions = False) -> None:
        self.target = target
        #: The WS-Management dialect written on the wire (harness.wire.wsman.dialect): ``dialect``,
        #: else the target's (Target.dialect): "wsmv" (MS-WSMV) or "wsman2005" (MS-WSMAN 2005/06).
        self.dialect = check_dialect(dialect or target.dialect)
        #: The last envelope sent and received by :meth:`exchange`, as on the wire (in :attr:`dialect`).
        self.last_request: bytes | None = None
        self.last_response: bytes | None = None
        self.validator = validator
        #: Robust connections (MS-WSMV 3.2.6.5; opt-in, MS-WSMV dialect only): see RobustOptions.
        self.robust: RobustOptions | None = (RobustOptions() if robust is True else robust or None)
        #: The last robust operation (None before one).
        self.last_operation: RobustOperation | None = None
        self.max_envelope_size = max_envelope_size
        self.locale = locale
        self._transport = HttpTransport(target.url, username=target.username, password=target.password,
                                        tap=tap or default_tap(), timeout=target.timeout, auth=target.auth,
                                        encryption=target.encryption, verify_tls=target.tls_verify)

    async def __aenter__(self) -> WSManClient:
        await self._transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._transport.close()

    # ------------------------------------------------------------------------------ plumbing
    def header(self, action: str, resource_uri: str | None,
               selectors: Mapping[str, str | EndpointReference] | None = None, **extra: Any) -> Header:
        """A request header as the Windows client writes it (MS-WSMV 2.2.4.x); with :attr:`robust`,
        a CIM operation's header carries a new OperationID and SequenceId 1 (MS-WSMV 3.2.6.5)."""
        h = Header(action=action, to=self.target.url, resource_uri=resource_uri,
                   selectors=dict(selectors or {}), max_envelope_size=self.max_envelope_size,
                   operation_timeout=DEFAULT_OPERATION_TIMEOUT, locale=self.locale, **extra)
        if (self.robust is not None and self.dialect == WSMV and h.operation_id is None
                and action in _ROBUST_ACTIONS and (resource_uri or "").lower().startswith(_ROBUST_PREFIXES)):
            h = rc.robust_header(h, rc.new_operation_id())
        return h

    async def send_raw(self, body: bytes, *, authenticated: bool = True,
                       extra_headers: dict[str, str] | None = None) -> HttpReply:
        """POST an envelope as is (for robustness tests); no validation, no parsing."""
        return await self._transport.post(body, authenticated=authenticated, extra_headers=extra_headers)

    async def exchange(self, body: bytes, *, authenticated: bool = True,
                       extra_headers: dict[str, str] | None = None) -> Envelope:
        """Send a request, validate both directions, return the response envelope or raise its fault.

        ``body`` is built by the MS-WSMV codec; in the 2005/06 dialect it is rewritten before it is
        sent and the answer is rewritten back before it is parsed (harness.wire.wsman.dialect)."""
        body = from_codec(body, self.dialect)
        self.last_request, self.last_response = body, None
        if self.validator is not None:
            self.validator.assert_valid(body, "request")
        operation = self._robust_operation_of(body)
        if operation is None:
            reply = await self._transport.post(body, authenticated=authenticated, extra_headers=extra_headers)
        else:
            reply = await self._post_robust(body, operation, authenticated=authenticated,
                                            extra_headers=extra_headers)
        self.last_response = reply.body
        if reply.status == 401:
            raise ProtocolViolation(f"HTTP 401 from {self.target.url}: authentication refused")
        if reply.status not in (200, 400, 500):
            raise ProtocolViolation(f"HTTP {reply.status} from {self.target.url}: {reply.body[:200]!r}")
        env = self._read_response(reply) if operation is None else await self._read_robust(reply, operation)
        if is_fault(env):
            try:
                raise parse_fault(env)
            except WSManDecodeError as exc:
                raise ProtocolViolation(f"malformed fault: {exc.reason}") from None
        if reply.status != 200:
            raise ProtocolViolation(f"HTTP {reply.status} without a SOAP fault")
        return env

    # ------------------------------------------------------------------------------ robust connections
    def _robust_operation_of(self, body: bytes) -> RobustOperation | None:
        """The robust operation a request starts (its OperationID, MS-WSMV 3.2.6.5), or None."""
        if self.robust is None or self.dialect != WSMV or b"OperationI" not in body:
            return None
        try:
            header = parse_envelope(body).header
        except WSManDecodeError:
            return None
        if header.operation_id is None or header.action in (Action.ACKNOWLEDGE, Action.END) \
                or header.action in rc.KEEPALIVE_ACTIONS:
            return None
        self.last_operation = RobustOperation(header.operation_id)
        return self.last_operation

    async def _post_robust(self, body: bytes, operation: RobustOperation, *, authenticated: bool,
                           extra_headers: dict[str, str] | None) -> HttpReply:
        """POST a robust request; when the connection fails before the answer is read (MS-WSMV
        3.2.7.10), close it, wait for the Request Retry timer (3.2.2) and resend the request on a new
        connection with ``s:mustUnderstand="true"`` on its OperationID (3.2.5.3), until an answer
        comes or RetryStartTime + 180 s passes."""
        assert self.robust is not None
        options = self.robust
        data = body
        retry_start: float | None = None
        attempt = 0
        while True:
            try:
                return await self._transport.post(data, authenticated=authenticated, extra_headers=extra_headers)
            except TransportError as exc:
                if not _connection_failure(exc):
                    raise
                now = options.clock()
                retry_start = now if retry_start is None else retry_start
                attempt += 1
                wait = rc.retry_wait(attempt, now - retry_start, options.draw, window=options.window,
                                     first_bound=options.first_bound, forced_points=options.forced_points)
                if wait is None:
                    raise TransportError(f"robust connection: no answer for operation {operation.operation_id} "
                                         f"within {options.window} s of retrying ({attempt - 1} retransmissions)"
                                         ) from exc
                # "close the primary and secondary connections" (3.2.7.10): the retransmission
                # goes on a new connection (and authenticates again).
                await self._transport.close()
                await asyncio.sleep(wait)
                data = rc.mark_retransmission(body)
                self.last_request = data
                operation.retransmissions += 1
                if self.validator is not None:
                    self.validator.assert_valid(data, "request")

    async def _read_robust(self, reply: HttpReply, operation: RobustOperation) -> Envelope:
        """The answer of a robust operation (MS-WSMV 3.2.7): the envelopes of the (possibly chunked)
        body in order -- a server Acknowledge, KeepAlives and AcknowledgeRequests are noted, a
        response whose SequenceId is below ReceiveSequenceID is a duplicate (ignored and
        acknowledged), above it an error -- and the final response is returned. An answer without
        OperationID comes from a server that does not support robust connections for the resource
        (3.1.4.1.39) and is the answer as is."""
        try:
            parts = rc.split_envelopes(reply.body) if reply.body.strip() else [reply.body]
        except WSManDecodeError as exc:
            self._malformed(reply, exc)
        final: Envelope | None = None
        ack_requested = False
        for part in parts:
            env = self._read_response(HttpReply(reply.status, reply.headers, part))
            action = env.header.action
            if action == Action.ACKNOWLEDGE:
                operation.acknowledged_by_server.append(self._decode(rc.parse_acknowledge, env).last_sequence_id)
                continue
            if action in rc.KEEPALIVE_ACTIONS:
                continue
            if action == Action.ACKNOWLEDGE_REQUEST:
                ack_requested = True
                continue
            if final is not None:
                raise ProtocolViolation("a message after the final response of the operation (MS-WSMV 3.2.7.9)")
            if env.header.operation_id is None:
                if len(parts) > 1:
                    raise ProtocolViolation("several messages in an answer without OperationID")
                final = env
                continue
            self._check_operation_id(env, operation)
            seq = env.header.sequence_id
            if seq is None:
                raise ProtocolViolation("a robust response without SequenceId (MS-WSMV 3.1.6.6)")
            if seq < operation.receive_sequence_id:
                operation.duplicates += 1   # 3.2.7: ignored, and acknowledged below
                ack_requested = True
                continue
            if seq > operation.receive_sequence_id:
                raise ProtocolViolation(f"SequenceId {seq} where {operation.receive_sequence_id} was expected: "
                                        "messages of the operation are missing (MS-WSMV 3.2.7)")
            operation.receive_sequence_id += 1
            operation.server_supports = True
            final = env
        if ack_requested and operation.receive_sequence_id > 1:
            await self.acknowledge(operation.operation_id, operation.receive_sequence_id - 1)
        if final is None:
            raise ProtocolViolation(f"no response to operation {operation.operation_id} in the answer "
                                    f"({len(parts)} message(s)): the server holds none to resend")
        return final

    @staticmethod
    def _check_operation_id(env: Envelope, operation: RobustOperation) -> None:
        try:
            same = rc.parse_operation_id(env.header.operation_id or "") == rc.parse_operation_id(
                operation.operation_id)
        except WSManDecodeError as exc:
            raise ProtocolViolation(f"malformed OperationID in the answer: {exc.reason}") from None
        if not same:
            raise ProtocolViolation(f"answer for operation {env.header.operation_id}, "
                                    f"expected {operation.operation_id} (MS-WSMV 3.1.4.1.39)")

    async def acknowledge(self, operation_id: str, last_sequence_id: int) -> None:
        """Acknowledge (MS-WSMV 3.1.4.18) on the RobustConnection resource: the server may delete the
        messages of the operation up to ``last_sequence_id``. The answer has no body (output data
        type None); a fault is raised."""
        body = rc.build_acknowledge(operation_id, last_sequence_id, to=self.target.url)
        if self.validator is not None:
            self.validator.assert_valid(body, "request")
        reply = await self._transport.post(body)
        if reply.status == 200 and not reply.body.strip():
            return
        if reply.status not in (200, 500):
            raise ProtocolViolation(f"HTTP {reply.status} to Acknowledge: {reply.body[:200]!r}")
        env = self._read_response(reply)
        if is_fault(env):
            raise self._decode(parse_fault, env)
        if env.header.action != Action.ACKNOWLEDGE and env.payload is not None:
            raise ProtocolViolation(f"unexpected answer to Acknowledge on {RESOURCE_ROBUST_CONNECTION}: "
                                    f"{env.header.action}")

    def _read_response(self, reply: HttpReply) -> Envelope:
        """Parse the answer once (hardened parser), validate that tree when the client has a
        validator, and decode it. In the 2005/06 dialect the parsed wire tree is validated, then
        converted to the codec's dialect (an answer in the other dialect is a violation: a target
        answers in the dialect of the request)."""
        data = reply.body
        if self.dialect == WSMV:
            try:
                env = parse_envelope(data)
            except WSManDecodeError as exc:
                self._malformed(reply, exc)
            if self.validator is not None:
                # Envelope keeps the parsed document (s:Body's tree). The validator does not change
                # the tree it is given, so the codec's view stays intact.
                self.validator.assert_valid_tree(env.body.getroottree().getroot(), "response", data)
            return env
        try:
            wire = parse_xml(data)
        except WSManDecodeError as exc:
            self._malformed(reply, exc)
        if self.validator is not None:
            self.validator.assert_valid_tree(wire, "response", data)
        try:
            return parse_envelope(_serialize(self._codec_tree(wire)))
        except WSManDecodeError as exc:
            self._malformed(reply, exc)

    def _codec_tree(self, wire: etree._Element) -> etree._Element:
        """A new tree: the answer ``wire`` (in :attr:`dialect`) in the codec's dialect; an answer in
        the other dialect is a violation (a target answers in the dialect of the request)."""
        try:
            answered = detect_dialect(wire)
        except DialectError as exc:
            raise ProtocolViolation(f"malformed answer: {exc.reason}") from None
        if answered is not None and answered != self.dialect:
            raise ProtocolViolation(f"a {self.dialect} request was answered in the {answered} dialect")
        try:
            return convert_tree(wire, self.dialect, WSMV)
        except DialectError as exc:
            raise ProtocolViolation(f"answer not convertible from the {self.dialect} dialect: {exc.reason}") from None

    def _from_wire(self, data: bytes) -> bytes:
        """The answer ``data`` in the codec's dialect (bytes in, bytes out; see :meth:`_codec_tree`)."""
        if self.dialect == WSMV:
            return data
        try:
            wire = parse_xml(data)
        except WSManDecodeError:
            return data  # parse_envelope reports it
        return _serialize(self._codec_tree(wire))

    def _malformed(self, reply: HttpReply, exc: WSManDecodeError) -> NoReturn:
        """An answer the codec cannot read. Well-formed XML that the schemas reject keeps the
        schema's account (SchemaViolation, when validating); anything else is a ProtocolViolation."""
        if self.validator is not None:
            try:
                root = parse_xml(reply.body)
            except WSManDecodeError:
                pass  # not XML at all: the reason below says why
            else:
                self.validator.assert_valid_tree(root, "response", reply.body)
        raise ProtocolViolation(f"malformed response (HTTP {reply.status}): {exc.reason}") from None

    @staticmethod
    def _decode(parse: Callable[[Envelope], _T], env: Envelope) -> _T:
        try:
            return parse(env)
        except WSManDecodeError as exc:
            raise ProtocolViolation(f"malformed {env.header.action or 'response'}: {exc.reason}") from None

    # ------------------------------------------------------------------------------ operations
    async def identify(self, *, authenticated: bool = True) -> IdentifyInfo:
        """wsmid:Identify (DSP0226 11; MS-WSMV 3.1.4.16); unauthenticated with ``WSMANIDENTIFY``."""
        extra = None if authenticated else {"WSMANIDENTIFY": "unauthenticated"}
        env = await self.exchange(msg.build_identify_request(), authenticated=authenticated, extra_headers=extra)
        resp: msg.IdentifyResponse = self._decode(msg.parse_identify_response, env)
        return IdentifyInfo(resp.protocol_versions[0], resp.product_vendor, resp.product_version,
                            resp.security_profiles)

    async def get(self, resource_uri: str, selectors: Mapping[str, str | EndpointReference] | None = None) -> Instance:
        """Transfer Get (MS-WSMV 3.1.4.1; DSP0226 7.3)."""
        env = await self.exchange(msg.build_get_request(self.header(Action.GET, resource_uri, selectors)))
        resp: msg.InstanceMessage = self._decode(msg.parse_get_response, env)
        if resp.item is None:
            raise ProtocolViolation("GetResponse with an empty body")
        return Instance.from_element(resp.item)

    async def get_fragment(self, resource_uri: str, selectors: Mapping[str, str | EndpointReference] | None,
                           fragment: str) -> dict[str, Any]:
        """Fragment-level Get (DSP0226 7.7; MS-WSMV 2.2.4.17): returns the properties in w:XmlFragment."""
        header = self.header(Action.GET, resource_uri, selectors, fragment_transfer=fragment)
        header.must_understand = header.must_understand | {"FragmentTransfer"}
        env = await self.exchange(msg.build_get_request(header))
        resp: msg.InstanceMessage = self._decode(msg.parse_get_response, env)
        if resp.item is None or etree.QName(resp.item).localname != "XmlFragment":
            raise ProtocolViolation("a fragment Get must answer with w:XmlFragment")
        return element_to_properties(resp.item)

    async def put(self, resource_uri: str, selectors: Mapping[str, str | EndpointReference],
                  properties: Mapping[str, Any], *, class_name: str) -> Instance:
        """Transfer Put (MS-WSMV 3.1.4.2; DSP0226 7.4) of the named properties only."""
        body = params_element(resource_uri, class_name, properties)
        env = await self.exchange(msg.build_put_request(self.header(Action.PUT, resource_uri, selectors), body))
        resp: msg.InstanceMessage = self._decode(msg.parse_put_response, env)
        if resp.item is None:
            return await self.get(resource_uri, selectors)
        return Instance.from_element(resp.item)

    async def create(self, resource_uri: str, properties: Mapping[str, Any], *, class_name: str) -> EndpointReference:
        """Transfer Create (MS-WSMV 3.1.4.5; DSP0226 7.5): returns the ResourceCreated EPR."""
        body = params_element(resource_uri, class_name, properties)
        env = await self.exchange(msg.build_create_request(self.header(Action.CREATE, resource_uri), body))
        resp: msg.CreateResponse = self._decode(msg.parse_create_response, env)
        return resp.epr

    async def delete(self, resource_uri: str, selectors: Mapping[str, str | EndpointReference]) -> None:
        """Transfer Delete (MS-WSMV 3.1.4.6; DSP0226 7.6)."""
        env = await self.exchange(msg.build_delete_request(self.header(Action.DELETE, resource_uri, selectors)))
        self._decode(msg.parse_delete_response, env)

    async def enumerate(self, resource_uri: str, *, wql: str | None = None,
                        selector_filter: Mapping[str, str] | None = None,
                        association: msg.AssociationFilter | None = None, mode: str | None = None,
                        optimize: bool = False, max_elements: int | None = None,
                        selectors: Mapping[str, str | EndpointReference] | None = None) -> Page:
        """Enumerate (MS-WSMV 3.1.4.8; DSP0226 8.2), optimized if asked (DSP0226 8.2.3)."""
        request = msg.EnumerateRequest(enumeration_mode=mode, optimize=optimize,
                                       max_elements=max_elements if optimize else None)
        if wql is not None:
            request.filter_dialect, request.filter_text = FILTER_WQL, wql
        elif selector_filter is not None:
            request.filter_dialect, request.selector_filter = FILTER_SELECTOR, dict(selector_filter)
        elif association is not None:
            request.filter_dialect, request.association_filter = FILTER_ASSOCIATION, association
        env = await self.exchange(msg.build_enumerate_request(
            self.header(Action.ENUMERATE, resource_uri, selectors), request))
        return self._page(self._decode(msg.parse_enumerate_response, env))

    async def pull(self, resource_uri: str, context: str, *, max_elements: int | None = None,
                   selectors: Mapping[str, str | EndpointReference] | None = None) -> Page:
        """Pull (MS-WSMV 3.1.4.9; DSP0226 8.4)."""
        env = await self.exchange(msg.build_pull_request(
            self.header(Action.PULL, resource_uri, selectors), msg.PullRequest(context, max_elements)))
        return self._page(self._decode(msg.parse_pull_response, env))

    async def release(self, resource_uri: str, context: str) -> None:
        """Release (MS-WSMV 3.1.4.10; DSP0226 8.5)."""
        env = await self.exchange(msg.build_release_request(self.header(Action.RELEASE, resource_uri), context))
        self._decode(msg.parse_release_response, env)

    async def enumerate_all(self, resource_uri: str, *, max_elements: int = 20, max_round_trips: int = 10_000,
                            **kwargs: Any) -> EnumerationResult:
        """Enumerate then Pull until EndOfSequence (MS-WMOD 3.2 steps 1-26)."""
        page = await self.enumerate(resource_uri, max_elements=max_elements, **kwargs)
        items, eprs, trips = list(page.items), list(page.eprs), 1
        while not page.end_of_sequence:
            if not page.context:
                raise ProtocolViolation("enumeration response without EnumerationContext or EndOfSequence")
            if trips >= max_round_trips:
                raise ProtocolViolation(f"enumeration did not end within {max_round_trips} round trips")
            page = await self.pull(resource_uri, page.context, max_elements=max_elements)
            items.extend(page.items)
            eprs.extend(page.eprs)
            trips += 1
        return EnumerationResult(items, eprs, trips)

    async def invoke(self, resource_uri: str, method: str,
                     selectors: Mapping[str, str | EndpointReference] | None = None,
                     params: Mapping[str, Any] | None = None, options: list[Option] | None = None) -> dict[str, Any]:
        """Custom action (MS-WSMV 3.1.4.15; DSP0227 9): returns out parameters and ReturnValue."""
        header = self.header("", resource_uri, selectors)
        if options:
            header.options = options
        env = await self.exchange(msg.build_invoke_request(header, method, dict(params or {})))
        resp: msg.InvokeResponse = self._decode(msg.parse_invoke_response, env)
        out = dict(resp.out_params)
        out["ReturnValue"] = resp.return_value
        return out

    # ------------------------------------------------------------------------------ eventing
    async def subscribe(self, resource_uri: str, wql: str, *, mode: str = ev.DELIVERY_PULL,
                        expires: float | None = None, bookmark: str | None = None, send_bookmarks: bool = False,
                        notify_to: EndpointReference | None = None, heartbeats: float | None = None,
                        connection_retry: ev.ConnectionRetry | None = None, max_elements: int | None = None,
                        selectors: Mapping[str, str | EndpointReference] | None = None,
                        end_to: EndpointReference | None = None) -> EventSubscription:
        """Subscribe with a WQL event filter (MS-WSMV 3.1.4.6; DSP0226 10.2; MS-WMOD 3.3 steps 1-6,
        3.4 steps 1-6 for the push modes with ``notify_to``); ``end_to`` receives SubscriptionEnd
        (DSP0226 10.6)."""
        request = ev.SubscribeRequest(
            delivery=ev.Delivery(mode=mode, notify_to=notify_to, heartbeats=heartbeats,
                                 connection_retry=connection_retry, max_elements=max_elements),
            expires=None if expires is None else format_duration(expires), filter_dialect=FILTER_WQL,
            filter_text=wql, bookmark=bookmark, send_bookmarks=send_bookmarks, end_to=end_to)
        env = await self.exchange(ev.build_subscribe_request(
            self.header(Action.SUBSCRIBE, resource_uri, selectors), request))
        resp: ev.SubscribeResponse = self._decode(ev.parse_subscribe_response, env)
        if mode == ev.DELIVERY_PULL and not resp.context:
            raise ProtocolViolation("a Pull-mode SubscribeResponse must carry an EnumerationContext (DSP0226 10.2.9.4)")
        return EventSubscription(resource_uri, resp.manager.identifier, resp.manager.address, resp.expires,
                                 resp.context)

    async def renew(self, subscription: EventSubscription, expires: float | None = None) -> str | None:
        """Renew (DSP0226 10.5); returns the granted Expires and records it on the subscription."""
        env = await self.exchange(ev.build_renew_request(
            self.header(Action.EVENTING_RENEW, subscription.resource_uri), subscription.identifier,
            None if expires is None else format_duration(expires)))
        resp: ev.ExpiresResponse = self._decode(ev.parse_renew_response, env)
        subscription.expires = resp.expires
        return resp.expires

    async def get_status(self, subscription: EventSubscription) -> str | None:
        """GetStatus (DSP0226 10.3): the remaining lifetime of the subscription."""
        env = await self.exchange(ev.build_get_status_request(
            self.header(Action.EVENTING_GET_STATUS, subscription.resource_uri), subscription.identifier))
        resp: ev.ExpiresResponse = self._decode(ev.parse_get_status_response, env)
        return resp.expires

    async def unsubscribe(self, subscription: EventSubscription) -> None:
        """Unsubscribe (DSP0226 10.4; MS-WMOD 3.3 steps 16-21)."""
        env = await self.exchange(ev.build_unsubscribe_request(
            self.header(Action.UNSUBSCRIBE, subscription.resource_uri), subscription.identifier))
        self._decode(ev.parse_unsubscribe_response, env)

    async def pull_events(self, subscription: EventSubscription, *, max_elements: int | None = None,
                          max_time: float | None = None) -> EventPage:
        """Pull the queued events of a Pull-mode subscription (DSP0226 10.2.9.4; MS-WMOD 3.3 steps
        7-15). The target waits up to ``max_time`` for an event; with none it answers w:TimedOut
        (raised as WSManFault), or a heartbeat when one is due (``EventPage.heartbeat``, DSP0226 10.2.5)."""
        if subscription.context is None:
            raise ValueError("only Pull-mode subscriptions can be pulled")
        request = msg.PullRequest(subscription.context, max_elements,
                                  None if max_time is None else format_duration(max_time))
        env = await self.exchange(msg.build_pull_request(
            self.header(Action.PULL, subscription.resource_uri), request))
        page: ev.EventMessage = self._decode(ev.parse_event_pull_response, env)
        if page.context:
            subscription.context = page.context
        return EventPage([Instance.from_element(e.element) for e in page.events], [e.action for e in page.events],
                         page.bookmark, page.context, page.heartbeat, [d.count for d in page.dropped])

    @staticmethod
    def _page(items: msg.EnumerationItems) -> Page:
        eprs = [e for e in items.epr_items if e is not None]
        return Page([Instance.from_element(i) for i in items.items], eprs, items.context, items.end_of_sequence)


__all__ = ["EnumerationResult", "EventPage", "EventSubscription", "IdentifyInfo", "Instance", "Page",
           "ProtocolViolation", "RobustOperation", "RobustOptions", "WSManClient",
           "WSManFault"]

"""The mock target's WS-Management service (MS-WSMV server role, WMI plug-in), sans-IO.

``handle(bytes) -> (http status, bytes)``: one request envelope in, one response envelope out.
Every failure is answered with the SOAP fault Windows would send (MS-WSMV 3.1.4.x; DSP0226 14),
never with a traceback. The CIM operations go to the shared :class:`~harness.cim.store.CimStore`
(MS-WMOD 2.4: every protocol of the mock sees the same objects).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pywbem
from lxml import etree

from harness.cim.errors import WBEM_HRESULT, CimError, CimStatus
from harness.cim.store import CimStore, is_key
from harness.targets.mock import authorization as authz
from harness.targets.mock import wmi_access
from harness.targets.mock.answer_later import AnswerLater, Wakeups, answer_later, attempt
from harness.targets.mock.config import MockConfig
from harness.targets.mock.enumerations import EnumerationContext, EnumerationRegistry
from harness.targets.mock.events import EventSource, EventSourceError, Subscription
from harness.targets.mock.psrp_shells import install_psrp_handlers
from harness.targets.mock.resources import (
    Resource,
    SelectorError,
    UnknownResource,
    instance_path,
    resolve_resource,
)
from harness.targets.mock.robust import (
    OperationRow,
    Replay,
    body_digest,
    current_scope,
    install_robust_handlers,
    supports_action,
)
from harness.targets.mock.shells import install_shell_handlers
from harness.targets.mock.winrm_config import install_config_handlers
from harness.wire.wsman import eventing as ev
from harness.wire.wsman import messages as msg
from harness.wire.wsman.cimxml import (
    CimValueError,
    class_name_of,
    element_to_properties,
    instance_to_element,
    path_to_epr,
    typed_properties,
)
from harness.wire.wsman.dialect import DIALECTS, WSMAN2005, WSMV, DialectError, detect, from_codec, to_codec
from harness.wire.wsman.duration import parse_duration
from harness.wire.wsman.envelope import Envelope, parse_envelope, parse_xml
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.faults import FAULTS, FaultDetail, WSManFault, build_fault, make_fault
from harness.wire.wsman.header import EndpointReference, Header
from harness.wire.wsman.ns import (
    ANONYMOUS,
    ENUM_MODE_EPR,
    ENUM_MODE_OBJECT_AND_EPR,
    FILTER_ASSOCIATION,
    FILTER_SELECTOR,
    FILTER_WQL,
    NS_ADDRESSING,
    NS_SOAP,
    NS_WSMAN,
    NS_WSMID,
    RESOURCE_WMI_PREFIX,
    Action,
    qn,
)

log = logging.getLogger("wmh.mock.wsman")

HTTP_OK = 200
#: Windows answers every SOAP fault with HTTP 500 (observed Windows behaviour; SOAP 1.2 part 2
#: 7.5.2 would allow 400 for sender faults).
HTTP_FAULT = 500
#: Room kept for the envelope and headers when packing enumeration items (DSP0226 6.2).
ENVELOPE_OVERHEAD = 2048
#: DSP0226 R6.2-x: MaxEnvelopeSize below 8192 octets is refused with w:EncodingLimit.
MIN_ENVELOPE_SIZE = 8192
IDENTIFY_TAG = "{" + NS_WSMID + "}Identify"
XML_FRAGMENT = "{" + NS_WSMAN + "}XmlFragment"

#: How a CIM status surfaces as a WS-Man fault from the WMI plug-in (MS-WSMV 3.1.4.1.x). A missing
#: instance, class or namespace is wsa:DestinationUnreachable (observed Windows behaviour: WinRM
#: answers a Get of an unknown instance with DestinationUnreachable carrying the WMI error).
CIM_FAULTS: dict[CimStatus, str] = {
    CimStatus.NOT_FOUND: "DestinationUnreachable",
    CimStatus.INVALID_CLASS: "DestinationUnreachable",
    CimStatus.INVALID_NAMESPACE: "DestinationUnreachable",
    CimStatus.ACCESS_DENIED: "AccessDenied",
    CimStatus.ALREADY_EXISTS: "AlreadyExists",
    CimStatus.INVALID_PARAMETER: "InvalidParameter",
    CimStatus.TYPE_MISMATCH: "InvalidParameter",
    CimStatus.NO_SUCH_PROPERTY: "InvalidRepresentation",
    CimStatus.INVALID_QUERY: "CannotProcessFilter",
    CimStatus.QUERY_LANGUAGE_NOT_SUPPORTED: "FilterDialectRequestedUnavailable",
    CimStatus.METHOD_NOT_FOUND: "ActionNotSupported",
    CimStatus.METHOD_NOT_AVAILABLE: "ActionNotSupported",
    CimStatus.NOT_SUPPORTED: "ActionNotSupported",
}

#: Header names (harness.wire.wsman.header) that live in the wsman namespace.
_WSMAN_HEADER_NAMES = frozenset({"ResourceURI", "SelectorSet", "OptionSet", "MaxEnvelopeSize", "OperationTimeout",
                                 "Locale", "FragmentTransfer", "RequestTotalItemsCountEstimate"})

#: (namespace, instance, projected): the result set of a filtered enumeration.
ENUM_ITEM = tuple[str, pywbem.CIMInstance, bool]


@dataclass
class _StoreCursor:
    """A plain enumeration reads the store page by page through an integer cursor, so an open
    context costs constant memory however many instances remain (MS-WMOD 3.2; DSP0226 8.4)."""

    namespace: str
    class_name: str
    position: int = 0
    done: bool = False
    buffer: deque[ENUM_ITEM] = field(default_factory=deque)


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request."""

    name: str
    read_only: bool = False


class _Reply(Exception):
    """Internal: a finished response (used to unwind from deep in a handler)."""

    def __init__(self, body: bytes) -> None:
        self.body = body


class WSManService:
    """Dispatches WS-Man requests to the CIM store."""

    def __init__(self, store: CimStore, config: MockConfig, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.config = config
        kwargs = {"clock": clock} if clock is not None else {}
        self.enumerations: EnumerationRegistry[ENUM_ITEM] = EnumerationRegistry(
            config.enumeration_expiry, config.max_enumerations, **kwargs)
        #: Event subscriptions over the store (DSP0226 10; MS-WMOD 3.3); config.event_clock drives them.
        event_clock = clock if clock is not None else config.event_clock
        self.events = EventSource(store, clock=event_clock) if event_clock is not None else EventSource(store)
        #: Wakes requests that wait to be answered (harness.targets.mock.answer_later): the event
        #: source, the shell host and the PowerShell host notify it when what they would answer changes.
        self.wakeups = Wakeups()
        self.events.add_waker(self.wakeups.notify)
        self._handlers: dict[str, Callable[[Envelope, Principal], bytes]] = {
            Action.GET: self._get,
            Action.PUT: self._put,
            Action.CREATE: self._create,
            Action.DELETE: self._delete,
            Action.ENUMERATE: self._enumerate,
            Action.PULL: self._pull,
            Action.RELEASE: self._release,
            Action.SUBSCRIBE: self._subscribe,
            Action.EVENTING_RENEW: self._renew,
            Action.EVENTING_GET_STATUS: self._get_status,
            Action.UNSUBSCRIBE: self._unsubscribe,
        }
        #: WinRS shells (MS-WSMV 3.1.4.5, 3.1.4.11 - 3.1.4.17; MS-WMOD 3.6): Create/Delete of the cmd
        #: resource and the shell actions go to the shell host.
        self.shells = install_shell_handlers(self, clock)
        #: PowerShell Remoting (MS-PSRP 3.1.5; MS-WMOD 2.5.2.8): the .../powershell/... shells.
        self.psrp = install_psrp_handlers(self, clock)
        #: WinRM service configuration: the winrm/config resources (observed Windows behaviour;
        #: learn.microsoft.com "Installation and configuration for Windows Remote Management").
        install_config_handlers(self)
        #: Robust connections (MS-WSMV 3.1.4.1.39; harness.targets.mock.robust): the OperationMessages
        #: table of the CIM resources, and the Acknowledge / KeepAlive / End handlers.
        self.robust = install_robust_handlers(self, clock)
        #: WS-Management dialects the listener accepts (harness.wire.wsman.dialect): MS-WSMV and the
        #: Windows Server 2003 R2 dialect MS-WSMAN 2005/06; a config attribute ``wsman_dialects``
        #: restricts them (e.g. ("wsman2005",) for a Windows Server 2003 R2 listener).
        self.dialects: frozenset[str] = frozenset(getattr(config, "wsman_dialects", DIALECTS))

    # ------------------------------------------------------------------------------ entry points
    def handle(self, data: bytes, principal: Principal) -> tuple[int, bytes]:
        """Answer one request envelope in the dialect it is written in (MS-WSMV, or MS-WSMAN
        2005/06 when :attr:`dialects` accepts it; harness.wire.wsman.dialect). Never raises."""
        try:
            dialect, data = to_codec(data, max_size=self.config.max_request_bytes, accepted=self.dialects)
        except DialectError as exc:  # mixed namespaces, or wsman:Filter in 2005/06 (MS-WSMAN 3.1.4.1.13)
            return HTTP_FAULT, self._in_dialect_of(data, self._fault(_decode_fault(exc), _message_id_of(data)))
        except WSManDecodeError:
            dialect = None  # not XML: the codec below answers it
        if dialect == WSMAN2005 and dialect not in self.dialects:
            dialect = None  # answered by the MS-WSMV codec: s:MustUnderstand for the unknown headers
        elif dialect == WSMV and WSMV not in self.dialects:
            return HTTP_FAULT, self._refuse_wsmv(data)
        status, body = self._handle_codec(data, principal, robust=dialect != WSMAN2005)
        try:
            return status, from_codec(body, dialect)
        except DialectError as exc:
            log.error("cannot write the answer in the %s dialect: %s", dialect, exc.reason)
            internal = make_fault("InternalError", f"The answer cannot be written in the {dialect} dialect.")
            return HTTP_FAULT, from_codec(self._fault(internal, None), dialect)

    def _refuse_wsmv(self, data: bytes) -> bytes:
        """A Windows Server 2003 R2 listener (MS-WSMAN only) does not know the DSP0226 1.x namespace:
        its mustUnderstand headers are not understood, s:MustUnderstand with one s:NotUnderstood
        per header (SOAP 1.2 part 1 5.2.3, 5.4.8), answered in the 2005/06 dialect."""
        try:
            env = parse_envelope(data, max_size=self.config.max_request_bytes)
        except WSManDecodeError as exc:
            return from_codec(self._fault(_decode_fault(exc), None), WSMAN2005)
        fault = make_fault("MustUnderstand", "The WS-Management namespace of the request is not supported.")
        answer = etree.fromstring(from_codec(self._fault(fault, env.header.message_id or None), WSMAN2005))
        # The s:NotUnderstood blocks name the request's own (DSP0226 1.x) QNames: added after the
        # rewrite into 2005/06 so that they keep their namespace.
        for name in sorted(name for name in env.header.must_understand if name in _WSMAN_HEADER_NAMES):
            block = etree.SubElement(answer[0], qn(NS_SOAP, "NotUnderstood"), nsmap={"nu": NS_WSMAN})
            block.set("qname", f"nu:{name}")
        return etree.tostring(answer, xml_declaration=True, encoding="utf-8")

    def _handle_codec(self, data: bytes, principal: Principal, *, robust: bool = True) -> tuple[int, bytes]:
        """Answer one MS-WSMV request envelope. Never raises. ``robust``: a request with an
        OperationID on a resource that supports robust connections goes through the
        OperationMessages table (MS-WSMV 3.1.4.1.39; harness.targets.mock.robust)."""
        relates_to: str | None = None
        row: OperationRow | None = None
        try:
            env = parse_envelope(data, max_size=self.config.max_request_bytes)
            relates_to = env.header.message_id or None
            if len(self.robust):
                self.robust.sweep()   # the Response Retention timers (MS-WSMV 3.1.2, 3.1.6.5)
            if robust and self._robust_operation(env, principal):
                scope = current_scope()
                begun = self.robust.begin(env.header, principal.name, scope.connection if scope else None,
                                          body_digest(env))
                if isinstance(begun, Replay):
                    # The retained answer instead of running the operation again: one envelope per
                    # HTTP chunk when the HTTP layer can write them (MS-WSMV 3.1.4.1.39).
                    if scope is not None:
                        scope.parts = list(begun.messages)
                    return HTTP_OK, b"".join(begun.messages)
                row = begun
            status, body = HTTP_OK, self._dispatch(env, principal)
        except WSManDecodeError as exc:
            status, body = HTTP_FAULT, self._fault(_decode_fault(exc), relates_to)
        except WSManFault as fault:
            status, body = HTTP_FAULT, self._fault(fault, relates_to)
        except _Reply as reply:
            status, body = HTTP_FAULT, reply.body
        except Exception as exc:  # a defect of the mock: still a fault, and logged for us
            log.exception("internal error in the mock WS-Man service")
            internal = make_fault("InternalError", f"The mock failed internally: {type(exc).__name__}")
            status, body = HTTP_FAULT, self._fault(internal, relates_to)
        if row is not None:
            # Every response of the operation, a fault too, carries its OperationID and SequenceId
            # and is retained for a retransmission (MS-WSMV 3.1.6.6).
            try:
                body = self.robust.respond(row, body)
            except WSManDecodeError:  # never: the body is the service's own envelope
                log.exception("cannot stamp the answer of a robust operation")
        return status, body

    def _robust_operation(self, env: Envelope, principal: Principal) -> bool:
        """A request the OperationMessages table handles: an OperationID on a CIM object operation
        (harness.targets.mock.robust.supports_action), authenticated; a Pull of an event
        subscription is a long poll of the event source, not a CIM object operation."""
        h = env.header
        if h.operation_id is None or not principal.name or not supports_action(h):
            return False
        if h.action == Action.PULL:
            try:
                return self.events.by_context(msg.parse_pull_request(env).context) is None
            except WSManDecodeError:
                return True   # malformed: the operation's answer is the fault
        return True

    def handle_or_wait(self, data: bytes, principal: Principal,
                       waited: float = 0.0) -> tuple[int, bytes] | AnswerLater:
        """Like :meth:`handle`, but a request with nothing to answer yet may answer
        :class:`~harness.targets.mock.answer_later.AnswerLater`: a shell Receive before output
        (MS-WSMV 3.1.4.14), an empty Pull on a Pull-mode subscription (DSP0226 10.2.9.4). The
        caller waits (without blocking) until woken by :attr:`wakeups` or ``AnswerLater.seconds``
        pass, then asks again with the seconds ``waited`` so far; once the request's budget
        (OperationTimeout / MaxTime, capped by MaxTimeout) is used up the answer is the handler's
        w:TimedOut (or whatever is ready by then)."""
        with attempt(waited) as box:
            answer = self.handle(data, principal)
        later = box.decide(self.config.max_timeout)
        return answer if later is None else later

    def handle_identify_only(self, data: bytes) -> tuple[int, bytes]:
        """Unauthenticated requests (``WSMANIDENTIFY: unauthenticated``) may only Identify (MS-WSMV 3.1.4.16)."""
        try:
            env = parse_envelope(data, max_size=self.config.max_request_bytes)
        except WSManDecodeError as exc:
            return HTTP_FAULT, self._fault(_decode_fault(exc), None)
        payload = env.payload
        if payload is None or payload.tag != IDENTIFY_TAG:
            fault = make_fault("AccessDenied", "Only Identify is answered without authentication.")
            return HTTP_FAULT, self._in_dialect_of(data, self._fault(fault, env.header.message_id or None))
        return self.handle(data, Principal(name="", read_only=True))

    def _in_dialect_of(self, request: bytes, answer: bytes) -> bytes:
        """``answer`` (MS-WSMV) in the dialect of ``request`` when the listener accepts that dialect."""
        try:
            dialect = detect(request, max_size=self.config.max_request_bytes)
            return from_codec(answer, dialect if dialect in self.dialects else None)
        except WSManDecodeError:
            return answer

    def encoding_limit_fault(self) -> tuple[int, bytes]:
        """The fault for a request larger than the service accepts (DSP0226 14.6 w:EncodingLimit)."""
        fault = make_fault("EncodingLimit", "The request exceeds the maximum envelope size of the service.",
                           detail=FaultDetail.SERVICE_ENVELOPE_LIMIT)
        return HTTP_FAULT, self._fault(fault, None)

    # ------------------------------------------------------------------------------ dispatch
    def _fault(self, fault: WSManFault, relates_to: str | None) -> bytes:
        fault.machine = fault.machine or self.config.machine
        return build_fault(fault, relates_to)

    def _dispatch(self, env: Envelope, principal: Principal) -> bytes:
        payload = env.payload
        if payload is not None and payload.tag == IDENTIFY_TAG and not env.header.action:
            msg.parse_identify_request(env)
            return msg.build_identify_response(msg.IdentifyResponse(
                product_version="OS: 10.0.20348 SP: 0.0 Stack: 3.0",
                security_profiles=["http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic"],
            ))
        if principal.name == "":
            raise make_fault("AccessDenied", "Only Identify is answered without authentication.")
        self._check_header(env)
        action = env.header.action
        handler = self._handlers.get(action)
        try:
            if handler is not None:
                return handler(env, principal)
            if env.header.resource_uri and action.lower().startswith(env.header.resource_uri.lower() + "/"):
                return self._invoke(env, principal)
            raise make_fault("ActionNotSupported", f"The action {action} is not supported by this resource.")
        except CimError as exc:
            raise _cim_fault(exc) from None
        except SelectorError as exc:
            raise make_fault("InvalidSelectors", exc.reason,
                             detail=getattr(FaultDetail, _upper_snake(exc.detail), None)) from None
        except UnknownResource as exc:
            raise make_fault("DestinationUnreachable", str(exc), detail=FaultDetail.INVALID_RESOURCE_URI) from None

    def _check_header(self, env: Envelope) -> None:
        """Addressing and WS-Man header rules (DSP0226 5.x, 6.x; SOAP 1.2 part 1 5.2.3)."""
        h = env.header
        if env.unknown_must_understand:
            raise make_fault("MustUnderstand", not_understood=list(env.unknown_must_understand))
        if not h.action:
            raise make_fault("MessageInformationHeaderRequired", "The request has no wsa:Action header.")
        if not h.message_id:
            raise make_fault("MessageInformationHeaderRequired", "The request has no wsa:MessageID header.")
        if h.reply_to not in (None, ANONYMOUS):
            # DSP0226 R5.4.2-x: WinRM only answers on the HTTP back channel (observed Windows behaviour).
            raise make_fault("UnsupportedFeature", "ReplyTo must be the anonymous address.",
                             detail=FaultDetail.ADDRESSING_MODE)
        if h.max_envelope_size is not None and h.max_envelope_size < MIN_ENVELOPE_SIZE:
            raise make_fault("EncodingLimit", f"MaxEnvelopeSize must be at least {MIN_ENVELOPE_SIZE} octets.",
                             detail=FaultDetail.MINIMUM_ENVELOPE_LIMIT)
        for option in h.options:
            if option.must_comply and not _shell_option(option.name, h.resource_uri):
                raise make_fault("InvalidOptions", f"The option {option.name} cannot be complied with.",
                                 detail=FaultDetail.NOT_SUPPORTED)

    def _limit(self, env: Envelope) -> int:
        requested = env.header.max_envelope_size
        return min(requested, self.config.max_envelope_size) if requested else self.config.max_envelope_size

    def _checked(self, env: Envelope, body: bytes) -> bytes:
        """DSP0226 6.2: a response larger than MaxEnvelopeSize is replaced by w:EncodingLimit."""
        if len(body) > self._limit(env):
            raise make_fault("EncodingLimit", "The response exceeds the MaxEnvelopeSize of the request.",
                             detail=FaultDetail.MAX_ENVELOPE_SIZE_EXCEEDED)
        return body

    def sids_of(self, principal: Principal) -> frozenset[str]:
        """The SIDs of ``principal``'s token on the mock machine (harness.targets.mock.authorization)."""
        return authz.principal_sids(self.config.machine, principal.name, read_only=principal.read_only)

    def _namespace_sd(self, namespace: str) -> authz.SecurityDescriptor:
        return wmi_access.namespace_descriptor(self.store, namespace)

    def _authorize(self, resource: Resource, principal: Principal, desired: int) -> None:
        """MS-WMOD 2.9.3; MS-WMI 5.2: the namespace DACL must grant ``desired`` and Remote Enable,
        else w:AccessDenied (DSP0226 14.6.1) carrying WBEM_E_ACCESS_DENIED."""
        try:
            authz.require(self._namespace_sd(resource.namespace), self.sids_of(principal), desired,
                          resource.namespace)
        except authz.AccessDenied as exc:
            raise _access_denied(exc) from None

    def _authorize_write(self, resource: Resource, principal: Principal) -> None:
        """Put, Create and Delete need Full Write or Partial Write on the namespace (MS-WMOD 2.9.3)."""
        try:
            authz.require_write(self._namespace_sd(resource.namespace), self.sids_of(principal), resource.namespace)
        except authz.AccessDenied as exc:
            raise _access_denied(exc) from None

    @staticmethod
    def _require_writer(principal: Principal) -> None:
        """MS-WMOD 2.9.3: a read-only principal (not a member of Administrators) may not create
        shells nor have the Win32 providers change services and processes. CIM reads and writes are
        decided by the namespace DACL instead (:meth:`_authorize`)."""
        if principal.read_only:
            raise make_fault("AccessDenied", "Access is denied: the user may only read this namespace.")

    def _resource(self, env: Envelope) -> Resource:
        resource = resolve_resource(env.header.resource_uri, env.header.selectors, self.store)
        failing = {name.lower() for name in self.config.failing_providers}
        if failing and resource.class_name is not None and resource.class_name.lower() in failing:
            raise _provider_failure(resource.class_name)
        return resource

    def _render(self, resource: Resource, namespace: str, instance: pywbem.CIMInstance,
                projected: bool = False) -> etree._Element:
        cls = None if projected else self.store.class_view(namespace, instance.classname)
        return instance_to_element(instance, resource.uri_for(instance.classname), cls)

    def _epr(self, resource: Resource, namespace: str, instance: pywbem.CIMInstance) -> EndpointReference:
        path = self.store.path_of(namespace, instance)
        like = resource.uri_for(instance.classname)
        epr = path_to_epr(path.copy(), like)
        epr.resource_uri = like
        return epr

    # ------------------------------------------------------------------------------ transfer
    def _get(self, env: Envelope, principal: Principal) -> bytes:
        """Get (MS-WSMV 3.1.4.1; DSP0226 7.3), with fragment-level access (DSP0226 7.7)."""
        resource = self._resource(env)
        self._authorize(resource, principal, authz.READ_RIGHTS)
        path = instance_path(resource, env.header.selectors, self.store)
        instance = self.store.get_instance(resource.namespace, path)
        element = self._render(resource, resource.namespace, instance)
        if env.header.fragment_transfer:
            element = self._fragment(element, env.header.fragment_transfer)
        return self._checked(env, msg.build_get_response(env.header.message_id, element))

    @staticmethod
    def _fragment(instance_el: etree._Element, expression: str) -> etree._Element:
        """``<w:XmlFragment>`` holding the named property (DSP0226 7.7: the Dialect-less fragment
        expression is a property name, optionally ``Name/text()``)."""
        name = expression.strip().removesuffix("/text()").strip("/")
        wanted = [c for c in instance_el if isinstance(c.tag, str) and etree.QName(c).localname.lower() == name.lower()]
        if not wanted or not name:
            raise make_fault("InvalidParameter", f"The fragment {expression!r} names no property.",
                             detail=FaultDetail.INVALID_FRAGMENT)
        fragment = etree.Element(XML_FRAGMENT, nsmap={"w": NS_WSMAN})
        for child in wanted:
            fragment.append(child)
        return fragment

    def _put(self, env: Envelope, principal: Principal) -> bytes:
        """Put (MS-WSMV 3.1.4.2; DSP0226 7.4): only the properties sent change (MS-WMOD 2.5.2.3)."""
        resource = self._resource(env)
        self._authorize_write(resource, principal)
        path = instance_path(resource, env.header.selectors, self.store)
        request = msg.parse_put_request(env)
        if request.item is None:
            raise make_fault("InvalidRepresentation", "Put needs the new representation in the body.")
        current = self.store.get_instance(resource.namespace, path)
        cls = self.store.get_class(resource.namespace, current.classname)
        item = request.item
        if item.tag == XML_FRAGMENT or env.header.fragment_transfer:
            raw = element_to_properties(item)
        else:
            if class_name_of(item).lower() != current.classname.lower() and not self.store.is_subclass(
                    resource.namespace, current.classname, class_name_of(item)):
                raise make_fault("InvalidRepresentation",
                                 f"The body holds {class_name_of(item)}, the resource is {current.classname}.")
            raw = element_to_properties(item)
        typed = _typed(raw, cls)
        for key, value in path.keybindings.items():
            if key in typed and _differs(typed[key], value):
                raise make_fault("InvalidRepresentation", f"Put cannot change the key property {key}.")
        changes = {k: v for k, v in typed.items() if k not in path.keybindings}
        update = current.copy()
        for name, value in changes.items():
            update[name] = value
        new_state = self.store.modify_instance(resource.namespace, update, property_list=list(changes))
        return self._checked(env, msg.build_put_response(env.header.message_id,
                                                         self._render(resource, resource.namespace, new_state)))

    def _create(self, env: Envelope, principal: Principal) -> bytes:
        """Create (MS-WSMV 3.1.4.5; DSP0226 7.5): answers wxf:ResourceCreated with the new EPR."""
        resource = self._resource(env)
        self._authorize_write(resource, principal)
        if resource.class_name is None:
            raise make_fault("DestinationUnreachable", "Create needs a resource URI naming a class.")
        request = msg.parse_create_request(env)
        if request.item is None:
            raise make_fault("InvalidRepresentation", "Create needs the new object in the body.")
        if class_name_of(request.item).lower() != resource.class_name.lower():
            raise make_fault("InvalidRepresentation",
                             f"The body holds {class_name_of(request.item)}, the resource is {resource.class_name}.")
        cls = self.store.get_class(resource.namespace, resource.class_name)
        instance = pywbem.CIMInstance(cls.classname)
        for name, value in _typed(element_to_properties(request.item), cls).items():
            instance[name] = value
        path = self.store.create_instance(resource.namespace, instance)
        epr = path_to_epr(path.copy(), resource.uri)
        epr.resource_uri = resource.uri_for(path.classname)
        return self._checked(env, msg.build_create_response(env.header.message_id, epr))

    def _delete(self, env: Envelope, principal: Principal) -> bytes:
        """Delete (MS-WSMV 3.1.4.6; DSP0226 7.6); a missing object is a fault (MS-WMOD 2.5.2.7)."""
        resource = self._resource(env)
        self._authorize_write(resource, principal)
        path = instance_path(resource, env.header.selectors, self.store)
        self.store.delete_instance(resource.namespace, path)
        return msg.build_delete_response(env.header.message_id)

    # ------------------------------------------------------------------------------ enumeration
    def _enumerate(self, env: Envelope, principal: Principal) -> bytes:
        """Enumerate (MS-WSMV 3.1.4.8; DSP0226 8.2), optimized (8.2.3), filtered (8.3, DSP0227 8.2)."""
        resource = self._resource(env)
        self._authorize(resource, principal, authz.READ_RIGHTS)
        request = msg.parse_enumerate_request(env)
        if request.enumeration_mode not in (None, ENUM_MODE_EPR, ENUM_MODE_OBJECT_AND_EPR):
            raise make_fault("UnsupportedFeature", f"Unknown EnumerationMode {request.enumeration_mode}.",
                             detail=FaultDetail.ENUMERATION_MODE)
        selected = self._select(resource, request)
        items = [] if isinstance(selected, _StoreCursor) else selected
        ctx = self.enumerations.open(resource.uri, items, request.enumeration_mode, resource.namespace)
        ctx.extra["resource"] = resource
        if isinstance(selected, _StoreCursor):
            ctx.extra["cursor"] = selected
        if not request.optimize:
            return msg.build_enumerate_response(env.header.message_id, context=ctx.context_id)
        page = self._page(env, ctx, request.max_elements or 1)
        return self._checked(env, msg.build_enumerate_response(env.header.message_id, page))

    def _select(self, resource: Resource, request: msg.EnumerateRequest) -> list[ENUM_ITEM] | _StoreCursor:
        ns = resource.namespace
        dialect = request.filter_dialect
        if request.association_filter is not None or dialect == FILTER_ASSOCIATION:
            return self._associated(resource, request)
        if dialect is None and request.selector_filter is None and request.filter_text is None:
            if resource.class_name is None:
                raise make_fault("UnsupportedFeature", "A wildcard resource URI needs a filter.",
                                 detail=FaultDetail.FILTERING_REQUIRED)
            return _StoreCursor(ns, resource.class_name)
        if dialect == FILTER_SELECTOR or (dialect is None and request.selector_filter is not None):
            if resource.class_name is None:
                raise make_fault("CannotProcessFilter", "A selector filter needs a resource URI naming a class.")
            wanted = dict(request.selector_filter or {})
            path = instance_path(resource, wanted, self.store)
            try:
                return [(ns, self.store.get_instance(ns, path), False)]
            except CimError as exc:
                if exc.status == CimStatus.NOT_FOUND:
                    return []
                raise
        if dialect in (FILTER_WQL, None) and request.filter_text is not None:
            return self._wql(resource, request.filter_text)
        raise make_fault("FilterDialectRequestedUnavailable", f"The filter dialect {dialect} is not supported.")

    def _wql(self, resource: Resource, text: str) -> list[ENUM_ITEM]:
        from harness.cim.wql import parse_wql

        query = parse_wql(text)
        if query.kind == "select" and resource.class_name is not None and not self.store.is_subclass(
                resource.namespace, query.classname, resource.class_name):
            raise make_fault("CannotProcessFilter",
                             f"The WQL query class {query.classname} does not match the resource URI class "
                             f"{resource.class_name}.")
        projected = query.kind == "select" and query.properties is not None
        return [(resource.namespace, i, projected) for i in self.store.exec_query(resource.namespace, text)]

    def _associated(self, resource: Resource, request: msg.EnumerateRequest) -> list[ENUM_ITEM]:
        """Association filters (DSP0227 8.2): associators (AssociatedInstances) or references
        (AssociationInstances) of the object named by the filter's EPR."""
        af = request.association_filter
        if af is None:
            raise make_fault("CannotProcessFilter", "The association filter is empty.")
        target_resource = resolve_resource(af.object.resource_uri, af.object.selectors, self.store)
        path = instance_path(target_resource, af.object.selectors, self.store)
        ns = target_resource.namespace
        self.store.get_instance(ns, path)  # the source object must exist
        if af.kind == "AssociatedInstances":
            found = self.store.associators(ns, path, assoc_class=af.association_class,
                                           result_class=af.result_class, role=af.role, result_role=af.result_role)
        else:
            found = self.store.references(ns, path, result_class=af.result_class, role=af.role)
        return [(ns, i, False) for i in found]

    def _page(self, env: Envelope, ctx: EnumerationContext[ENUM_ITEM], max_elements: int) -> msg.EnumerationItems:
        """Take up to ``max_elements`` items that fit MaxEnvelopeSize (DSP0226 8.4, 6.2)."""
        resource: Resource = ctx.extra["resource"]  # type: ignore[assignment]
        budget = self._limit(env) - ENVELOPE_OVERHEAD
        page = msg.EnumerationItems()
        used = 0
        while len(page.items) + len(page.epr_items) < max_elements * (2 if ctx.mode == ENUM_MODE_OBJECT_AND_EPR else 1):
            entry = self._peek(ctx, max_elements)
            if entry is None:
                break
            ns, instance, projected = entry
            obj = None if ctx.mode == ENUM_MODE_EPR else self._render(resource, ns, instance, projected)
            epr = None if ctx.mode is None else self._epr(resource, ns, instance)
            size = (len(etree.tostring(obj)) if obj is not None else 0) + (600 if epr is not None else 0)
            if used + size > budget:
                if used == 0:
                    raise make_fault("EncodingLimit", "One item is larger than the MaxEnvelopeSize of the request.",
                                     detail=FaultDetail.MAX_ENVELOPE_SIZE_EXCEEDED)
                break
            used += size
            if obj is not None:
                page.items.append(obj)
            if epr is not None:
                page.epr_items.append(epr)
            self._advance(ctx)
            if ctx.mode == ENUM_MODE_OBJECT_AND_EPR and len(page.items) >= max_elements:
                break
        if self._peek(ctx, 1) is None:
            page.end_of_sequence = True
            self.enumerations.release(ctx.context_id)
        else:
            page.context = ctx.context_id
        return page

    def _peek(self, ctx: EnumerationContext[ENUM_ITEM], want: int) -> ENUM_ITEM | None:
        """The next item of the enumeration without consuming it (None at the end)."""
        cursor = ctx.extra.get("cursor")
        if isinstance(cursor, _StoreCursor):
            while not cursor.buffer and not cursor.done:
                found, cursor.position, cursor.done = self.store.scan_instances(
                    cursor.namespace, cursor.class_name, cursor.position, max(want, 16))
                cursor.buffer.extend((cursor.namespace, i, False) for i in found)
            return cursor.buffer[0] if cursor.buffer else None
        return ctx.items[ctx.position] if ctx.position < len(ctx.items) else None

    @staticmethod
    def _advance(ctx: EnumerationContext[ENUM_ITEM]) -> None:
        cursor = ctx.extra.get("cursor")
        if isinstance(cursor, _StoreCursor):
            cursor.buffer.popleft()
        else:
            ctx.position += 1

    def _pull(self, env: Envelope, principal: Principal) -> bytes:
        """Pull (MS-WSMV 3.1.4.9; DSP0226 8.4): the next items; EndOfSequence at the end."""
        request = msg.parse_pull_request(env)
        subscription = self.events.by_context(request.context)
        if subscription is not None:
            return self._pull_events(env, subscription, request)
        ctx = self.enumerations.take(request.context)
        if ctx is None:
            raise make_fault("InvalidEnumerationContext")
        page = self._page(env, ctx, request.max_elements or 1)
        return self._checked(env, msg.build_pull_response(env.header.message_id, page))

    def _release(self, env: Envelope, principal: Principal) -> bytes:
        """Release (MS-WSMV 3.1.4.10; DSP0226 8.5)."""
        request = msg.parse_release_request(env)
        if not self.enumerations.release(request.context):
            raise make_fault("InvalidEnumerationContext")
        return msg.build_release_response(env.header.message_id)

    # ------------------------------------------------------------------------------ eventing
    def _subscribe(self, env: Envelope, principal: Principal) -> bytes:
        """Subscribe (MS-WSMV 3.1.4.6; DSP0226 10.2) with a WQL event filter (DSP0226 10.2.2).

        Pull delivery (DSP0226 10.2.9.4) is served by :meth:`_pull_events`; the push modes (Push,
        PushWithAck, Events; DSP0226 10.2.9.1-10.2.9.3) queue here and are POSTed to NotifyTo by
        the HTTP layer's :class:`~harness.targets.mock.event_pusher.EventPusher`, as are
        SubscriptionEnd messages to EndTo (DSP0226 10.6). NotifyTo and EndTo must be http(s)
        addresses (the only transports of MS-WSMV 2.1). Refusals use the WS-Eventing faults
        (WS-Eventing 2004/08 4; DSP0226 14.6): e:FilteringRequestedUnavailable for another filter
        dialect, w:CannotProcessFilter for a missing or unusable filter (DSP0226 10.2.2),
        e:InvalidExpirationTime, w:InvalidBookmark (DSP0226 10.2.6).
        """
        resource = self._resource(env)
        self._authorize(resource, principal, authz.READ_RIGHTS)
        request = ev.parse_subscribe_request(env)
        notify = request.delivery.notify_to
        if request.delivery.mode != ev.DELIVERY_PULL and (
                notify is None or not notify.address.lower().startswith(("http://", "https://"))):
            raise make_fault("UnsupportedFeature", "NotifyTo must be an http or https address.",
                             detail=FaultDetail.ADDRESSING_MODE)
        if request.end_to is not None and not request.end_to.address.lower().startswith(("http://", "https://")):
            raise make_fault("UnsupportedFeature", "EndTo must be an http or https address.",
                             detail=FaultDetail.ADDRESSING_MODE)
        if request.filter_dialect not in (None, FILTER_WQL):
            raise make_fault("FilteringRequestedUnavailable",
                             f"The filter dialect {request.filter_dialect} is not supported.")
        if not request.filter_text or not request.filter_text.strip():
            raise make_fault("CannotProcessFilterWsman", "Subscribe needs a WQL event query filter.")
        expires = ev.expires_in(request.expires) if request.expires is not None else None
        try:
            sub = self.events.subscribe(resource.namespace, resource.uri, request.filter_text, request.delivery,
                                        expires=expires, bookmark=request.bookmark,
                                        send_bookmarks=request.send_bookmarks, end_to=request.end_to)
        except EventSourceError as exc:
            raise _eventing_fault(exc) from None
        remaining = self.events.remaining(sub)
        manager = ev.SubscriptionManager(address=env.header.to or ANONYMOUS, identifier=sub.identifier,
                                         resource_uri=resource.uri)
        response = ev.SubscribeResponse(manager, None if remaining is None else ev.format_expires(remaining),
                                        sub.context)
        return ev.build_subscribe_response(env.header.message_id, response)

    def _manager_target(self, request: ev.ManagerRequest) -> Subscription:
        sub = self.events.get(request.identifier)
        if sub is None:
            raise make_fault("DestinationUnreachable", "The subscription does not exist or has expired.")
        return sub

    def _renew(self, env: Envelope, principal: Principal) -> bytes:
        """Renew (DSP0226 10.5): a new expiry counted from now; a subscription that is gone cannot
        be renewed (e:UnableToRenew, WS-Eventing 2004/08 3.2)."""
        request = ev.parse_renew_request(env)
        expires = ev.expires_in(request.expires) if request.expires is not None else None
        try:
            granted = self.events.renew(request.identifier, expires)
        except EventSourceError as exc:
            raise _eventing_fault(exc) from None
        return ev.build_renew_response(env.header.message_id, ev.format_expires(granted))

    def _get_status(self, env: Envelope, principal: Principal) -> bytes:
        """GetStatus (DSP0226 10.3): the remaining lifetime."""
        sub = self._manager_target(ev.parse_get_status_request(env))
        remaining = self.events.remaining(sub)
        return ev.build_get_status_response(env.header.message_id,
                                            None if remaining is None else ev.format_expires(remaining))

    def _unsubscribe(self, env: Envelope, principal: Principal) -> bytes:
        """Unsubscribe (MS-WSMV 3.1.4.7; DSP0226 10.4): the subscription and its queue are gone."""
        request = ev.parse_unsubscribe_request(env)
        if not self.events.unsubscribe(request.identifier):
            raise make_fault("DestinationUnreachable", "The subscription does not exist or has expired.")
        return ev.build_unsubscribe_response(env.header.message_id)

    def _pull_budget(self, env: Envelope, request: msg.PullRequest) -> float:
        """How long an empty event Pull may wait: MaxTime, else OperationTimeout, bounded by the
        service's MaxTimeout (DSP0226 8.3, 10.2.9.4)."""
        budget = self.config.max_timeout
        if request.max_time is not None:
            budget = parse_duration(request.max_time)
        elif env.header.operation_timeout is not None:
            budget = env.header.operation_timeout
        return max(0.0, min(budget, self.config.max_timeout))

    def _pull_events(self, env: Envelope, sub: Subscription, request: msg.PullRequest) -> bytes:
        """Pull on a Pull-mode subscription (DSP0226 10.2.9.4): the queued events in order as items,
        never EndOfSequence (the subscription stays), preceded by a wsman:DroppedEvents item when the
        bounded queue overflowed (DSP0226 10.9). With nothing queued the Pull waits -- through
        :meth:`handle_or_wait` (harness.targets.mock.answer_later), without blocking -- until an
        event arrives (the event source wakes it); when the Heartbeats interval passes first the
        answer is a heartbeat (DSP0226 10.2.5), when MaxTime passes first w:TimedOut (DSP0226
        10.2.9.4). Plain :meth:`handle` never waits."""
        events = self.events.take(sub, request.max_elements or 1)
        if not events:
            due = self.events.heartbeat_due(sub)
            if due is not None and due <= 0:
                self.events.mark_activity(sub)
                bookmark = self.events.bookmark(sub) if sub.send_bookmarks else None
                return ev.build_pull_heartbeat(env.header.message_id, sub.context, bookmark=bookmark)
            # The heartbeat is due after ``due`` event-clock seconds without any other wake-up.
            answer_later(self._pull_budget(env, request), recheck=due)
            raise make_fault("TimedOut", "No events arrived for the subscription within the time allowed.")
        budget = self._limit(env) - ENVELOPE_OVERHEAD
        delivered: list[ev.DeliveredEvent] = []
        dropped = self.events.take_dropped(sub)
        if dropped:
            delivered.append(ev.dropped_events_item(ev.DroppedEvents(Action.EVENT, dropped)))
        used = 0
        for i, event in enumerate(events):
            element = instance_to_element(event.instance, RESOURCE_WMI_PREFIX + sub.namespace + "/"
                                          + event.event_class)
            size = len(etree.tostring(element))
            if used + size > budget:
                if i == 0:
                    self.events.put_back(sub, events)
                    sub.dropped += dropped
                    raise make_fault("EncodingLimit", "One event is larger than the MaxEnvelopeSize of the request.",
                                     detail=FaultDetail.MAX_ENVELOPE_SIZE_EXCEEDED)
                self.events.put_back(sub, events[i:])
                break
            used += size
            delivered.append(ev.DeliveredEvent(Action.EVENT, element))
        self.events.mark_activity(sub)
        bookmark = self.events.bookmark(sub) if sub.send_bookmarks else None
        return ev.build_event_pull_response(env.header.message_id, sub.context, delivered, bookmark=bookmark)

    # ------------------------------------------------------------------------------ invoke
    def _invoke(self, env: Envelope, principal: Principal) -> bytes:
        """Custom actions: CIM methods (MS-WSMV 3.1.4.15; DSP0227 9; MS-WMOD 2.5.2.2)."""
        resource = self._resource(env)
        if resource.class_name is None:
            raise make_fault("DestinationUnreachable", "Invoke needs a resource URI naming a class.")
        request = msg.parse_invoke_request(env)
        cls = self.store.get_class(resource.namespace, resource.class_name)
        method = next((m for m in cls.methods.values() if m.name.lower() == request.method.lower()), None)
        if method is None:
            raise make_fault("ActionNotSupported", f"{cls.classname} has no method {request.method}.")
        if cls.classname.lower() == "__systemsecurity":
            # __SystemSecurity.GetSD needs READ_CONTROL, SetSD WRITE_DAC; any enabled caller may ask
            # GetCallerAccessRights (MS-WMI 3.1.4.3; WMI "__SystemSecurity class" reference).
            needed = wmi_access.SYSTEM_SECURITY_RIGHTS.get(method.name.lower(), authz.METHOD_RIGHTS)
            self._authorize(resource, principal, needed)
            if method.name.lower() == "getcalleraccessrights":
                # "sets the rights parameter as a bitmap with each bit corresponding to an access
                # right" of the caller (WMI __SystemSecurity::GetCallerAccessRights reference)
                rights = authz.granted_rights(self._namespace_sd(resource.namespace), self.sids_of(principal))
                return self._checked(env, msg.build_invoke_response(
                    env.header.message_id, resource.uri, method.name, pywbem.Uint32(0),
                    {"Rights": pywbem.Sint32(rights)}))
        else:
            self._authorize(resource, principal, authz.METHOD_RIGHTS)
            # "Providers can perform additional access checks" (WBEM_METHOD_EXECUTE): the Win32
            # providers act for the caller and only administrators may change services and processes.
            self._require_writer(principal)
        target: pywbem.CIMInstanceName | str
        selectors = {k: v for k, v in env.header.selectors.items() if k != "__cimnamespace"}
        if selectors or _singleton_method(cls, method):
            target = instance_path(resource, env.header.selectors, self.store)
            self.store.get_instance(resource.namespace, target)
        else:
            target = cls.classname
        params = _typed_params(request.params, method)
        return_value, out = self.store.invoke_method(resource.namespace, target, method.name, params)
        return self._checked(env, msg.build_invoke_response(env.header.message_id, resource.uri, method.name,
                                                            return_value, out))


# ---------------------------------------------------------------------------------- helpers
def _shell_option(name: str, resource_uri: str | None) -> bool:
    """A WINRS_* option the shell host honours (MS-WSMV 3.1.4.5, 3.1.4.11), so MustComply is met."""
    from harness.wire.wsman.shell import SHELL_OPTIONS

    if name.lower() == "protocolversion" and (resource_uri or "").lower().startswith(
            "http://schemas.microsoft.com/powershell/"):
        return True  # MS-PSRP 3.1.5.3.1: the PSRP protocol version option (MustComply)
    return name.upper() in SHELL_OPTIONS and (resource_uri or "").lower().startswith(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell")


def _upper_snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def _message_id_of(data: bytes) -> str | None:
    """The wsa:MessageID of a request the codec cannot take (for the fault's RelatesTo), if any."""
    try:
        root = parse_xml(data)
    except WSManDecodeError:
        return None
    for el in root.iter(qn(NS_ADDRESSING, "MessageID")):
        return (el.text or "").strip() or None
    return None


def _decode_fault(exc: WSManDecodeError) -> WSManFault:
    name = exc.fault if exc.fault in FAULTS else "SchemaValidationError"
    return make_fault(name, f"{FAULTS[name].reason} {exc.reason}".strip())


def _eventing_fault(exc: EventSourceError) -> WSManFault:
    """The fault for a refusal of the event source: the WS-Eventing / WS-Management catalogue entry
    it names; an unusable event filter is w:CannotProcessFilter (DSP0226 10.2.2)."""
    name = "CannotProcessFilterWsman" if exc.fault == "CannotProcessFilter" else exc.fault
    return make_fault(name, exc.reason, detail=exc.detail)


#: WBEM_E_PROVIDER_FAILURE (MS-WMI 2.2.11): "a provider failure occurred".
WBEM_E_PROVIDER_FAILURE = 0x80041004


def _provider_failure(class_name: str) -> WSManFault:
    """MS-WMOD 2.10.3 internal failure: the provider of ``class_name`` failed (fault injection,
    MockConfig.failing_providers). The WMI plug-in answers a WMI error it has no specific fault
    for with w:InternalError (DSP0226 14.6.5, s:Receiver) whose f:WSManFault Code is the WBEM
    status (observed Windows behaviour), here WBEM_E_PROVIDER_FAILURE."""
    return make_fault("InternalError",
                      f"The WMI service returned error 0x{WBEM_E_PROVIDER_FAILURE:08X}: the provider of "
                      f"{class_name} failed.", wsman_code=WBEM_E_PROVIDER_FAILURE)


def _access_denied(exc: authz.AccessDenied) -> WSManFault:
    """w:AccessDenied (DSP0226 14.6.1) with the WMI status WBEM_E_ACCESS_DENIED (MS-WMI 2.2.11) in its
    text, as the WMI plug-in reports a failed namespace access check (observed Windows behaviour)."""
    code = WBEM_HRESULT[CimStatus.ACCESS_DENIED]
    return make_fault("AccessDenied", f"{exc.reason} The WMI service returned error 0x{code:08X}.")


def _cim_fault(exc: CimError) -> WSManFault:
    name = CIM_FAULTS.get(exc.status, "InternalError")
    code = WBEM_HRESULT.get(exc.status, WBEM_HRESULT[CimStatus.FAILED])
    text = exc.description or exc.status.name.replace("_", " ").lower()
    # Observed Windows behaviour (see harness.wire.wsman.faults): a missing instance is
    # a:DestinationUnreachable whose f:WSManFault Code is ERROR_WSMAN_RESOURCE_NOT_FOUND (2150858752),
    # the template's code; the WBEM status shows only in the message. Clients key on that code
    # (pypsrp and pywinrm surface it as the fault code; tests/interop).
    wsman_code = None if exc.status == CimStatus.NOT_FOUND else code
    return make_fault(name, f"The WMI service returned error 0x{code:08X}: {text}", wsman_code=wsman_code)


def _typed(raw: dict[str, Any], cls: pywbem.CIMClass) -> dict[str, Any]:
    try:
        return typed_properties(raw, cls)
    except CimValueError as exc:
        raise make_fault("InvalidRepresentation", exc.reason) from None


def _singleton_method(cls: pywbem.CIMClass, method: pywbem.CIMMethod) -> bool:
    """A non-static method of a keyless (singleton) class: without selectors the resource URI names
    the one instance (``__SystemSecurity=@``), as for Get (observed Windows behaviour: ``winrm invoke
    GetSD wmi/root/cimv2/__SystemSecurity``)."""
    static = method.qualifiers.get("Static")
    if static is not None and static.value:
        return False
    return not any(is_key(p) for p in cls.properties.values())


def _typed_params(raw: dict[str, Any], method: pywbem.CIMMethod) -> dict[str, Any]:
    """Coerce custom-action input by the method's IN parameters (DSP0227 9)."""
    fake = pywbem.CIMClass("__params")
    for p in method.parameters.values():
        qin = p.qualifiers.get("In")
        if qin is not None and not qin.value:
            continue
        fake.properties[p.name] = pywbem.CIMProperty(p.name, None, type=p.type, is_array=p.is_array,
                                                     reference_class=p.reference_class)
    try:
        return typed_properties(raw, fake)
    except CimValueError as exc:
        raise make_fault("InvalidParameter", exc.reason) from None


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() != b.casefold()
    return bool(a != b)


__all__ = ["HTTP_FAULT", "HTTP_OK", "Header", "Principal", "WSManService"]

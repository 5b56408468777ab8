"""SOAP faults as WS-Management and Windows write them (DSP0226 14, MS-WSMV 2.2.4.x / 3.1.4.x).

Fault body (SOAP 1.2 part 1 5.4; DSP0226 14.5; the f:WSManFault detail is MS-WSMV 2.2.4.x
``WSManFault``)::

    <s:Fault>
      <s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:InvalidSelectors</s:Value></s:Subcode></s:Code>
      <s:Reason><s:Text xml:lang="en-US">...</s:Text></s:Reason>
      <s:Detail>
        <w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors</w:FaultDetail>
        <f:WSManFault xmlns:f=".../wsmanfault" Code="2150858843" Machine="host">
          <f:Message>...</f:Message>
        </f:WSManFault>
      </s:Detail>
    </s:Fault>

Observed Windows behaviour: ``w:FaultDetail`` comes before ``f:WSManFault`` in ``s:Detail``;
the WSManFault ``Code`` is the Win32 error (``ERROR_WSMAN_*`` = 0x80338000 + n from wsmerror.h,
written in decimal, e.g. ERROR_WSMAN_INVALID_SELECTORS 0x8033805B is ``2150858843``); a Get of a
missing WMI instance is answered with ``a:DestinationUnreachable``, FaultDetail ``InvalidResourceURI``
and Code 2150858752 (ERROR_WSMAN_RESOURCE_NOT_FOUND) carrying a nested WMI ``f:ProviderFault``;
``w:TimedOut`` carries Code 2150858793; shell not found is ``w:InvalidSelectors`` +
``UnexpectedSelectors`` + 2150858843.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from .envelope import Envelope, build_envelope
from .errors import WSManDecodeError
from .messages import response_header
from .ns import ANONYMOUS, CANONICAL_PREFIX, FAULT_DETAIL_PREFIX, NS_SOAP, NS_WSMAN, NS_WSMANFAULT, NS_XML, Action, qn

_Element = etree._Element

S_FAULT = qn(NS_SOAP, "Fault")
S_CODE = qn(NS_SOAP, "Code")
S_VALUE = qn(NS_SOAP, "Value")
S_SUBCODE = qn(NS_SOAP, "Subcode")
S_REASON = qn(NS_SOAP, "Reason")
S_TEXT = qn(NS_SOAP, "Text")
S_DETAIL = qn(NS_SOAP, "Detail")
S_NOT_UNDERSTOOD = qn(NS_SOAP, "NotUnderstood")
S_UPGRADE = qn(NS_SOAP, "Upgrade")
S_SUPPORTED_ENVELOPE = qn(NS_SOAP, "SupportedEnvelope")
W_FAULT_DETAIL = qn(NS_WSMAN, "FaultDetail")
F_WSMAN_FAULT = qn(NS_WSMANFAULT, "WSManFault")
F_MESSAGE = qn(NS_WSMANFAULT, "Message")
_LANG = qn(NS_XML, "lang")

#: ERROR_WSMAN_* codes of wsmerror.h (Windows SDK), decimal as Windows writes them in f:WSManFault.
ERROR_WSMAN_RESOURCE_NOT_FOUND: Final = 0x80338000  # 2150858752
ERROR_WSMAN_INVALID_ACTIONURI: Final = 0x80338001
ERROR_WSMAN_SOAP_VERSION_MISMATCH: Final = 0x8033800D
ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER: Final = 0x8033800F
ERROR_WSMAN_SOAP_FAULT_MUST_UNDERSTAND: Final = 0x80338010
ERROR_WSMAN_MESSAGE_INFORMATION_HEADER_REQUIRED: Final = 0x80338011
ERROR_WSMAN_DESTINATION_UNREACHABLE: Final = 0x80338012
ERROR_WSMAN_ACTION_NOT_SUPPORTED: Final = 0x80338013
ERROR_WSMAN_ENDPOINT_UNAVAILABLE: Final = 0x80338014
ERROR_WSMAN_INVALID_REPRESENTATION: Final = 0x80338015
ERROR_WSMAN_ENUMERATE_FILTERING_NOT_SUPPORTED: Final = 0x80338018
ERROR_WSMAN_ENUMERATE_FILTER_DIALECT_REQUESTED_UNAVAILABLE: Final = 0x80338019
ERROR_WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER: Final = 0x8033801A
ERROR_WSMAN_ENUMERATE_INVALID_ENUMERATION_CONTEXT: Final = 0x8033801B
ERROR_WSMAN_ENUMERATE_TIMED_OUT: Final = 0x8033801C
# WS-Eventing faults (wsmerror.h, in the order Windows numbers them)
ERROR_WSMAN_EVENTING_DELIVERY_MODE_REQUESTED_UNAVAILABLE: Final = 0x8033801E  # 2150858782
ERROR_WSMAN_EVENTING_INVALID_EXPIRATION_TIME: Final = 0x8033801F
ERROR_WSMAN_EVENTING_UNSUPPORTED_EXPIRATION_TYPE: Final = 0x80338020
ERROR_WSMAN_EVENTING_FILTERING_NOT_SUPPORTED: Final = 0x80338021
ERROR_WSMAN_EVENTING_FILTERING_REQUESTED_UNAVAILABLE: Final = 0x80338022
ERROR_WSMAN_EVENTING_SOURCE_UNABLE_TO_PROCESS: Final = 0x80338023
ERROR_WSMAN_EVENTING_UNABLE_TO_RENEW: Final = 0x80338024
ERROR_WSMAN_EVENTING_INVALID_MESSAGE: Final = 0x80338025  # 2150858789
ERROR_WSMAN_INVALID_SOAP_BODY: Final = 0x80338027
ERROR_WSMAN_OPERATION_TIMEDOUT: Final = 0x80338029  # 2150858793
ERROR_WSMAN_ACTION_MISMATCH: Final = 0x80338031
ERROR_WSMAN_CONCURRENCY: Final = 0x80338032
ERROR_WSMAN_ALREADY_EXISTS: Final = 0x80338033
ERROR_WSMAN_ENCODING_LIMIT: Final = 0x80338035
ERROR_WSMAN_INVALID_BOOKMARK: Final = 0x80338038  # 2150858808
ERROR_WSMAN_INVALID_OPTIONS: Final = 0x80338039
ERROR_WSMAN_INVALID_PARAMETER: Final = 0x8033803A
ERROR_WSMAN_INVALID_RESOURCE_URI: Final = 0x8033803B
ERROR_WSMAN_INVALID_SELECTORS: Final = 0x8033803D
ERROR_WSMAN_QUOTA_LIMIT: Final = 0x8033803F
ERROR_WSMAN_SCHEMA_VALIDATION_ERROR: Final = 0x80338041  # 2150858817
ERROR_WSMAN_UNSUPPORTED_FEATURE: Final = 0x80338042
ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED: Final = 0x80338048
ERROR_WSMAN_INSUFFCIENT_SELECTORS: Final = 0x8033805A
ERROR_WSMAN_UNEXPECTED_SELECTORS: Final = 0x8033805B  # 2150858843
ERROR_WSMAN_SELECTOR_TYPEMISMATCH: Final = 0x8033805C
ERROR_WSMAN_INVALID_SELECTOR_VALUE: Final = 0x8033805D
ERROR_WSMAN_DUPLICATE_SELECTORS: Final = 0x8033805F
ERROR_WSMAN_TARGET_ALREADY_EXISTS: Final = 0x80338063
ERROR_WSMAN_ENUMERATION_MODE_UNSUPPORTED: Final = 0x80338086
ERROR_ACCESS_DENIED: Final = 5  # Win32 ERROR_ACCESS_DENIED, as Windows writes it for w:AccessDenied
ERROR_INTERNAL_ERROR: Final = 1359  # Win32 ERROR_INTERNAL_ERROR


class FaultDetail:
    """wsman:FaultDetail URIs (DSP0226 14.6 / Annex)."""

    ACK: Final = FAULT_DETAIL_PREFIX + "Ack"
    AMBIGUOUS_SELECTORS: Final = FAULT_DETAIL_PREFIX + "AmbiguousSelectors"
    DUPLICATE_SELECTORS: Final = FAULT_DETAIL_PREFIX + "DuplicateSelectors"
    INSUFFICIENT_SELECTORS: Final = FAULT_DETAIL_PREFIX + "InsufficientSelectors"
    INVALID_RESOURCE_URI: Final = FAULT_DETAIL_PREFIX + "InvalidResourceURI"
    INVALID_VALUE: Final = FAULT_DETAIL_PREFIX + "InvalidValue"
    INVALID_NAME: Final = FAULT_DETAIL_PREFIX + "InvalidName"
    INVALID_NAMESPACE: Final = FAULT_DETAIL_PREFIX + "InvalidNamespace"
    MAX_ENVELOPE_SIZE: Final = FAULT_DETAIL_PREFIX + "MaxEnvelopeSize"
    MAX_ENVELOPE_SIZE_EXCEEDED: Final = FAULT_DETAIL_PREFIX + "MaxEnvelopeSizeExceeded"
    MINIMUM_ENVELOPE_LIMIT: Final = FAULT_DETAIL_PREFIX + "MinimumEnvelopeLimit"
    SERVICE_ENVELOPE_LIMIT: Final = FAULT_DETAIL_PREFIX + "ServiceEnvelopeLimit"
    SELECTOR_LIMIT: Final = FAULT_DETAIL_PREFIX + "SelectorLimit"
    OPTION_LIMIT: Final = FAULT_DETAIL_PREFIX + "OptionLimit"
    CHARACTER_SET: Final = FAULT_DETAIL_PREFIX + "CharacterSet"
    UNREPORTABLE_SUCCESS: Final = FAULT_DETAIL_PREFIX + "UnreportableSuccess"
    WHITESPACE: Final = FAULT_DETAIL_PREFIX + "Whitespace"
    ENCODING_TYPE: Final = FAULT_DETAIL_PREFIX + "EncodingType"
    TYPE_MISMATCH: Final = FAULT_DETAIL_PREFIX + "TypeMismatch"
    UNEXPECTED_SELECTORS: Final = FAULT_DETAIL_PREFIX + "UnexpectedSelectors"
    INVALID_FORMAT: Final = FAULT_DETAIL_PREFIX + "InvalidFormat"
    ADDRESSING_MODE: Final = FAULT_DETAIL_PREFIX + "AddressingMode"
    ENUMERATION_MODE: Final = FAULT_DETAIL_PREFIX + "EnumerationMode"
    FILTERING_REQUIRED: Final = FAULT_DETAIL_PREFIX + "FilteringRequired"
    FRAGMENT_LEVEL_ACCESS: Final = FAULT_DETAIL_PREFIX + "FragmentLevelAccess"
    OPERATION_TIMEOUT: Final = FAULT_DETAIL_PREFIX + "OperationTimeout"
    OPTION_SET: Final = FAULT_DETAIL_PREFIX + "OptionSet"
    NOT_SUPPORTED: Final = FAULT_DETAIL_PREFIX + "NotSupported"
    INVALID_FRAGMENT: Final = FAULT_DETAIL_PREFIX + "InvalidFragment"
    READ_ONLY: Final = FAULT_DETAIL_PREFIX + "ReadOnly"
    #: wsman:InvalidBookmark details (DSP0226 10.2.6): the bookmark is too old, or not one of the service's.
    EXPIRED: Final = FAULT_DETAIL_PREFIX + "Expired"
    INVALID: Final = FAULT_DETAIL_PREFIX + "Invalid"


@dataclass(frozen=True)
class FaultTemplate:
    """One catalogue entry: SOAP code, subcode QName, reason text, default detail URI, WSManFault
    code and fault action URI."""

    name: str
    code: str
    subcode: str
    reason: str
    action: str
    detail: str | None = None
    wsman_code: int | None = None


@dataclass
class WSManFault(Exception):
    """A WS-Management SOAP fault (DSP0226 14; MS-WSMV 2.2.4.x WSManFault detail).

    ``subcode`` is a QName using the canonical prefixes (``a`` addressing, ``w`` wsman, ``n``
    enumeration, ``x`` transfer, ``e`` eventing, ``s`` SOAP); ``""`` when the fault has none
    (``s:MustUnderstand``, ``s:VersionMismatch``). ``not_understood`` lists Clark QNames for the
    ``s:NotUnderstood`` header blocks (SOAP 1.2 part 1 5.4.8).
    """

    code: str
    subcode: str
    reason: str
    detail: str | None = None
    wsman_code: int | None = None
    machine: str | None = None
    message: str | None = None
    action: str = Action.FAULT_WSMAN
    not_understood: list[str] = field(default_factory=list)
    lang: str = "en-US"

    def __str__(self) -> str:
        sub = f" {self.subcode}" if self.subcode else ""
        code = f" (WSManFault {self.wsman_code})" if self.wsman_code is not None else ""
        return f"{self.code}{sub}: {self.reason}{code}"

    @property
    def subcode_name(self) -> str:
        """Local name of the subcode (``InvalidSelectors`` for ``w:InvalidSelectors``), or of the code."""
        return (self.subcode or self.code).rsplit(":", 1)[-1]

    def __hash__(self) -> int:  # dataclass(eq=True) removes __hash__; exceptions must stay hashable
        return id(self)


_A = Action.FAULT_ADDRESSING
_W = Action.FAULT_WSMAN
_N = Action.FAULT_ENUMERATION
_X = Action.FAULT_TRANSFER
_E = Action.FAULT_EVENTING

_CATALOGUE: tuple[FaultTemplate, ...] = (
    # SOAP 1.2 part 1 5.4.6 / 5.4.8
    FaultTemplate("VersionMismatch", "s:VersionMismatch", "",
                  "The WS-Management service does not support the SOAP version specified in the request.",
                  _A, None, ERROR_WSMAN_SOAP_VERSION_MISMATCH),
    FaultTemplate("MustUnderstand", "s:MustUnderstand", "",
                  "The WS-Management service cannot process a SOAP header in the request that is marked as "
                  "mustUnderstand by the client.", _A, None, ERROR_WSMAN_SOAP_FAULT_MUST_UNDERSTAND),
    # WS-Addressing faults (DSP0226 14.6: wsa:*)
    FaultTemplate("DestinationUnreachable", "s:Sender", "a:DestinationUnreachable",
                  "The WS-Management service cannot process the request. The service cannot find the resource "
                  "identified by the resource URI and selectors.", _A, FaultDetail.INVALID_RESOURCE_URI,
                  ERROR_WSMAN_RESOURCE_NOT_FOUND),
    FaultTemplate("ActionNotSupported", "s:Sender", "a:ActionNotSupported",
                  "The WS-Management service cannot process the request because the WS-Addressing Action URI "
                  "in the request is not compatible with the resource.", _A, None, ERROR_WSMAN_ACTION_MISMATCH),
    FaultTemplate("EndpointUnavailable", "s:Receiver", "a:EndpointUnavailable",
                  "The WS-Management service cannot process the request because the resource is offline.",
                  _A, None, ERROR_WSMAN_ENDPOINT_UNAVAILABLE),
    FaultTemplate("MessageInformationHeaderRequired", "s:Sender", "a:MessageInformationHeaderRequired",
                  "The WS-Management service cannot process the request. The request does not have all the "
                  "expected SOAP headers.", _A, None, ERROR_WSMAN_MESSAGE_INFORMATION_HEADER_REQUIRED),
    FaultTemplate("InvalidMessageInformationHeader", "s:Sender", "a:InvalidMessageInformationHeader",
                  "The WS-Management service cannot process the request. The request contains one or more "
                  "invalid SOAP headers.", _A, None, ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER),
    # WS-Transfer (DSP0226 14.6: wxf:InvalidRepresentation)
    FaultTemplate("InvalidRepresentation", "s:Sender", "x:InvalidRepresentation",
                  "The WS-Management service cannot identify the format of the object passed to a Put or "
                  "Create method.", _X, FaultDetail.INVALID_VALUE, ERROR_WSMAN_INVALID_REPRESENTATION),
    # WS-Enumeration (DSP0226 14.6: wsen:*)
    FaultTemplate("InvalidEnumerationContext", "s:Receiver", "n:InvalidEnumerationContext",
                  "The WS-Enumeration context in the enumeration is not valid. Enumeration may have been "
                  "completed or canceled.", _N, None, ERROR_WSMAN_ENUMERATE_INVALID_ENUMERATION_CONTEXT),
    FaultTemplate("CannotProcessFilter", "s:Sender", "n:CannotProcessFilter",
                  "The data source could not process the filter. The filter might be missing or it might be "
                  "invalid.", _N, None, ERROR_WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER),
    FaultTemplate("FilterDialectRequestedUnavailable", "s:Sender", "n:FilterDialectRequestedUnavailable",
                  "The filter dialect (the type associated with the filter) was not supported for this "
                  "resource.", _N, None, ERROR_WSMAN_ENUMERATE_FILTER_DIALECT_REQUESTED_UNAVAILABLE),
    FaultTemplate("FilteringNotSupported", "s:Sender", "n:FilteringNotSupported",
                  "The data source does not support filtering.", _N, None,
                  ERROR_WSMAN_ENUMERATE_FILTERING_NOT_SUPPORTED),
    FaultTemplate("EnumerationTimedOut", "s:Receiver", "n:TimedOut",
                  "The pull operation did not get any data in the MaxTime duration.", _N, None,
                  ERROR_WSMAN_ENUMERATE_TIMED_OUT),
    # WS-Eventing 2004/08 section 4 faults as DSP0226 14.6 profiles them (wse:*); the names of the
    # two that clash with WS-Enumeration carry an "Eventing" prefix in this catalogue.
    FaultTemplate("DeliveryModeRequestedUnavailable", "s:Sender", "e:DeliveryModeRequestedUnavailable",
                  "The WS-Management service does not support the delivery mode for the specified resource.",
                  _E, None, ERROR_WSMAN_EVENTING_DELIVERY_MODE_REQUESTED_UNAVAILABLE),
    FaultTemplate("InvalidExpirationTime", "s:Sender", "e:InvalidExpirationTime",
                  "The expiration time of the subscription is invalid: zero, not supported or in the past.",
                  _E, None, ERROR_WSMAN_EVENTING_INVALID_EXPIRATION_TIME),
    FaultTemplate("UnsupportedExpirationType", "s:Sender", "e:UnsupportedExpirationType",
                  "The expiration time specified for the subscription has a type the service does not support.",
                  _E, None, ERROR_WSMAN_EVENTING_UNSUPPORTED_EXPIRATION_TYPE),
    FaultTemplate("EventingFilteringNotSupported", "s:Sender", "e:FilteringNotSupported",
                  "The event source does not support filtering.", _E, None,
                  ERROR_WSMAN_EVENTING_FILTERING_NOT_SUPPORTED),
    FaultTemplate("FilteringRequestedUnavailable", "s:Sender", "e:FilteringRequestedUnavailable",
                  "The event source cannot process the specified filter.", _E, None,
                  ERROR_WSMAN_EVENTING_FILTERING_REQUESTED_UNAVAILABLE),
    FaultTemplate("EventSourceUnableToProcess", "s:Receiver", "e:EventSourceUnableToProcess",
                  "The event source cannot process the subscription.", _E, None,
                  ERROR_WSMAN_EVENTING_SOURCE_UNABLE_TO_PROCESS),
    FaultTemplate("UnableToRenew", "s:Receiver", "e:UnableToRenew",
                  "The event source cannot renew the subscription.", _E, None,
                  ERROR_WSMAN_EVENTING_UNABLE_TO_RENEW),
    FaultTemplate("InvalidMessage", "s:Sender", "e:InvalidMessage",
                  "The request message has unknown or invalid content and cannot be processed.", _E, None,
                  ERROR_WSMAN_EVENTING_INVALID_MESSAGE),
    # WS-Management (DSP0226 14.6: wsman:*)
    FaultTemplate("AccessDenied", "s:Sender", "w:AccessDenied",
                  "The sender was not authorized to access the resource.", _W, None, ERROR_ACCESS_DENIED),
    FaultTemplate("AlreadyExists", "s:Sender", "w:AlreadyExists",
                  "The WS-Management service cannot create the resource because it already exists.", _W, None,
                  ERROR_WSMAN_ALREADY_EXISTS),
    FaultTemplate("CannotProcessFilterWsman", "s:Sender", "w:CannotProcessFilter",
                  "The data source could not process the filter.", _W, None,
                  ERROR_WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER),
    FaultTemplate("Concurrency", "s:Sender", "w:Concurrency",
                  "The WS-Management service cannot complete the WS-Addressing Action URI in the request because "
                  "the resource was already in use.", _W, None, ERROR_WSMAN_CONCURRENCY),
    FaultTemplate("EncodingLimit", "s:Sender", "w:EncodingLimit",
                  "The WS-Management service cannot process the request because the encoding of the request "
                  "exceeds an internal encoding limit.", _W, FaultDetail.MAX_ENVELOPE_SIZE,
                  ERROR_WSMAN_ENCODING_LIMIT),
    FaultTemplate("InternalError", "s:Receiver", "w:InternalError",
                  "The WS-Management service cannot process the request because of an internal error.", _W, None,
                  ERROR_INTERNAL_ERROR),
    FaultTemplate("InvalidBody", "s:Sender", "w:InvalidBody",
                  "The WS-Management service cannot process the request because the request packet does not "
                  "have a valid SOAP body.", _W, None, ERROR_WSMAN_INVALID_SOAP_BODY),
    FaultTemplate("InvalidBookmark", "s:Sender", "w:InvalidBookmark",
                  "The bookmark in the subscription is invalid: it may be expired or corrupted (DSP0226 10.2.6).",
                  _W, FaultDetail.INVALID, ERROR_WSMAN_INVALID_BOOKMARK),
    FaultTemplate("InvalidOptions", "s:Sender", "w:InvalidOptions",
                  "The WS-Management service cannot process the request because one or more options are not "
                  "valid.", _W, FaultDetail.NOT_SUPPORTED, ERROR_WSMAN_INVALID_OPTIONS),
    FaultTemplate("InvalidParameter", "s:Sender", "w:InvalidParameter",
                  "The WS-Management service cannot process the request because a parameter for the operation "
                  "is not valid.", _W, FaultDetail.INVALID_VALUE, ERROR_WSMAN_INVALID_PARAMETER),
    FaultTemplate("InvalidResourceURI", "s:Sender", "w:InvalidResourceURI",
                  "The WS-Management service cannot process the request. The resource URI is missing or it has "
                  "an incorrect format.", _W, None, ERROR_WSMAN_INVALID_RESOURCE_URI),
    FaultTemplate("InvalidSelectors", "s:Sender", "w:InvalidSelectors",
                  "The WS-Management service cannot process the request because the request contained invalid "
                  "selectors for the resource.", _W, FaultDetail.UNEXPECTED_SELECTORS,
                  ERROR_WSMAN_UNEXPECTED_SELECTORS),
    FaultTemplate("QuotaLimit", "s:Sender", "w:QuotaLimit",
                  "The WS-Management service is busy servicing other requests. Retry later.", _W, None,
                  ERROR_WSMAN_QUOTA_LIMIT),
    FaultTemplate("SchemaValidationError", "s:Sender", "w:SchemaValidationError",
                  "The SOAP XML in the message does not match the corresponding XML schema definition. Change "
                  "the XML and retry.", _W, None, ERROR_WSMAN_SCHEMA_VALIDATION_ERROR),
    FaultTemplate("TimedOut", "s:Receiver", "w:TimedOut",
                  "The WS-Management service cannot complete the operation within the time specified in "
                  "OperationTimeout.", _W, None, ERROR_WSMAN_OPERATION_TIMEDOUT),
    FaultTemplate("UnsupportedFeature", "s:Sender", "w:UnsupportedFeature",
                  "The WS-Management service does not support the specified feature. Remove the unsupported "
                  "feature from the request and retry.", _W, None, ERROR_WSMAN_UNSUPPORTED_FEATURE),
)

#: The catalogue, by name. ``NotUnderstood`` is an alias of ``MustUnderstand`` (the fault that
#: carries s:NotUnderstood header blocks).
FAULTS: dict[str, FaultTemplate] = {t.name: t for t in _CATALOGUE}
FAULTS["NotUnderstood"] = FAULTS["MustUnderstand"]


def make_fault(name: str, reason: str | None = None, *, detail: str | None = None,
               wsman_code: int | None = None, machine: str | None = None, message: str | None = None,
               not_understood: list[str] | None = None) -> WSManFault:
    """Instantiate a catalogue fault; ``reason`` doubles as the WSManFault Message (as Windows
    does) unless ``message`` is given. Unknown names raise KeyError."""
    t = FAULTS[name]
    text = reason if reason is not None else t.reason
    return WSManFault(
        code=t.code,
        subcode=t.subcode,
        reason=text,
        detail=detail if detail is not None else t.detail,
        wsman_code=wsman_code if wsman_code is not None else t.wsman_code,
        machine=machine,
        message=message if message is not None else text,
        action=t.action,
        not_understood=list(not_understood or []),
    )


def _resolve_qname(text: str, el: _Element) -> str:
    """Resolve a QName value against the element's in-scope namespaces and rewrite it with the
    canonical prefix (so ``wsman:InvalidSelectors`` and ``w:InvalidSelectors`` compare equal)."""
    t = text.strip()
    prefix, sep, local = t.rpartition(":")
    if not sep:
        return t
    uri = el.nsmap.get(prefix)
    if uri is None:
        return t
    canon = CANONICAL_PREFIX.get(uri)
    return f"{canon}:{local}" if canon else f"{{{uri}}}{local}"


def _canonical_uri(prefix: str) -> str:
    for uri, p in CANONICAL_PREFIX.items():
        if p == prefix:
            return uri
    raise ValueError(f"unknown canonical prefix {prefix!r}")


def fault_element(fault: WSManFault) -> _Element:
    """The ``s:Fault`` element (SOAP 1.2 part 1 5.4, DSP0226 14.5)."""
    root = etree.Element(S_FAULT, nsmap={"s": NS_SOAP})
    code = etree.SubElement(root, S_CODE)
    etree.SubElement(code, S_VALUE).text = fault.code
    if fault.subcode:
        prefix = fault.subcode.partition(":")[0]
        sub = etree.SubElement(code, S_SUBCODE)
        val = etree.SubElement(sub, S_VALUE, nsmap={prefix: _canonical_uri(prefix)})
        val.text = fault.subcode
    reason = etree.SubElement(root, S_REASON)
    txt = etree.SubElement(reason, S_TEXT)
    txt.set(_LANG, fault.lang)
    txt.text = fault.reason
    if fault.detail is not None or fault.wsman_code is not None or fault.message is not None:
        det = etree.SubElement(root, S_DETAIL)
        if fault.detail is not None:
            etree.SubElement(det, W_FAULT_DETAIL, nsmap={"w": NS_WSMAN}).text = fault.detail
        if fault.wsman_code is not None or fault.message is not None:
            wf = etree.SubElement(det, F_WSMAN_FAULT, nsmap={"f": NS_WSMANFAULT})
            if fault.wsman_code is not None:
                wf.set("Code", str(fault.wsman_code))
            if fault.machine is not None:
                wf.set("Machine", fault.machine)
            if fault.message is not None:
                etree.SubElement(wf, F_MESSAGE).text = fault.message
    return root


def build_fault(fault: WSManFault, relates_to: str | None, to: str = ANONYMOUS,
                *, message_id: str | None = None) -> bytes:
    """Complete fault envelope (DSP0226 14.5): Action = fault action, To, RelatesTo; for
    ``s:MustUnderstand`` one ``s:NotUnderstood`` header per QName, for ``s:VersionMismatch`` an
    ``s:Upgrade`` header naming the SOAP 1.2 envelope (SOAP 1.2 part 1 5.4.7, 5.4.8)."""
    h = response_header(fault.action, relates_to, to=to, message_id=message_id)
    extra: list[_Element] = []
    for clark in fault.not_understood:
        q = etree.QName(clark)
        nu = etree.Element(S_NOT_UNDERSTOOD, nsmap={"s": NS_SOAP, "nu": q.namespace or ""})
        nu.set("qname", f"nu:{q.localname}")
        extra.append(nu)
    if fault.code == "s:VersionMismatch":
        up = etree.Element(S_UPGRADE, nsmap={"s": NS_SOAP})
        etree.SubElement(up, S_SUPPORTED_ENVELOPE).set("qname", "s:Envelope")
        extra.append(up)
    return build_envelope(h, [fault_element(fault)], extra_headers=extra)


def is_fault(env: Envelope) -> bool:
    """True when the body holds ``s:Fault``."""
    payload = env.payload
    return payload is not None and payload.tag == S_FAULT


def _text_of(el: _Element | None) -> str:
    return "".join(str(t) for t in el.itertext()).strip() if el is not None else ""


def parse_fault(env: Envelope) -> WSManFault:
    """Decode a fault envelope; raises WSManDecodeError when the body is not a fault."""
    f = env.payload
    if f is None or f.tag != S_FAULT:
        raise WSManDecodeError("body is not a SOAP fault")
    code_el = f.find(S_CODE)
    value_el = code_el.find(S_VALUE) if code_el is not None else None
    if value_el is None:
        raise WSManDecodeError("s:Fault without s:Code/s:Value")
    code = _resolve_qname(value_el.text or "", value_el)
    subcode = ""
    sub_val = code_el.find(f"{S_SUBCODE}/{S_VALUE}") if code_el is not None else None
    if sub_val is not None:
        subcode = _resolve_qname(sub_val.text or "", sub_val)
    reason_el = f.find(f"{S_REASON}/{S_TEXT}")
    reason = (reason_el.text or "").strip() if reason_el is not None else ""
    lang = reason_el.get(_LANG, "") if reason_el is not None else ""
    detail: str | None = None
    wsman_code: int | None = None
    machine: str | None = None
    message: str | None = None
    det = f.find(S_DETAIL)
    if det is not None:
        fd = det.find(W_FAULT_DETAIL)
        if fd is not None:
            detail = (fd.text or "").strip()
        wf = det.find(F_WSMAN_FAULT)
        if wf is not None:
            c = (wf.get("Code") or "").strip()
            if c:
                if not c.isdigit() or len(c) > 12:
                    raise WSManDecodeError(f"invalid WSManFault Code {c[:20]!r}")
                wsman_code = int(c)
            machine = wf.get("Machine")
            msg = wf.find(F_MESSAGE)
            if msg is not None:
                message = _text_of(msg)
    not_understood: list[str] = []
    for extra in env.extra_headers:
        if extra.tag == S_NOT_UNDERSTOOD:
            qname = extra.get("qname", "")
            prefix, _, local = qname.rpartition(":")
            uri = extra.nsmap.get(prefix or None)
            not_understood.append(f"{{{uri}}}{local}" if uri else local)
    return WSManFault(code=code, subcode=subcode, reason=reason, detail=detail, wsman_code=wsman_code,
                      machine=machine, message=message, action=env.header.action,
                      not_understood=not_understood, lang=lang or "en-US")

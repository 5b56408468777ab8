"""Sans-IO WS-Management codec, MS-WSMV dialect (DSP0226 1.x, MS-WSMV).

Modules: ``ns`` (URIs), ``errors``, ``duration``, ``header``, ``envelope``, ``cimxml``,
``messages``, ``faults``.
"""

from __future__ import annotations

from .envelope import Envelope, build_envelope, parse_envelope
from .errors import WSManDecodeError
from .faults import FAULTS, FaultTemplate, WSManFault, build_fault, is_fault, make_fault, parse_fault
from .header import EndpointReference, Header, Option

__all__ = [
    "FAULTS",
    "EndpointReference",
    "Envelope",
    "FaultTemplate",
    "Header",
    "Option",
    "WSManDecodeError",
    "WSManFault",
    "build_envelope",
    "build_fault",
    "is_fault",
    "make_fault",
    "parse_envelope",
    "parse_fault",
]

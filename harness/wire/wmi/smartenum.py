"""NDR stubs of IWbemFetchSmartEnum and IWbemWCOSmartEnum (MS-WMI 3.1.4.6, 3.1.4.7), sans-IO.

An IEnumWbemClassObject object also implements IWbemFetchSmartEnum (MS-WMI 3.1.4.4: "The object
that exports this interface MUST implement the IWbemFetchSmartEnum interface"); a client obtains it
with IRemUnknown::RemQueryInterface (MS-WMI 3.2.4.2.8), calls GetSmartEnum (3.1.4.6.1, opnum 3) for
an IWbemWCOSmartEnum and then IWbemWCOSmartEnum::Next (3.1.4.7.1, opnum 3), whose objects travel in
an ObjectArray (2.2.14, :mod:`harness.wire.wmi.datapacket`)::

    HRESULT Next([in] REFGUID proxyGUID, [in] long lTimeout, [in] ULONG uCount,
                 [out] ULONG* puReturned, [out] ULONG* pdwBuffSize,
                 [out, size_is(,*pdwBuffSize)] byte** pBuffer);

NDR (C706 14): REFGUID is a reference pointer, so the GUID is inline; ``byte** pBuffer`` is a
reference pointer to a unique pointer (referent id, 0 for NULL) to a conformant byte array (max
count, then the octets). The ORPCTHIS / ORPCTHAT around the stubs are the caller's
(:mod:`harness.wire.dcom.orpc`). Readers raise only :class:`~harness.wire.dcom.ndr.NdrError`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter

#: MS-WMI 1.9 / 3.1.4.6 / 3.1.4.7
IID_IWBEM_FETCH_SMART_ENUM = uuid.UUID("1c1c45ee-4395-11d2-b60b-00104b703efd")
IID_IWBEM_WCO_SMART_ENUM = uuid.UUID("423ec01e-2e35-11d2-b604-00104b703efd")
OPNUM_GET_SMART_ENUM = 3       # IWbemFetchSmartEnum::GetSmartEnum (3.1.4.6.1)
OPNUM_SMART_NEXT = 3           # IWbemWCOSmartEnum::Next (3.1.4.7.1)


@dataclass(frozen=True)
class SmartNextRequest:
    """The [in] parameters of IWbemWCOSmartEnum::Next (3.1.4.7.1); ``timeout`` in ms (0xFFFFFFFF
    = WBEM_INFINITE)."""

    proxy_guid: uuid.UUID
    timeout: int
    count: int


@dataclass(frozen=True)
class SmartNextResponse:
    """The [out] parameters and HRESULT of IWbemWCOSmartEnum::Next; ``buffer`` None = NULL pBuffer
    (allowed "if a failure occurs or if there are no results to return")."""

    returned: int
    buffer: bytes | None
    hresult: int


def write_next_request(w: NdrWriter, req: SmartNextRequest) -> None:
    w.guid(req.proxy_guid)
    w.u32(req.timeout)
    w.u32(req.count)


def read_next_request(r: NdrReader) -> SmartNextRequest:
    return SmartNextRequest(r.guid("proxyGUID"), r.u32("lTimeout"), r.u32("uCount"))


def write_next_response(w: NdrWriter, resp: SmartNextResponse) -> None:
    w.u32(resp.returned)
    w.u32(len(resp.buffer) if resp.buffer is not None else 0)
    if w.referent(resp.buffer is not None):
        assert resp.buffer is not None
        w.u32(len(resp.buffer))
        w.raw(resp.buffer)
    w.u32(resp.hresult)


def read_next_response(r: NdrReader) -> SmartNextResponse:
    """The response stub after ORPCTHAT; pdwBuffSize must equal the conformance of pBuffer."""
    returned = r.u32("puReturned")
    size = r.u32("pdwBuffSize")
    buffer: bytes | None = None
    if r.referent("pBuffer"):
        buffer = _sized_bytes(r, size)
    elif size:
        raise NdrError(f"pdwBuffSize {size} with a NULL pBuffer")
    return SmartNextResponse(returned, buffer, r.u32("HRESULT"))


def _sized_bytes(r: NdrReader, size: int) -> bytes:
    """A conformant byte array whose conformance must equal ``size`` (read in one slice)."""
    n = r.count("pBuffer", 1)
    if n != size:
        raise NdrError(f"pBuffer: conformance {n} differs from pdwBuffSize {size}")
    return r.raw(n, "pBuffer")


def write_get_smart_enum_response(w: NdrWriter, objref: bytes | None, hresult: int) -> None:
    """GetSmartEnum (3.1.4.6.1): ``[out] IWbemWCOSmartEnum** ppSmartEnum`` then the HRESULT; a failed
    call MUST set the output parameter to NULL."""
    w.interface_pointer(objref)
    w.u32(hresult)


def read_get_smart_enum_response(r: NdrReader) -> tuple[bytes | None, int]:
    ref = r.interface_pointer("ppSmartEnum")
    return ref, r.u32("HRESULT")

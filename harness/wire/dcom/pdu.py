"""Sans-IO codec of connection-oriented DCE/RPC PDUs (C706 12.6; MS-RPCE 2.2.2).

Every PDU starts with the 16-octet common header (C706 12.6.3.1): rpc_vers 5, rpc_vers_minor 0,
PTYPE, pfc_flags, the data representation label (little-endian, ASCII, IEEE: ``10 00 00 00``),
frag_length, auth_length and call_id. A PDU with ``auth_length`` > 0 ends with the
authentication verifier: an 8-octet ``sec_trailer`` (auth_type, auth_level, auth_pad_length,
auth_reserved, auth_context_id; MS-RPCE 2.2.2.11) 4-aligned, followed by ``auth_length`` octets of
credentials.

``decode_pdu`` parses one complete PDU and raises only :class:`PduError`; ``encode_pdu`` builds
one. :class:`PduBuffer` splits a TCP byte stream into PDUs, and :class:`Reassembler` joins the
fragments of a request or response (PFC_FIRST_FRAG / PFC_LAST_FRAG, C706 12.6.3.1) with a bound on
the total size.
"""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass, field

RPC_VERSION = 5
RPC_VERSION_MINOR = 0
HEADER_SIZE = 16
SEC_TRAILER_SIZE = 8
#: Little-endian integers, ASCII characters, IEEE floats (C706 14.1 "data representation format label").
DREP_LE = b"\x10\x00\x00\x00"
#: NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 version 2.0 (C706 14.1, MS-RPCE 2.2.4.12).
NDR_SYNTAX = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0)
#: NDR64 transfer syntax (MS-RPCE 2.2.4.12); refused by this implementation.
NDR64_SYNTAX = (uuid.UUID("71710533-beba-4937-8319-b5dbef9ccc36"), 1, 0)
#: Bind time feature negotiation (MS-RPCE 3.3.1.5.3): 6cb71c2c-9812-4540-xxxx-... with a bitmask.
BTFN_PREFIX = "6cb71c2c-9812-4540-"
MAX_PDU = 65535


class PduError(Exception):
    """A malformed or unsupported PDU; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PType(enum.IntEnum):
    """PDU types (C706 12.6.4; MS-RPCE 2.2.2.1)."""

    REQUEST = 0
    RESPONSE = 2
    FAULT = 3
    BIND = 11
    BIND_ACK = 12
    BIND_NAK = 13
    ALTER_CONTEXT = 14
    ALTER_CONTEXT_RESP = 15
    AUTH3 = 16
    SHUTDOWN = 17
    CO_CANCEL = 18
    ORPHANED = 19


class PfcFlags(enum.IntFlag):
    """pfc_flags (C706 12.6.3.1; MS-RPCE 2.2.2.3: 0x04 in bind PDUs is PFC_SUPPORT_HEADER_SIGN)."""

    NONE = 0
    FIRST_FRAG = 0x01
    LAST_FRAG = 0x02
    PENDING_CANCEL = 0x04
    SUPPORT_HEADER_SIGN = 0x04
    CONC_MPX = 0x10
    DID_NOT_EXECUTE = 0x20
    MAYBE = 0x40
    OBJECT_UUID = 0x80


class AuthType(enum.IntEnum):
    """auth_type values (MS-RPCE 2.2.1.1.7)."""

    NONE = 0
    GSS_NEGOTIATE = 9
    WINNT = 10
    GSS_KERBEROS = 16
    NETLOGON = 68
    DEFAULT = 0xFF


class AuthLevel(enum.IntEnum):
    """auth_level values (MS-RPCE 2.2.1.1.8)."""

    DEFAULT = 0
    NONE = 1
    CONNECT = 2
    CALL = 3
    PKT = 4
    PKT_INTEGRITY = 5
    PKT_PRIVACY = 6


class NakReason(enum.IntEnum):
    """bind_nak provider_reject_reason (C706 12.6.3.1 p_reject_reason_t; MS-RPCE 2.2.2.5)."""

    REASON_NOT_SPECIFIED = 0
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2
    PROTOCOL_VERSION_NOT_SUPPORTED = 4
    AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8
    INVALID_CHECKSUM = 9


class ContextResult(enum.IntEnum):
    """p_cont_def_result_t (C706 12.6.3.1; MS-RPCE 2.2.2.4 adds negotiate_ack 3)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    PROVIDER_REJECTION = 2
    NEGOTIATE_ACK = 3


class ProviderReason(enum.IntEnum):
    """p_provider_reason_t (C706 12.6.3.1)."""

    NOT_SPECIFIED = 0
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 1
    PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2
    LOCAL_LIMIT_EXCEEDED = 3


class FaultStatus(enum.IntEnum):
    """Fault status codes (C706 appendix E; MS-RPCE 2.2.2.7, 3.1.1.5.5)."""

    NCA_S_OP_RNG_ERROR = 0x1C010002
    NCA_S_UNKNOWN_IF = 0x1C010003
    NCA_S_PROTO_ERROR = 0x1C01000B
    NCA_S_FAULT_NDR = 0x000006F7          # RPC_X_BAD_STUB_DATA
    NCA_S_FAULT_REMOTE_NO_MEMORY = 0x1C00001B
    RPC_S_ACCESS_DENIED = 0x00000005
    RPC_E_INVALID_OXID = 0x80070776
    RPC_E_DISCONNECTED = 0x80010108
    NCA_S_FAULT_OBJECT_NOT_FOUND = 0x1C000024
    RPC_S_UNKNOWN_IF = 0x000006B5
    RPC_S_PROTOCOL_ERROR = 0x000006C0
    NCA_S_FAULT_SEC_PKG_ERROR = 0x00000721


Syntax = tuple[uuid.UUID, int, int]   # (uuid, major version, minor version)


@dataclass
class SecTrailer:
    """The authentication verifier (MS-RPCE 2.2.2.11 sec_trailer + auth_value)."""

    auth_type: int
    auth_level: int
    auth_pad_length: int = 0
    auth_context_id: int = 0
    auth_value: bytes = b""


@dataclass
class ContextElement:
    """p_cont_elem_t (C706 12.6.3.1): a presentation context proposed in bind / alter_context."""

    context_id: int
    abstract_syntax: Syntax
    transfer_syntaxes: list[Syntax] = field(default_factory=list)


@dataclass
class ContextResultEntry:
    """p_result_t (C706 12.6.3.1)."""

    result: int
    reason: int
    transfer_syntax: Syntax = (uuid.UUID(int=0), 0, 0)


@dataclass
class Bind:
    """bind / alter_context body (C706 12.6.4.3, 12.6.4.1)."""

    max_xmit_frag: int = 5840
    max_recv_frag: int = 5840
    assoc_group_id: int = 0
    contexts: list[ContextElement] = field(default_factory=list)


@dataclass
class BindAck:
    """bind_ack / alter_context_resp body (C706 12.6.4.4, 12.6.4.2)."""

    max_xmit_frag: int = 5840
    max_recv_frag: int = 5840
    assoc_group_id: int = 0
    secondary_address: str = ""
    results: list[ContextResultEntry] = field(default_factory=list)


@dataclass
class BindNak:
    """bind_nak body (C706 12.6.4.5): reject reason and the supported protocol versions."""

    reason: int = NakReason.REASON_NOT_SPECIFIED
    versions: list[tuple[int, int]] = field(default_factory=lambda: [(RPC_VERSION, RPC_VERSION_MINOR)])


@dataclass
class Request:
    """request body (C706 12.6.4.9): alloc_hint, p_cont_id, opnum, optional object UUID, stub."""

    context_id: int
    opnum: int
    stub: bytes = b""
    object_uuid: uuid.UUID | None = None
    alloc_hint: int = 0


@dataclass
class Response:
    """response body (C706 12.6.4.10)."""

    context_id: int
    stub: bytes = b""
    alloc_hint: int = 0
    cancel_count: int = 0


@dataclass
class Fault:
    """fault body (C706 12.6.4.7; MS-RPCE 2.2.2.7)."""

    status: int
    context_id: int = 0
    alloc_hint: int = 0
    cancel_count: int = 0
    stub: bytes = b""


@dataclass
class Auth3:
    """rpc_auth_3 body (MS-RPCE 2.2.2.10): four pad octets, then the verifier."""


@dataclass
class Simple:
    """shutdown / co_cancel / orphaned: no body (C706 12.6.4.11-12.6.4.13)."""


Body = Bind | BindAck | BindNak | Request | Response | Fault | Auth3 | Simple


@dataclass
class Pdu:
    """One PDU: header fields, a typed body and the optional verifier."""

    ptype: PType
    call_id: int
    body: Body
    flags: int = PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG
    auth: SecTrailer | None = None
    drep: bytes = DREP_LE


_HDR = struct.Struct("<BBBB4sHHI")
_SYNTAX = struct.Struct("<16sHH")
_TRAILER = struct.Struct("<BBBBI")


def _syntax_bytes(s: Syntax) -> bytes:
    return _SYNTAX.pack(s[0].bytes_le, s[1], s[2])


def _read_syntax(data: bytes, pos: int) -> Syntax:
    raw, major, minor = _SYNTAX.unpack_from(data, pos)
    return uuid.UUID(bytes_le=raw), major, minor


def _need(data: bytes, pos: int, size: int, what: str) -> None:
    if pos + size > len(data):
        raise PduError(f"truncated {what}: need {size} octets at {pos}, have {max(len(data) - pos, 0)}")


# ------------------------------------------------------------------------------------ encode


def _encode_body(pdu: Pdu) -> bytes:
    body = pdu.body
    if isinstance(body, Bind):
        out = struct.pack("<HHIB3x", body.max_xmit_frag, body.max_recv_frag, body.assoc_group_id, len(body.contexts))
        for ctx in body.contexts:
            out += struct.pack("<HBx", ctx.context_id, len(ctx.transfer_syntaxes))
            out += _syntax_bytes(ctx.abstract_syntax)
            out += b"".join(_syntax_bytes(t) for t in ctx.transfer_syntaxes)
        return out
    if isinstance(body, BindAck):
        sec = body.secondary_address.encode("ascii") + b"\x00" if body.secondary_address else b""
        out = struct.pack("<HHIH", body.max_xmit_frag, body.max_recv_frag, body.assoc_group_id, len(sec)) + sec
        out += b"\x00" * (-(HEADER_SIZE + len(out)) % 4)
        out += struct.pack("<B3x", len(body.results))
        for res in body.results:
            out += struct.pack("<HH", res.result, res.reason) + _syntax_bytes(res.transfer_syntax)
        return out
    if isinstance(body, BindNak):
        out = struct.pack("<HB", body.reason, len(body.versions))
        out += b"".join(struct.pack("<BB", a, b) for a, b in body.versions)
        return out
    if isinstance(body, Request):
        out = struct.pack("<IHH", body.alloc_hint or len(body.stub), body.context_id, body.opnum)
        if body.object_uuid is not None:
            out += body.object_uuid.bytes_le
        return out + body.stub
    if isinstance(body, Response):
        return struct.pack("<IHBx", body.alloc_hint or len(body.stub), body.context_id, body.cancel_count) + body.stub
    if isinstance(body, Fault):
        return struct.pack("<IHBxI4x", body.alloc_hint, body.context_id, body.cancel_count, body.status) + body.stub
    if isinstance(body, Auth3):
        return b"\x00" * 4
    return b""


def encode_pdu(pdu: Pdu) -> bytes:
    """Serialize a PDU. With ``pdu.auth`` the body is padded to 4 octets (``auth_pad_length`` set
    accordingly unless already given) and the verifier appended (MS-RPCE 2.2.2.11)."""
    body = _encode_body(pdu)
    flags = int(pdu.flags)
    if isinstance(pdu.body, Request) and pdu.body.object_uuid is not None:
        flags |= PfcFlags.OBJECT_UUID
    trailer = b""
    auth_len = 0
    if pdu.auth is not None:
        # request/response stubs padded to 16 octets (observed Windows behaviour; MS-RPCE 2.2.2.11
        # asks for 4), other bodies to 4
        pad = -len(pdu.body.stub) % 16 if isinstance(pdu.body, (Request, Response)) else -(HEADER_SIZE + len(body)) % 4
        body += b"\x00" * pad
        trailer = _TRAILER.pack(pdu.auth.auth_type, pdu.auth.auth_level, pad, 0,
                                pdu.auth.auth_context_id) + pdu.auth.auth_value
        auth_len = len(pdu.auth.auth_value)
    total = HEADER_SIZE + len(body) + len(trailer)
    if total > MAX_PDU:
        raise PduError(f"PDU of {total} octets exceeds frag_length")
    header = _HDR.pack(RPC_VERSION, RPC_VERSION_MINOR, int(pdu.ptype), flags, pdu.drep, total, auth_len,
                       pdu.call_id)
    return header + body + trailer


# ------------------------------------------------------------------------------------ decode


def peek_length(data: bytes) -> int | None:
    """frag_length of the PDU at the start of ``data``, or None if fewer than 16 octets are there."""
    if len(data) < HEADER_SIZE:
        return None
    return int(struct.unpack_from("<H", data, 8)[0])


def _decode_bind(body: bytes) -> Bind:
    _need(body, 0, 12, "bind body")
    xmit, recv, group, count = struct.unpack_from("<HHIB", body, 0)
    pos = 12
    contexts = []
    for _ in range(count):
        _need(body, pos, 4 + 20, "presentation context")
        ctx_id, n_syn = struct.unpack_from("<HB", body, pos)
        abstract = _read_syntax(body, pos + 4)
        pos += 24
        if n_syn == 0:
            raise PduError(f"presentation context {ctx_id} proposes no transfer syntax")
        _need(body, pos, 20 * n_syn, "transfer syntaxes")
        syntaxes = [_read_syntax(body, pos + 20 * i) for i in range(n_syn)]
        pos += 20 * n_syn
        contexts.append(ContextElement(ctx_id, abstract, syntaxes))
    return Bind(xmit, recv, group, contexts)


def _decode_bind_ack(body: bytes) -> BindAck:
    _need(body, 0, 10, "bind_ack body")
    xmit, recv, group, sec_len = struct.unpack_from("<HHIH", body, 0)
    _need(body, 10, sec_len, "secondary address")
    sec = body[10:10 + sec_len].rstrip(b"\x00").decode("ascii", "replace")
    pos = 10 + sec_len
    pos += -(HEADER_SIZE + pos) % 4
    _need(body, pos, 4, "result list")
    count = body[pos]
    pos += 4
    results = []
    for _ in range(count):
        _need(body, pos, 24, "context result")
        result, reason = struct.unpack_from("<HH", body, pos)
        results.append(ContextResultEntry(result, reason, _read_syntax(body, pos + 4)))
        pos += 24
    return BindAck(xmit, recv, group, sec, results)


def _decode_body(ptype: PType, flags: int, body: bytes) -> Body:
    if ptype in (PType.BIND, PType.ALTER_CONTEXT):
        return _decode_bind(body)
    if ptype in (PType.BIND_ACK, PType.ALTER_CONTEXT_RESP):
        return _decode_bind_ack(body)
    if ptype is PType.BIND_NAK:
        _need(body, 0, 2, "bind_nak body")
        reason = struct.unpack_from("<H", body, 0)[0]
        versions = []
        if len(body) >= 3:
            n = body[2]
            _need(body, 3, 2 * n, "bind_nak versions")
            versions = [(body[3 + 2 * i], body[4 + 2 * i]) for i in range(n)]
        return BindNak(reason, versions)
    if ptype is PType.REQUEST:
        _need(body, 0, 8, "request body")
        hint, ctx, opnum = struct.unpack_from("<IHH", body, 0)
        obj = None
        pos = 8
        if flags & PfcFlags.OBJECT_UUID:
            _need(body, 8, 16, "object UUID")
            obj = uuid.UUID(bytes_le=body[8:24])
            pos = 24
        return Request(ctx, opnum, body[pos:], obj, hint)
    if ptype is PType.RESPONSE:
        _need(body, 0, 8, "response body")
        hint, ctx, cancels = struct.unpack_from("<IHB", body, 0)
        return Response(ctx, body[8:], hint, cancels)
    if ptype is PType.FAULT:
        _need(body, 0, 12, "fault body")
        hint, ctx, cancels, status = struct.unpack_from("<IHBxI", body, 0)
        return Fault(status, ctx, hint, cancels, body[16:] if len(body) > 16 else b"")
    if ptype is PType.AUTH3:
        return Auth3()
    return Simple()


def decode_pdu(data: bytes) -> Pdu:
    """Parse one complete PDU (exactly ``frag_length`` octets). Raises only :class:`PduError`.

    For request/response PDUs with a verifier the stub excludes the auth padding
    (``auth_pad_length``, MS-RPCE 2.2.2.11); the caller unseals before using it.
    """
    if len(data) < HEADER_SIZE:
        raise PduError(f"PDU shorter than the {HEADER_SIZE}-octet common header")
    vers, minor, ptype_raw, flags, drep, frag_len, auth_len, call_id = _HDR.unpack_from(data, 0)
    if vers != RPC_VERSION or minor not in (0, 1):
        raise PduError(f"unsupported RPC version {vers}.{minor}")
    if frag_len != len(data):
        raise PduError(f"frag_length {frag_len} does not match the {len(data)} octets received")
    if drep[0] & 0xF0 != 0x10:
        raise PduError("big-endian data representation is not supported")
    try:
        ptype = PType(ptype_raw)
    except ValueError:
        raise PduError(f"unknown PTYPE {ptype_raw}") from None
    auth: SecTrailer | None = None
    end = frag_len
    if auth_len:
        start = frag_len - auth_len - SEC_TRAILER_SIZE
        if start < HEADER_SIZE:
            raise PduError(f"auth_length {auth_len} does not fit in a PDU of {frag_len} octets")
        atype, alevel, apad, _res, actx = _TRAILER.unpack_from(data, start)
        auth = SecTrailer(atype, alevel, apad, actx, bytes(data[start + SEC_TRAILER_SIZE:]))
        end = start
        if ptype in (PType.REQUEST, PType.RESPONSE) and apad > end - HEADER_SIZE - 8:
            raise PduError(f"auth_pad_length {apad} exceeds the stub")
    body = bytes(data[HEADER_SIZE:end])
    decoded = _decode_body(ptype, flags, body)
    if auth is not None and isinstance(decoded, (Request, Response)) and auth.auth_pad_length:
        decoded.stub = decoded.stub[:len(decoded.stub) - auth.auth_pad_length]
    return Pdu(ptype, call_id, decoded, flags, auth, bytes(drep))


def stub_span(data: bytes) -> tuple[int, int]:
    """(start, end) of the stub and its auth padding inside an encoded request/response PDU with a
    verifier: the region PKT_PRIVACY encrypts (MS-RPCE 3.3.1.5.2.2)."""
    if len(data) < HEADER_SIZE:
        raise PduError("PDU shorter than the common header")
    ptype, flags = data[2], data[3]
    auth_len = int(struct.unpack_from("<H", data, 10)[0])
    start = HEADER_SIZE + 8 + (16 if ptype == PType.REQUEST and flags & PfcFlags.OBJECT_UUID else 0)
    end = len(data) - auth_len - (SEC_TRAILER_SIZE if auth_len else 0)
    if end < start:
        raise PduError("verifier overlaps the stub")
    return start, end


def signed_region(data: bytes, auth_len: int) -> bytes:
    """The octets a PKT_INTEGRITY/PRIVACY signature covers with header signing: the whole PDU up to
    the auth_value (MS-RPCE 3.3.1.5.2.2, observed Windows/impacket behaviour with NTLMv2 ESS)."""
    return data[:len(data) - auth_len]


# ------------------------------------------------------------------------------- streaming


class PduBuffer:
    """Split a TCP byte stream into complete PDUs (frag_length framing, C706 12.6.3.1)."""

    def __init__(self, max_frag: int = MAX_PDU) -> None:
        self._buf = bytearray()
        self.max_frag = max_frag

    def feed(self, data: bytes) -> list[bytes]:
        """Append received octets; return every complete PDU. PduError on an impossible length."""
        self._buf += data
        out: list[bytes] = []
        while True:
            length = peek_length(bytes(self._buf[:HEADER_SIZE]))
            if length is None:
                return out
            if length < HEADER_SIZE or length > self.max_frag:
                raise PduError(f"frag_length {length} outside {HEADER_SIZE}..{self.max_frag}")
            if len(self._buf) < length:
                return out
            out.append(bytes(self._buf[:length]))
            del self._buf[:length]


class Reassembler:
    """Join the fragments of one call (PFC_FIRST_FRAG ... PFC_LAST_FRAG, C706 12.6.3.1, 12.4.2).

    ``add`` returns the complete stub when the last fragment arrives, else None. Fragments must
    carry the same call_id, context id and opnum; the total is bounded by ``max_size``.
    """

    def __init__(self, max_size: int = 4 * 1024 * 1024) -> None:
        self.max_size = max_size
        self._call: int | None = None
        self._first: Request | Response | None = None
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def in_progress(self) -> bool:
        return self._call is not None

    def add(self, pdu: Pdu, stub: bytes) -> bytes | None:
        body = pdu.body
        if not isinstance(body, (Request, Response)):
            raise PduError("only request and response PDUs are fragmented")
        first = bool(pdu.flags & PfcFlags.FIRST_FRAG)
        last = bool(pdu.flags & PfcFlags.LAST_FRAG)
        if first:
            if self._call is not None:
                raise PduError(f"call {pdu.call_id} starts while call {self._call} is incomplete")
            self._call, self._first, self._parts, self._size = pdu.call_id, body, [], 0
        elif self._call is None:
            raise PduError("middle or last fragment without a first fragment")
        elif pdu.call_id != self._call:
            raise PduError(f"fragment of call {pdu.call_id} interleaved with call {self._call}")
        elif isinstance(body, Request) and isinstance(self._first, Request) and (
                body.opnum != self._first.opnum or body.context_id != self._first.context_id):
            raise PduError("fragment changes the opnum or presentation context")
        self._size += len(stub)
        if self._size > self.max_size:
            self.reset()
            raise PduError(f"fragmented call exceeds {self.max_size} octets")
        self._parts.append(stub)
        if not last:
            return None
        data = b"".join(self._parts)
        self.reset()
        return data

    @property
    def first(self) -> Request | Response | None:
        return self._first

    def reset(self) -> None:
        self._call, self._parts, self._size = None, [], 0


def fragment_stub(stub: bytes, max_stub: int) -> list[tuple[int, bytes]]:
    """Split a stub into (pfc_flags, piece) fragments of at most ``max_stub`` octets (C706 12.4.2)."""
    if max_stub <= 0:
        raise PduError("fragment size must be positive")
    pieces = [stub[i:i + max_stub] for i in range(0, len(stub), max_stub)] or [b""]
    out = []
    for i, piece in enumerate(pieces):
        flags = 0
        if i == 0:
            flags |= PfcFlags.FIRST_FRAG
        if i == len(pieces) - 1:
            flags |= PfcFlags.LAST_FRAG
        out.append((int(flags), piece))
    return out

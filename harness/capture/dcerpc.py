"""DCE/RPC dissector for captures: PDUs, interfaces, methods, NTLM packet privacy and WMI objects.

For one reassembled TCP stream (:mod:`harness.capture.reader`) carrying connection-oriented
DCE/RPC (ncacn_ip_tcp, C706 12; MS-RPCE 2.2.2):

* the byte streams of both directions are split into PDUs by their ``frag_length`` (C706 12.6.3.1)
  and put in capture order (frame numbers); after a hole the next plausible common header is
  looked for;
* ``bind`` / ``alter_context`` presentation contexts map a context id to the interface UUID
  (C706 12.6.4.3), named for the interfaces of WMI over DCOM: IRemoteSCMActivator, IObjectExporter,
  IRemUnknown(2) (MS-DCOM 3.1.2.5, 3.1.1.5.6), IWbemLevel1Login, IWbemServices,
  IEnumWbemClassObject, IWbemObjectSink, IWbemFetchSmartEnum, IWbemWCOSmartEnum, IWbemCallResult
  (MS-WMI 3.1.4); the opnum of a request names the method, and a response is paired with its
  request by ``call_id`` (C706 12.6.3.1);
* fragments (PFC_FIRST_FRAG ... PFC_LAST_FRAG) are joined before the stub is decoded
  (:class:`harness.wire.dcom.pdu.Reassembler`);
* the NTLM handshake travels in the auth verifiers (MS-RPCE 3.3.1.5.2.1): NEGOTIATE in ``bind``,
  CHALLENGE in ``bind_ack`` / ``alter_context_resp``, AUTHENTICATE in ``rpc_auth_3`` or
  ``alter_context``. With the account's password the keys are derived as MS-NLMP 3.3.2 / 3.4.5 say
  (NTOWFv2, NTProofStr checked against the captured NTLMv2 response, KeyExchangeKey,
  ExportedSessionKey from EncryptedRandomSessionKey, SIGNKEY and SEALKEY per direction;
  :func:`harness.capture.decrypt.derive_session`), and every PKT_PRIVACY stub is decrypted and its
  signature checked (MS-NLMP 3.4.3, 3.4.4.2; the signature covers the PDU up to the auth_value,
  header signing, MS-RPCE 3.3.1.5.2.2); PKT_INTEGRITY PDUs have their signature checked;
* in every plaintext request or response stub each ``MInterfacePointer`` holding an OBJREF_CUSTOM
  (MS-DCOM 2.2.14, 2.2.18.6), the form IWbemClassObject travels in (MS-WMI 2.2.4), is decoded with
  :mod:`harness.wire.wmio` (MS-WMIO 2.2.1 EncodingUnit): class name and property count per object.
  An ORPC response ends with the method's HRESULT (MS-DCOM 2.2.13; MS-WMI 2.2.11), reported too;
* IWbemWCOSmartEnum::Next responses (MS-WMI 3.1.4.7.1) carry their objects in an ObjectArray
  (MS-WMI 2.2.14), decoded with :mod:`harness.wire.wmi.datapacket` and one classID cache per smart
  enumerator IPID and proxyGUID of the connection, so WBEMOBJECT_INSTANCE_NOCLASS objects resolve
  against the class sent in an earlier call. The smart enumerator is recognised by the presentation
  context's interface or by its IPID (learnt from the OBJREF_STANDARD that GetSmartEnum returns):
  the IPID, not the context, selects the interface (MS-DCOM 3.1.1.5.1), and clients such as aiowmi
  call it on a context bound for another interface.

Verdicts: ``pass``, ``fail`` (malformed PDU, signature that does not verify, broken fragments,
undecodable object, response without request), ``encrypted`` (sealed, no password given or no key)
and ``info`` (faults, bind_nak, shutdown: protocol evidence, not failures). The password is only
used to derive keys and never appears in a report.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import uuid
from dataclasses import dataclass, field
from typing import Literal

from harness.auth.ntlm_cbt import find_ntlm_message
from harness.capture.reader import HalfStream, TcpStream
from harness.wire.dcom.ndr import NdrError, NdrReader
from harness.wire.dcom.orpc import (
    IID_IOBJECTEXPORTER,
    IID_IREMOTESCMACTIVATOR,
    IID_IREMUNKNOWN,
    IID_IREMUNKNOWN2,
    ObjRefCustom,
    ObjRefStandard,
    decode_objref,
    read_orpcthat,
    read_orpcthis,
)
from harness.wire.dcom.pdu import (
    HEADER_SIZE,
    SEC_TRAILER_SIZE,
    AuthLevel,
    AuthType,
    Bind,
    BindAck,
    BindNak,
    Fault,
    Pdu,
    PduError,
    PType,
    Reassembler,
    Request,
    Response,
    decode_pdu,
    stub_span,
)
from harness.wire.wmi.constants import (
    CLSID_WBEM_CLASS_OBJECT,
    IID_IENUM_WBEM_CLASS_OBJECT,
    IID_IWBEM_CALL_RESULT,
    IID_IWBEM_LEVEL1_LOGIN,
    IID_IWBEM_OBJECT_SINK,
    IID_IWBEM_SERVICES,
)
from harness.wire.wmi.datapacket import ClassCache, DataPacketError, ObjectType, PacketType, decode_object_array
from harness.wire.wmi.smartenum import (
    IID_IWBEM_FETCH_SMART_ENUM,
    IID_IWBEM_WCO_SMART_ENUM,
    OPNUM_SMART_NEXT,
    read_next_request,
    read_next_response,
)
from harness.wire.wmio import WmiClass, WmiInstance, WmioError, decode_encoding_unit

Verdict = Literal["pass", "fail", "encrypted", "info"]
Direction = Literal["request", "response"]

NTLM_SIGNATURE = b"NTLMSSP\0"
SIGNATURE_SIZE = 16
MAX_PDU = 65535
MAX_CALL = 16 * 1024 * 1024
MAX_OBJECTS = 10_000
_OBJREF_MEOW = b"MEOW"
_KEY_EXCH = 0x40000000
#: A common header (C706 12.6.3.1): version 5.0/5.1, a known PTYPE, little-endian ASCII IEEE drep.
_HEADER_AT = re.compile(rb"\x05[\x00\x01][\x00\x02\x03\x0b-\x13][\x00-\xff]\x10\x00\x00\x00", re.DOTALL)

#: Smart enumerators (IPID, proxyGUID) whose classID caches one connection keeps.
MAX_SMART_CACHES = 256

_IUNKNOWN = ("QueryInterface", "AddRef", "Release")

#: Interface names and their methods by opnum (MS-DCOM 3.1.2.5.1, 3.1.2.5.2.3, 3.1.1.5.6; MS-WMI 3.1.4).
INTERFACES: dict[uuid.UUID, tuple[str, tuple[str, ...]]] = {
    IID_IREMOTESCMACTIVATOR: ("IRemoteSCMActivator", (
        "Opnum0NotUsedOnWire", "Opnum1NotUsedOnWire", "Opnum2NotUsedOnWire", "RemoteGetClassObject",
        "RemoteCreateInstance")),
    IID_IOBJECTEXPORTER: ("IObjectExporter", (
        "ResolveOxid", "SimplePing", "ComplexPing", "ServerAlive", "ResolveOxid2", "ServerAlive2")),
    IID_IREMUNKNOWN: ("IRemUnknown", (*_IUNKNOWN, "RemQueryInterface", "RemAddRef", "RemRelease")),
    IID_IREMUNKNOWN2: ("IRemUnknown2", (*_IUNKNOWN, "RemQueryInterface", "RemAddRef", "RemRelease",
                                        "RemQueryInterface2")),
    IID_IWBEM_LEVEL1_LOGIN: ("IWbemLevel1Login", (
        *_IUNKNOWN, "EstablishPosition", "RequestChallenge", "WBEMLogin", "NTLMLogin")),
    IID_IWBEM_SERVICES: ("IWbemServices", (
        *_IUNKNOWN, "OpenNamespace", "CancelAsyncCall", "QueryObjectSink", "GetObject", "GetObjectAsync",
        "PutClass", "PutClassAsync", "DeleteClass", "DeleteClassAsync", "CreateClassEnum",
        "CreateClassEnumAsync", "PutInstance", "PutInstanceAsync", "DeleteInstance", "DeleteInstanceAsync",
        "CreateInstanceEnum", "CreateInstanceEnumAsync", "ExecQuery", "ExecQueryAsync",
        "ExecNotificationQuery", "ExecNotificationQueryAsync", "ExecMethod", "ExecMethodAsync")),
    IID_IENUM_WBEM_CLASS_OBJECT: ("IEnumWbemClassObject", (*_IUNKNOWN, "Reset", "Next", "NextAsync", "Clone",
                                                           "Skip")),
    IID_IWBEM_OBJECT_SINK: ("IWbemObjectSink", (*_IUNKNOWN, "Indicate", "SetStatus")),
    IID_IWBEM_FETCH_SMART_ENUM: ("IWbemFetchSmartEnum", (*_IUNKNOWN, "GetSmartEnum")),
    IID_IWBEM_WCO_SMART_ENUM: ("IWbemWCOSmartEnum", (*_IUNKNOWN, "Next")),
    IID_IWBEM_CALL_RESULT: ("IWbemCallResult", (
        *_IUNKNOWN, "GetResultObject", "GetResultString", "GetResultServices", "GetCallStatus")),
}

_PTYPE_NAMES = {
    PType.REQUEST: "request", PType.RESPONSE: "response", PType.FAULT: "fault", PType.BIND: "bind",
    PType.BIND_ACK: "bind_ack", PType.BIND_NAK: "bind_nak", PType.ALTER_CONTEXT: "alter_context",
    PType.ALTER_CONTEXT_RESP: "alter_context_resp", PType.AUTH3: "rpc_auth_3", PType.SHUTDOWN: "shutdown",
    PType.CO_CANCEL: "co_cancel", PType.ORPHANED: "orphaned",
}


def interface_name(iid: uuid.UUID) -> str:
    """The interface's name, or its UUID when it is not one WMI over DCOM uses."""
    known = INTERFACES.get(iid)
    return known[0] if known else str(iid)


def method_name(iid: uuid.UUID | None, opnum: int) -> str:
    """``Interface::Method`` for an opnum (``Interface::opnum N`` when unknown)."""
    if iid is None:
        return f"opnum {opnum}"
    known = INTERFACES.get(iid)
    if known is None:
        return f"{iid}::opnum {opnum}"
    name, methods = known
    return f"{name}::{methods[opnum]}" if 0 <= opnum < len(methods) else f"{name}::opnum {opnum}"


def looks_like_dcerpc(data: bytes) -> bool:
    """True when ``data`` starts with a DCE/RPC common header of a bind / alter_context / request."""
    return len(data) >= HEADER_SIZE and data[0] == 5 and data[1] in (0, 1) and data[2] in (
        PType.BIND, PType.ALTER_CONTEXT, PType.REQUEST) and data[4] & 0xF0 == 0x10


@dataclass
class RpcMessage:
    """The dissection of one PDU (or of the last fragment of a call, which carries the objects)."""

    stream: int
    direction: Direction
    frame: int | None
    offset: int
    ptype: str
    call_id: int
    summary: str
    method: str | None = None
    auth: str | None = None
    verdict: Verdict = "pass"
    objects: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    size: int = 0


def split_pdus(half: HalfStream) -> tuple[list[tuple[int, bytes]], list[str]]:
    """(offset, PDU bytes) of every complete PDU of one direction, plus notes on skipped bytes."""
    out: list[tuple[int, bytes]] = []
    notes: list[str] = []
    for base, data in half.chunks:
        pos = 0
        if base > 0:
            m = _HEADER_AT.search(data, 0)
            pos = m.start() if m else len(data)
            if pos:
                notes.append(f"{pos} octet(s) at offset {base} skipped to the next PDU header")
        while pos + HEADER_SIZE <= len(data):
            length = int(struct.unpack_from("<H", data, pos + 8)[0])
            if data[pos] != 5 or length < HEADER_SIZE:
                m = _HEADER_AT.search(data, pos + 1)
                nxt = m.start() if m else len(data)
                notes.append(f"{nxt - pos} octet(s) at offset {base + pos} are not a DCE/RPC PDU")
                pos = nxt
                continue
            if pos + length > len(data):
                break
            out.append((base + pos, bytes(data[pos:pos + length])))
            pos += length
        if pos < len(data):
            notes.append(f"{len(data) - pos} octet(s) at offset {base + pos} end in a truncated PDU")
    return out, notes


# ------------------------------------------------------------------------------- NTLM keys


def _ntlm_message(token: bytes, message_type: int) -> bytes | None:
    """The NTLM message of ``message_type`` in an auth_value (raw for WINNT, inside SPNEGO for
    GSS_NEGOTIATE; MS-RPCE 2.2.1.1.7)."""
    return find_ntlm_message(token, message_type)


@dataclass
class _Side:
    sign_key: bytes
    seal: object   # spnego RC4Handle (an .update(bytes) -> bytes stream)
    seq: int = 0

    def rc4(self, data: bytes) -> bytes:
        out: bytes = self.seal.update(data)  # type: ignore[attr-defined]
        return out


@dataclass
class _Keys:
    flags: int
    client: _Side
    server: _Side


@dataclass
class _AuthContext:
    """One security context of the connection (by auth_context_id, MS-RPCE 2.2.2.11)."""

    auth_type: int
    auth_level: int
    challenge: bytes | None = None
    keys: _Keys | None = None
    failure: str | None = None


def _derive(password: str, challenge_msg: bytes, authenticate_msg: bytes) -> _Keys:
    """Session keys per MS-NLMP 3.3.2 / 3.4.5 (see :func:`harness.capture.decrypt.derive_session`)."""
    from harness.capture.decrypt import derive_session, parse_authenticate, parse_challenge

    session = derive_session(password, parse_challenge(challenge_msg), parse_authenticate(authenticate_msg))
    return _Keys(session.flags, _Side(session.client.sign_key, session.client.handle),
                 _Side(session.server.sign_key, session.server.handle))


def _check_signature(keys: _Keys, side: _Side, signed: bytes, signature: bytes) -> str | None:
    """MS-NLMP 3.4.4.2 with extended session security; returns the failure or None. The sequence
    number advances either way, so one tampered PDU does not hide the next."""
    seq = side.seq
    side.seq += 1
    expected = hmac.new(side.sign_key, struct.pack("<I", seq) + signed, hashlib.md5).digest()[:8]
    if keys.flags & _KEY_EXCH:
        expected = side.rc4(expected)
    version, checksum, got_seq = struct.unpack("<I8sI", signature[:SIGNATURE_SIZE])
    if version != 1:
        return f"NTLM signature version {version} (1 expected, MS-NLMP 2.2.2.9.1)"
    if got_seq != seq:
        return f"NTLM signature sequence number {got_seq}, expected {seq}"
    if not hmac.compare_digest(checksum, expected):
        return "NTLM signature does not verify: the PDU was altered, or the password is wrong"
    return None


# ------------------------------------------------------------------------------- objects


def describe_object(obj: WmiClass | WmiInstance) -> str:
    if isinstance(obj, WmiInstance):
        return f"{obj.class_.name} instance, {len(obj.class_.properties)} properties"
    return f"{obj.name} class, {len(obj.properties)} properties"


def find_objects(stub: bytes) -> tuple[list[str], list[str]]:
    """Decode every IWbemClassObject marshaled by value in an NDR stub: (descriptions, errors).

    An MInterfacePointer is ``ulCntData``, the conformant array's max count (equal to it) and
    ``abData`` (MS-DCOM 2.2.14); abData of a by-value object is an OBJREF_CUSTOM (MS-DCOM 2.2.18.6)
    whose CLSID is CLSID_WbemClassObject and whose pObjectData is an MS-WMIO EncodingUnit
    (MS-WMI 2.2.4.1). Other by-value objects (activation property blobs, MS-DCOM 2.2.22) are skipped."""
    found: list[str] = []
    errors: list[str] = []
    pos = stub.find(_OBJREF_MEOW)
    while pos >= 0 and len(found) < MAX_OBJECTS:
        count, max_count = struct.unpack_from("<II", stub, pos - 8) if pos >= 8 else (0, 1)
        if count == max_count and pos + count <= len(stub) and count >= 48:
            try:
                ref = decode_objref(stub[pos:pos + count])
            except NdrError:
                ref = None
            if isinstance(ref, ObjRefCustom):
                if ref.clsid == CLSID_WBEM_CLASS_OBJECT:
                    try:
                        found.append(describe_object(decode_encoding_unit(ref.data)))
                    except WmioError as exc:
                        errors.append(f"MS-WMIO object at stub offset {pos} does not decode: {exc}")
                pos = stub.find(_OBJREF_MEOW, pos + count)
                continue
        pos = stub.find(_OBJREF_MEOW, pos + 4)
    return found, errors


def summarise(descriptions: list[str]) -> list[str]:
    """Runs of equal descriptions as ``N x description``."""
    out: list[str] = []
    run = 0
    for i, text in enumerate(descriptions):
        run += 1
        if i + 1 == len(descriptions) or descriptions[i + 1] != text:
            out.append(text if run == 1 else f"{run} x {text}")
            run = 0
    return out


def smart_enum_ipids(stub: bytes) -> list[uuid.UUID]:
    """IPIDs of the IWbemWCOSmartEnum OBJREF_STANDARDs (MS-DCOM 2.2.18.4) in a stub: what
    IWbemFetchSmartEnum::GetSmartEnum returns (MS-WMI 3.1.4.6.1)."""
    found: list[uuid.UUID] = []
    pos = stub.find(_OBJREF_MEOW)
    while pos >= 0 and len(found) < MAX_OBJECTS:
        if pos >= 8:
            count, max_count = struct.unpack_from("<II", stub, pos - 8)
            if count == max_count and pos + count <= len(stub):
                try:
                    ref = decode_objref(stub[pos:pos + count])
                except NdrError:
                    ref = None
                if isinstance(ref, ObjRefStandard) and ref.iid == IID_IWBEM_WCO_SMART_ENUM:
                    found.append(ref.std.ipid)
        pos = stub.find(_OBJREF_MEOW, pos + 4)
    return found


def describe_object_array(stub: bytes, cache: ClassCache) -> tuple[list[str], list[str]]:
    """The objects of an IWbemWCOSmartEnum::Next response stub (ORPCTHAT, puReturned, pdwBuffSize,
    pBuffer, HRESULT; MS-WMI 3.1.4.7.1), decoded as an ObjectArray (2.2.14) with ``cache``:
    (descriptions as :func:`find_objects` gives them, then one line on the packet; errors)."""
    try:
        r = NdrReader(stub)
        read_orpcthat(r)
        resp = read_next_response(r)
    except NdrError as exc:
        return [], [f"IWbemWCOSmartEnum::Next response stub: {exc.reason}"]
    if resp.buffer is None:
        return [], []
    try:
        packet = decode_object_array(resp.buffer, cache=cache, packet_type=PacketType.SMARTENUM_NEXT)
    except DataPacketError as exc:
        return [], [f"ObjectArray (MS-WMI 2.2.14) does not decode: {exc}"]
    errors: list[str] = []
    if resp.returned != len(packet.entries):
        errors.append(f"puReturned {resp.returned} but the ObjectArray holds {len(packet.entries)} objects")
    kinds = [e.kind for e in packet.entries]
    full = kinds.count(ObjectType.INSTANCE)
    bare = kinds.count(ObjectType.INSTANCE_NOCLASS)
    line = (f"ObjectArray of {len(kinds)} object(s), {len(resp.buffer)} octets: {full} instance(s) with their "
            f"class, {bare} without (class sent before), {kinds.count(ObjectType.CLASS)} class(es)")
    return [describe_object(e.obj) for e in packet.entries] + [line], errors


def _hresult(stub: bytes) -> str | None:
    return f"HRESULT 0x{struct.unpack_from('<I', stub, len(stub) - 4)[0]:08x}" if len(stub) >= 4 else None


# ------------------------------------------------------------------------------- dissector


@dataclass
class _Connection:
    stream: int
    password: str | None
    contexts: dict[int, uuid.UUID] = field(default_factory=dict)
    proposed: dict[int, dict[int, uuid.UUID]] = field(default_factory=dict)   # call_id -> ctx -> iid
    auth: dict[int, _AuthContext] = field(default_factory=dict)
    calls: dict[int, tuple[uuid.UUID | None, int]] = field(default_factory=dict)   # call_id -> (iid, opnum)
    smart_ipids: set[uuid.UUID] = field(default_factory=set)   # IWbemWCOSmartEnum IPIDs seen in responses
    smart_calls: dict[int, tuple[uuid.UUID | None, uuid.UUID]] = field(default_factory=dict)  # call -> (IPID, proxy)
    smart_caches: dict[tuple[uuid.UUID | None, uuid.UUID], ClassCache] = field(default_factory=dict)

    def smart_cache(self, key: tuple[uuid.UUID | None, uuid.UUID]) -> ClassCache:
        cache = self.smart_caches.get(key)
        if cache is None:
            if len(self.smart_caches) >= MAX_SMART_CACHES:
                self.smart_caches.pop(next(iter(self.smart_caches)))
            cache = self.smart_caches[key] = ClassCache()
        return cache
    reassembly: dict[bool, Reassembler] = field(default_factory=lambda: {True: Reassembler(MAX_CALL),
                                                                         False: Reassembler(MAX_CALL)})


def dissect_stream(stream: TcpStream, password: str | None = None) -> tuple[list[RpcMessage], list[str]]:
    """Dissect one DCE/RPC TCP stream: one :class:`RpcMessage` per PDU, in capture order, and notes."""
    conn = _Connection(stream.index, password)
    notes: list[str] = []
    pdus: list[tuple[int, int, bool, int, bytes]] = []
    for from_client, half in ((True, stream.to_server), (False, stream.to_client)):
        found, half_notes = split_pdus(half)
        label = "client->server" if from_client else "server->client"
        notes += [f"stream {stream.index} {label}: {n}" for n in half_notes]
        for offset, data in found:
            frame = half.frame_at(offset)
            pdus.append((frame if frame is not None else 1 << 62, 0 if from_client else 1, from_client, offset, data))
    pdus.sort(key=lambda t: (t[0], t[1], t[3]))
    out = [_dissect(conn, from_client, offset, None if frame == 1 << 62 else frame, data)
           for frame, _, from_client, offset, data in pdus]
    return out, notes


def _dissect(conn: _Connection, from_client: bool, offset: int, frame: int | None, data: bytes) -> RpcMessage:
    direction: Direction = "request" if from_client else "response"
    ptype_name = next((n for t, n in _PTYPE_NAMES.items() if t == data[2]), f"PTYPE {data[2]}")
    msg = RpcMessage(conn.stream, direction, frame, offset, ptype_name, int(struct.unpack_from("<I", data, 12)[0]),
                     f"DCE/RPC {ptype_name}", size=len(data))
    try:
        pdu = decode_pdu(data)
    except PduError as exc:
        msg.verdict = "fail"
        msg.errors.append(f"malformed PDU: {exc.reason}")
        return msg
    msg.summary = f"DCE/RPC {ptype_name} call {pdu.call_id}"
    if pdu.auth is not None and pdu.auth.auth_type != AuthType.NONE:
        try:
            level = AuthLevel(pdu.auth.auth_level).name
        except ValueError:
            level = str(pdu.auth.auth_level)
        kinds: dict[int, str] = {AuthType.WINNT: "NTLM", AuthType.GSS_NEGOTIATE: "SPNEGO"}
        kind = kinds.get(pdu.auth.auth_type, f"auth type {pdu.auth.auth_type}")
        msg.auth = f"{kind} {level}"
    body = pdu.body
    if isinstance(body, Bind):
        _on_bind(conn, pdu, body, msg)
    elif isinstance(body, BindAck):
        _on_bind_ack(conn, pdu, body, msg)
    elif isinstance(body, BindNak):
        msg.verdict = "info"
        msg.errors.append(f"bind refused, reason {body.reason}")
    elif pdu.ptype == PType.AUTH3:
        _on_authenticate(conn, pdu, msg)
    elif isinstance(body, (Request, Response)):
        _on_call(conn, from_client, pdu, body, data, msg)
    elif isinstance(body, Fault):
        iid, opnum = conn.calls.pop(pdu.call_id, (None, -1))
        msg.method = method_name(iid, opnum) if opnum >= 0 else None
        msg.verdict = "info"
        msg.errors.append(f"fault status 0x{body.status:08x}")
    else:
        msg.verdict = "info"
    return msg


def _on_bind(conn: _Connection, pdu: Pdu, body: Bind, msg: RpcMessage) -> None:
    conn.proposed[pdu.call_id] = {c.context_id: c.abstract_syntax[0] for c in body.contexts}
    msg.method = ", ".join(interface_name(c.abstract_syntax[0]) for c in body.contexts) or None
    auth = pdu.auth
    if auth is None or auth.auth_type == AuthType.NONE:
        return
    ctx = conn.auth.get(auth.auth_context_id)
    if ctx is None or pdu.ptype == PType.BIND:
        conn.auth[auth.auth_context_id] = _AuthContext(auth.auth_type, auth.auth_level)
    if _ntlm_message(auth.auth_value, 3) is not None:
        _on_authenticate(conn, pdu, msg)


def _on_bind_ack(conn: _Connection, pdu: Pdu, body: BindAck, msg: RpcMessage) -> None:
    proposed = conn.proposed.pop(pdu.call_id, {})
    ids = sorted(proposed)
    accepted: list[str] = []
    for i, result in enumerate(body.results):
        if i < len(ids) and result.result == 0:
            conn.contexts[ids[i]] = proposed[ids[i]]
            accepted.append(interface_name(proposed[ids[i]]))
    msg.method = ", ".join(accepted) or None
    if not proposed:
        msg.errors.append(f"{msg.ptype} without a bind / alter_context of call {pdu.call_id}")
        msg.verdict = "fail"
    auth = pdu.auth
    if auth is not None and auth.auth_value:
        challenge = _ntlm_message(auth.auth_value, 2)
        ctx = conn.auth.get(auth.auth_context_id)
        if challenge is not None and ctx is not None:
            ctx.challenge = challenge


def _on_authenticate(conn: _Connection, pdu: Pdu, msg: RpcMessage) -> None:
    auth = pdu.auth
    if auth is None:
        msg.verdict = "fail"
        msg.errors.append("rpc_auth_3 without an auth verifier")
        return
    ctx = conn.auth.get(auth.auth_context_id)
    token = _ntlm_message(auth.auth_value, 3)
    if ctx is None or token is None:
        if token is None and auth.auth_type in (AuthType.WINNT, AuthType.GSS_NEGOTIATE):
            msg.errors.append("no NTLM AUTHENTICATE message in the verifier")
            msg.verdict = "fail"
        return
    if conn.password is None:
        ctx.failure = "sealed: needs the password (--password-env)"
        return
    if ctx.challenge is None:
        ctx.failure = "the capture holds the NTLM AUTHENTICATE but not the CHALLENGE before it"
        return
    try:
        ctx.keys = _derive(conn.password, ctx.challenge, token)
    except ValueError as exc:
        ctx.failure = f"no session keys: {exc}"
        msg.verdict = "fail"
        msg.errors.append(ctx.failure)


def _unprotect(conn: _Connection, from_client: bool, pdu: Pdu, data: bytes, msg: RpcMessage) -> bytes | None:
    """The PDU's plaintext stub (without auth padding), or None when it cannot be opened."""
    body = pdu.body
    assert isinstance(body, (Request, Response))
    auth = pdu.auth
    if auth is None or auth.auth_level < AuthLevel.PKT_INTEGRITY or auth.auth_type == AuthType.NONE:
        return body.stub
    ctx = conn.auth.get(auth.auth_context_id)
    if ctx is None or ctx.keys is None:
        reason = ctx.failure if ctx is not None and ctx.failure else "no NTLM handshake for this auth context"
        if auth.auth_level == AuthLevel.PKT_PRIVACY:
            msg.verdict = "encrypted"
            msg.errors.append(f"encrypted: {reason}")
            return None
        msg.auth = f"{msg.auth} (signature not checked: {reason})"
        return body.stub
    auth_len = len(auth.auth_value)
    if auth_len < SIGNATURE_SIZE:
        msg.verdict = "fail"
        msg.errors.append(f"auth_value of {auth_len} octets is too short for an NTLM signature")
        return None
    keys = ctx.keys
    side = keys.client if from_client else keys.server
    start, end = stub_span(data)
    signature = data[len(data) - auth_len:len(data) - auth_len + SIGNATURE_SIZE]
    if auth.auth_level == AuthLevel.PKT_PRIVACY:
        plain = side.rc4(data[start:end])
        signed = data[:start] + plain + data[end:end + SEC_TRAILER_SIZE]
    else:
        plain = data[start:end]
        signed = data[:len(data) - auth_len]
    failure = _check_signature(keys, side, signed, signature)
    if failure is not None:
        msg.verdict = "fail"
        msg.errors.append(failure)
        return None
    return plain[:len(plain) - auth.auth_pad_length] if auth.auth_pad_length else plain


def _on_call(conn: _Connection, from_client: bool, pdu: Pdu, body: Request | Response, data: bytes,
             msg: RpcMessage) -> None:
    if isinstance(body, Request):
        iid = conn.contexts.get(body.context_id)
        if iid is None:
            msg.errors.append(f"presentation context {body.context_id} was never bound")
        if body.object_uuid is not None and body.object_uuid in conn.smart_ipids:
            iid = IID_IWBEM_WCO_SMART_ENUM     # the IPID selects the interface (MS-DCOM 3.1.1.5.1)
        conn.calls[pdu.call_id] = (iid, body.opnum)
        msg.method = method_name(iid, body.opnum)
    else:
        if pdu.call_id not in conn.calls:
            msg.errors.append(f"response to call {pdu.call_id}, which has no request in the capture")
            msg.method = None
        else:
            iid, opnum = conn.calls[pdu.call_id]
            msg.method = method_name(iid, opnum)
            if pdu.flags & 0x02:
                conn.calls.pop(pdu.call_id, None)
    stub = _unprotect(conn, from_client, pdu, data, msg)
    if stub is None:
        conn.reassembly[from_client].reset()
        return
    reassembler = conn.reassembly[from_client]
    try:
        whole = reassembler.add(pdu, stub)
    except PduError as exc:
        msg.verdict = "fail"
        msg.errors.append(f"fragment reassembly: {exc.reason}")
        return
    if whole is None:
        msg.summary += " (fragment)"
        return
    objects, errors = find_objects(whole)
    smart_objects, smart_errors = _smart_enum(conn, pdu, body, whole, msg)
    msg.objects = summarise(objects + smart_objects)
    msg.errors += errors + smart_errors
    if isinstance(body, Response) and msg.method and not msg.method.startswith(("IObjectExporter", "opnum")):
        status = _hresult(whole)
        if status:
            msg.objects.append(status)
    if msg.errors and msg.verdict == "pass":
        msg.verdict = "fail"


def _smart_enum(conn: _Connection, pdu: Pdu, body: Request | Response, whole: bytes,
                msg: RpcMessage) -> tuple[list[str], list[str]]:
    """Smart enumeration bookkeeping of one complete call stub: remembers the IPIDs GetSmartEnum
    hands out and the (IPID, proxyGUID) of each IWbemWCOSmartEnum::Next request, and decodes the
    ObjectArray of its response (MS-WMI 3.1.4.6.1, 3.1.4.7.1, 2.2.14)."""
    smart_next = f"IWbemWCOSmartEnum::{INTERFACES[IID_IWBEM_WCO_SMART_ENUM][1][OPNUM_SMART_NEXT]}"
    if isinstance(body, Request):
        if msg.method == smart_next:
            try:
                r = NdrReader(whole)
                read_orpcthis(r)
                proxy = read_next_request(r).proxy_guid
            except NdrError as exc:
                return [], [f"IWbemWCOSmartEnum::Next request stub: {exc.reason}"]
            conn.smart_calls[pdu.call_id] = (body.object_uuid, proxy)
        return [], []
    # Any response may hand out the interface (GetSmartEnum, also when called on a foreign context).
    for ipid in smart_enum_ipids(whole):
        if len(conn.smart_ipids) < MAX_OBJECTS:
            conn.smart_ipids.add(ipid)
    target = conn.smart_calls.pop(pdu.call_id, None)
    if target is None:
        return [], []
    return describe_object_array(whole, conn.smart_cache(target))

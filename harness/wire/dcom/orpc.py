"""DCOM wire structures (MS-DCOM 2.2): ORPCTHIS/ORPCTHAT, OBJREF, DUALSTRINGARRAY and the
activation property blobs of IRemoteSCMActivator (MS-DCOM 2.2.22). Sans-IO; decoders raise only
:class:`~harness.wire.dcom.ndr.NdrError`."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from .ndr import NdrError, NdrReader, NdrWriter, deserialize_type1, serialize_type1


def _g(text: str) -> uuid.UUID:
    return uuid.UUID(text)


# MS-DCOM 1.9 standards assignments
IID_IUNKNOWN = _g("00000000-0000-0000-c000-000000000046")
IID_IREMUNKNOWN = _g("00000131-0000-0000-c000-000000000046")
IID_IREMUNKNOWN2 = _g("00000143-0000-0000-c000-000000000046")
IID_IREMOTESCMACTIVATOR = _g("000001a0-0000-0000-c000-000000000046")
IID_IOBJECTEXPORTER = _g("99fcfec4-5260-101b-bbcb-00aa0021347a")
IID_IACTIVATION = _g("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57")
IID_IACTIVATION_PROPERTIES_IN = _g("000001a2-0000-0000-c000-000000000046")
IID_IACTIVATION_PROPERTIES_OUT = _g("000001a3-0000-0000-c000-000000000046")
CLSID_ACTIVATION_PROPERTIES_IN = _g("00000338-0000-0000-c000-000000000046")
CLSID_ACTIVATION_PROPERTIES_OUT = _g("00000339-0000-0000-c000-000000000046")
CLSID_INSTANTIATION_INFO = _g("000001ab-0000-0000-c000-000000000046")
CLSID_ACTIVATION_CONTEXT_INFO = _g("000001a5-0000-0000-c000-000000000046")
CLSID_SERVER_LOCATION_INFO = _g("000001a4-0000-0000-c000-000000000046")
CLSID_SCM_REQUEST_INFO = _g("000001aa-0000-0000-c000-000000000046")
CLSID_SCM_REPLY_INFO = _g("000001b6-0000-0000-c000-000000000046")
CLSID_PROPS_OUT_INFO = _g("00000339-0000-0000-c000-000000000046")
CLSID_SECURITY_INFO = _g("000001a6-0000-0000-c000-000000000046")
CLSID_SPECIAL_SYSTEM_PROPERTIES = _g("000001b9-0000-0000-c000-000000000046")

OBJREF_SIGNATURE = 0x574F454D   # "MEOW" (MS-DCOM 2.2.18)
FLAGS_OBJREF_STANDARD = 0x1
FLAGS_OBJREF_HANDLER = 0x2
FLAGS_OBJREF_CUSTOM = 0x4
FLAGS_OBJREF_EXTENDED = 0x8
SORF_NOPING = 0x1000            # MS-DCOM 2.2.18.2
TOWER_NCACN_IP_TCP = 0x07       # MS-DCOM 2.2.19.3 wTowerId
RPC_C_AUTHN_WINNT = 10
RPC_C_AUTHN_GSS_NEGOTIATE = 9
COM_VERSION = (5, 7)            # MS-DCOM 2.2.11 COMVERSION: 5.7


# ------------------------------------------------------------------------- ORPCTHIS / THAT


@dataclass
class OrpcThis:
    """ORPCTHIS (MS-DCOM 2.2.13.1)."""

    version: tuple[int, int] = COM_VERSION
    flags: int = 0
    cid: uuid.UUID = field(default_factory=uuid.uuid4)
    extensions: int = 0   # number of ORPC_EXTENTs that were present (skipped)


def read_orpcthis(r: NdrReader) -> OrpcThis:
    """ORPCTHIS with its optional ORPC_EXTENT_ARRAY (MS-DCOM 2.2.13.1, 2.2.21.4), extents skipped."""
    major = r.u16("COMVERSION")
    minor = r.u16("COMVERSION")
    flags = r.u32("ORPCTHIS flags")
    r.u32("reserved1")
    cid = r.guid("causality id")
    count = _skip_extents(r) if r.referent("extensions") else 0
    return OrpcThis((major, minor), flags, cid, count)


def _skip_extents(r: NdrReader) -> int:
    """Read past an ORPC_EXTENT_ARRAY (MS-DCOM 2.2.21.4) and its ORPC_EXTENTs (2.2.21.3), whose
    unique pointer was non-null; returns how many extents were present."""
    size = r.u32("extent size")
    r.u32("extent reserved")
    n = r.count("extent array", 4)
    if n < size:
        raise NdrError("ORPC_EXTENT_ARRAY conformance smaller than size")
    present = [r.referent("extent") for _ in range(n)]
    count = 0
    for p in present:
        if p:
            max_count = r.count("extent data", 1)
            r.guid("extent id")
            r.u32("extent size")
            r.raw(max_count, "extent data")
            count += 1
    return count


def write_orpcthis(w: NdrWriter, this: OrpcThis) -> None:
    w.u16(this.version[0])
    w.u16(this.version[1])
    w.u32(this.flags)
    w.u32(0)
    w.guid(this.cid)
    w.referent(False)


def write_orpcthat(w: NdrWriter, flags: int = 0) -> None:
    """ORPCTHAT (MS-DCOM 2.2.13.3) without extensions."""
    w.u32(flags)
    w.referent(False)


def read_orpcthat(r: NdrReader) -> int:
    """ORPCTHAT (MS-DCOM 2.2.13.3): the flags; extensions are read past."""
    flags = r.u32("ORPCTHAT flags")
    if r.referent("extensions"):
        _skip_extents(r)
    return flags


# ----------------------------------------------------------------------- DUALSTRINGARRAY


@dataclass
class StringBinding:
    """STRINGBINDING (MS-DCOM 2.2.19.3): tower id and network address (``host[port]``)."""

    tower_id: int
    address: str


@dataclass
class SecurityBinding:
    """SECURITYBINDING (MS-DCOM 2.2.19.4)."""

    authn_svc: int
    principal: str = ""


@dataclass
class DualStringArray:
    """DUALSTRINGARRAY (MS-DCOM 2.2.19.2)."""

    strings: list[StringBinding] = field(default_factory=list)
    security: list[SecurityBinding] = field(default_factory=list)

    def units(self) -> tuple[list[int], int]:
        """aStringArray as UTF-16 code units and wSecurityOffset."""
        out: list[int] = []
        for s in self.strings:
            out.append(s.tower_id)
            out.extend(struct.unpack(f"<{len(s.address)}H", s.address.encode("utf-16-le")) if s.address else ())
            out.append(0)
        out.append(0)
        offset = len(out)
        for sec in self.security:
            out.append(sec.authn_svc)
            out.append(0xFFFF)
            out.extend(struct.unpack(f"<{len(sec.principal)}H", sec.principal.encode("utf-16-le"))
                       if sec.principal else ())
            out.append(0)
        out.append(0)
        return out, offset

    def encode(self) -> bytes:
        """Plain form used inside OBJREF_STANDARD (no NDR conformance)."""
        units, offset = self.units()
        return struct.pack(f"<HH{len(units)}H", len(units), offset, *units)

    def write_ndr(self, w: NdrWriter) -> None:
        """NDR form (conformant struct, MS-DCOM 2.2.19.2): max count, wNumEntries, wSecurityOffset, array."""
        units, offset = self.units()
        w.u32(len(units))
        w.u16(len(units))
        w.u16(offset)
        for u in units:
            w.u16(u)


def _parse_units(units: list[int], offset: int) -> DualStringArray:
    if offset > len(units):
        raise NdrError("wSecurityOffset beyond the string array")
    out = DualStringArray()

    def words(seq: list[int]) -> str:
        return struct.pack(f"<{len(seq)}H", *seq).decode("utf-16-le", "replace")

    pos = 0
    while pos < offset and units[pos] != 0:
        end = units.index(0, pos + 1) if 0 in units[pos + 1:offset] else offset
        out.strings.append(StringBinding(units[pos], words(units[pos + 1:end])))
        pos = end + 1
    pos = offset
    while pos + 1 < len(units) and units[pos] != 0:
        svc = units[pos]
        start = pos + 2
        end = units.index(0, start) if 0 in units[start:] else len(units)
        out.security.append(SecurityBinding(svc, words(units[start:end])))
        pos = end + 1
    return out


def decode_dualstringarray(data: bytes, pos: int = 0) -> tuple[DualStringArray, int]:
    """Plain DUALSTRINGARRAY at ``pos``; returns it and the end offset."""
    if pos + 4 > len(data):
        raise NdrError("DUALSTRINGARRAY truncated")
    n, offset = struct.unpack_from("<HH", data, pos)
    if pos + 4 + 2 * n > len(data):
        raise NdrError("DUALSTRINGARRAY entries truncated")
    units = list(struct.unpack_from(f"<{n}H", data, pos + 4))
    return _parse_units(units, offset), pos + 4 + 2 * n


def read_dualstringarray_ndr(r: NdrReader) -> DualStringArray:
    r.count("DUALSTRINGARRAY max count", 2)
    n = r.u16("wNumEntries")
    offset = r.u16("wSecurityOffset")
    units = [r.u16("aStringArray") for _ in range(n)]
    return _parse_units(units, offset)


# ------------------------------------------------------------------------------------ OBJREF


@dataclass
class StdObjRef:
    """STDOBJREF (MS-DCOM 2.2.18.2)."""

    flags: int
    public_refs: int
    oxid: int
    oid: int
    ipid: uuid.UUID

    def encode(self) -> bytes:
        return struct.pack("<IIQQ", self.flags, self.public_refs, self.oxid, self.oid) + self.ipid.bytes_le


@dataclass
class ObjRefStandard:
    """OBJREF_STANDARD (MS-DCOM 2.2.18.4)."""

    iid: uuid.UUID
    std: StdObjRef
    resolver: DualStringArray

    def encode(self) -> bytes:
        return (struct.pack("<II", OBJREF_SIGNATURE, FLAGS_OBJREF_STANDARD) + self.iid.bytes_le
                + self.std.encode() + self.resolver.encode())


@dataclass
class ObjRefCustom:
    """OBJREF_CUSTOM (MS-DCOM 2.2.18.6): an object marshaled by value (e.g. IWbemClassObject)."""

    iid: uuid.UUID
    clsid: uuid.UUID
    data: bytes
    extension: int = 0

    def encode(self) -> bytes:
        # "reserved"/ObjectReferenceSize: the size of pObjectData plus 8 (observed Windows behaviour).
        return (struct.pack("<II", OBJREF_SIGNATURE, FLAGS_OBJREF_CUSTOM) + self.iid.bytes_le + self.clsid.bytes_le
                + struct.pack("<II", self.extension, len(self.data) + 8) + self.data)


ObjRef = ObjRefStandard | ObjRefCustom


def decode_objref(data: bytes) -> ObjRef:
    """An OBJREF of the standard or custom kind (MS-DCOM 2.2.18); NdrError otherwise."""
    if len(data) < 24:
        raise NdrError("OBJREF truncated")
    sig, flags = struct.unpack_from("<II", data, 0)
    if sig != OBJREF_SIGNATURE:
        raise NdrError(f"OBJREF signature 0x{sig:08x} is not MEOW")
    iid = uuid.UUID(bytes_le=data[8:24])
    if flags == FLAGS_OBJREF_STANDARD:
        if len(data) < 24 + 40:
            raise NdrError("OBJREF_STANDARD truncated")
        sflags, refs, oxid, oid = struct.unpack_from("<IIQQ", data, 24)
        ipid = uuid.UUID(bytes_le=data[48:64])
        resolver, _ = decode_dualstringarray(data, 64)
        return ObjRefStandard(iid, StdObjRef(sflags, refs, oxid, oid, ipid), resolver)
    if flags == FLAGS_OBJREF_CUSTOM:
        if len(data) < 48:
            raise NdrError("OBJREF_CUSTOM truncated")
        clsid = uuid.UUID(bytes_le=data[24:40])
        ext, _size = struct.unpack_from("<II", data, 40)
        return ObjRefCustom(iid, clsid, data[48:], ext)
    raise NdrError(f"unsupported OBJREF flags 0x{flags:x}")


# ---------------------------------------------------------------------------- activation


@dataclass
class ActivationRequest:
    """What the server needs from IActivationPropertiesIn (MS-DCOM 2.2.22.2.1 InstantiationInfoData)."""

    clsid: uuid.UUID
    iids: list[uuid.UUID]
    protseqs: list[int] = field(default_factory=list)


def _custom_header(r: NdrReader) -> tuple[list[uuid.UUID], list[int], int]:
    """CustomHeader (MS-DCOM 2.2.22.1): (property CLSIDs, property sizes, headerSize)."""
    r.u32("totalSize")
    header_size = r.u32("headerSize")
    r.u32("dwReserved")
    r.u32("destCtx")
    c_ifs = r.u32("cIfs")
    r.guid("classInfoClsid")
    has_clsids = r.referent("pclsid")
    has_sizes = r.referent("pSizes")
    has_reserved = r.referent("pdwReserved")
    clsids: list[uuid.UUID] = []
    sizes: list[int] = []
    if has_clsids:
        clsids = r.sized_array("pclsid", 16, c_ifs, lambda e: e.guid("pclsid"))
    if has_sizes:
        sizes = r.sized_array("pSizes", 4, c_ifs, lambda e: e.u32("pSizes"))
    if has_reserved:
        r.u32("dwReserved")
    if len(clsids) != len(sizes):
        raise NdrError("activation properties without sizes")
    return clsids, sizes, header_size


def _activation_properties(objref: bytes, what: str) -> list[tuple[uuid.UUID, bytes]]:
    """(CLSID, type-serialized property) pairs of an IActivationPropertiesIn/Out OBJREF_CUSTOM
    (MS-DCOM 2.2.22: ActivationPropertiesBlob, CustomHeader 2.2.22.1); NdrError if malformed.
    ``what`` starts the reason when the OBJREF is not custom-marshaled."""
    ref = decode_objref(objref)
    if not isinstance(ref, ObjRefCustom):
        raise NdrError(f"{what} not an OBJREF_CUSTOM")
    blob = ref.data
    if len(blob) < 8:
        raise NdrError("ActivationPropertiesBlob truncated")
    clsids, sizes, header_size = _custom_header(NdrReader(deserialize_type1(blob[8:])))
    pos = 8 + header_size
    out: list[tuple[uuid.UUID, bytes]] = []
    for clsid, size in zip(clsids, sizes, strict=True):
        if pos + size > len(blob):
            raise NdrError("activation property exceeds the blob")
        out.append((clsid, blob[pos:pos + size]))
        pos += size
    return out


def parse_activation_blob(objref: bytes) -> ActivationRequest:
    """IActivationPropertiesIn (MS-DCOM 2.2.22): the class and interfaces to activate."""
    request: ActivationRequest | None = None
    protseqs: list[int] = []
    for clsid, prop in _activation_properties(objref, "activation properties are"):
        if clsid == CLSID_INSTANTIATION_INFO:
            r = NdrReader(deserialize_type1(prop))
            cls = r.guid("classId")
            r.u32("classCtx")
            r.u32("actvflags")
            r.i32("fIsSurrogate")
            c_iid = r.u32("cIID")
            r.u32("instFlag")
            has_iids = r.referent("pIID")
            r.u32("thisSize")
            r.u16("COMVERSION")
            r.u16("COMVERSION")
            iids: list[uuid.UUID] = []
            if has_iids:
                iids = r.sized_array("pIID", 16, c_iid, lambda e: e.guid("IID"))
            request = ActivationRequest(cls, iids)
        elif clsid == CLSID_SCM_REQUEST_INFO:
            r = NdrReader(deserialize_type1(prop))
            has_reserved = r.referent("pdwReserved")
            has_remote = r.referent("remoteRequest")
            if has_reserved:
                r.u32("pdwReserved")
            if has_remote:
                r.u32("ClientImpLevel")
                n = r.u16("cRequestedProtseqs")
                if r.referent("pRequestedProtseqs"):
                    protseqs = r.sized_array("protseqs", 2, n, lambda e: e.u16("protseq"))
    if request is None:
        raise NdrError("activation request without InstantiationInfoData")
    request.protseqs = protseqs
    return request


def _props_out(iids: list[uuid.UUID], results: list[int], objrefs: list[bytes | None]) -> bytes:
    """PropsOutInfo (MS-DCOM 2.2.22.2.9)."""
    w = NdrWriter()
    w.u32(len(iids))
    w.referent(True)
    w.referent(True)
    w.referent(True)
    w.u32(len(iids))
    for iid in iids:
        w.guid(iid)
    w.u32(len(results))
    for hr in results:
        w.u32(hr)
    w.u32(len(objrefs))
    present = [w.referent(o is not None) for o in objrefs]
    for p, o in zip(present, objrefs, strict=True):
        if p and o is not None:
            w.interface_pointer_body(o)
    return w.getvalue()


def _scm_reply(oxid: int, bindings: DualStringArray, ipid_remunknown: uuid.UUID, authn_hint: int) -> bytes:
    """ScmReplyInfoData with customREMOTE_REPLY_SCM_INFO (MS-DCOM 2.2.22.2.8)."""
    w = NdrWriter()
    w.referent(False)          # pdwReserved
    w.referent(True)           # remoteReply
    w.u64(oxid)
    w.referent(True)           # pdsaOxidBindings
    w.guid(ipid_remunknown)
    w.u32(authn_hint)
    w.u16(COM_VERSION[0])
    w.u16(COM_VERSION[1])
    bindings.write_ndr(w)
    return w.getvalue()


def _activation_blob(props: list[bytes], clsids: list[uuid.UUID], header_clsid: uuid.UUID) -> bytes:
    """ActivationPropertiesBlob (MS-DCOM 2.2.22): dwSize, dwReserved, the type-serialized
    CustomHeader (2.2.22.1: totalSize, headerSize, destCtx MSHCTX_DIFFERENTMACHINE, the property
    CLSIDs and sizes) then the already type-serialized property structures ``props``."""

    def header(total: int, header_size: int) -> bytes:
        w = NdrWriter()
        w.u32(total)
        w.u32(header_size)
        w.u32(0)
        w.u32(2)            # destCtx MSHCTX_DIFFERENTMACHINE
        w.u32(len(props))
        w.guid(header_clsid)
        w.referent(True)
        w.referent(True)
        w.referent(False)
        w.u32(len(clsids))
        for c in clsids:
            w.guid(c)
        w.u32(len(props))
        for p in props:
            w.u32(len(p))
        return serialize_type1(w.getvalue())

    header_size = len(header(0, 0))
    total = header_size + sum(len(p) for p in props)
    return struct.pack("<II", total, 0) + header(total, header_size) + b"".join(props)


def build_activation_reply(iids: list[uuid.UUID], results: list[int], objrefs: list[bytes | None], *,
                           oxid: int, bindings: DualStringArray, ipid_remunknown: uuid.UUID,
                           authn_hint: int) -> bytes:
    """IActivationPropertiesOut as an OBJREF_CUSTOM (MS-DCOM 2.2.22, 3.1.2.5.2.3.3): PropsOutInfo then
    ScmReplyInfoData, each type-serialized (MS-RPCE 2.2.6)."""
    props = [serialize_type1(_props_out(iids, results, objrefs)),
             serialize_type1(_scm_reply(oxid, bindings, ipid_remunknown, authn_hint))]
    blob = _activation_blob(props, [CLSID_PROPS_OUT_INFO, CLSID_SCM_REPLY_INFO], CLSID_ACTIVATION_PROPERTIES_OUT)
    return ObjRefCustom(IID_IACTIVATION_PROPERTIES_OUT, CLSID_ACTIVATION_PROPERTIES_OUT, blob).encode()


def build_activation_request(clsid: uuid.UUID, iids: list[uuid.UUID], protseqs: tuple[int, ...] = (7,)) -> bytes:
    """IActivationPropertiesIn (MS-DCOM 2.2.22) as an OBJREF_CUSTOM with InstantiationInfoData
    (2.2.22.2.1) and ScmRequestInfoData (2.2.22.2.4): enough for RemoteCreateInstance."""
    w = NdrWriter()
    w.guid(clsid)
    w.u32(0x14)          # classCtx CLSCTX_LOCAL_SERVER | CLSCTX_REMOTE_SERVER
    w.u32(0)             # actvflags
    w.i32(0)             # fIsSurrogate
    w.u32(len(iids))
    w.u32(0)             # instFlag
    w.referent(True)
    size_at = len(w.buf)
    w.u32(0)             # thisSize, patched below
    w.u16(COM_VERSION[0])
    w.u16(COM_VERSION[1])
    w.u32(len(iids))
    for iid in iids:
        w.guid(iid)
    inst = bytearray(w.getvalue())
    inst_ser = serialize_type1(bytes(inst))
    struct.pack_into("<I", inst, size_at, len(inst_ser))
    inst_ser = serialize_type1(bytes(inst))
    s = NdrWriter()
    s.referent(False)    # pdwReserved
    s.referent(True)     # remoteRequest
    s.u32(2)             # ClientImpLevel RPC_C_IMP_LEVEL_IDENTIFY
    s.u16(len(protseqs))
    s.referent(True)
    s.u32(len(protseqs))
    for p in protseqs:
        s.u16(p)
    props = [inst_ser, serialize_type1(s.getvalue())]
    blob = _activation_blob(props, [CLSID_INSTANTIATION_INFO, CLSID_SCM_REQUEST_INFO], uuid.UUID(int=0))
    return ObjRefCustom(IID_IACTIVATION_PROPERTIES_IN, CLSID_ACTIVATION_PROPERTIES_IN, blob).encode()


@dataclass
class ActivationReply:
    """What the client needs from IActivationPropertiesOut (MS-DCOM 2.2.22.2.8, 2.2.22.2.9)."""

    oxid: int
    bindings: DualStringArray
    ipid_remunknown: uuid.UUID
    authn_hint: int
    results: list[int]
    objrefs: list[bytes | None]


def parse_activation_reply(objref: bytes) -> ActivationReply:
    """Decode IActivationPropertiesOut (PropsOutInfo + ScmReplyInfoData); NdrError if malformed."""
    results: list[int] = []
    objrefs: list[bytes | None] = []
    scm: tuple[int, DualStringArray, uuid.UUID, int] | None = None
    for clsid, prop in _activation_properties(objref, "activation reply is"):
        r = NdrReader(deserialize_type1(prop))
        if clsid == CLSID_PROPS_OUT_INFO:
            n = r.u32("cIfs")
            has = [r.referent("piid"), r.referent("phresults"), r.referent("ppIntfData")]
            if has[0]:
                for _ in range(r.count("piid", 16)):
                    r.guid("IID")
            if has[1]:
                results = [r.u32("HRESULT") for _ in range(r.count("phresults", 4))]
            if has[2]:
                present = [r.referent("MInterfacePointer") for _ in range(r.count("ppIntfData", 4))]
                objrefs = [r.interface_pointer_body() if p else None for p in present]
            if len(results) != n or len(objrefs) != n:
                raise NdrError("PropsOutInfo arrays differ from cIfs")
        elif clsid == CLSID_SCM_REPLY_INFO:
            has_reserved = r.referent("pdwReserved")
            has_reply = r.referent("remoteReply")
            if has_reserved:
                r.u32("pdwReserved")
            if not has_reply:
                raise NdrError("ScmReplyInfoData without remoteReply")
            oxid = r.u64("OXID")
            has_bindings = r.referent("pdsaOxidBindings")
            ipid = r.guid("ipidRemUnknown")
            hint = r.u32("authnHint")
            r.u16("COMVERSION")
            r.u16("COMVERSION")
            bindings = read_dualstringarray_ndr(r) if has_bindings else DualStringArray()
            scm = (oxid, bindings, ipid, hint)
    if scm is None:
        raise NdrError("activation reply without ScmReplyInfoData")
    return ActivationReply(scm[0], scm[1], scm[2], scm[3], results, objrefs)

"""DCOM object exporter (MS-DCOM 3.1.2): activation, OXID resolution, IRemUnknown.

Used by the mock WMI server and by the client's IWbemObjectSink (asynchronous WMI calls).

One :class:`DcomRuntime` is one object exporter (one OXID) with its IPID table. It serves, through
one :class:`~harness.transport.dcerpc_server.RpcDispatcher`:

* IRemoteSCMActivator::RemoteCreateInstance (opnum 4, MS-DCOM 3.1.2.5.2.3.3) on the endpoint
  mapper port: activates a registered class and answers with the OXID bindings of the ORPC port;
* IObjectExporter (MS-DCOM 3.1.2.5.1): ResolveOxid, SimplePing, ComplexPing, ServerAlive,
  ResolveOxid2, ServerAlive2 (no authentication needed, as on Windows);
* IRemUnknown / IRemUnknown2 (MS-DCOM 3.1.1.5.6): RemQueryInterface, RemAddRef, RemRelease;
* every exported interface pointer, dispatched by IPID (the request's object UUID, MS-DCOM 3.1.1.5.1).
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.transport.dcerpc_server import RpcCall, RpcFault
from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter
from harness.wire.dcom.orpc import (
    COM_VERSION,
    IID_IOBJECTEXPORTER,
    IID_IREMOTESCMACTIVATOR,
    IID_IREMUNKNOWN,
    IID_IREMUNKNOWN2,
    IID_IUNKNOWN,
    RPC_C_AUTHN_WINNT,
    SORF_NOPING,
    DualStringArray,
    ObjRefStandard,
    SecurityBinding,
    StdObjRef,
    StringBinding,
    build_activation_reply,
    parse_activation_blob,
    read_orpcthis,
    write_orpcthat,
)
from harness.wire.dcom.pdu import AuthLevel, FaultStatus

log = logging.getLogger("wmh.dcom")

S_OK = 0
E_NOINTERFACE = 0x80004002
E_NOTIMPL = 0x80004001
E_INVALIDARG = 0x80070057
REGDB_E_CLASSNOTREG = 0x80040154
RPC_E_INVALID_OXID = 0x80070776       # OR_INVALID_OXID (MS-DCOM 3.1.2.5.1.1)
OR_INVALID_SET = 1912                 # MS-DCOM 3.1.2.5.1.3
CO_E_OBJNOTCONNECTED = 0x800401FD
DEFAULT_PUBLIC_REFS = 5


class ComObject(Protocol):
    """An exported COM object: the interfaces it implements and one handler per interface."""

    def interfaces(self) -> list[uuid.UUID]: ...

    async def invoke(self, iid: uuid.UUID, opnum: int, reader: NdrReader, writer: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None: ...

    def released(self) -> None: ...


@dataclass
class Export:
    """One IPID entry (MS-DCOM 3.1.1.1 IPID table)."""

    ipid: uuid.UUID
    iid: uuid.UUID
    oid: int
    obj: ComObject
    refs: int = DEFAULT_PUBLIC_REFS
    owner: object = None


Factory = Callable[[RpcCall], Awaitable[ComObject] | ComObject]


@dataclass
class DcomRuntime:
    """One object exporter: OXID, IPID table, class factories and the string bindings."""

    host: str = "127.0.0.1"
    orpc_port: int = 0
    machine: str = "WMH-MOCK01"
    oxid: int = field(default_factory=lambda: secrets.randbits(63) | 1)
    ipid_remunknown: uuid.UUID = field(default_factory=uuid.uuid4)
    factories: dict[uuid.UUID, Factory] = field(default_factory=dict)
    exports: dict[uuid.UUID, Export] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _oids: dict[int, list[uuid.UUID]] = field(default_factory=dict)
    _sets: dict[int, set[int]] = field(default_factory=dict)
    #: False for a client's callback exporter: calls need no authentication (the server calls back
    #: at RPC_C_AUTHN_LEVEL_NONE).
    require_auth: bool = True

    # ------------------------------------------------------------------------ bindings

    def bindings(self) -> DualStringArray:
        """OXID bindings (MS-DCOM 2.2.19): ``host[port]`` over ncacn_ip_tcp, NTLM security binding."""
        return DualStringArray([StringBinding(0x07, f"{self.host}[{self.orpc_port}]")],
                               [SecurityBinding(RPC_C_AUTHN_WINNT, "")])

    def register_class(self, clsid: uuid.UUID, factory: Factory) -> None:
        self.factories[clsid] = factory

    def export(self, obj: ComObject, iid: uuid.UUID, oid: int | None = None, owner: object = None) -> bytes:
        """Marshal an interface pointer: a new IPID for ``obj`` and its OBJREF_STANDARD (MS-DCOM 2.2.18.4).

        SORF_NOPING is set: instead of ping-based garbage collection (MS-DCOM 3.2.6.1) the mock releases
        an object when it is released remotely, when its ``owner`` (the connection whose call created
        it) closes, or when the server stops."""
        with self._lock:
            if oid is None:
                oid = secrets.randbits(63) | 1
            ipid = uuid.uuid4()
            self.exports[ipid] = Export(ipid, iid, oid, obj, owner=owner)
            self._oids.setdefault(oid, []).append(ipid)
        std = StdObjRef(SORF_NOPING, DEFAULT_PUBLIC_REFS, self.oxid, oid, ipid)
        return ObjRefStandard(iid, std, self.bindings()).encode()

    def _release(self, ipid: uuid.UUID, refs: int) -> None:
        with self._lock:
            export = self.exports.get(ipid)
            if export is None:
                return
            export.refs -= refs
            if export.refs > 0:
                return
            del self.exports[ipid]
            siblings = self._oids.get(export.oid, [])
            if ipid in siblings:
                siblings.remove(ipid)
            last = not siblings
            if last:
                self._oids.pop(export.oid, None)
        if last:
            export.obj.released()

    # ----------------------------------------------------------------------- dispatcher

    def supports(self, interface: uuid.UUID, version: tuple[int, int]) -> bool:
        if interface in (IID_IREMOTESCMACTIVATOR, IID_IOBJECTEXPORTER, IID_IREMUNKNOWN, IID_IREMUNKNOWN2):
            return True
        with self._lock:
            return any(e.iid == interface for e in self.exports.values()) or any(
                interface in e.obj.interfaces() for e in self.exports.values())

    def needs_auth(self, interface: uuid.UUID) -> bool:
        return self.require_auth and interface != IID_IOBJECTEXPORTER

    async def call(self, call: RpcCall) -> bytes:
        try:
            if call.interface == IID_IOBJECTEXPORTER:
                return self._exporter(call)
            if call.interface == IID_IREMOTESCMACTIVATOR:
                return await self._activator(call)
            return await self._orpc(call)
        except NdrError as exc:
            log.info("bad stub for opnum %d: %s", call.opnum, exc.reason)
            raise RpcFault(FaultStatus.NCA_S_FAULT_NDR, exc.reason) from exc

    # ----------------------------------------------------------------------- exporter

    def _resolver_bindings(self) -> DualStringArray:
        return self.bindings()

    def _exporter(self, call: RpcCall) -> bytes:
        """IObjectExporter (MS-DCOM 3.1.2.5.1)."""
        r = NdrReader(call.stub)
        w = NdrWriter()
        op = call.opnum
        if op in (0, 4):   # ResolveOxid / ResolveOxid2
            oxid = r.u64("OXID")
            n = r.u16("cRequestedProtseqs")
            r.sized_array("protseqs", 2, n, lambda e: e.u16("protseq"))
            known = oxid == self.oxid
            if w.referent(known):
                self.bindings().write_ndr(w)
            w.guid(self.ipid_remunknown if known else uuid.UUID(int=0))
            w.u32(AuthLevel.CONNECT if known else 0)
            if op == 4:
                w.u16(COM_VERSION[0])
                w.u16(COM_VERSION[1])
            w.u32(S_OK if known else RPC_E_INVALID_OXID)
            return w.getvalue()
        if op == 1:        # SimplePing
            setid = r.u64("setid")
            w.u32(S_OK if setid in self._sets else OR_INVALID_SET)
            return w.getvalue()
        if op == 2:        # ComplexPing
            setid = r.u64("setid")
            r.u16("SequenceNum")
            n_add = r.u16("cAddToSet")
            n_del = r.u16("cDelFromSet")
            has_add = r.referent("AddToSet")
            has_del = r.referent("DelFromSet")
            adds: list[int] = []
            dels: list[int] = []
            if has_add:
                adds = r.sized_array("AddToSet", 8, n_add, lambda e: e.u64("OID"))
            if has_del:
                dels = r.sized_array("DelFromSet", 8, n_del, lambda e: e.u64("OID"))
            with self._lock:
                if setid == 0:
                    setid = secrets.randbits(63) | 1
                members = self._sets.setdefault(setid, set())
                members.update(adds)
                members.difference_update(dels)
            w.u64(setid)
            w.u16(0)
            w.u32(S_OK)
            return w.getvalue()
        if op == 3:        # ServerAlive
            w.u32(S_OK)
            return w.getvalue()
        if op == 5:        # ServerAlive2
            w.u16(COM_VERSION[0])
            w.u16(COM_VERSION[1])
            w.referent(True)
            self._resolver_bindings().write_ndr(w)
            w.u32(0)
            w.u32(S_OK)
            return w.getvalue()
        raise RpcFault(FaultStatus.NCA_S_OP_RNG_ERROR, f"IObjectExporter opnum {op}")

    # ---------------------------------------------------------------------- activator

    async def _activator(self, call: RpcCall) -> bytes:
        """IRemoteSCMActivator::RemoteCreateInstance (MS-DCOM 3.1.2.5.2.3.3)."""
        if call.opnum != 4:
            raise RpcFault(FaultStatus.NCA_S_OP_RNG_ERROR, f"IRemoteSCMActivator opnum {call.opnum}")
        r = NdrReader(call.stub)
        read_orpcthis(r)
        if r.referent("pUnkOuter"):
            r.interface_pointer_body("pUnkOuter")
        blob = r.interface_pointer("pActProperties")
        w = NdrWriter()
        write_orpcthat(w)
        if blob is None:
            w.referent(False)
            w.u32(E_INVALIDARG)
            return w.getvalue()
        request = parse_activation_blob(blob)
        factory = self.factories.get(request.clsid)
        if factory is None:
            w.referent(False)
            w.u32(REGDB_E_CLASSNOTREG)
            return w.getvalue()
        made = factory(call)
        obj = made if not isinstance(made, Awaitable) else await made
        oid = secrets.randbits(63) | 1
        results: list[int] = []
        objrefs: list[bytes | None] = []
        for iid in request.iids:
            if iid in obj.interfaces() or iid == IID_IUNKNOWN:
                objrefs.append(self.export(obj, iid, oid))
                results.append(S_OK)
            else:
                objrefs.append(None)
                results.append(E_NOINTERFACE)
        # authnHint: the lowest level this exporter accepts for ORPC calls (MS-DCOM 2.2.22.2.8.1.1),
        # not the activation's own level; a client picks its level from it (observed: aiowmi binds
        # the object exporter at max(hint, PKT_INTEGRITY)).
        hint = int(AuthLevel.CONNECT) if self.require_auth else int(AuthLevel.NONE)
        reply = build_activation_reply(request.iids, results, objrefs, oxid=self.oxid, bindings=self.bindings(),
                                       ipid_remunknown=self.ipid_remunknown, authn_hint=hint)
        w.referent(True)
        w.interface_pointer_body(reply)
        w.u32(S_OK)
        return w.getvalue()

    # --------------------------------------------------------------------------- ORPC

    async def _orpc(self, call: RpcCall) -> bytes:
        if call.object_uuid is None:
            raise RpcFault(FaultStatus.NCA_S_UNKNOWN_IF, "ORPC call without an IPID")
        r = NdrReader(call.stub)
        read_orpcthis(r)
        w = NdrWriter()
        write_orpcthat(w)
        # The IPID, not the presentation context, selects the interface: a call may travel on a
        # context bound to another ORPC interface of this exporter (MS-DCOM 3.1.1.5.2 dispatches by
        # IPID). Observed Windows behaviour: clients such as aiowmi call IWbemServices and
        # IRemUnknown2 on the context they bound for IWbemLevel1Login, and Windows answers.
        # A context of a non-ORPC interface (activation, resolver) never reaches this point.
        if call.object_uuid == self.ipid_remunknown:
            self._remunknown(call, r, w)
            return w.getvalue()
        with self._lock:
            export = self.exports.get(call.object_uuid)
        if export is None:
            raise RpcFault(CO_E_OBJNOTCONNECTED, f"unknown IPID {call.object_uuid}")
        await export.obj.invoke(export.iid, call.opnum, r, w, call, self)
        return w.getvalue()

    def _remunknown(self, call: RpcCall, r: NdrReader, w: NdrWriter) -> None:
        """IRemUnknown(2) (MS-DCOM 3.1.1.5.6)."""
        op = call.opnum
        if op == 3:        # RemQueryInterface
            ripid = r.guid("ripid")
            r.u32("cRefs")
            n = r.u16("cIids")
            iids = r.sized_array("iids", 16, n, lambda e: e.guid("IID"))
            with self._lock:
                export = self.exports.get(ripid)
            w.referent(True)
            w.u32(len(iids))
            for iid in iids:
                w.align(8)
                if export is not None and (iid in export.obj.interfaces() or iid == IID_IUNKNOWN):
                    ref = self.export(export.obj, iid, export.oid, export.owner)
                    std = ref[24:64]
                    w.u32(S_OK)
                    w.align(8)
                    w.raw(std)
                else:
                    w.u32(E_NOINTERFACE)
                    w.align(8)
                    w.raw(bytes(40))
            w.u32(S_OK if export is not None else RPC_E_INVALID_OXID)
            return
        if op in (4, 5):   # RemAddRef / RemRelease
            n = r.u16("cInterfaceRefs")
            refs = r.sized_array("InterfaceRefs", 24, n,
                                 lambda e: (e.guid("ipid"), e.u32("cPublicRefs"), e.u32("cPrivateRefs")))
            if op == 4:
                w.referent(True)
                w.u32(len(refs))
                for ipid, public, _private in refs:
                    with self._lock:
                        export = self.exports.get(ipid)
                        if export is not None:
                            export.refs += public
                    w.u32(S_OK if export is not None else E_INVALIDARG)
            else:
                for ipid, public, private in refs:
                    self._release(ipid, public + private)
            w.u32(S_OK)
            return
        if op == 6:        # RemQueryInterface2: marshaling by value is not offered
            w.u32(E_NOTIMPL)
            return
        raise RpcFault(FaultStatus.NCA_S_OP_RNG_ERROR, f"IRemUnknown opnum {op}")

    def release_owned(self, owner: object) -> None:
        """Release every interface pointer created by calls on ``owner`` (a closed connection)."""
        with self._lock:
            owned = [(e.ipid, e.refs) for e in self.exports.values() if e.owner is owner]
        for ipid, refs in owned:
            self._release(ipid, refs)

    def close(self) -> None:
        with self._lock:
            exports = list(self.exports.values())
            self.exports.clear()
            self._oids.clear()
        for e in exports:
            e.obj.released()

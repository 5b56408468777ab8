"""The mock's WMI over DCOM role (MS-WMI 3.1): IWbemLevel1Login, IWbemServices, IEnumWbemClassObject.

All objects serve the shared :class:`~harness.cim.store.CimStore` (MS-WMOD 2.4), so a change made
through WMI is seen through WS-Man and the reverse. Objects travel MS-WMIO encoded
(:mod:`harness.wire.wmio`, converted by :mod:`harness.wire.wmio.pywbem_bridge`) inside an
OBJREF_CUSTOM of CLSID_WbemClassObject (MS-WMI 2.2.4.1).

:class:`WmiServer` runs two :class:`~harness.transport.dcerpc_server.RpcServer` listeners: the
endpoint mapper port (135 on Windows; RemoteCreateInstance and IObjectExporter) and the ORPC port
named in the OXID bindings.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pywbem

from harness.aio import wait_event
from harness.auth.users import LocalUser, UserDatabase
from harness.cim.errors import WBEM_HRESULT, CimError, CimStatus
from harness.cim.paths import ObjectPath, parse_object_path
from harness.cim.store import CimStore, StoreChange
from harness.cim.wql import WqlQuery, evaluate_where, parse_wql
from harness.targets.mock import authorization as authz
from harness.targets.mock import wmi_access
from harness.targets.mock.config import MockConfig
from harness.targets.mock.events import EVENT_ANCESTRY, intrinsic_event
from harness.targets.mock.wmi_server_async import (
    MAX_BATCH,
    AsyncCall,
    AsyncCalls,
    SinkError,
    SinkProxy,
    deliver_batches,
)
from harness.transport.dcerpc_dcom import DcomRuntime
from harness.transport.dcerpc_server import RpcCall, RpcConnection, RpcFault, RpcServer
from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter
from harness.wire.dcom.orpc import ObjRefCustom, decode_objref
from harness.wire.wmi.constants import (
    CLSID_WBEM_CLASS_OBJECT,
    CLSID_WBEM_LEVEL1_LOGIN,
    IID_IENUM_WBEM_CLASS_OBJECT,
    IID_IWBEM_CLASS_OBJECT,
    IID_IWBEM_LEVEL1_LOGIN,
    IID_IWBEM_SERVICES,
    MAX_EVENT_QUEUE,
    MAX_NEXT_COUNT,
    WBEM_E_ACCESS_DENIED,
    WBEM_E_CALL_CANCELLED,
    WBEM_E_FAILED,
    WBEM_E_INVALID_CLASS,
    WBEM_E_INVALID_NAMESPACE,
    WBEM_E_INVALID_OBJECT,
    WBEM_E_INVALID_OBJECT_PATH,
    WBEM_E_INVALID_OPERATION,
    WBEM_E_INVALID_PARAMETER,
    WBEM_E_INVALID_QUERY_TYPE,
    WBEM_E_NOT_FOUND,
    WBEM_E_NOT_SUPPORTED,
    WBEM_FLAG_CREATE_ONLY,
    WBEM_FLAG_FORWARD_ONLY,
    WBEM_FLAG_RETURN_IMMEDIATELY,
    WBEM_FLAG_SHALLOW,
    WBEM_FLAG_UPDATE_ONLY,
    WBEM_INFINITE,
    WBEM_S_FALSE,
    WBEM_S_NO_ERROR,
    WBEM_S_TIMEDOUT,
)
from harness.wire.wmi.datapacket import ClassIdMap, PacketType, encode_object_array
from harness.wire.wmi.smartenum import (
    IID_IWBEM_FETCH_SMART_ENUM,
    IID_IWBEM_WCO_SMART_ENUM,
    OPNUM_GET_SMART_ENUM,
    OPNUM_SMART_NEXT,
    SmartNextResponse,
    read_next_request,
    write_get_smart_enum_response,
    write_next_response,
)
from harness.wire.wmio import (
    CimType,
    Decoration,
    Qualifier,
    Value,
    WmiClass,
    WmiInstance,
    WmioEncodeError,
    WmioError,
    WmiProperty,
    decode_encoding_unit,
    encode_encoding_unit,
)
from harness.wire.wmio.pywbem_bridge import (
    from_pywbem_class,
    from_pywbem_instance,
    pywbem_type_of,
    to_pywbem_instance,
)

log = logging.getLogger("wmh.wmi")


_NS_PREFIX = re.compile(r"^(?:\\\\|//)[^\\/]+[\\/]")


def hresult_of(exc: CimError) -> int:
    """The WBEM_E_* HRESULT of a CIM error (MS-WMI 2.2.11)."""
    return WBEM_HRESULT.get(exc.status, WBEM_E_FAILED)


def _wmi_namespace(text: str) -> str:
    """``//./root/cimv2``, ``\\\\.\\root\\cimv2`` or ``root\\cimv2`` -> ``root/cimv2`` (MS-WMI 3.1.4.1.4)."""
    return _NS_PREFIX.sub("", text.strip()).replace("\\", "/").strip("/")


def _read_inout_ptr(r: NdrReader, what: str) -> bytes | None:
    """An ``[in, out, unique] IFoo**`` on input: outer pointer, inner pointer, MInterfacePointer."""
    if not r.referent(what):
        return None
    return r.interface_pointer(what)


def _write_out_ptr(w: NdrWriter, objref: bytes | None) -> None:
    """An ``[out] IFoo**`` (or in/out) on output: outer referent then the interface pointer."""
    if objref is None:
        w.referent(False)
        return
    w.referent(True)
    w.interface_pointer(objref)


def _read_ctx(r: NdrReader) -> None:
    """``[in] IWbemContext* pCtx``: read and ignored (the mock has no context-dependent providers)."""
    r.interface_pointer("pCtx")


class _Objects:
    """Converts store objects to MS-WMIO, caching class conversions per namespace."""

    def __init__(self, store: CimStore, machine: str) -> None:
        self.store = store
        self.machine = machine
        self._classes: dict[tuple[str, str], WmiClass] = {}
        self._lock = threading.Lock()

    def wmi_class(self, ns: str, classname: str) -> WmiClass:
        key = (ns, classname.lower())
        with self._lock:
            cached = self._classes.get(key)
        if cached is not None:
            return cached
        cls = self.store.get_class(ns, classname)
        chain = self.store.superclass_chain(ns, str(cls.classname))
        if chain and chain[0].lower() == str(cls.classname).lower():
            chain = chain[1:]
        wcls = from_pywbem_class(cls, chain)
        with self._lock:
            self._classes[key] = wcls
        return wcls

    def decoration(self, ns: str) -> Decoration:
        return Decoration(self.machine, ns.replace("/", "\\").upper())

    def instance(self, ns: str, inst: pywbem.CIMInstance) -> WmiInstance:
        winst = from_pywbem_instance(inst, self.wmi_class(ns, str(inst.classname)))
        winst.decoration = self.decoration(ns)
        return winst

    def objref(self, obj: WmiClass | WmiInstance) -> bytes:
        """IWbemClassObject marshaled by value: OBJREF_CUSTOM around the EncodingUnit (MS-WMI 2.2.4.1)."""
        return ObjRefCustom(IID_IWBEM_CLASS_OBJECT, CLSID_WBEM_CLASS_OBJECT, encode_encoding_unit(obj)).encode()


def decode_class_object(objref: bytes) -> WmiClass | WmiInstance:
    """The MS-WMIO object inside an IWbemClassObject OBJREF_CUSTOM; NdrError if malformed."""
    ref = decode_objref(objref)
    if not isinstance(ref, ObjRefCustom):
        raise NdrError("IWbemClassObject is not marshaled by value")
    try:
        return decode_encoding_unit(ref.data)
    except WmioError as exc:
        raise NdrError(f"bad MS-WMIO object: {exc}") from exc


# ------------------------------------------------------------------------------ IWbemLevel1Login


@dataclass
class Level1Login:
    """IWbemLevel1Login (MS-WMI 3.1.4.1)."""

    server: WmiServer

    def interfaces(self) -> list[uuid.UUID]:
        return [IID_IWBEM_LEVEL1_LOGIN]

    def released(self) -> None:
        return None

    async def invoke(self, iid: uuid.UUID, opnum: int, r: NdrReader, w: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None:
        if opnum == 3:     # EstablishPosition (3.1.4.1.1)
            r.lpwstr("reserved1")
            r.u32("reserved2")
            w.u32(0)
            w.u32(WBEM_S_NO_ERROR)
            return
        if opnum in (4, 5):   # RequestChallenge / WBEMLogin: "MUST return WBEM_E_NOT_SUPPORTED" (3.1.4.1.2-3)
            raise RpcFault(WBEM_E_NOT_SUPPORTED, "RequestChallenge/WBEMLogin")
        if opnum != 6:
            raise RpcFault(0x1C010002, f"IWbemLevel1Login opnum {opnum}")
        resource = r.lpwstr("wszNetworkResource") or ""
        r.lpwstr("wszPreferredLocale")
        r.i32("lFlags")
        _read_ctx(r)
        try:
            ns = self.server.store.normalize_namespace(_wmi_namespace(resource))
        except CimError:
            w.referent(False)
            w.u32(WBEM_E_INVALID_NAMESPACE)
            return
        try:
            # MS-WMI 3.1.4.1.4 / 5.2: logging on to a namespace needs Enable Account and Remote Enable
            self.server.check(call, ns, authz.READ_RIGHTS)
        except CimError as exc:
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        services = Services(self.server, ns)
        w.interface_pointer(runtime.export(services, IID_IWBEM_SERVICES, owner=call.connection))
        w.u32(WBEM_S_NO_ERROR)


# -------------------------------------------------------------------------- IEnumWbemClassObject


def _principal(call: RpcCall) -> str | None:
    """The security principal of a call (its authenticated user name, case-insensitive)."""
    return call.user.name.lower() if call.user is not None else None


def _next_status(requested: int, returned: int, timed_out: bool) -> int:
    """HRESULT of IEnumWbemClassObject::Next (3.1.4.4.2), shared by IWbemWCOSmartEnum::Next, whose
    objects "MUST be identical" to it (3.1.4.7.1): WBEM_S_NO_ERROR when all ``requested`` came,
    WBEM_S_TIMEDOUT when lTimeout ran out first, else WBEM_S_FALSE (the end of the result)."""
    if returned == requested:
        return WBEM_S_NO_ERROR
    return WBEM_S_TIMEDOUT if timed_out else WBEM_S_FALSE


@dataclass
class Enumerator:
    """IEnumWbemClassObject (MS-WMI 3.1.4.4) over a query result or an event stream.

    The same object implements IWbemFetchSmartEnum (3.1.4.4: "MUST implement"), reached with
    IRemUnknown::RemQueryInterface on its IPID (3.2.4.2.8); ``principal`` is the user whose call
    created it, the only one GetSmartEnum serves (3.1.4.6.1)."""

    server: WmiServer
    items: list[WmiClass | WmiInstance] = field(default_factory=list)
    position: int = 0
    events: EventStream | None = None
    principal: str | None = None

    def interfaces(self) -> list[uuid.UUID]:
        return [IID_IENUM_WBEM_CLASS_OBJECT, IID_IWBEM_FETCH_SMART_ENUM]

    def released(self) -> None:
        if self.events is not None:
            self.events.close()

    async def _take(self, count: int, timeout_ms: int) -> tuple[list[WmiClass | WmiInstance], bool]:
        """Up to ``count`` objects; second value True when the wait timed out first."""
        if self.events is None:
            out = self.items[self.position:self.position + count]
            self.position += len(out)
            return out, False
        return await self.events.take(count, None if timeout_ms == WBEM_INFINITE else timeout_ms / 1000)

    async def invoke(self, iid: uuid.UUID, opnum: int, r: NdrReader, w: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None:
        if iid == IID_IWBEM_FETCH_SMART_ENUM:
            self._get_smart_enum(opnum, w, call, runtime)
            return
        if opnum == 3:     # Reset (3.1.4.4.1)
            if self.events is not None:
                w.u32(WBEM_E_INVALID_OPERATION)   # the mock's choice: an event stream cannot be rewound
                return
            self.position = 0
            w.u32(WBEM_S_NO_ERROR)
            return
        if opnum == 4:     # Next (3.1.4.4.2)
            timeout = r.u32("lTimeout")
            count = r.u32("uCount")
            if count > MAX_NEXT_COUNT:
                w.u32(count)
                w.u32(0)
                w.u32(0)
                w.u32(0)
                w.u32(WBEM_E_INVALID_PARAMETER)
                return
            objs, timed_out = await self._take(count, timeout)
            w.u32(count)                      # conformant varying array of IWbemClassObject*
            w.u32(0)
            w.u32(len(objs))
            refs = [self.server.objects.objref(o) for o in objs]
            for _ in refs:
                w.referent(True)
            for ref in refs:
                w.interface_pointer_body(ref)
            w.u32(len(objs))
            w.u32(_next_status(count, len(objs), timed_out))
            return
        if opnum == 6:     # Clone (3.1.4.4.4)
            if self.events is not None:
                w.referent(False)
                w.u32(WBEM_E_INVALID_OPERATION)
                return
            clone = Enumerator(self.server, list(self.items), self.position, principal=self.principal)
            w.interface_pointer(runtime.export(clone, IID_IENUM_WBEM_CLASS_OBJECT, owner=call.connection))
            w.u32(WBEM_S_NO_ERROR)
            return
        if opnum == 7:     # Skip (3.1.4.4.5)
            timeout = r.u32("lTimeout")
            count = r.u32("nCount")
            objs, timed_out = await self._take(min(count, MAX_NEXT_COUNT), timeout)
            w.u32(_next_status(count, len(objs), timed_out))
            return
        raise RpcFault(WBEM_E_NOT_SUPPORTED, f"IEnumWbemClassObject opnum {opnum}")

    def _get_smart_enum(self, opnum: int, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """IWbemFetchSmartEnum::GetSmartEnum (3.1.4.6.1): an IWbemWCOSmartEnum over this enumerator,
        for the principal that created it only (else WBEM_E_ACCESS_DENIED, output NULL)."""
        if opnum != OPNUM_GET_SMART_ENUM:
            raise RpcFault(WBEM_E_NOT_SUPPORTED, f"IWbemFetchSmartEnum opnum {opnum}")
        if self.principal is not None and _principal(call) != self.principal:
            write_get_smart_enum_response(w, None, WBEM_E_ACCESS_DENIED)
            return
        smart = SmartEnumerator(self)
        write_get_smart_enum_response(w, runtime.export(smart, IID_IWBEM_WCO_SMART_ENUM, owner=call.connection),
                                      WBEM_S_NO_ERROR)


#: Proxies (proxyGUIDs) one IWbemWCOSmartEnum remembers classIDs for; the oldest is forgotten first.
MAX_SMART_PROXIES = 64


@dataclass
class SmartEnumerator:
    """IWbemWCOSmartEnum (MS-WMI 3.1.4.7) over an :class:`Enumerator`: Next returns the same objects
    as IEnumWbemClassObject::Next would (3.1.4.7.1), encoded as an ObjectArray (2.2.14) of packet type
    SMARTENUM_NEXT.

    The classIDs are kept per proxyGUID across Next calls: the first instance of a class a proxy gets
    carries the class (WBEMOBJECT_INSTANCE), later ones, in this or a later call, do not
    (WBEMOBJECT_INSTANCE_NOCLASS). MS-WMI 2.2.14 keeps the GUIDs "for the duration of the method
    call"; keeping them across the calls of one proxyGUID is observed Windows behaviour (aiowmi,
    which interoperates with Windows, asks one object per call and requires the class of a NOCLASS
    object from an earlier call). A client that caches per call only still decodes the first packet."""

    enum: Enumerator
    proxies: OrderedDict[uuid.UUID, ClassIdMap] = field(default_factory=OrderedDict)

    def interfaces(self) -> list[uuid.UUID]:
        return [IID_IWBEM_WCO_SMART_ENUM]

    def released(self) -> None:
        return None

    def _class_ids(self, proxy: uuid.UUID) -> ClassIdMap:
        ids = self.proxies.get(proxy)
        if ids is None:
            ids = self.proxies[proxy] = ClassIdMap()
            while len(self.proxies) > MAX_SMART_PROXIES:
                self.proxies.popitem(last=False)
        return ids

    async def invoke(self, iid: uuid.UUID, opnum: int, r: NdrReader, w: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None:
        if opnum != OPNUM_SMART_NEXT:
            raise RpcFault(WBEM_E_NOT_SUPPORTED, f"IWbemWCOSmartEnum opnum {opnum}")
        req = read_next_request(r)
        if req.count > MAX_NEXT_COUNT:
            write_next_response(w, SmartNextResponse(0, None, WBEM_E_INVALID_PARAMETER))
            return
        objs, timed_out = await self.enum._take(req.count, req.timeout)
        status = _next_status(req.count, len(objs), timed_out)
        if not objs:
            write_next_response(w, SmartNextResponse(0, None, status))
            return
        try:
            packet = encode_object_array(objs, packet_type=PacketType.SMARTENUM_NEXT,
                                         class_ids=self._class_ids(req.proxy_guid))
        except WmioEncodeError as exc:
            log.warning("IWbemWCOSmartEnum::Next: cannot encode the objects: %s", exc)
            write_next_response(w, SmartNextResponse(0, None, WBEM_E_FAILED))
            return
        write_next_response(w, SmartNextResponse(len(objs), packet, status))


# -------------------------------------------------------------------------------- event streams


class EventStream:
    """Intrinsic instance events of the store that match one WQL event query (MS-WMI 3.1.4.3.20,
    semisynchronous delivery; MS-WMOD 2.4 shared repository)."""

    def __init__(self, server: WmiServer, namespace: str, query: WqlQuery) -> None:
        self.server = server
        self.namespace = namespace
        self.query = query
        self._queue: deque[WmiInstance] = deque(maxlen=MAX_EVENT_QUEUE)
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = server.store.add_listener(self._on_change)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _isa(self, classname: str, ancestor: str) -> bool:
        chain = EVENT_ANCESTRY.get(classname.lower())
        if chain is not None:
            return ancestor.lower() in (c.lower() for c in chain)
        try:
            return self.server.store.is_subclass(self.namespace, classname, ancestor)
        except CimError:
            return False

    def _on_change(self, change: StoreChange) -> None:
        if change.namespace != self.namespace:
            return
        event = intrinsic_event(change, time.time())
        if not self._isa(str(event.classname), self.query.classname):
            return
        if self.query.where is not None and not evaluate_where(self.query.where, event, self._isa):
            return
        encoded = self._encode(event, change)
        self._loop.call_soon_threadsafe(self._push, encoded)

    def _encode(self, event: pywbem.CIMInstance, change: StoreChange) -> WmiInstance:
        """The event object: class __Instance*Event (derivation from WMI's system classes)."""
        objects = self.server.objects
        name = str(event.classname)
        chain = [*list(EVENT_ANCESTRY[name.lower()][1:]), "__IndicationRelated", "__SystemClass"]
        props = []
        values: dict[str, Value] = {}
        for prop_name in ("PreviousInstance", "TargetInstance"):
            if prop_name not in event.properties:
                continue
            inner = event[prop_name]
            props.append(WmiProperty(prop_name, CimType.OBJECT, qualifiers=[
                Qualifier("CIMTYPE", CimType.STRING, "object", False, 0x03)], class_of_origin=len(chain) - 2))
            values[prop_name] = objects.instance(self.namespace, inner)
        props.append(WmiProperty("TIME_CREATED", CimType.UINT64, qualifiers=[
            Qualifier("CIMTYPE", CimType.STRING, "uint64", False, 0x03)], class_of_origin=len(chain) - 2))
        values["TIME_CREATED"] = int(event["TIME_CREATED"])
        cls = WmiClass(name, derivation=chain, properties=props)
        return WmiInstance(cls, values, decoration=objects.decoration(self.namespace))

    def _push(self, item: WmiInstance) -> None:
        self._queue.append(item)
        self._ready.set()

    async def take_some(self, limit: int) -> list[WmiInstance]:
        """Wait for at least one event, then return up to ``limit`` (push delivery)."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        out: list[WmiInstance] = []
        while self._queue and len(out) < limit:
            out.append(self._queue.popleft())
        return out

    async def take(self, count: int, timeout: float | None) -> tuple[list[WmiClass | WmiInstance], bool]:
        deadline = None if timeout is None else self._loop.time() + timeout
        while len(self._queue) < count:
            remaining = None if deadline is None else deadline - self._loop.time()
            if remaining is not None and remaining <= 0:
                break
            self._ready.clear()
            if not await wait_event(self._ready, remaining):
                break
        out: list[WmiClass | WmiInstance] = []
        while self._queue and len(out) < count:
            out.append(self._queue.popleft())
        return out, len(out) < count


# ---------------------------------------------------------------------------------- IWbemServices


@dataclass
class Services:
    """IWbemServices bound to one namespace (MS-WMI 3.1.4.3)."""

    server: WmiServer
    namespace: str

    def interfaces(self) -> list[uuid.UUID]:
        return [IID_IWBEM_SERVICES]

    def released(self) -> None:
        return None

    @property
    def store(self) -> CimStore:
        return self.server.store

    def _parse_path(self, path: str) -> ObjectPath:
        """An object path (MS-WMI 2.2.1.1) of this namespace; a namespace prefix must name this one
        (``\\\\.\\root\\cimv2:...``, the local server form WMI clients send most, included)."""
        parsed = parse_object_path(path)
        namespace = parsed.namespace
        if namespace:
            ns = self.store.normalize_namespace(_wmi_namespace(namespace))
            if ns != self.namespace:
                raise CimError(CimStatus.INVALID_NAMESPACE, f"object path names namespace {namespace}")
        return parsed

    def _object(self, path: str) -> WmiClass | WmiInstance:
        """GetObject semantics (3.1.4.3.4): a class path or an instance path."""
        parsed = self._parse_path(path)
        if not parsed.is_instance:
            return self.server.objects.wmi_class(self.namespace, parsed.classname)
        name = self.store.resolve_path(self.namespace, parsed)
        return self.server.objects.instance(self.namespace, self.store.get_instance(self.namespace, name))

    async def invoke(self, iid: uuid.UUID, opnum: int, r: NdrReader, w: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None:
        handler = {3: self._open_namespace, 4: self._cancel_async_call, 6: self._get_object, 14: self._put_instance,
                   16: self._delete_instance, 18: self._create_instance_enum, 20: self._exec_query,
                   21: self._exec_query_async, 22: self._exec_notification_query,
                   23: self._exec_notification_query_async, 24: self._exec_method}.get(opnum)
        if handler is None:
            raise RpcFault(WBEM_E_NOT_SUPPORTED, f"IWbemServices opnum {opnum}")
        await handler(r, w, call, runtime)

    async def _open_namespace(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """OpenNamespace (3.1.4.3.1): a namespace relative to this one."""
        name = r.bstr("strNamespace") or ""
        r.i32("lFlags")
        _read_ctx(r)
        _read_inout_ptr(r, "ppWorkingNamespace")
        _read_inout_ptr(r, "ppResult")
        try:
            ns = self.store.normalize_namespace(f"{self.namespace}/{_wmi_namespace(name)}")
        except CimError:
            w.referent(False)
            w.referent(False)
            w.u32(WBEM_E_INVALID_NAMESPACE)
            return
        try:
            self.server.check(call, ns, authz.READ_RIGHTS)   # the namespace opened has its own DACL
        except CimError as exc:
            w.referent(False)
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        _write_out_ptr(w, runtime.export(Services(self.server, ns), IID_IWBEM_SERVICES,
                                       owner=call.connection))
        w.referent(False)
        w.u32(WBEM_S_NO_ERROR)

    async def _get_object(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        path = r.bstr("strObjectPath") or ""
        r.i32("lFlags")
        _read_ctx(r)
        _read_inout_ptr(r, "ppObject")
        _read_inout_ptr(r, "ppCallResult")
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            obj = self._object(path)
        except CimError as exc:
            w.referent(False)
            w.referent(False)
            w.u32(hresult_of(exc) if exc.status is not CimStatus.INVALID_PARAMETER else WBEM_E_INVALID_OBJECT_PATH)
            return
        _write_out_ptr(w, self.server.objects.objref(obj))
        w.referent(False)
        w.u32(WBEM_S_NO_ERROR)

    def _check_write(self, call: RpcCall) -> None:
        """PutInstance / DeleteInstance: Full Write or Partial Write on the namespace (MS-WMI 5.2)."""
        wmi_access.check_write(self.store, self.server.machine, call.user, self.namespace)

    async def _put_instance(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """PutInstance (3.1.4.3.12): create or update per WBEM_FLAG_CREATE_ONLY / UPDATE_ONLY."""
        raw = r.interface_pointer("pInst")
        flags = r.i32("lFlags")
        _read_ctx(r)
        _read_inout_ptr(r, "ppCallResult")
        try:
            self._check_write(call)
            if raw is None:
                raise CimError(CimStatus.INVALID_PARAMETER, "pInst is NULL")
            obj = decode_class_object(raw)
            if not isinstance(obj, WmiInstance):
                raise CimError(CimStatus.INVALID_PARAMETER, "pInst is a class, not an instance")
            inst = to_pywbem_instance(obj, include_defaults=False)
            path = self.store.path_of(self.namespace, inst)
            inst.path = path
            exists = True
            try:
                self.store.get_instance(self.namespace, path)
            except CimError as exc:
                if exc.status is not CimStatus.NOT_FOUND:
                    raise
                exists = False
            mode = flags & (WBEM_FLAG_CREATE_ONLY | WBEM_FLAG_UPDATE_ONLY)
            if exists and mode == WBEM_FLAG_CREATE_ONLY:
                raise CimError(CimStatus.ALREADY_EXISTS, "instance exists (WBEM_FLAG_CREATE_ONLY)")
            if not exists and mode == WBEM_FLAG_UPDATE_ONLY:
                raise CimError(CimStatus.NOT_FOUND, "instance does not exist (WBEM_FLAG_UPDATE_ONLY)")
            if exists:
                self.store.modify_instance(self.namespace, inst, list(inst.properties))
            else:
                self.store.create_instance(self.namespace, inst)
        except CimError as exc:
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        except NdrError:
            w.referent(False)
            w.u32(WBEM_E_INVALID_OBJECT)
            return
        w.referent(False)
        w.u32(WBEM_S_NO_ERROR)

    async def _delete_instance(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """DeleteInstance (3.1.4.3.14)."""
        path = r.bstr("strObjectPath") or ""
        r.i32("lFlags")
        _read_ctx(r)
        _read_inout_ptr(r, "ppCallResult")
        try:
            self._check_write(call)
            self.store.delete_instance(self.namespace, self.store.resolve_path(self.namespace, self._parse_path(path)))
        except CimError as exc:
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        w.referent(False)
        w.u32(WBEM_S_NO_ERROR)

    def _enum_reply(self, w: NdrWriter, runtime: DcomRuntime, items: list[WmiClass | WmiInstance],
                    call: RpcCall) -> None:
        enum = Enumerator(self.server, items, principal=_principal(call))
        w.interface_pointer(runtime.export(enum, IID_IENUM_WBEM_CLASS_OBJECT, owner=call.connection))
        w.u32(WBEM_S_NO_ERROR)

    async def _create_instance_enum(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """CreateInstanceEnum (3.1.4.3.16)."""
        classname = r.bstr("strFilter") or ""
        flags = r.i32("lFlags")
        _read_ctx(r)
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            insts = self.store.enumerate_instances(self.namespace, classname, deep=not flags & WBEM_FLAG_SHALLOW)
            items: list[WmiClass | WmiInstance] = [self.server.objects.instance(self.namespace, i) for i in insts]
        except CimError as exc:
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        self._enum_reply(w, runtime, items, call)

    async def _exec_query(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """ExecQuery (3.1.4.3.18): WQL only (WBEM_E_INVALID_QUERY_TYPE otherwise)."""
        language = r.bstr("strQueryLanguage") or ""
        query = r.bstr("strQuery") or ""
        r.i32("lFlags")
        _read_ctx(r)
        if language.upper() != "WQL":
            w.referent(False)
            w.u32(WBEM_E_INVALID_QUERY_TYPE)
            return
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            found = self.store.exec_query(self.namespace, query)
            items: list[WmiClass | WmiInstance] = [self.server.objects.instance(self.namespace, i) for i in found]
        except CimError as exc:
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        self._enum_reply(w, runtime, items, call)

    async def _exec_notification_query(self, r: NdrReader, w: NdrWriter, call: RpcCall,
                                       runtime: DcomRuntime) -> None:
        """ExecNotificationQuery (3.1.4.3.20): lFlags MUST be WBEM_FLAG_RETURN_IMMEDIATELY |
        WBEM_FLAG_FORWARD_ONLY; the enumerator delivers intrinsic events as they happen."""
        language = r.bstr("strQueryLanguage") or ""
        text = r.bstr("strQuery") or ""
        flags = r.i32("lFlags")
        _read_ctx(r)
        required = WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY
        if language.upper() != "WQL":
            status = WBEM_E_INVALID_QUERY_TYPE
        elif flags & required != required:
            status = WBEM_E_INVALID_PARAMETER
        else:
            try:
                self.server.check(call, self.namespace, authz.READ_RIGHTS)
                query = parse_wql(text)
                if query.kind != "select" or query.classname.lower() not in EVENT_ANCESTRY:
                    status = WBEM_E_INVALID_CLASS
                else:
                    stream = EventStream(self.server, self.namespace, query)
                    enum = Enumerator(self.server, events=stream, principal=_principal(call))
                    w.interface_pointer(runtime.export(enum, IID_IENUM_WBEM_CLASS_OBJECT, owner=call.connection))
                    w.u32(WBEM_S_NO_ERROR)
                    return
            except CimError as exc:
                status = hresult_of(exc)
        w.referent(False)
        w.u32(status)

    @staticmethod
    def _read_async_query(r: NdrReader) -> tuple[str, SinkProxy] | int:
        """The WQL text and response sink of ExecQueryAsync / ExecNotificationQueryAsync (3.1.4.3.19,
        3.1.4.3.21), or the HRESULT refusing them: no sink, or a language other than WQL."""
        language = r.bstr("strQueryLanguage") or ""
        text = r.bstr("strQuery") or ""
        r.i32("lFlags")
        _read_ctx(r)
        handler = r.interface_pointer("pResponseHandler")
        if handler is None:
            return WBEM_E_INVALID_PARAMETER
        if language.upper() != "WQL":
            return WBEM_E_INVALID_QUERY_TYPE
        return text, SinkProxy.from_objref(handler)

    def _start(self, sink: SinkProxy, call: RpcCall, work: Callable[[AsyncCall], Awaitable[None]]) -> None:
        op = AsyncCall(sink, call.connection)
        calls = self.server.async_calls

        async def run() -> None:
            try:
                await work(op)
            except SinkError as exc:
                log.info("asynchronous call abandoned: %s", exc)
            finally:
                calls.discard(op)
                if not op.cancelled:
                    await sink.close()

        calls.add(op)
        op.task = asyncio.get_running_loop().create_task(run())

    async def _exec_query_async(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """ExecQueryAsync (3.1.4.3.19): the result goes to the sink with Indicate, then SetStatus."""
        read = self._read_async_query(r)
        if isinstance(read, int):
            w.u32(read)
            return
        text, sink = read
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            found = self.store.exec_query(self.namespace, text)
            refs = [self.server.objects.objref(self.server.objects.instance(self.namespace, i)) for i in found]
        except CimError as exc:
            w.u32(hresult_of(exc))
            return

        async def work(op: AsyncCall) -> None:
            await deliver_batches(sink, refs)

        self._start(sink, call, work)
        w.u32(WBEM_S_NO_ERROR)

    async def _exec_notification_query_async(self, r: NdrReader, w: NdrWriter, call: RpcCall,
                                             runtime: DcomRuntime) -> None:
        """ExecNotificationQueryAsync (3.1.4.3.21): each matching event is pushed with Indicate until
        CancelAsyncCall (3.1.4.3.2)."""
        read = self._read_async_query(r)
        if isinstance(read, int):
            w.u32(read)
            return
        text, sink = read
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            query = parse_wql(text)
        except CimError as exc:
            w.u32(hresult_of(exc))
            return
        if query.kind != "select" or query.classname.lower() not in EVENT_ANCESTRY:
            w.u32(WBEM_E_INVALID_CLASS)
            return
        stream = EventStream(self.server, self.namespace, query)

        async def work(op: AsyncCall) -> None:
            try:
                while not op.cancelled:
                    events = await stream.take_some(MAX_BATCH)
                    await sink.indicate([self.server.objects.objref(e) for e in events])
            finally:
                stream.close()

        self._start(sink, call, work)
        w.u32(WBEM_S_NO_ERROR)

    async def _cancel_async_call(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """CancelAsyncCall (3.1.4.3.2): stop the call delivering to pSink; it gets SetStatus(WBEM_E_CALL_CANCELLED)."""
        raw = r.interface_pointer("pSink")
        if raw is None:
            w.u32(WBEM_E_INVALID_PARAMETER)
            return
        op = self.server.async_calls.get(SinkProxy.from_objref(raw).ipid)
        if op is None:
            w.u32(WBEM_E_NOT_FOUND)
            return
        await self.server.async_calls.cancel(op, WBEM_E_CALL_CANCELLED)
        w.u32(WBEM_S_NO_ERROR)

    async def _exec_method(self, r: NdrReader, w: NdrWriter, call: RpcCall, runtime: DcomRuntime) -> None:
        """ExecMethod (3.1.4.3.22): in parameters and out parameters as __PARAMETERS instances."""
        path = r.bstr("strObjectPath") or ""
        method = r.bstr("strMethodName") or ""
        r.i32("lFlags")
        _read_ctx(r)
        raw_in = r.interface_pointer("pInParams")
        _read_inout_ptr(r, "ppOutParams")
        _read_inout_ptr(r, "ppCallResult")
        try:
            self.server.check(call, self.namespace, authz.READ_RIGHTS)
            params: dict[str, object] = {}
            if raw_in is not None:
                inparams = decode_class_object(raw_in)
                if not isinstance(inparams, WmiInstance):
                    raise CimError(CimStatus.INVALID_PARAMETER, "pInParams is not an instance")
                for prop in to_pywbem_instance(inparams, include_defaults=False).properties.values():
                    params[str(prop.name)] = prop.value
            parsed = self._parse_path(path)
            target: pywbem.CIMInstanceName | str
            if parsed.is_instance:
                target = self.store.resolve_path(self.namespace, parsed)
                classname = str(target.classname)
            else:
                target = classname = parsed.classname
            wcls = self.server.objects.wmi_class(self.namespace, classname)
            meth = next((m for m in wcls.methods if m.name.lower() == method.lower()), None)
            if meth is None:
                raise CimError(CimStatus.METHOD_NOT_FOUND, f"{classname} has no method {method}")
            wmi_access.check_method(self.store, self.server.machine, call.user, self.namespace, classname, meth.name)
            if classname.lower() == "__systemsecurity" and meth.name.lower() == "getcalleraccessrights":
                # the caller's own rights under the namespace DACL (WMI __SystemSecurity reference)
                rights = wmi_access.caller_rights(self.store, self.server.machine, call.user, self.namespace)
                rv, outs = 0, {"Rights": pywbem.Sint32(rights)}
            else:
                rv, outs = self.store.invoke_method(self.namespace, target, meth.name, params)
        except CimError as exc:
            w.referent(False)
            w.referent(False)
            w.u32(hresult_of(exc))
            return
        except NdrError:
            w.referent(False)
            w.referent(False)
            w.u32(WBEM_E_INVALID_OBJECT)
            return
        out_cls = meth.out_signature or WmiClass("__PARAMETERS")
        values: dict[str, Value] = {}
        for prop in out_cls.properties:
            value = rv if prop.name == "ReturnValue" else outs.get(prop.name)
            inst = pywbem.CIMInstance("__PARAMETERS", properties={
                prop.name: pywbem.CIMProperty(prop.name, value, type=pywbem_type_of(prop.cim_type),
                                              is_array=prop.is_array)})
            values[prop.name] = from_pywbem_instance(inst, out_cls).values[prop.name]
        _write_out_ptr(w, self.server.objects.objref(WmiInstance(out_cls, values)))
        w.referent(False)
        w.u32(WBEM_S_NO_ERROR)


# -------------------------------------------------------------------------------------- server


class WmiServer:
    """WMI over DCOM for one CIM store: endpoint mapper port + ORPC port (MS-WMI 2.1, MS-DCOM 2.1)."""

    def __init__(self, store: CimStore, users: UserDatabase, *, host: str = "127.0.0.1", epm_port: int = 0,
                 orpc_port: int = 0, machine: str = "WMH-MOCK01") -> None:
        self.store = store
        self.users = users
        self.host = host
        self.machine = machine
        self.objects = _Objects(store, machine)
        self.async_calls = AsyncCalls()
        self.runtime = DcomRuntime(host=host, machine=machine)
        self.runtime.register_class(CLSID_WBEM_LEVEL1_LOGIN, lambda call: Level1Login(self))
        self.epm = RpcServer(self.runtime, users, host=host, port=epm_port, hostname=machine)
        self.orpc = RpcServer(self.runtime, users, host=host, port=orpc_port, hostname=machine)
        self.orpc.on_connection = self._connection_closed

    def check(self, call: RpcCall, namespace: str, desired: int) -> None:
        """CimError ACCESS_DENIED (WBEM_E_ACCESS_DENIED, MS-WMI 2.2.11) unless the caller of ``call``
        holds ``desired`` and Remote Enable under the DACL of ``namespace`` (MS-WMOD 2.9.3, MS-WMI 5.2;
        :mod:`harness.targets.mock.wmi_access`)."""
        wmi_access.check(self.store, self.machine, call.user, namespace, desired)

    async def _connection_closed(self, connection: RpcConnection) -> None:
        self.runtime.release_owned(connection)
        for op in self.async_calls.of_owner(connection):
            await self.async_calls.cancel(op, None)

    @property
    def epm_port(self) -> int:
        return self.epm.port

    @property
    def orpc_port(self) -> int:
        return self.orpc.port

    async def start(self) -> tuple[int, int]:
        """Listen on both ports; returns (endpoint mapper port, ORPC port)."""
        await self.orpc.start()
        self.runtime.orpc_port = self.orpc.port
        try:
            await self.epm.start()
        except OSError:
            await self.orpc.close()
            raise
        return self.epm.port, self.orpc.port

    async def close(self) -> None:
        await self.async_calls.close()
        await self.epm.close()
        await self.orpc.close()
        self.runtime.close()


def users_of(config: MockConfig) -> UserDatabase:
    """The mock's local users (administrator + read-only users, MS-WMOD 2.9.3), as the WS-Man role has them."""
    users = [LocalUser(config.username, config.password)]
    users += [LocalUser(name, password, read_only=True) for name, password in config.read_only_users.items()]
    return UserDatabase(users, machine=config.machine)


async def start_wmi_server(store: CimStore, config: MockConfig) -> WmiServer:
    """Start the WMI role on ``config.host``: endpoint mapper ``config.epm_port``, ORPC ``config.wmi_port``."""
    server = WmiServer(store, users_of(config), host=config.host, epm_port=config.epm_port,
                       orpc_port=config.wmi_port, machine=config.machine)
    await server.start()
    return server


async def run_with_wmi(store: CimStore, config: MockConfig, main: Awaitable[None]) -> None:
    """Run ``main`` (the WS-Man server) with the WMI role beside it (``wmh serve``). When the WMI ports
    cannot be bound (port 135 needs privileges) WS-Man still runs and the reason is logged."""
    wmi: WmiServer | None = None
    if config.wmi_enabled:
        try:
            wmi = await start_wmi_server(store, config)
            log.warning("WMI over DCOM: endpoint mapper %s:%d, ORPC port %d", config.host, wmi.epm_port,
                        wmi.orpc_port)
        except OSError as exc:
            log.warning("WMI over DCOM not started: cannot listen on %s:%d/%d: %s", config.host, config.epm_port,
                        config.wmi_port, exc)
    try:
        await main
    finally:
        if wmi is not None:
            await wmi.close()
            wmi.users.close()

"""WMI over DCOM client of the harness (MS-WMI 3.2; MS-DCOM 3.2).

``await WmiClient.connect(host, epm_port, username, password)`` activates CLSID_WbemLevel1Login
with IRemoteSCMActivator::RemoteCreateInstance on the endpoint mapper port (MS-DCOM 3.2.4.1.1),
connects to the OXID binding it names, calls IWbemLevel1Login::NTLMLogin (MS-WMI 3.2.3) and then
offers the IWbemServices calls the suites need. Objects come back as pywbem instances/classes
(MS-WMIO decoded, :mod:`harness.wire.wmio.pywbem_bridge`); failures raise :class:`WmiError` with the
HRESULT (MS-WMI 2.2.11).

Enumerators (IEnumWbemClassObject) read with IEnumWbemClassObject::Next, or, with ``smart=True``,
the way Windows clients do (MS-WMI 3.2.4.2.8): IRemUnknown::RemQueryInterface for
IWbemFetchSmartEnum, GetSmartEnum, then IWbemWCOSmartEnum::Next, whose objects arrive as an
ObjectArray with each class sent once (MS-WMI 2.2.14; :mod:`harness.wire.wmi.datapacket`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pywbem

from harness.auth.users import UserDatabase
from harness.cim.paths import format_object_path
from harness.transport.dcerpc_client import Credentials, RpcClient, RpcClientError
from harness.transport.dcerpc_dcom import DcomRuntime
from harness.transport.dcerpc_server import RpcCall, RpcFault, RpcServer
from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter
from harness.wire.dcom.orpc import (
    IID_IREMOTESCMACTIVATOR,
    IID_IREMUNKNOWN,
    ObjRefCustom,
    ObjRefStandard,
    OrpcThis,
    build_activation_request,
    decode_objref,
    parse_activation_reply,
    read_orpcthat,
    write_orpcthis,
)
from harness.wire.dcom.pdu import AuthLevel
from harness.wire.wmi.constants import (
    CLSID_WBEM_CLASS_OBJECT,
    CLSID_WBEM_LEVEL1_LOGIN,
    IID_IENUM_WBEM_CLASS_OBJECT,
    IID_IWBEM_CLASS_OBJECT,
    IID_IWBEM_LEVEL1_LOGIN,
    IID_IWBEM_OBJECT_SINK,
    IID_IWBEM_SERVICES,
    WBEM_FLAG_FORWARD_ONLY,
    WBEM_FLAG_RETURN_IMMEDIATELY,
    WBEM_INFINITE,
    WBEM_S_FALSE,
    WBEM_S_NO_ERROR,
    WBEM_S_TIMEDOUT,
    WBEM_STATUS_COMPLETE,
)
from harness.wire.wmi.datapacket import ClassCache, DataPacketError, ObjectArray, PacketType, decode_object_array
from harness.wire.wmi.smartenum import (
    IID_IWBEM_FETCH_SMART_ENUM,
    IID_IWBEM_WCO_SMART_ENUM,
    OPNUM_GET_SMART_ENUM,
    OPNUM_SMART_NEXT,
    SmartNextRequest,
    read_get_smart_enum_response,
    read_next_response,
    write_next_request,
)
from harness.wire.wmio import WmiClass, WmiInstance, WmioError, decode_encoding_unit, encode_encoding_unit
from harness.wire.wmio.pywbem_bridge import (
    from_pywbem_instance,
    pywbem_type_of,
    to_pywbem_class,
    to_pywbem_instance,
)

_ADDR = re.compile(r"^(?P<host>[^\[]+)\[(?P<port>\d+)\]$")


class WmiError(Exception):
    """A WMI call failed: ``hresult`` is the WBEMSTATUS / RPC status (MS-WMI 2.2.11)."""

    def __init__(self, operation: str, hresult: int, detail: str = "") -> None:
        super().__init__(f"{operation} failed: 0x{hresult:08x}" + (f" ({detail})" if detail else ""))
        self.operation = operation
        self.hresult = hresult


def _orpc() -> NdrWriter:
    w = NdrWriter()
    write_orpcthis(w, OrpcThis())
    return w


def _ipid_of(objref: bytes) -> uuid.UUID:
    ref = decode_objref(objref)
    if not isinstance(ref, ObjRefStandard):
        raise NdrError("expected a standard object reference")
    return ref.std.ipid


def _class_object(objref: bytes) -> WmiClass | WmiInstance:
    ref = decode_objref(objref)
    if not isinstance(ref, ObjRefCustom):
        raise NdrError("IWbemClassObject is not marshaled by value")
    try:
        return decode_encoding_unit(ref.data)
    except WmioError as exc:
        raise NdrError(f"bad MS-WMIO object: {exc}") from exc


def _call_result_and_status(r: NdrReader) -> int:
    """Read past the optional ppCallResult (IWbemCallResult, MS-WMI 3.1.4.3: only semisynchronous
    calls return one) and return the call's HRESULT."""
    if r.referent("ppCallResult"):
        r.interface_pointer("ppCallResult")
    return r.u32("HRESULT")


def to_pywbem(obj: WmiClass | WmiInstance) -> pywbem.CIMInstance | pywbem.CIMClass:
    return to_pywbem_instance(obj) if isinstance(obj, WmiInstance) else to_pywbem_class(obj)


def _timeout_ms(timeout: float | None) -> int:
    return WBEM_INFINITE if timeout is None else int(timeout * 1000)


@dataclass
class WmiEnumerator:
    """An IEnumWbemClassObject (MS-WMI 3.2.4.2): ``next`` pulls objects, semisynchronously.

    ``smart=True`` reads through IWbemWCOSmartEnum (MS-WMI 3.2.4.2.8): on the first ``next`` the
    enumerator asks IRemUnknown::RemQueryInterface for IWbemFetchSmartEnum; when the server refuses,
    the client "MUST ignore the error" and uses IEnumWbemClassObject::Next (``optimized`` False),
    else it calls GetSmartEnum and IWbemWCOSmartEnum::Next from then on (``optimized`` True), with
    one random proxyGUID and one classID cache (``class_cache``) for all its calls. ``last_packet``
    is the last ObjectArray received."""

    client: WmiClient
    ipid: uuid.UUID
    done: bool = field(default=False)
    smart: bool = False
    optimized: bool | None = None
    smart_ipid: uuid.UUID | None = None
    proxy_guid: uuid.UUID = field(default_factory=uuid.uuid4)
    class_cache: ClassCache = field(default_factory=ClassCache)
    last_packet: ObjectArray | None = None

    async def next(self, count: int = 1, timeout: float | None = None) -> list[WmiClass | WmiInstance]:
        """IEnumWbemClassObject::Next, or IWbemWCOSmartEnum::Next when ``smart`` (and the server
        offers it); ``timeout`` None = WBEM_INFINITE. Sets ``done`` on WBEM_S_FALSE."""
        if self.smart and self.optimized is None:
            await self._open_smart()
        if self.optimized:
            return await self._next_smart(count, timeout)
        w = _orpc()
        w.u32(_timeout_ms(timeout))
        w.u32(count)
        r = await self.client._call(IID_IENUM_WBEM_CLASS_OBJECT, 4, w, self.ipid)
        r.count("apObjects max count", 0)
        r.u32("apObjects offset")
        n = r.count("apObjects", 4)
        present = [r.referent("IWbemClassObject") for _ in range(n)]
        refs = [r.interface_pointer_body() for p in present if p]
        r.u32("puReturned")
        status = r.u32("HRESULT")
        if status not in (WBEM_S_NO_ERROR, WBEM_S_FALSE, WBEM_S_TIMEDOUT):
            raise WmiError("IEnumWbemClassObject::Next", status)
        if status == WBEM_S_FALSE:
            self.done = True
        return [_class_object(ref) for ref in refs]

    async def _open_smart(self) -> None:
        """RemQueryInterface(IWbemFetchSmartEnum) then GetSmartEnum (MS-WMI 3.2.4.2.8, 3.1.4.6.1)."""
        status, fetch, refs = await self.client.query_interface(self.ipid, IID_IWBEM_FETCH_SMART_ENUM)
        if status != 0 or fetch is None:
            self.optimized = False       # "the client MUST ignore the error" (3.2.4.2.8)
            return
        try:
            r = await self.client._call(IID_IWBEM_FETCH_SMART_ENUM, OPNUM_GET_SMART_ENUM, _orpc(), fetch)
            ref, status = read_get_smart_enum_response(r)
        finally:
            await self.client.release(fetch, refs)
        if status != WBEM_S_NO_ERROR or ref is None:
            raise WmiError("IWbemFetchSmartEnum::GetSmartEnum", status)
        self.smart_ipid = _ipid_of(ref)
        self.optimized = True

    async def _next_smart(self, count: int, timeout: float | None) -> list[WmiClass | WmiInstance]:
        """IWbemWCOSmartEnum::Next (3.1.4.7.1): the ObjectArray decoded with this enumerator's classID
        cache; puReturned and pdwBuffSize must agree with it."""
        assert self.smart_ipid is not None
        w = _orpc()
        write_next_request(w, SmartNextRequest(self.proxy_guid, _timeout_ms(timeout), count))
        r = await self.client._call(IID_IWBEM_WCO_SMART_ENUM, OPNUM_SMART_NEXT, w, self.smart_ipid)
        resp = read_next_response(r)
        if resp.hresult not in (WBEM_S_NO_ERROR, WBEM_S_FALSE, WBEM_S_TIMEDOUT):
            raise WmiError("IWbemWCOSmartEnum::Next", resp.hresult)
        if resp.hresult == WBEM_S_FALSE:
            self.done = True
        objs: list[WmiClass | WmiInstance] = []
        if resp.buffer is not None:
            try:
                self.last_packet = decode_object_array(resp.buffer, cache=self.class_cache,
                                                       packet_type=PacketType.SMARTENUM_NEXT)
            except DataPacketError as exc:
                raise NdrError(f"bad ObjectArray: {exc}") from exc
            objs = self.last_packet.objects
        if len(objs) != resp.returned:
            raise NdrError(f"puReturned {resp.returned} but the ObjectArray holds {len(objs)} objects")
        return objs

    async def all(self, batch: int = 50) -> list[WmiClass | WmiInstance]:
        out: list[WmiClass | WmiInstance] = []
        while not self.done:
            out += await self.next(batch)
        return out

    async def reset(self) -> None:
        r = await self.client._call(IID_IENUM_WBEM_CLASS_OBJECT, 3, _orpc(), self.ipid)
        status = r.u32("HRESULT")
        if status != WBEM_S_NO_ERROR:
            raise WmiError("IEnumWbemClassObject::Reset", status)
        self.done = False

    async def release(self) -> None:
        if self.smart_ipid is not None:
            await self.client.release(self.smart_ipid)
            self.smart_ipid = None
        await self.client.release(self.ipid)


class _SinkObject:
    """IWbemObjectSink (MS-WMI 3.1.4.2) implemented by the client: Indicate and SetStatus feed a queue."""

    def __init__(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self.queue = queue

    def interfaces(self) -> list[uuid.UUID]:
        return [IID_IWBEM_OBJECT_SINK]

    def released(self) -> None:
        return None

    async def invoke(self, iid: uuid.UUID, opnum: int, r: NdrReader, w: NdrWriter, call: RpcCall,
                     runtime: DcomRuntime) -> None:
        if opnum == 3:     # Indicate (3.1.4.2.1)
            count = r.i32("lObjectCount")
            n = r.count("apObjArray", 4)
            if n != count:
                raise NdrError("lObjectCount differs from the array")
            present = [r.referent("IWbemClassObject") for _ in range(n)]
            objs = [_class_object(r.interface_pointer_body()) for p in present if p]
            self.queue.put_nowait(("indicate", objs))
            w.u32(WBEM_S_NO_ERROR)
            return
        if opnum == 4:     # SetStatus (3.1.4.2.2)
            flags = r.i32("lFlags")
            hresult = r.u32("hResult")
            r.bstr("strParam")
            r.interface_pointer("pObjParam")
            if flags == WBEM_STATUS_COMPLETE:
                self.queue.put_nowait(("status", hresult))
            w.u32(WBEM_S_NO_ERROR)
            return
        raise RpcFault(0x1C010002, f"IWbemObjectSink opnum {opnum}")


class WmiSink:
    """A local object exporter with one IWbemObjectSink, for asynchronous calls (MS-WMI 3.2.4.1).

    It listens on ``host`` (env ``WMH_EVENT_SINK_HOST`` overrides; by default the local address of
    the connection to the target, so the target can reach it) and accepts unauthenticated calls.
    """

    def __init__(self, host: str) -> None:
        self.host = os.environ.get("WMH_EVENT_SINK_HOST") or host
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.runtime = DcomRuntime(host=self.host, require_auth=False)
        self._users = UserDatabase([])
        self._server = RpcServer(self.runtime, self._users, host=self.host)
        self.objref = b""
        self.status: int | None = None

    async def start(self) -> WmiSink:
        port = await self._server.start()
        self.runtime.orpc_port = port
        self.objref = self.runtime.export(_SinkObject(self.queue), IID_IWBEM_OBJECT_SINK)
        return self

    async def close(self) -> None:
        await self._server.close()
        self.runtime.close()
        self._users.close()

    async def next(self, timeout: float) -> list[WmiClass | WmiInstance] | None:
        """The objects of the next Indicate; None once SetStatus(WBEM_STATUS_COMPLETE) arrived
        (its HRESULT is then in ``status``). TimeoutError when nothing came within ``timeout``."""
        if self.status is not None and self.queue.empty():
            return None
        kind, value = await asyncio.wait_for(self.queue.get(), timeout)
        if kind == "status":
            self.status = int(value)
            return None
        return list(value)

    async def collect(self, timeout: float) -> tuple[list[WmiClass | WmiInstance], int]:
        """Every object until SetStatus(WBEM_STATUS_COMPLETE); returns them and the final HRESULT."""
        out: list[WmiClass | WmiInstance] = []
        while True:
            batch = await self.next(timeout)
            if batch is None:
                assert self.status is not None
                return out, self.status
            out += batch


class WmiClient:
    """An IWbemServices session over DCOM."""

    def __init__(self, orpc: RpcClient, services: uuid.UUID, ipid_remunknown: uuid.UUID, namespace: str) -> None:
        self._orpc = orpc
        self.services = services
        self.ipid_remunknown = ipid_remunknown
        self.namespace = namespace

    @classmethod
    async def connect(cls, host: str, epm_port: int, username: str, password: str, *,
                      namespace: str = "root/cimv2", auth_level: int = AuthLevel.PKT_PRIVACY,
                      timeout: float = 30.0) -> WmiClient:
        creds = Credentials(username, password, auth_level)
        epm = RpcClient(host, epm_port, creds, timeout=timeout)
        await epm.connect()
        try:
            w = NdrWriter()
            write_orpcthis(w, OrpcThis(flags=1))
            w.referent(False)   # pUnkOuter
            w.interface_pointer(build_activation_request(CLSID_WBEM_LEVEL1_LOGIN, [IID_IWBEM_LEVEL1_LOGIN]))
            stub = await epm.call(IID_IREMOTESCMACTIVATOR, 4, w.getvalue())
        except RpcClientError as exc:
            raise WmiError("RemoteCreateInstance", exc.status or 0x80070005, exc.reason) from exc
        finally:
            await epm.close()
        r = NdrReader(stub)
        read_orpcthat(r)
        blob = r.interface_pointer("ppActProperties")
        status = r.u32("HRESULT")
        if status != 0 or blob is None:
            raise WmiError("RemoteCreateInstance", status)
        reply = parse_activation_reply(blob)
        if not reply.objrefs or reply.objrefs[0] is None or reply.results[0] != 0:
            raise WmiError("RemoteCreateInstance", reply.results[0] if reply.results else 0x80004002)
        login_ipid = _ipid_of(reply.objrefs[0])
        binding = next((b.address for b in reply.bindings.strings if b.tower_id == 0x07), None)
        match = _ADDR.match(binding or "")
        if match is None:
            raise WmiError("RemoteCreateInstance", 0x80070776, f"no ncacn_ip_tcp binding in {binding!r}")
        orpc = RpcClient(host, int(match["port"]), creds, timeout=timeout)
        await orpc.connect()
        try:
            w = _orpc()
            w.lpwstr("//./" + namespace)
            w.lpwstr(None)
            w.i32(0)
            w.interface_pointer(None)
            try:
                r = NdrReader(await orpc.call(IID_IWBEM_LEVEL1_LOGIN, 6, w.getvalue(), login_ipid))
            except RpcClientError as exc:
                raise WmiError("IWbemLevel1Login::NTLMLogin", exc.status or 0x80070005, exc.reason) from exc
            read_orpcthat(r)
            ref = r.interface_pointer("ppNamespace")
            status = r.u32("HRESULT")
            if status != 0 or ref is None:
                raise WmiError("IWbemLevel1Login::NTLMLogin", status)
            client = cls(orpc, _ipid_of(ref), reply.ipid_remunknown, namespace)
            await client.release(login_ipid)
            return client
        except BaseException:
            await orpc.close()
            raise

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.release(self.services)
        await self._orpc.close()

    async def __aenter__(self) -> WmiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, iid: uuid.UUID, opnum: int, w: NdrWriter, ipid: uuid.UUID) -> NdrReader:
        try:
            stub = await self._orpc.call(iid, opnum, w.getvalue(), ipid)
        except RpcClientError as exc:
            raise WmiError(f"opnum {opnum}", exc.status or 0x80010108, exc.reason) from exc
        r = NdrReader(stub)
        read_orpcthat(r)
        return r

    async def release(self, ipid: uuid.UUID, refs: int = 5) -> None:
        """IRemUnknown::RemRelease of ``refs`` public references (MS-DCOM 3.1.1.5.6.1.3); 5 is what
        the interface pointers of an OBJREF grant here."""
        w = _orpc()
        w.u16(1)
        w.u32(1)
        w.guid(ipid)
        w.u32(refs)
        w.u32(0)
        r = await self._call(IID_IREMUNKNOWN, 5, w, self.ipid_remunknown)
        r.u32("HRESULT")

    async def query_interface(self, ipid: uuid.UUID, iid: uuid.UUID) -> tuple[int, uuid.UUID | None, int]:
        """IRemUnknown::RemQueryInterface (MS-DCOM 3.1.1.5.6.1.1) of one interface, one reference:
        (the REMQIRESULT hResult, the new IPID or None, public references granted)."""
        w = _orpc()
        w.guid(ipid)
        w.u32(1)                  # cRefs
        w.u16(1)                  # cIids
        w.u32(1)                  # iids conformance
        w.guid(iid)
        r = await self._call(IID_IREMUNKNOWN, 3, w, self.ipid_remunknown)
        if not r.referent("ppQIResults"):
            return r.u32("HRESULT") or 0x80004002, None, 0
        if r.count("ppQIResults", 48) != 1:
            raise NdrError("RemQueryInterface answered another number of REMQIRESULTs than asked")
        r.align(8)
        result = r.u32("hResult")
        r.align(8)                # STDOBJREF (MS-DCOM 2.2.18.2)
        r.u32("flags")
        refs = r.u32("cPublicRefs")
        r.u64("oxid")
        r.u64("oid")
        new_ipid = r.guid("ipid")
        status = r.u32("HRESULT")
        if status != 0:
            return status, None, 0
        return result, (new_ipid if result == 0 else None), refs

    # ---------------------------------------------------------------------------- IWbemServices

    async def get_object(self, path: str) -> pywbem.CIMInstance | pywbem.CIMClass:
        """IWbemServices::GetObject (MS-WMI 3.1.4.3.4)."""
        return to_pywbem(await self._get_object(path))

    async def _get_object(self, path: str) -> WmiClass | WmiInstance:
        """IWbemServices::GetObject (MS-WMI 3.1.4.3.4), synchronous call (lFlags 0, no context, no
        call result): the decoded class or instance; WmiError on a failing HRESULT or no object."""
        w = _orpc()
        w.bstr(path)
        w.i32(0)
        w.interface_pointer(None)
        w.referent(False)
        w.referent(False)
        r = await self._call(IID_IWBEM_SERVICES, 6, w, self.services)
        ref = r.interface_pointer("ppObject") if r.referent("ppObject") else None
        status = _call_result_and_status(r)
        if status != 0 or ref is None:
            raise WmiError("GetObject", status, path)
        return _class_object(ref)

    async def _enum_call(self, opnum: int, w: NdrWriter, what: str, smart: bool = False) -> WmiEnumerator:
        r = await self._call(IID_IWBEM_SERVICES, opnum, w, self.services)
        ref = r.interface_pointer("ppEnum")
        status = r.u32("HRESULT")
        if status != 0 or ref is None:
            raise WmiError(what, status)
        return WmiEnumerator(self, _ipid_of(ref), smart=smart)

    async def exec_query_enum(self, query: str, flags: int = WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY,
                              language: str = "WQL", *, smart: bool = False) -> WmiEnumerator:
        """IWbemServices::ExecQuery (MS-WMI 3.1.4.3.18); ``smart``: read through IWbemWCOSmartEnum."""
        w = _orpc()
        w.bstr(language)
        w.bstr(query)
        w.i32(flags)
        w.interface_pointer(None)
        return await self._enum_call(20, w, "ExecQuery", smart)

    async def exec_query(self, query: str, language: str = "WQL", *, smart: bool = False) -> list[pywbem.CIMInstance]:
        enum = await self.exec_query_enum(query, language=language, smart=smart)
        try:
            objs = await enum.all()
        finally:
            await enum.release()
        return [to_pywbem_instance(o) for o in objs if isinstance(o, WmiInstance)]

    async def exec_notification_query(self, query: str, *, smart: bool = False) -> WmiEnumerator:
        """IWbemServices::ExecNotificationQuery, semisynchronous (MS-WMI 3.1.4.3.20)."""
        w = _orpc()
        w.bstr("WQL")
        w.bstr(query)
        w.i32(WBEM_FLAG_RETURN_IMMEDIATELY | WBEM_FLAG_FORWARD_ONLY)
        w.interface_pointer(None)
        return await self._enum_call(22, w, "ExecNotificationQuery", smart)

    async def _async_call(self, opnum: int, query: str, what: str) -> WmiSink:
        sink = await WmiSink(self._orpc.local_host).start()
        try:
            w = _orpc()
            w.bstr("WQL")
            w.bstr(query)
            w.i32(0)
            w.interface_pointer(None)
            w.interface_pointer(sink.objref)
            r = await self._call(IID_IWBEM_SERVICES, opnum, w, self.services)
            status = r.u32("HRESULT")
            if status != WBEM_S_NO_ERROR:
                raise WmiError(what, status)
        except BaseException:
            await sink.close()
            raise
        return sink

    async def exec_query_async(self, query: str) -> WmiSink:
        """IWbemServices::ExecQueryAsync (MS-WMI 3.1.4.3.19): results arrive at the returned sink."""
        return await self._async_call(21, query, "ExecQueryAsync")

    async def exec_notification_query_async(self, query: str) -> WmiSink:
        """IWbemServices::ExecNotificationQueryAsync (MS-WMI 3.1.4.3.21): events pushed to the sink."""
        return await self._async_call(23, query, "ExecNotificationQueryAsync")

    async def cancel_async_call(self, sink: WmiSink) -> None:
        """IWbemServices::CancelAsyncCall (MS-WMI 3.1.4.3.2) of the call delivering to ``sink``."""
        w = _orpc()
        w.interface_pointer(sink.objref)
        r = await self._call(IID_IWBEM_SERVICES, 4, w, self.services)
        status = r.u32("HRESULT")
        if status != WBEM_S_NO_ERROR:
            raise WmiError("CancelAsyncCall", status)

    async def put_instance(self, instance: pywbem.CIMInstance, flags: int = 0) -> None:
        """IWbemServices::PutInstance (MS-WMI 3.1.4.3.12); the class is fetched to type the values."""
        cls = await self._wmi_class(str(instance.classname))
        obj = from_pywbem_instance(instance, cls)
        ref = ObjRefCustom(IID_IWBEM_CLASS_OBJECT, CLSID_WBEM_CLASS_OBJECT, encode_encoding_unit(obj)).encode()
        w = _orpc()
        w.interface_pointer(ref)
        w.i32(flags)
        w.interface_pointer(None)
        w.referent(False)
        r = await self._call(IID_IWBEM_SERVICES, 14, w, self.services)
        status = _call_result_and_status(r)
        if status != 0:
            raise WmiError("PutInstance", status)

    async def delete_instance(self, path: str | pywbem.CIMInstanceName) -> None:
        """IWbemServices::DeleteInstance (MS-WMI 3.1.4.3.14)."""
        text = path if isinstance(path, str) else format_object_path(path, with_namespace=False)
        w = _orpc()
        w.bstr(text)
        w.i32(0)
        w.interface_pointer(None)
        w.referent(False)
        r = await self._call(IID_IWBEM_SERVICES, 16, w, self.services)
        status = _call_result_and_status(r)
        if status != 0:
            raise WmiError("DeleteInstance", status, text)

    async def exec_method(self, path: str, method: str, params: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
        """IWbemServices::ExecMethod (MS-WMI 3.1.4.3.22): returns the out parameters incl. ReturnValue."""
        classname = path.split(".", 1)[0].split("=", 1)[0]
        cls = await self._wmi_class(classname)
        meth = next((m for m in cls.methods if m.name.lower() == method.lower()), None)
        in_ref = None
        if params:
            if meth is None or meth.in_signature is None:
                raise WmiError("ExecMethod", 0x80041008, f"{method} takes no parameters")
            sig = meth.in_signature
            inst = pywbem.CIMInstance("__PARAMETERS", properties={
                k: pywbem.CIMProperty(k, v, type=pywbem_type_of(sig.property(k).cim_type)) for k, v in params.items()})
            obj = from_pywbem_instance(inst, meth.in_signature)
            in_ref = ObjRefCustom(IID_IWBEM_CLASS_OBJECT, CLSID_WBEM_CLASS_OBJECT, encode_encoding_unit(obj)).encode()
        w = _orpc()
        w.bstr(path)
        w.bstr(method)
        w.i32(0)
        w.interface_pointer(None)
        w.interface_pointer(in_ref)
        w.referent(False)
        w.referent(False)
        r = await self._call(IID_IWBEM_SERVICES, 24, w, self.services)
        out_ref = r.interface_pointer("ppOutParams") if r.referent("ppOutParams") else None
        status = _call_result_and_status(r)
        if status != 0:
            raise WmiError("ExecMethod", status, f"{path}.{method}")
        if out_ref is None:
            return {}
        out = _class_object(out_ref)
        if not isinstance(out, WmiInstance):
            return {}
        return {str(p.name): p.value for p in to_pywbem_instance(out).properties.values()}

    async def _wmi_class(self, classname: str) -> WmiClass:
        obj = await self._get_object(classname)
        if not isinstance(obj, WmiClass):
            raise WmiError("GetObject", 0x80041010, f"{classname} is not a class")
        return obj

"""Asynchronous IWbemServices calls of the mock: results and events pushed to the client's
IWbemObjectSink (MS-WMI 3.1.4.3.19 ExecQueryAsync, 3.1.4.3.21 ExecNotificationQueryAsync,
3.1.4.3.2 CancelAsyncCall; the sink: IWbemObjectSink::Indicate 3.1.4.2.1, SetStatus 3.1.4.2.2).

The sink arrives as an OBJREF_STANDARD whose resolver bindings name the client's object exporter;
the mock resolves the sink's OXID there with IObjectExporter::ResolveOxid2 (MS-DCOM 3.2.4.1.1.1),
connects to the returned binding and calls the sink by its IPID. Callbacks are made at
RPC_C_AUTHN_LEVEL_NONE (the mock has no identity of its own to authenticate with).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.transport.dcerpc_client import RpcClient, RpcClientError
from harness.wire.dcom.ndr import NdrError, NdrReader, NdrWriter
from harness.wire.dcom.orpc import (
    COM_VERSION,
    IID_IOBJECTEXPORTER,
    ObjRefStandard,
    OrpcThis,
    decode_objref,
    read_dualstringarray_ndr,
    read_orpcthat,
    write_orpcthis,
)
from harness.wire.wmi.constants import IID_IWBEM_OBJECT_SINK, WBEM_S_NO_ERROR, WBEM_STATUS_COMPLETE

log = logging.getLogger("wmh.wmi")

_ADDR = re.compile(r"^(?P<host>[^\[]+)\[(?P<port>\d+)\]$")
CALLBACK_TIMEOUT = 10.0
MAX_BATCH = 64


class SinkError(Exception):
    """The client's sink cannot be reached or refused a call."""


def _endpoint(address: str) -> tuple[str, int]:
    match = _ADDR.match(address)
    if match is None:
        raise SinkError(f"string binding {address!r} has no host[port] form")
    return match["host"], int(match["port"])


@dataclass
class SinkProxy:
    """A connection to one client IWbemObjectSink."""

    objref: ObjRefStandard
    _client: RpcClient | None = None

    @classmethod
    def from_objref(cls, data: bytes) -> SinkProxy:
        ref = decode_objref(data)
        if not isinstance(ref, ObjRefStandard):
            raise NdrError("pResponseHandler is not a standard object reference")
        return cls(ref)

    @property
    def ipid(self) -> uuid.UUID:
        return self.objref.std.ipid

    async def _resolve(self) -> tuple[str, int]:
        """ResolveOxid2 at the sink's resolver bindings (MS-DCOM 3.1.2.5.1.4)."""
        errors: list[str] = []
        for binding in self.objref.resolver.strings:
            if binding.tower_id != 0x07:
                continue
            try:
                host, port = _endpoint(binding.address)
                async with RpcClient(host, port, timeout=CALLBACK_TIMEOUT) as resolver:
                    w = NdrWriter()
                    w.u64(self.objref.std.oxid)
                    w.u16(1)
                    w.u32(1)
                    w.u16(0x07)
                    r = NdrReader(await resolver.call(IID_IOBJECTEXPORTER, 4, w.getvalue()))
                bindings = read_dualstringarray_ndr(r) if r.referent("ppdsaOxidBindings") else None
                r.guid("ipidRemUnknown")
                r.u32("authnHint")
                r.u16("COMVERSION")
                r.u16("COMVERSION")
                status = r.u32("HRESULT")
                if status != 0 or bindings is None:
                    raise SinkError(f"ResolveOxid2 failed: 0x{status:08x}")
                for found in bindings.strings:
                    if found.tower_id == 0x07:
                        return _endpoint(found.address)
            except (OSError, RpcClientError, NdrError, SinkError, TimeoutError) as exc:
                errors.append(f"{binding.address}: {exc}")
        raise SinkError("cannot resolve the sink's OXID: " + "; ".join(errors or ["no ncacn_ip_tcp binding"]))

    async def _call(self, opnum: int, w: NdrWriter) -> int:
        if self._client is None:
            host, port = await self._resolve()
            client = RpcClient(host, port, timeout=CALLBACK_TIMEOUT)
            await client.connect()
            self._client = client
        try:
            r = NdrReader(await self._client.call(IID_IWBEM_OBJECT_SINK, opnum, w.getvalue(), self.ipid))
            read_orpcthat(r)
            return r.u32("HRESULT")
        except (OSError, RpcClientError, NdrError, TimeoutError) as exc:
            raise SinkError(f"IWbemObjectSink opnum {opnum}: {exc}") from exc

    async def indicate(self, objrefs: Sequence[bytes]) -> int:
        """IWbemObjectSink::Indicate (MS-WMI 3.1.4.2.1)."""
        w = NdrWriter()
        write_orpcthis(w, OrpcThis(COM_VERSION))
        w.i32(len(objrefs))
        w.u32(len(objrefs))
        for _ in objrefs:
            w.referent(True)
        for ref in objrefs:
            w.interface_pointer_body(ref)
        return await self._call(3, w)

    async def set_status(self, hresult: int, flags: int = WBEM_STATUS_COMPLETE) -> int:
        """IWbemObjectSink::SetStatus (MS-WMI 3.1.4.2.2)."""
        w = NdrWriter()
        write_orpcthis(w, OrpcThis(COM_VERSION))
        w.i32(flags)
        w.u32(hresult)
        w.bstr(None)
        w.interface_pointer(None)
        return await self._call(4, w)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


@dataclass
class AsyncCall:
    """One asynchronous operation delivering to one sink; ``owner`` is the connection that started it."""

    sink: SinkProxy
    owner: object
    task: asyncio.Task[None] | None = None
    cancelled: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class AsyncCalls:
    """Registry of running asynchronous calls by sink IPID (for CancelAsyncCall)."""

    def __init__(self) -> None:
        self._calls: dict[uuid.UUID, AsyncCall] = {}

    def add(self, call: AsyncCall) -> None:
        self._calls[call.sink.ipid] = call

    def discard(self, call: AsyncCall) -> None:
        if self._calls.get(call.sink.ipid) is call:
            del self._calls[call.sink.ipid]

    def get(self, ipid: uuid.UUID) -> AsyncCall | None:
        return self._calls.get(ipid)

    def of_owner(self, owner: object) -> list[AsyncCall]:
        return [c for c in self._calls.values() if c.owner is owner]

    def __len__(self) -> int:
        return len(self._calls)

    async def cancel(self, call: AsyncCall, status: int | None) -> None:
        """Stop ``call``; with ``status`` tell the sink with SetStatus (CancelAsyncCall, MS-WMI 3.1.4.3.2)."""
        call.cancelled = True
        if call.task is not None and not call.task.done():
            call.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call.task
        self.discard(call)
        if status is not None:
            with contextlib.suppress(SinkError):
                await call.sink.set_status(status)
        await call.sink.close()

    async def close(self) -> None:
        for call in list(self._calls.values()):
            await self.cancel(call, None)


async def deliver_batches(sink: SinkProxy, objrefs: Sequence[bytes]) -> None:
    """Indicate ``objrefs`` in batches, then SetStatus(WBEM_STATUS_COMPLETE, WBEM_S_NO_ERROR)."""
    for start in range(0, len(objrefs), MAX_BATCH):
        await sink.indicate(objrefs[start:start + MAX_BATCH])
    await sink.set_status(WBEM_S_NO_ERROR)

"""The asyncio DCE/RPC server and the DCOM object exporter answer every PDU, malformed ones with a
bind_nak or a fault (C706 12.6.4.5, 12.6.4.7), and keep serving."""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator

import pytest

from harness.auth.users import LocalUser, UserDatabase
from harness.transport.dcerpc_dcom import DcomRuntime
from harness.transport.dcerpc_server import RpcServer
from harness.wire.dcom.ndr import NdrReader, NdrWriter
from harness.wire.dcom.orpc import IID_IOBJECTEXPORTER, IID_IREMOTESCMACTIVATOR, read_dualstringarray_ndr
from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Bind,
    BindAck,
    BindNak,
    ContextElement,
    ContextResult,
    Fault,
    FaultStatus,
    Pdu,
    PduBuffer,
    PfcFlags,
    PType,
    Request,
    Response,
    SecTrailer,
    decode_pdu,
    encode_pdu,
    fragment_stub,
)

BOTH = PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[RpcServer, DcomRuntime]]:
    users = UserDatabase([LocalUser("u", "p")])
    runtime = DcomRuntime(orpc_port=4242)
    server = RpcServer(runtime, users)
    await server.start()
    yield server, runtime
    await server.close()
    users.close()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = PduBuffer()
        self.pending: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> Pdu:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            assert data, "server closed the connection"
            self.pending += self.framer.feed(data)
        return decode_pdu(self.pending.pop(0))

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(65536), 5) == b""

    async def close(self) -> None:
        self.writer.close()


async def _connect(server: RpcServer) -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    return Conn(reader, writer)


def _bind(iface: uuid.UUID, ptype: PType = PType.BIND, ctx: int = 0, call: int = 1) -> bytes:
    return encode_pdu(Pdu(ptype, call, Bind(contexts=[ContextElement(ctx, (iface, 0, 0), [NDR_SYNTAX])])))


async def test_server_alive2_without_authentication(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    await conn.send(_bind(IID_IOBJECTEXPORTER))
    ack = await conn.recv()
    assert isinstance(ack.body, BindAck) and ack.body.results[0].result == ContextResult.ACCEPTANCE
    assert ack.body.secondary_address == str(server.port)
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 5, b""))))
    resp = await conn.recv()
    assert isinstance(resp.body, Response)
    r = NdrReader(resp.body.stub)
    assert (r.u16(), r.u16()) == (5, 7)
    assert r.referent()
    bindings = read_dualstringarray_ndr(r)
    assert bindings.strings[0].address == "127.0.0.1[4242]"
    r.u32()
    assert r.u32() == 0
    await conn.close()


async def test_fragmented_request_is_reassembled(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, runtime = endpoint
    conn = await _connect(server)
    await conn.send(_bind(IID_IOBJECTEXPORTER))
    await conn.recv()
    w = NdrWriter()
    w.u64(runtime.oxid)
    w.u16(1)
    w.u32(1)
    w.u16(7)
    stub = w.getvalue()
    for flags, piece in fragment_stub(stub, 8):
        await conn.send(encode_pdu(Pdu(PType.REQUEST, 3, Request(0, 4, piece, None, len(stub)), flags)))
    resp = await conn.recv()
    assert isinstance(resp.body, Response) and resp.body.stub[-4:] == b"\x00\x00\x00\x00"
    r = NdrReader(resp.body.stub)
    assert r.referent()
    read_dualstringarray_ndr(r)
    assert r.guid() == runtime.ipid_remunknown
    await conn.close()


async def test_malformed_and_out_of_order_pdus(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    # request before any bind: no presentation context
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 1, Request(0, 5, b""))))
    fault = await conn.recv()
    assert isinstance(fault.body, Fault) and fault.body.status == FaultStatus.NCA_S_UNKNOWN_IF
    # a bind proposing an unknown interface is acknowledged with a provider rejection
    await conn.send(_bind(uuid.uuid4()))
    ack = await conn.recv()
    assert isinstance(ack.body, BindAck) and ack.body.results[0].result == ContextResult.PROVIDER_REJECTION
    # a second bind on the association is refused (alter_context is the way to add contexts)
    await conn.send(_bind(IID_IOBJECTEXPORTER, call=2))
    nak = await conn.recv()
    assert isinstance(nak.body, BindNak)
    await conn.send(_bind(IID_IOBJECTEXPORTER, PType.ALTER_CONTEXT, ctx=3, call=3))
    alter = await conn.recv()
    assert alter.ptype is PType.ALTER_CONTEXT_RESP
    # bad NDR in a request: fault, connection stays usable
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 4, Request(3, 4, b"\x01\x02"))))
    bad = await conn.recv()
    assert isinstance(bad.body, Fault) and bad.body.status == FaultStatus.NCA_S_FAULT_NDR
    # unknown opnum
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 5, Request(3, 77, b""))))
    op = await conn.recv()
    assert isinstance(op.body, Fault) and op.body.status == FaultStatus.NCA_S_OP_RNG_ERROR
    # undecodable PDU body with a valid frame: fault
    await conn.send(b"\x05\x00\x00\x03\x10\x00\x00\x00\x14\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00")
    proto = await conn.recv()
    assert isinstance(proto.body, Fault) and proto.body.status == FaultStatus.NCA_S_PROTO_ERROR
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 6, Request(3, 5, b""))))
    assert isinstance((await conn.recv()).body, Response)
    await conn.close()


async def test_bad_rpc_version_bind_gets_nak(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    data = bytearray(_bind(IID_IOBJECTEXPORTER))
    data[0] = 4
    await conn.send(bytes(data))
    nak = await conn.recv()
    assert isinstance(nak.body, BindNak)
    await conn.close()


async def test_activation_needs_authentication(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    await conn.send(_bind(IID_IREMOTESCMACTIVATOR))
    await conn.recv()
    await conn.send(encode_pdu(Pdu(PType.REQUEST, 2, Request(0, 4, b"\x00" * 64))))
    fault = await conn.recv()
    assert isinstance(fault.body, Fault) and fault.body.status == FaultStatus.RPC_S_ACCESS_DENIED
    await conn.close()


async def test_garbage_ntlm_token_in_bind_gets_nak(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    bind = Bind(contexts=[ContextElement(0, (IID_IREMOTESCMACTIVATOR, 0, 0), [NDR_SYNTAX])])
    await conn.send(encode_pdu(Pdu(PType.BIND, 1, bind, BOTH, SecTrailer(10, 6, 0, 1, b"not ntlm at all"))))
    nak = await conn.recv()
    assert isinstance(nak.body, BindNak) and nak.body.reason == 8
    await conn.close()


async def test_unframeable_stream_closes_only_that_connection(endpoint: tuple[RpcServer, DcomRuntime]) -> None:
    server, _ = endpoint
    conn = await _connect(server)
    await conn.send(b"\x05\x00\x0b\x03\x10\x00\x00\x00" + struct.pack("<H", 4) + b"\x00" * 6)
    assert await conn.closed()
    other = await _connect(server)
    await other.send(_bind(IID_IOBJECTEXPORTER))
    assert isinstance((await other.recv()).body, BindAck)
    await other.close()

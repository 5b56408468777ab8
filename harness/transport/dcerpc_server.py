"""Connection-oriented DCE/RPC server over asyncio TCP (ncacn_ip_tcp; C706 12; MS-RPCE 3.3.3).

One :class:`RpcServer` listens on one port and hands each complete, authenticated, reassembled
call to an :class:`RpcDispatcher`. Per connection it keeps the presentation contexts negotiated
by bind / alter_context (several per connection, C706 12.6.4.3), the security contexts by
``auth_context_id`` (MS-RPCE 3.3.1.5.2) and the fragment reassembly state. Malformed input is
answered with a bind_nak (bind phase) or a fault PDU (C706 12.6.4.7) and never crashes the server;
a byte stream that cannot be framed closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.auth.users import LocalUser, UserDatabase
from harness.transport.dcerpc_auth import SIGNATURE_SIZE, RpcAuthError, ServerSecurity
from harness.wire.dcom.pdu import (
    BTFN_PREFIX,
    NDR_SYNTAX,
    Auth3,
    AuthLevel,
    Bind,
    BindAck,
    BindNak,
    ContextResult,
    ContextResultEntry,
    Fault,
    FaultStatus,
    NakReason,
    PduBuffer,
    PduError,
    PfcFlags,
    ProviderReason,
    PType,
    Reassembler,
    Request,
    Response,
    SecTrailer,
    decode_pdu,
    encode_pdu,
    fragment_stub,
)
from harness.wire.dcom.pdu import Pdu as RpcPdu

log = logging.getLogger("wmh.dcerpc")

MAX_FRAG = 5840           # Windows' default max_xmit_frag / max_recv_frag (observed Windows behaviour)
MIN_FRAG = 1432           # C706 12.6.3.2: the minimum every implementation must accept
MAX_CALL = 8 * 1024 * 1024


class RpcFault(Exception):
    """Raised by a dispatcher to answer a call with a fault PDU carrying ``status``."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason or f"fault 0x{status:08x}")
        self.status = status
        self.reason = reason


@dataclass
class RpcCall:
    """One reassembled request as the dispatcher sees it."""

    interface: uuid.UUID
    opnum: int
    stub: bytes
    object_uuid: uuid.UUID | None
    user: LocalUser | None
    auth_level: int
    peer: str
    connection: RpcConnection


class RpcDispatcher(Protocol):
    def supports(self, interface: uuid.UUID, version: tuple[int, int]) -> bool: ...
    def needs_auth(self, interface: uuid.UUID) -> bool: ...
    async def call(self, call: RpcCall) -> bytes: ...


@dataclass
class RpcConnection:
    """State of one client connection (C706 12.4 association)."""

    server: RpcServer
    peer: str
    contexts: dict[int, uuid.UUID] = field(default_factory=dict)
    security: dict[int, ServerSecurity] = field(default_factory=dict)
    max_xmit: int = MAX_FRAG
    assoc_group: int = 0
    reassembler: Reassembler = field(default_factory=lambda: Reassembler(MAX_CALL))
    closed: bool = False
    bound: bool = False

    # -------------------------------------------------------------------------- binding

    def _negotiate(self, bind: Bind) -> list[ContextResultEntry]:
        results = []
        for ctx in bind.contexts:
            abstract, major, minor = ctx.abstract_syntax
            if any(str(t[0]).startswith(BTFN_PREFIX) for t in ctx.transfer_syntaxes):
                # bind time feature negotiation (MS-RPCE 3.3.1.5.3): no optional feature supported
                results.append(ContextResultEntry(ContextResult.NEGOTIATE_ACK, 0))
            elif not self.server.dispatcher.supports(abstract, (major, minor)):
                results.append(ContextResultEntry(ContextResult.PROVIDER_REJECTION,
                                                  ProviderReason.ABSTRACT_SYNTAX_NOT_SUPPORTED))
            elif NDR_SYNTAX not in ctx.transfer_syntaxes:
                results.append(ContextResultEntry(ContextResult.PROVIDER_REJECTION,
                                                  ProviderReason.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED))
            else:
                self.contexts[ctx.context_id] = abstract
                results.append(ContextResultEntry(ContextResult.ACCEPTANCE, 0, NDR_SYNTAX))
        return results

    def _bind(self, pdu: RpcPdu) -> list[bytes]:
        body = pdu.body
        assert isinstance(body, Bind)
        is_alter = pdu.ptype is PType.ALTER_CONTEXT
        if not is_alter and self.bound:
            # C706 12.6.4.3: one bind per association; later contexts come with alter_context
            return [self._nak(pdu.call_id, NakReason.REASON_NOT_SPECIFIED)]
        if (body.max_recv_frag < MIN_FRAG or body.max_xmit_frag < MIN_FRAG) and not is_alter:
            return [self._nak(pdu.call_id, NakReason.LOCAL_LIMIT_EXCEEDED)]
        if not body.contexts:
            if is_alter:
                return [self._fault(pdu.call_id, FaultStatus.NCA_S_PROTO_ERROR)]
            return [self._nak(pdu.call_id, NakReason.REASON_NOT_SPECIFIED)]
        reply_auth: SecTrailer | None = None
        if pdu.auth is not None:
            try:
                reply_auth = self._auth_leg(pdu.auth)
            except RpcAuthError as exc:
                log.info("bind authentication refused: %s", exc.reason)
                if is_alter:
                    return [self._fault(pdu.call_id, FaultStatus.RPC_S_ACCESS_DENIED)]
                return [self._nak(pdu.call_id, NakReason.AUTHENTICATION_TYPE_NOT_RECOGNIZED)]
        if not is_alter:
            self.max_xmit = max(MIN_FRAG, min(MAX_FRAG, body.max_recv_frag))
            self.assoc_group = body.assoc_group_id or self.server.new_assoc_group()
        results = self._negotiate(body)
        self.bound = True
        ack = BindAck(self.max_xmit, self.max_xmit, self.assoc_group,
                      "" if is_alter else str(self.server.port), results)
        reply = RpcPdu(PType.ALTER_CONTEXT_RESP if is_alter else PType.BIND_ACK, pdu.call_id, ack,
                       PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG, reply_auth)
        return [encode_pdu(reply)]

    def _auth_leg(self, auth: SecTrailer) -> SecTrailer | None:
        sec = self.security.get(auth.auth_context_id)
        if sec is not None and sec.complete and not auth.auth_value:
            # alter_context naming an established context without a new token: keep it
            return SecTrailer(auth.auth_type, auth.auth_level, 0, auth.auth_context_id, b"")
        if sec is None or sec.complete:
            if auth.auth_level < AuthLevel.CONNECT or auth.auth_level > AuthLevel.PKT_PRIVACY:
                raise RpcAuthError(f"authentication level {auth.auth_level} is not supported")
            sec = ServerSecurity(self.server.users, auth.auth_type, auth.auth_level, auth.auth_context_id,
                                 self.server.hostname)
            self.security[auth.auth_context_id] = sec
        elif auth.auth_type != sec.auth_type:
            raise RpcAuthError("authentication service changed during the handshake")
        out = sec.step(auth.auth_value)
        if out is None:
            return SecTrailer(auth.auth_type, auth.auth_level, 0, auth.auth_context_id, b"")
        return SecTrailer(auth.auth_type, auth.auth_level, 0, auth.auth_context_id, out)

    def _auth3(self, pdu: RpcPdu) -> list[bytes]:
        if pdu.auth is None:
            return []
        sec = self.security.get(pdu.auth.auth_context_id)
        if sec is None or sec.complete:
            log.info("auth3 without a handshake in progress")
            return []
        try:
            sec.step(pdu.auth.auth_value)
        except RpcAuthError as exc:
            # MS-RPCE 3.3.1.5.2.1: no answer to auth3; later calls on this context fail.
            log.info("auth3 refused: %s", exc.reason)
            self.security.pop(pdu.auth.auth_context_id, None)
        return []

    # ------------------------------------------------------------------------- requests

    async def _request(self, raw: bytes, pdu: RpcPdu) -> list[bytes]:
        body = pdu.body
        assert isinstance(body, Request)
        sec: ServerSecurity | None = None
        level = AuthLevel.NONE
        if pdu.auth is not None:
            sec = self.security.get(pdu.auth.auth_context_id)
            if sec is None or not sec.complete:
                return [self._fault(pdu.call_id, FaultStatus.RPC_S_ACCESS_DENIED, body.context_id)]
            if pdu.auth.auth_level != sec.auth_level or pdu.auth.auth_type != sec.auth_type:
                # a request uses the service and level its security context was established with (MS-RPCE 3.3.1.5.2)
                return [self._fault(pdu.call_id, FaultStatus.RPC_S_ACCESS_DENIED, body.context_id)]
            level = AuthLevel(sec.auth_level)
            try:
                plain = sec.unprotect(raw, level)
                pdu = decode_pdu(plain)
            except (RpcAuthError, PduError) as exc:
                log.info("request %d rejected: %s", pdu.call_id, exc)
                return [self._fault(pdu.call_id, FaultStatus.RPC_S_ACCESS_DENIED, body.context_id)]
            body = pdu.body
            assert isinstance(body, Request)
        else:
            # RPC_C_AUTHN_LEVEL_CONNECT: no verifier on requests; the connection's security context
            # identifies the caller (MS-RPCE 3.3.1.5.2.2)
            connected = [s for s in self.security.values() if s.complete]
            if connected:
                sec, level = connected[0], AuthLevel.CONNECT
        try:
            stub = self.reassembler.add(pdu, body.stub)
        except PduError as exc:
            log.info("fragment error: %s", exc.reason)
            return [self._fault(pdu.call_id, FaultStatus.NCA_S_PROTO_ERROR, body.context_id)]
        if stub is None:
            return []
        first = self.reassembler.first
        assert isinstance(first, Request)
        interface = self.contexts.get(first.context_id)
        if interface is None:
            return [self._fault(pdu.call_id, FaultStatus.NCA_S_UNKNOWN_IF, first.context_id)]
        dispatcher = self.server.dispatcher
        user = sec.user if sec is not None else None
        if dispatcher.needs_auth(interface) and user is None:
            return [self._fault(pdu.call_id, FaultStatus.RPC_S_ACCESS_DENIED, first.context_id)]
        call = RpcCall(interface, first.opnum, stub, first.object_uuid, user, int(level), self.peer, self)
        try:
            out = await dispatcher.call(call)
        except RpcFault as fault:
            return [self._fault(pdu.call_id, fault.status, first.context_id)]
        except Exception:   # a bug in a handler must not kill the connection
            log.exception("handler of opnum %d failed", first.opnum)
            return [self._fault(pdu.call_id, FaultStatus.NCA_S_FAULT_NDR, first.context_id)]
        return self._response(pdu, first.context_id, out, sec, level)

    def _response(self, pdu: RpcPdu, context_id: int, stub: bytes, sec: ServerSecurity | None,
                  level: int) -> list[bytes]:
        overhead = 24 + (8 + SIGNATURE_SIZE + 16 if sec is not None else 0)
        max_stub = max(8, (self.max_xmit - overhead) & ~7)
        out = []
        for flags, piece in fragment_stub(stub, max_stub):
            auth = None
            if sec is not None and pdu.auth is not None and level >= AuthLevel.PKT_INTEGRITY:
                auth = SecTrailer(sec.auth_type, level, 0, sec.context_id, b"\x00" * SIGNATURE_SIZE)
            data = encode_pdu(RpcPdu(PType.RESPONSE, pdu.call_id,
                                     Response(context_id, piece, alloc_hint=len(stub)), flags, auth))
            if sec is not None and auth is not None:
                data = sec.protect(data, level)
            out.append(data)
        return out

    # --------------------------------------------------------------------------- replies

    def _nak(self, call_id: int, reason: int) -> bytes:
        return encode_pdu(RpcPdu(PType.BIND_NAK, call_id, BindNak(reason)))

    def _fault(self, call_id: int, status: int, context_id: int = 0) -> bytes:
        return encode_pdu(RpcPdu(PType.FAULT, call_id, Fault(status, context_id),
                                 PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG | PfcFlags.DID_NOT_EXECUTE))

    async def handle(self, raw: bytes) -> list[bytes]:
        """Answer one complete PDU (as framed by :class:`PduBuffer`)."""
        try:
            pdu = decode_pdu(raw)
        except PduError as exc:
            log.info("malformed PDU from %s: %s", self.peer, exc.reason)
            call_id = int.from_bytes(raw[12:16], "little") if len(raw) >= 16 else 0
            if len(raw) > 2 and raw[2] == PType.BIND:
                return [self._nak(call_id, NakReason.PROTOCOL_VERSION_NOT_SUPPORTED
                                  if raw[0] != 5 else NakReason.REASON_NOT_SPECIFIED)]
            return [self._fault(call_id, FaultStatus.NCA_S_PROTO_ERROR)]
        if pdu.ptype in (PType.BIND, PType.ALTER_CONTEXT):
            return self._bind(pdu)
        if pdu.ptype is PType.AUTH3:
            assert isinstance(pdu.body, Auth3)
            return self._auth3(pdu)
        if pdu.ptype is PType.REQUEST:
            return await self._request(raw, pdu)
        if pdu.ptype in (PType.CO_CANCEL, PType.ORPHANED):
            self.reassembler.reset()
            return []
        if pdu.ptype is PType.SHUTDOWN:
            self.closed = True
            return []
        return [self._fault(pdu.call_id, FaultStatus.NCA_S_PROTO_ERROR)]


class RpcServer:
    """Listen for ncacn_ip_tcp connections and serve them with one dispatcher."""

    def __init__(self, dispatcher: RpcDispatcher, users: UserDatabase, *, host: str = "127.0.0.1",
                 port: int = 0, hostname: str = "WMH-MOCK01") -> None:
        self.dispatcher = dispatcher
        self.users = users
        self.host = host
        self.port = port
        self.hostname = hostname
        self._server: asyncio.base_events.Server | None = None
        self._assoc = 0x1000
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_connection: Callable[[RpcConnection], Awaitable[None]] | None = None

    def new_assoc_group(self) -> int:
        self._assoc += 1
        return self._assoc

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        conn = RpcConnection(self, f"{peer[0]}:{peer[1]}" if peer else "?")
        framer = PduBuffer(max_frag=65535)
        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    pdus = framer.feed(data)
                except PduError as exc:
                    log.info("unframeable stream from %s: %s", conn.peer, exc.reason)
                    break
                for raw in pdus:
                    for reply in await conn.handle(raw):
                        writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            if self.on_connection is not None:
                await self.on_connection(conn)

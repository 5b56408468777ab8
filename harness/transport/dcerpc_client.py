"""Connection-oriented DCE/RPC client over asyncio TCP (ncacn_ip_tcp; C706 12; MS-RPCE 3.2).

Binds with NTLM (three legs: bind, bind_ack, rpc_auth_3; MS-RPCE 3.3.1.5.2.1), adds presentation
contexts with alter_context, sends requests split into fragments no larger than the negotiated
max_xmit_frag and reassembles fragmented responses, protecting every fragment at the chosen
authentication level (MS-RPCE 3.3.1.5.2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

from harness.transport.dcerpc_auth import SIGNATURE_SIZE, ClientSecurity, RpcAuthError
from harness.transport.tap import Tap
from harness.wire.dcom.pdu import (
    NDR_SYNTAX,
    Auth3,
    AuthLevel,
    AuthType,
    Bind,
    BindAck,
    BindNak,
    ContextElement,
    ContextResult,
    Fault,
    PduBuffer,
    PduError,
    PfcFlags,
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

MAX_FRAG = 5840
AUTH_CONTEXT_ID = 79231

#: The tap every :class:`RpcClient` records its PDUs into unless given one (None: no recording);
#: the pytest plugin sets it so that ``--wm-reports`` captures hold the WMI traffic.
_capture_tap: Tap | None = None


def set_capture_tap(tap: Tap | None) -> None:
    """Record the raw PDUs of every RpcClient created from now on into ``tap`` (None: stop)."""
    global _capture_tap
    _capture_tap = tap


def capture_tap() -> Tap | None:
    return _capture_tap


def record_pdu(tap: Tap, *, from_client: bool, server: tuple[str, int], client: tuple[str, int],
               data: bytes) -> None:
    """One PDU as it crossed the socket (protected, as sent): protocol ``dcerpc``, the peer as an
    ncacn_ip_tcp string binding (MS-RPCE 2.1.1.2), the client's address and port as ``local``."""
    tap.record(protocol="dcerpc", direction="request" if from_client else "response",
               peer=f"ncacn_ip_tcp:{server[0]}[{server[1]}]", headers={}, body=data,
               local=f"{client[0]}:{client[1]}")


class RpcClientError(Exception):
    """A bind was refused, a call faulted, or the peer broke the protocol."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (0x{status:08x})")
        self.reason = reason
        self.status = status


@dataclass
class Credentials:
    username: str
    password: str
    auth_level: int = AuthLevel.PKT_PRIVACY
    auth_type: int = AuthType.WINNT


class RpcClient:
    """One association with a DCE/RPC server."""

    def __init__(self, host: str, port: int, credentials: Credentials | None = None, *,
                 timeout: float = 30.0, tap: Tap | None = None) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeout = timeout
        self.tap = tap if tap is not None else capture_tap()
        self._ends: tuple[tuple[str, int], tuple[str, int]] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = PduBuffer()
        self._pending: list[bytes] = []
        self._call_id = 1
        self._contexts: dict[uuid.UUID, int] = {}
        self._security: ClientSecurity | None = None
        self.max_xmit = MAX_FRAG
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        self._reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.timeout)
        self._writer = writer
        local = writer.get_extra_info("sockname") or ("0.0.0.0", 0)
        remote = writer.get_extra_info("peername") or (self.host, self.port)
        self._ends = ((str(remote[0]), int(remote[1])), (str(local[0]), int(local[1])))

    def _record(self, from_client: bool, data: bytes) -> None:
        if self.tap is not None and self._ends is not None:
            record_pdu(self.tap, from_client=from_client, server=self._ends[0], client=self._ends[1], data=data)

    @property
    def local_host(self) -> str:
        """The local address of the connection (where a peer can reach this host back)."""
        if self._writer is None:
            raise RpcClientError("not connected")
        return str(self._writer.get_extra_info("sockname")[0])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> RpcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _next_call(self) -> int:
        self._call_id += 1
        return self._call_id - 1

    async def _send(self, data: bytes) -> None:
        if self._writer is None:
            raise RpcClientError("not connected")
        self._writer.write(data)
        self._record(True, data)
        await self._writer.drain()

    async def _recv(self) -> bytes:
        if self._reader is None:
            raise RpcClientError("not connected")
        while not self._pending:
            data = await asyncio.wait_for(self._reader.read(65536), self.timeout)
            if not data:
                raise RpcClientError("connection closed by the server")
            try:
                framed = self._framer.feed(data)
            except PduError as exc:
                raise RpcClientError(f"unframeable reply: {exc.reason}") from exc
            for pdu in framed:
                self._record(False, pdu)
            self._pending.extend(framed)
        return self._pending.pop(0)

    # ----------------------------------------------------------------------------- binding

    async def bind(self, interface: uuid.UUID, version: tuple[int, int] = (0, 0)) -> int:
        """Bind (first call) or alter_context (later calls) a presentation context for ``interface``."""
        async with self._lock:
            if interface in self._contexts:
                return self._contexts[interface]
            context_id = len(self._contexts)
            first = not self._contexts
            element = ContextElement(context_id, (interface, version[0], version[1]), [NDR_SYNTAX])
            auth: SecTrailer | None = None
            creds = self.credentials
            if first and creds is not None:
                self._security = ClientSecurity(creds.username, creds.password, creds.auth_type, creds.auth_level,
                                                AUTH_CONTEXT_ID, hostname=self.host)
                token = self._security.step()
                auth = SecTrailer(creds.auth_type, creds.auth_level, 0, AUTH_CONTEXT_ID, token or b"")
            ptype = PType.BIND if first else PType.ALTER_CONTEXT
            call_id = self._next_call()
            await self._send(encode_pdu(RpcPdu(ptype, call_id, Bind(MAX_FRAG, MAX_FRAG, 0, [element]),
                                               PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG, auth)))
            reply = decode_pdu(await self._recv())
            if isinstance(reply.body, BindNak):
                raise RpcClientError("bind refused (bind_nak)", reply.body.reason)
            if isinstance(reply.body, Fault):
                raise RpcClientError("alter_context faulted", reply.body.status)
            if not isinstance(reply.body, BindAck) or not reply.body.results:
                raise RpcClientError(f"unexpected reply {reply.ptype.name} to {ptype.name}")
            result = reply.body.results[0]
            if result.result != ContextResult.ACCEPTANCE:
                raise RpcClientError("presentation context refused", result.reason)
            if first:
                self.max_xmit = min(MAX_FRAG, reply.body.max_recv_frag)
                if self._security is not None and creds is not None:
                    if reply.auth is None:
                        raise RpcClientError("bind_ack without the authentication challenge")
                    try:
                        final = self._security.step(reply.auth.auth_value)
                    except RpcAuthError as exc:
                        raise RpcClientError(exc.reason) from exc
                    await self._send(encode_pdu(RpcPdu(
                        PType.AUTH3, self._next_call(), Auth3(), PfcFlags.FIRST_FRAG | PfcFlags.LAST_FRAG,
                        SecTrailer(creds.auth_type, creds.auth_level, 0, AUTH_CONTEXT_ID, final or b""))))
            self._contexts[interface] = context_id
            return context_id

    # ---------------------------------------------------------------------------- requests

    async def call(self, interface: uuid.UUID, opnum: int, stub: bytes, object_uuid: uuid.UUID | None = None) -> bytes:
        """One request/response exchange; RpcClientError(status) on a fault."""
        context_id = await self.bind(interface)
        async with self._lock:
            sec = self._security
            level = self.credentials.auth_level if self.credentials is not None else AuthLevel.NONE
            overhead = 24 + (16 if object_uuid else 0) + (8 + SIGNATURE_SIZE + 16 if sec else 0)
            max_stub = max(8, (self.max_xmit - overhead) & ~7)
            call_id = self._next_call()
            for flags, piece in fragment_stub(stub, max_stub):
                auth = None
                if sec is not None and level >= AuthLevel.PKT_INTEGRITY:
                    # CONNECT level: no verifier on requests (MS-RPCE 3.3.1.5.2.2)
                    auth = SecTrailer(sec.auth_type, level, 0, AUTH_CONTEXT_ID, b"\x00" * SIGNATURE_SIZE)
                data = encode_pdu(RpcPdu(PType.REQUEST, call_id,
                                         Request(context_id, opnum, piece, object_uuid, len(stub)), flags, auth))
                if auth is not None and sec is not None:
                    data = sec.protect(data, level)
                await self._send(data)
            reassembler = Reassembler()
            while True:
                raw = await self._recv()
                pdu = decode_pdu(raw)
                if isinstance(pdu.body, Fault):
                    raise RpcClientError("call faulted", pdu.body.status)
                if not isinstance(pdu.body, Response):
                    raise RpcClientError(f"unexpected {pdu.ptype.name} in reply to a request")
                if pdu.call_id != call_id:
                    raise RpcClientError(f"reply to call {pdu.call_id}, expected {call_id}")
                if sec is not None and pdu.auth is not None:
                    try:
                        pdu = decode_pdu(sec.unprotect(raw, pdu.auth.auth_level))
                    except RpcAuthError as exc:
                        raise RpcClientError(exc.reason) from exc
                assert isinstance(pdu.body, Response)
                try:
                    out = reassembler.add(pdu, pdu.body.stub)
                except PduError as exc:
                    raise RpcClientError(exc.reason) from exc
                if out is not None:
                    return out

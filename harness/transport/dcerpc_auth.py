"""DCE/RPC security contexts over NTLM / SPNEGO with pyspnego (MS-RPCE 3.3.1.5.2; MS-NLMP 3.4).

A context is created by the first bind/alter_context leg carrying an auth verifier and completed by
the auth3 (or alter_context) leg (MS-RPCE 3.3.1.5.2.1 three-leg NTLM). Several contexts may live
on one connection, told apart by ``auth_context_id`` (MS-RPCE 3.3.1.5.2.2).

Packet protection (MS-RPCE 3.3.1.5.2.2, 2.2.2.11):

* ``PKT_INTEGRITY``: the verifier carries the signature of the PDU;
* ``PKT_PRIVACY``: the stub and its auth padding are encrypted, the verifier carries the signature.

The signature covers the whole PDU up to the auth_value (header signing). Windows and impacket do
this with NTLM extended session security whether or not PFC_SUPPORT_HEADER_SIGN was negotiated
(observed Windows behaviour), so this module always signs the header.
"""

from __future__ import annotations

import struct
from typing import Any

import spnego
from spnego.exceptions import SpnegoError
from spnego.iov import BufferType, IOVBuffer

from harness.auth.users import LocalUser, UserDatabase, ntlm_user_file
from harness.transport.dcerpc_ntlm import NtlmAcceptor, NtlmError
from harness.wire.dcom.pdu import SEC_TRAILER_SIZE, AuthLevel, AuthType, PduError, signed_region, stub_span

SIGNATURE_SIZE = 16   # NTLMSSP_MESSAGE_SIGNATURE (MS-NLMP 2.2.2.9)


class RpcAuthError(Exception):
    """Authentication or packet protection failed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _protocol(auth_type: int) -> str:
    if auth_type == AuthType.WINNT:
        return "ntlm"
    if auth_type == AuthType.GSS_NEGOTIATE:
        return "negotiate"
    raise RpcAuthError(f"authentication service {auth_type} is not supported")


def _signed_parts(data: bytes) -> tuple[bytes, tuple[int, int], bytes]:
    """(octets before the stub, stub span, sec_trailer) of a request/response with a verifier."""
    start, end = stub_span(data)
    trailer = data[end:end + SEC_TRAILER_SIZE]
    return data[:start], (start, end), trailer


def _received_parts(data: bytes) -> tuple[bytes, tuple[int, int], bytes, bytes, int]:
    """(octets before the stub, stub span, sec_trailer, signature, auth_length) of a received PDU
    carrying a verifier (MS-RPCE 2.2.2.11); RpcAuthError when it cannot hold a 16-octet signature."""
    auth_len = int(struct.unpack_from("<H", data, 10)[0])
    if auth_len < SIGNATURE_SIZE:
        raise RpcAuthError("verifier too short for a signature")
    try:
        pre, span, trailer = _signed_parts(data)
    except PduError as exc:
        raise RpcAuthError(exc.reason) from exc
    signature = data[len(data) - auth_len:len(data) - auth_len + SIGNATURE_SIZE]
    return pre, span, trailer, signature, auth_len


def _spnego_protect(ctx: Any, data: bytes, level: int) -> bytes:
    """Sign (PKT_INTEGRITY) or seal (PKT_PRIVACY) a PDU with a pyspnego context: the header and the
    sec_trailer are signed only, the stub is encrypted in place (MS-RPCE 2.2.2.11, 3.3.1.5.2)."""
    pre, (start, end), trailer = _signed_parts(data)
    if level == AuthLevel.PKT_PRIVACY:
        res = ctx.wrap_iov([
            IOVBuffer(BufferType.sign_only, pre), IOVBuffer(BufferType.data, data[start:end]),
            IOVBuffer(BufferType.sign_only, trailer), IOVBuffer(BufferType.header, None),
        ])
        return (data[:start] + (res.buffers[1].data or b"") + data[end:len(data) - SIGNATURE_SIZE]
                + (res.buffers[3].data or b""))
    body = data[:len(data) - SIGNATURE_SIZE]
    return body + bytes(ctx.sign(body))


def _spnego_unprotect(ctx: Any, data: bytes, level: int) -> bytes:
    """Verify (and decrypt) a received PDU with a pyspnego context (MS-RPCE 2.2.2.11, 3.3.1.5.2)."""
    pre, (start, end), trailer, signature, auth_len = _received_parts(data)
    try:
        if level == AuthLevel.PKT_PRIVACY:
            res = ctx.unwrap_iov([
                IOVBuffer(BufferType.sign_only, pre), IOVBuffer(BufferType.data, data[start:end]),
                IOVBuffer(BufferType.sign_only, trailer), IOVBuffer(BufferType.header, signature),
            ])
            return data[:start] + (res.buffers[1].data or b"") + data[end:]
        ctx.verify(signed_region(data, auth_len), signature)
    except SpnegoError as exc:
        raise RpcAuthError(f"packet verification failed: {exc}") from exc
    return data


class ServerSecurity:
    """The acceptor side of one DCE/RPC security context.

    RPC_C_AUTHN_WINNT uses :class:`~harness.transport.dcerpc_ntlm.NtlmAcceptor`; RPC_C_AUTHN_GSS_NEGOTIATE
    uses pyspnego's SPNEGO acceptor.
    """

    def __init__(self, users: UserDatabase, auth_type: int, auth_level: int, context_id: int,
                 hostname: str = "unspecified") -> None:
        self.users = users
        self.auth_type = auth_type
        self.auth_level = auth_level
        self.context_id = context_id
        self.user: LocalUser | None = None
        self._ntlm: NtlmAcceptor | None = None
        self._ctx: Any = None
        if auth_type == AuthType.WINNT:
            self._ntlm = NtlmAcceptor(users, hostname)
        else:
            with ntlm_user_file(users):
                self._ctx = spnego.server(hostname=hostname, service="host", protocol=_protocol(auth_type))

    @property
    def complete(self) -> bool:
        return self.user is not None

    def step(self, token: bytes) -> bytes | None:
        """Feed one client token; return the token to send back (None when there is none)."""
        if self._ntlm is not None:
            try:
                out = self._ntlm.step(token)
            except NtlmError as exc:
                raise RpcAuthError(f"authentication failed: {exc.reason}") from exc
            self.user = self._ntlm.user
            return out
        try:
            with ntlm_user_file(self.users):
                raw = self._ctx.step(token)
        except SpnegoError as exc:
            raise RpcAuthError(f"authentication failed: {exc}") from exc
        except Exception as exc:   # malformed tokens surface as assorted errors inside pyspnego
            raise RpcAuthError(f"malformed authentication token: {exc}") from exc
        if self._ctx.complete:
            principal = self._ctx.client_principal or ""
            user = self.users.lookup(principal)
            if user is None:
                raise RpcAuthError(f"principal {principal!r} is not a local user")
            self.user = user
        return bytes(raw) if raw else None

    # ------------------------------------------------------------------ packet protection

    def unprotect(self, data: bytes, level: int) -> bytes:
        """Verify (and decrypt) one received request PDU; returns the PDU with a plaintext stub."""
        if not self.complete:
            raise RpcAuthError("request on an incomplete security context")
        if level < AuthLevel.PKT_INTEGRITY:
            return data
        if self._ntlm is None:
            return _spnego_unprotect(self._ctx, data, level)
        pre, (start, end), trailer, signature, auth_len = _received_parts(data)
        try:
            if level == AuthLevel.PKT_PRIVACY:
                plain = self._ntlm.unseal(pre, data[start:end], trailer, signature)
                return data[:start] + plain + data[end:]
            self._ntlm.verify(signed_region(data, auth_len), signature)
        except NtlmError as exc:
            raise RpcAuthError(f"packet verification failed: {exc.reason}") from exc
        return data

    def protect(self, data: bytes, level: int) -> bytes:
        """Sign (and encrypt) one encoded response PDU whose auth_value is a 16-octet placeholder."""
        if level < AuthLevel.PKT_INTEGRITY:
            return data
        if self._ntlm is None:
            return _spnego_protect(self._ctx, data, level)
        pre, (start, end), trailer = _signed_parts(data)
        body = data[:len(data) - SIGNATURE_SIZE]
        if level == AuthLevel.PKT_PRIVACY:
            sealed, sig = self._ntlm.seal(pre, data[start:end], trailer)
            return data[:start] + sealed + data[end:len(data) - SIGNATURE_SIZE] + sig
        return body + self._ntlm.sign(body)


class ClientSecurity:
    """The initiator side (used by harness.client.wmi): same protection rules as :class:`ServerSecurity`."""

    def __init__(self, username: str, password: str, auth_type: int = AuthType.WINNT,
                 auth_level: int = AuthLevel.PKT_PRIVACY, context_id: int = 0, hostname: str = "unspecified") -> None:
        self.auth_type = auth_type
        self.auth_level = auth_level
        self.context_id = context_id
        self._ctx: Any = spnego.client(username, password, hostname=hostname, service="host",
                                       protocol=_protocol(auth_type))

    @property
    def complete(self) -> bool:
        return bool(self._ctx.complete)

    def step(self, token: bytes | None = None) -> bytes | None:
        try:
            out = self._ctx.step(token)
        except SpnegoError as exc:
            raise RpcAuthError(f"authentication failed: {exc}") from exc
        return bytes(out) if out else None

    def protect(self, data: bytes, level: int) -> bytes:
        if level < AuthLevel.PKT_INTEGRITY:
            return data
        return _spnego_protect(self._ctx, data, level)

    def unprotect(self, data: bytes, level: int) -> bytes:
        if level < AuthLevel.PKT_INTEGRITY:
            return data
        return _spnego_unprotect(self._ctx, data, level)

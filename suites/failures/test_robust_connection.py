"""MS-WMOD 2.10.1 connection breakdown with robust connections (MS-WSMV 3.1.4.1.39, 3.2.5.3,
3.2.7.10): the client's connection is cut after its request reached the target and before the
answer was read. The client retransmits the request on a new connection with
``s:mustUnderstand="true"`` on its OperationID; the target answers with an Acknowledge and the
answer it retained (one HTTP chunk each) instead of running the operation again, so a retried
Create creates exactly once.

The breakdown is made by a small TCP relay in front of the target (:class:`CuttingRelay`): it
forwards everything, except that for the next ``cut`` answers (HTTP 401 handshake legs excepted)
it waits for the first bytes of the target's answer -- the operation has run -- then resets the
client's connection and closes its own connection to the target without forwarding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import RobustOptions, WSManClient
from harness.targets.inventory import Target
from harness.transport.tap import Tap
from harness.validate import default_validator
from harness.wire.wsman.faults import WSManFault

pytestmark = [pytest.mark.requires("wsman", "robust-connection")]

ENVIRONMENT = wmi_uri("Win32_Environment")
SYSTEM = "<SYSTEM>"
#: The Request Retry timer of MS-WSMV 3.2.2 scaled down (15 s first bound, 180 s window).
FAST_RETRY = RobustOptions(window=20.0, first_bound=0.2, forced_points=())
IO_TIMEOUT = 30.0


class CuttingRelay:
    """A TCP relay on 127.0.0.1 in front of ``target``; :meth:`cut_next` makes it swallow the next
    answers and reset the client's connection (a breakdown after the request was processed)."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        if parts.scheme != "http":
            pytest.skip("the cutting relay forwards plain HTTP only")
        self._target = target
        self._upstream = (parts.hostname or "localhost", parts.port or 5985)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._to_cut = 0
        #: Answers swallowed so far, and the number of client connections accepted.
        self.cuts = 0
        self.connections = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._target.url)
        return urlunsplit(("http", f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))

    def target(self) -> Target:
        return replace(self._target, url=self.url)

    def cut_next(self, count: int = 1) -> None:
        self._to_cut += count

    async def __aenter__(self) -> CuttingRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), IO_TIMEOUT)
        await asyncio.wait_for(self._server.wait_closed(), IO_TIMEOUT)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self._upstream), IO_TIMEOUT)
        except (OSError, TimeoutError):
            _reset(writer)
            self._tasks.discard(task)
            return
        pump = asyncio.ensure_future(self._pump(reader, up_writer))
        try:
            while True:
                data = await asyncio.wait_for(up_reader.read(65536), IO_TIMEOUT)
                if not data:
                    break
                if self._to_cut and data.startswith(b"HTTP/1.") and data[9:12] != b"401":
                    self._to_cut -= 1
                    self.cuts += 1
                    break   # the answer goes nowhere: reset the client, drop the target connection
                writer.write(data)
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pump
            _reset(writer)
            up_writer.close()
            with contextlib.suppress(OSError):
                await asyncio.wait_for(up_writer.wait_closed(), IO_TIMEOUT)
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            while True:
                data = await asyncio.wait_for(reader.read(65536), IO_TIMEOUT)
                if not data:
                    break
                writer.write(data)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the connection broke, it did not end politely."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def _count(client: WSManClient, name: str) -> int:
    page = await client.enumerate_all(ENVIRONMENT, wql=f"SELECT * FROM Win32_Environment WHERE Name = '{name}'")
    return len(page.items)


@pytest.mark.spec("MS-WMOD 2.10.1", "MS-WSMV 3.1.4.1.39", "MS-WSMV 3.2.5.3", "MS-WSMV 3.2.7.10")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_a_create_retransmitted_after_a_breakdown_creates_exactly_once(
        wm_target: Target, wm_tap: Tap, wsman: WSManClient, unique_name: str) -> None:
    props = {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "robust"}
    async with CuttingRelay(wm_target) as relay, WSManClient(
            relay.target(), tap=wm_tap, validator=default_validator(), robust=FAST_RETRY) as client:
        relay.cut_next()
        epr = await client.create(ENVIRONMENT, props, class_name="Win32_Environment")
        operation = client.last_operation
        assert relay.cuts == 1, "the first answer was swallowed"
        assert operation is not None and operation.retransmissions == 1, operation
        # The answer came from the operation's retained messages (MS-WSMV 3.1.4.1.39): an
        # Acknowledge of the client's one message, then the CreateResponse with SequenceId 1.
        assert operation.server_supports, "the answer carries the request's OperationID"
        assert operation.acknowledged_by_server == [1], operation
        assert operation.receive_sequence_id == 2, operation
    try:
        assert epr.selectors.get("Name") == unique_name
        assert await _count(wsman, unique_name) == 1, "the side effect happened exactly once"
    finally:
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})


@pytest.mark.spec("MS-WMOD 2.10.1", "MS-WSMV 3.1.4.1.39", "MS-WSMV 3.1.4.18")
@pytest.mark.requires("create", "delete", "win32-environment")
async def test_a_retained_fault_is_resent_and_acknowledged_messages_are_gone(
        wm_target: Target, wm_tap: Tap, wsman: WSManClient, unique_name: str) -> None:
    """A Create of an existing object is answered w:AlreadyExists; after a breakdown the
    retransmission gets that same retained fault (the operation is not run again). Once the client
    acknowledged it (3.1.4.18), a further retransmission finds nothing to resend."""
    props = {"Name": unique_name, "UserName": SYSTEM, "VariableValue": "1"}
    await wsman.create(ENVIRONMENT, props, class_name="Win32_Environment")
    try:
        async with CuttingRelay(wm_target) as relay, WSManClient(
                relay.target(), tap=wm_tap, validator=default_validator(), robust=FAST_RETRY) as client:
            relay.cut_next()
            with pytest.raises(WSManFault) as info:
                await client.create(ENVIRONMENT, props, class_name="Win32_Environment")
            assert info.value.subcode_name == "AlreadyExists", info.value
            operation = client.last_operation
            assert operation is not None and operation.retransmissions == 1
            assert operation.acknowledged_by_server == [1] and operation.receive_sequence_id == 2
            retransmission = client.last_request
            assert retransmission is not None
            await client.acknowledge(operation.operation_id, 1)
            # the same retransmission again: only the Acknowledge comes back
            reply = await client.send_raw(retransmission)
            assert reply.status == 200
            assert b"AlreadyExists" not in reply.body and b"LastSequenceIdReceived" in reply.body
    finally:
        await wsman.delete(ENVIRONMENT, {"Name": unique_name, "UserName": SYSTEM})

"""The client side of robust connections (MS-WSMV 3.2.2, 3.2.5.3, 3.2.6.5, 3.2.7) over a scripted transport."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from harness.client.resources import wmi_uri
from harness.client.wsman import ProtocolViolation, RobustOptions, WSManClient
from harness.targets.inventory import target_from_url
from harness.transport.http_client import HttpReply, TransportError
from harness.wire.wsman import messages as msg
from harness.wire.wsman import robust as rc
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, build_fault, make_fault
from harness.wire.wsman.ns import Action

URI = wmi_uri("Win32_Service")
FAST = RobustOptions(window=5.0, first_bound=0.0, forced_points=())


class Script:
    """A transport whose answers are scripted: an exception is raised, bytes are answered."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []
        self.closed = 0

    async def post(self, body: bytes, **_: Any) -> HttpReply:
        self.sent.append(body)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, data = answer if isinstance(answer, tuple) else (200, answer)
        return HttpReply(status, {}, data)

    async def close(self) -> None:
        self.closed += 1


def _broken() -> TransportError:
    exc = TransportError("HTTP exchange failed: connection reset")
    exc.__cause__ = aiohttp.ClientConnectionError("reset")
    return exc


def _client(script: Script, robust: bool | RobustOptions = FAST) -> WSManClient:
    client = WSManClient(target_from_url("http://host:5985/wsman"), robust=robust)
    client._transport = script  # type: ignore[assignment]
    return client


def _answer(request: bytes, sequence_id: int = 1, *, op: str | None = None) -> bytes:
    env = parse_envelope(request)
    return rc.stamp(msg.build_delete_response(env.header.message_id), op or env.header.operation_id or "",
                    sequence_id)


async def test_robust_requests_carry_a_new_operation_id_and_sequence_id_1():
    script = Script()
    client = _client(script)
    h1, h2 = client.header(Action.DELETE, URI), client.header(Action.DELETE, URI)
    assert h1.sequence_id == 1 and h1.operation_id and h1.operation_id != h2.operation_id
    assert not rc.is_retransmission(h1)
    assert client.header(Action.SUBSCRIBE, URI).operation_id is None, "eventing is not a robust CIM operation"
    assert client.header(Action.GET, "http://schemas.microsoft.com/wbem/wsman/1/config").operation_id is None
    plain = WSManClient(target_from_url("http://host:5985/wsman"))
    assert plain.header(Action.DELETE, URI).operation_id is None, "opt-in only"


async def test_a_broken_connection_is_retried_with_must_understand_and_the_replay_is_accepted():
    script = Script(_broken())
    client = _client(script)
    request = msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"}))
    op = parse_envelope(request).header.operation_id
    assert op is not None
    script.answers.append(rc.build_acknowledge(op, 1) + _answer(request))
    env = await client.exchange(request)
    assert env.header.action == Action.DELETE_RESPONSE
    assert len(script.sent) == 2 and script.closed == 1, "resent on a new connection"
    assert not rc.is_retransmission(parse_envelope(script.sent[0]).header)
    assert rc.is_retransmission(parse_envelope(script.sent[1]).header)
    operation = client.last_operation
    assert operation is not None and operation.retransmissions == 1 and operation.acknowledged_by_server == [1]
    assert operation.receive_sequence_id == 2 and operation.server_supports


async def test_a_retained_fault_is_raised():
    script = Script(_broken())
    client = _client(script)
    request = msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"}))
    op = parse_envelope(request).header.operation_id or ""
    fault = rc.stamp(build_fault(make_fault("AlreadyExists"), parse_envelope(request).header.message_id), op, 1)
    script.answers.append(rc.build_acknowledge(op, 1) + fault)
    with pytest.raises(WSManFault) as info:
        await client.exchange(request)
    assert info.value.subcode_name == "AlreadyExists"


async def test_duplicates_are_ignored_and_acknowledged_and_gaps_are_errors():
    script = Script()
    client = _client(script)
    request = msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"}))
    op = parse_envelope(request).header.operation_id or ""
    client.last_operation = None
    # SequenceId 2 first: messages are missing (3.2.7)
    script.answers.append(_answer(request, 2))
    with pytest.raises(ProtocolViolation, match="missing"):
        await client.exchange(request)
    # a message below ReceiveSequenceID is a duplicate: ignored, then acknowledged (3.2.7)
    script.answers += [_answer(request, 0) + _answer(request, 1), (200, b"")]
    await client.exchange(request)
    operation = client.last_operation
    assert operation is not None and operation.duplicates == 1 and operation.receive_sequence_id == 2
    ack = rc.parse_acknowledge(parse_envelope(script.sent[-1]))
    assert (ack.operation_id, ack.last_sequence_id) == (op, 1)
    # nothing may follow the final response (3.2.7.9)
    script.answers.append(_answer(request, 1) + _answer(request, 2))
    with pytest.raises(ProtocolViolation, match="after the final response"):
        await client.exchange(request)
    # another operation's answer is refused
    script.answers.append(_answer(request, 1, op=rc.new_operation_id()))
    with pytest.raises(ProtocolViolation, match="expected"):
        await client.exchange(request)


async def test_an_answer_without_operation_id_is_a_server_without_robust_support():
    script = Script()
    client = _client(script)
    request = msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"}))
    script.answers.append(msg.build_delete_response(parse_envelope(request).header.message_id))
    await client.exchange(request)
    assert client.last_operation is not None and not client.last_operation.server_supports


async def test_retries_stop_when_the_window_is_over():
    script = Script(*[_broken() for _ in range(50)])
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    client = _client(script, RobustOptions(window=3.0, first_bound=0.0, forced_points=(), clock=clock))
    request = msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"}))
    with pytest.raises(TransportError, match="robust connection"):
        await client.exchange(request)
    assert 2 <= len(script.sent) <= 5


async def test_a_refusal_is_not_retried():
    refused = TransportError("authentication with http://host failed: no")
    script = Script(refused)
    client = _client(script)
    with pytest.raises(TransportError, match="authentication"):
        await client.exchange(msg.build_delete_request(client.header(Action.DELETE, URI, {"Name": "x"})))
    assert len(script.sent) == 1


async def test_acknowledge_posts_the_acknowledge_and_accepts_an_empty_answer():
    script = Script((200, b""))
    client = _client(script)
    op = rc.new_operation_id()
    await client.acknowledge(op, 3)
    ack = rc.parse_acknowledge(parse_envelope(script.sent[0]))
    assert (ack.operation_id, ack.last_sequence_id) == (op, 3)
    script.answers.append((500, build_fault(make_fault("AccessDenied"), None)))
    with pytest.raises(WSManFault) as info:
        await client.acknowledge(op, 3)
    assert info.value.subcode_name == "AccessDenied"

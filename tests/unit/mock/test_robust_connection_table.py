"""The mock's OperationMessages table (MS-WSMV 3.1.1, 3.1.4.1.39, 3.1.4.18, 3.1.4.19, 3.1.6.5, 3.1.6.6)
through the sans-IO service, and the chunked answer of a retransmission over HTTP (3.2.4.2.1)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import aiohttp
import pytest

from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.targets.mock.config import MockConfig
from harness.targets.mock.robust import RESPONSE_RETENTION, OperationMessages, OperationRow, request_scope
from harness.targets.mock.runner import MockServerThread
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.validate import default_validator
from harness.wire.wsman import messages as msg
from harness.wire.wsman import robust as rc
from harness.wire.wsman.cimxml import params_element
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, parse_fault
from harness.wire.wsman.header import Header, Option
from harness.wire.wsman.ns import RESOURCE_CONFIG, RESOURCE_FULL_DUPLEX, Action

ENV_URI = wmi_uri("Win32_Environment")
SERVICE_URI = wmi_uri("Win32_Service")
ADMIN = Principal("wmh")
OTHER = Principal("someone-else")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Conn:
    """A fake TCP connection (harness.targets.mock.robust.Connection)."""

    def __init__(self) -> None:
        self.is_closed = False

    def closed(self) -> bool:
        return self.is_closed


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> WSManService:
    return WSManService(default_store(), MockConfig(password="pw"), clock=clock)


def _create(name: str, op: str | None, *, retransmission: bool = False, sequence_id: int | None = 1,
            message_id: str | None = None) -> bytes:
    h = Header(action=Action.CREATE, resource_uri=ENV_URI)
    if message_id:
        h.message_id = message_id
    if op is not None:
        h = rc.robust_header(h, op, retransmission=retransmission)
        h.sequence_id = sequence_id
    body = params_element(ENV_URI, "Win32_Environment", {"Name": name, "UserName": "<SYSTEM>", "VariableValue": "1"})
    return msg.build_create_request(h, body)


def _count(service: WSManService, name: str) -> int:
    return sum(1 for i in service.store.enumerate_instances("root/cimv2", "Win32_Environment")
               if i["Name"] == name)


def _send(service: WSManService, data: bytes, conn: Conn | None = None,
          principal: Principal = ADMIN) -> tuple[int, bytes, list[bytes] | None]:
    with request_scope(conn) as scope:
        status, body = service.handle(data, principal)
    return status, body, scope.parts


def _fault(body: bytes) -> WSManFault:
    return parse_fault(parse_envelope(body))


# ------------------------------------------------------------------------------------- new operations
def test_a_robust_create_is_answered_with_its_operation_id_and_sequence_id_1_and_retained(service):
    op = rc.new_operation_id()
    status, body, parts = _send(service, _create("R1", op), Conn())
    assert status == HTTP_OK and parts is None, "a new operation: one message, a plain answer"
    env = parse_envelope(body)
    assert (env.header.operation_id, env.header.sequence_id) == (op, 1)
    assert default_validator().validate(body) == []
    row = service.robust.get(op)
    assert row is not None and [m.sequence_id for m in row.messages] == [1] and row.messages[0].body == body
    assert row.sequence_id == 2 and row.response_complete and _count(service, "R1") == 1


def test_the_operation_id_is_echoed_as_the_client_wrote_it(service):
    op = "CEB310A6-FB0B-441D-83E6-8B0C416192CF"      # without the optional uuid: prefix (2.2.4.45)
    _, body, _ = _send(service, _create("R2", op))
    assert parse_envelope(body).header.operation_id == op
    assert service.robust.get("uuid:" + op.lower()) is not None


def test_a_reused_operation_id_is_invalid_message_information_header(service):
    op = rc.new_operation_id()
    _send(service, _create("R3", op))
    status, body, _ = _send(service, _create("R3b", op))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"
    assert _count(service, "R3b") == 0
    assert parse_envelope(body).header.operation_id is None, "a refused request has no row, so no stamp"


@pytest.mark.parametrize("sequence_id", [0, 2, None])
def test_a_first_message_with_sequence_id_other_than_1_is_refused(service, sequence_id):
    status, body, _ = _send(service, _create("R4", rc.new_operation_id(), sequence_id=sequence_id))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"
    assert _count(service, "R4") == 0 and len(service.robust) == 0


def test_a_malformed_operation_id_is_refused_on_a_cim_resource(service):
    status, body, _ = _send(service, _create("R5", "not-a-guid"))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"


def test_faults_of_a_robust_operation_are_stamped_and_retained(service):
    op = rc.new_operation_id()
    get = msg.build_get_request(rc.robust_header(Header(action=Action.GET, resource_uri=SERVICE_URI,
                                                        selectors={"Name": "NoSuchService"}), op))
    status, body, _ = _send(service, get)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "DestinationUnreachable"
    assert parse_envelope(body).header.sequence_id == 1
    row = service.robust.get(op)
    assert row is not None and row.messages[0].body == body


# ------------------------------------------------------------------------------------- retransmissions
def test_a_retransmission_resends_the_acknowledge_and_the_retained_answer_without_running_again(service):
    op = rc.new_operation_id()
    first = _create("R6", op, message_id="uuid:11111111-1111-1111-1111-111111111111")
    status, original, _ = _send(service, first, Conn())
    assert status == HTTP_OK and _count(service, "R6") == 1
    status, body, parts = _send(service, rc.mark_retransmission(first), Conn())
    assert status == HTTP_OK and _count(service, "R6") == 1, "the Create did not run twice"
    assert parts is not None and len(parts) == 2 and body == b"".join(parts)
    ack_env = parse_envelope(parts[0])
    ack = rc.parse_acknowledge(ack_env)
    assert ack.last_sequence_id == 1, "one message received from the client"
    assert rc.parse_operation_id(ack.operation_id) == rc.parse_operation_id(op)
    assert ack.operation_id.startswith("uuid:"), "<38>: Windows prefixes OperationID in Acknowledge"
    assert ack_env.header.relates_to == "uuid:11111111-1111-1111-1111-111111111111"
    assert parts[1] == original, "the retained message, byte for byte"
    assert all(default_validator().validate(p) == [] for p in parts)
    assert service.robust.replayed == 1 and service.robust.started == 1


def test_a_retransmission_of_an_unknown_operation_runs_as_a_new_one(service):
    op = rc.new_operation_id()
    status, body, parts = _send(service, _create("R7", op, retransmission=True))
    assert status == HTTP_OK and parts is None and _count(service, "R7") == 1
    assert parse_envelope(body).header.sequence_id == 1 and service.robust.get(op) is not None


def test_a_retransmission_must_repeat_the_request(service):
    op = rc.new_operation_id()
    _send(service, _create("R8", op))
    status, body, _ = _send(service, _create("R8-other", op, retransmission=True))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"
    status, body, _ = _send(service, _create("R8", op, retransmission=True, sequence_id=3))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"
    assert _count(service, "R8-other") == 0


def test_another_user_cannot_fetch_an_operation_s_answer(service):
    op = rc.new_operation_id()
    first = _create("R9", op)
    _send(service, first)
    status, body, _ = _send(service, rc.mark_retransmission(first), principal=OTHER)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "AccessDenied"
    assert b"R9" not in body


# ------------------------------------------------------------------------------------- Acknowledge
def test_acknowledge_deletes_the_acknowledged_messages(service):
    op = rc.new_operation_id()
    first = _create("R10", op)
    _send(service, first)
    status, body, _ = _send(service, rc.build_acknowledge(op, 1))
    assert (status, body) == (HTTP_OK, b""), "Acknowledge has no output (3.1.4.18)"
    row = service.robust.get(op)
    assert row is not None and row.messages == []
    _, body, parts = _send(service, rc.mark_retransmission(first))
    assert parts is not None and len(parts) == 1 and rc.parse_acknowledge(parse_envelope(parts[0]))
    assert _count(service, "R10") == 1


def test_acknowledge_of_an_earlier_sequence_id_keeps_later_messages(service):
    op = rc.new_operation_id()
    _send(service, _create("R11", op))
    _send(service, rc.build_acknowledge(op, 0))
    row = service.robust.get(op)
    assert row is not None and [m.sequence_id for m in row.messages] == [1]


def test_acknowledge_faults(service):
    op = rc.new_operation_id()
    _send(service, _create("R12", op))
    status, body, _ = _send(service, rc.build_acknowledge(op, 1), principal=OTHER)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "AccessDenied"
    bad = rc.build_acknowledge(op, 1).replace(b">1</p:LastSequenceIdReceived>", b">x</p:LastSequenceIdReceived>")
    status, body, _ = _send(service, bad)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "SchemaValidationError"
    wrong_resource = rc.build_acknowledge(op, 1).replace(b"wsman/RobustConnection", b"wsman/Elsewhere")
    status, body, _ = _send(service, wrong_resource)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "ActionNotSupported"
    status, body, _ = _send(service, rc.build_acknowledge(rc.new_operation_id(), 1))
    assert (status, body) == (HTTP_OK, b""), "an unknown operation has nothing to delete"
    assert service.robust.get(op) is not None and service.robust.get(op).messages  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------- connections and timers
def test_rows_are_kept_while_the_connection_lives_and_expire_after_the_retention_period(service, clock):
    conn = Conn()
    op = rc.new_operation_id()
    _send(service, _create("R13", op), conn)
    clock.now += 10 * RESPONSE_RETENTION
    service.robust.sweep()
    assert service.robust.get(op) is not None, "no retention timer while the primary connection lives"
    conn.is_closed = True                      # 3.1.6.5: the connection ended
    service.robust.sweep()
    row = service.robust.get(op)
    assert row is not None and row.primary is None and row.retention_started == clock.now
    clock.now += RESPONSE_RETENTION - 1
    service.robust.sweep()
    assert service.robust.get(op) is not None, "messages kept for the retention period"
    clock.now += 1
    service.robust.sweep()
    assert service.robust.get(op) is None and service.robust.expired == 1


def test_a_retransmission_suspends_the_retention_timer(service, clock):
    conn = Conn()
    op = rc.new_operation_id()
    first = _create("R14", op)
    _send(service, first, conn)
    conn.is_closed = True
    service.robust.sweep()
    clock.now += RESPONSE_RETENTION / 2
    second = Conn()
    _, _, parts = _send(service, rc.mark_retransmission(first), second)
    row = service.robust.get(op)
    assert parts is not None and row is not None
    assert row.retention_started is None and row.primary is second
    clock.now += RESPONSE_RETENTION
    service.robust.sweep()
    assert service.robust.get(op) is not None


def test_connection_closed_starts_the_timer_at_once(service, clock):
    conn = Conn()
    op = rc.new_operation_id()
    _send(service, _create("R15", op), conn)
    assert service.robust.connection_closed(conn) == 1
    clock.now += RESPONSE_RETENTION
    service.robust.sweep()
    assert service.robust.get(op) is None


def test_a_new_operation_on_the_same_connection_deletes_the_previous_row(service):
    conn = Conn()
    first, second = rc.new_operation_id(), rc.new_operation_id()
    _send(service, _create("R16", first), conn)
    _send(service, _create("R17", second), Conn())
    _send(service, _create("R18", rc.new_operation_id()), conn)
    assert service.robust.get(first) is None, "3.1.4.1.39: rows of the same PrimaryConnection are deleted"
    assert service.robust.get(second) is not None


def test_end_removes_the_rows_of_its_connection_and_keepalive_is_accepted(service):
    conn = Conn()
    op = rc.new_operation_id()
    _send(service, _create("R19", op), conn)
    status, body, _ = _send(service, rc.build_keepalive(op), conn)
    assert (status, body) == (HTTP_OK, b"")
    keepalive = rc.build_keepalive(op).replace(b"wsman/Keepalive", b"wsman/KeepAlive")
    assert _send(service, keepalive, conn)[:2] == (HTTP_OK, b"")
    assert service.robust.get(op) is not None
    status, body, _ = _send(service, rc.build_end(op), Conn())
    assert status == HTTP_OK and service.robust.get(op) is not None, "End of another connection"
    status, body, _ = _send(service, rc.build_end(op), conn)
    assert (status, body) == (HTTP_OK, b"") and service.robust.get(op) is None
    wrong = rc.build_end(op).replace(b"wsman/FullDuplex", b"wsman/RobustConnection")
    status, body, _ = _send(service, wrong, conn)
    assert status == HTTP_FAULT and _fault(body).subcode_name == "ActionNotSupported"
    assert RESOURCE_FULL_DUPLEX.encode() in rc.build_end(op)


def test_the_table_is_bounded(clock):
    table = OperationMessages(clock, max_rows=2, max_messages_bytes=2000)
    rows: list[OperationRow] = []
    for _ in range(3):
        clock.now += 1
        begun = table.begin(rc.robust_header(Header(action=Action.GET, resource_uri=SERVICE_URI),
                                             rc.new_operation_id()), "wmh", None)
        assert isinstance(begun, OperationRow)
        rows.append(begun)
    assert len(table) == 2 and table.get(rows[0].operation_id) is None, "the oldest row went"
    big = msg.build_get_response("uuid:1", params_element(SERVICE_URI, "Win32_Service", {"Name": "x" * 3000}))
    sent = table.respond(rows[2], big)
    assert parse_envelope(sent).header.sequence_id == 1
    assert rows[2].messages == [], "larger than the Messages list: sent, not retained"
    small = table.respond(rows[1], msg.build_delete_response("uuid:2"))
    assert [m.body for m in rows[1].messages] == [small]


# ------------------------------------------------------------------------------------- resources without support
def test_resources_without_robust_support_ignore_the_operation_id(service):
    op = rc.new_operation_id()
    get = msg.build_get_request(rc.robust_header(Header(action=Action.GET, resource_uri=RESOURCE_CONFIG), op))
    status, body, _ = _send(service, get)
    assert status == HTTP_OK
    env = parse_envelope(body)
    assert env.header.operation_id is None and env.header.sequence_id is None
    assert len(service.robust) == 0
    # a "retransmission" is simply processed again
    status, body, parts = _send(service, rc.mark_retransmission(get))
    assert status == HTTP_OK and parts is None and parse_envelope(body).header.operation_id is None


def test_operations_without_operation_id_are_untouched(service):
    _, body, _ = _send(service, _create("R20", None))
    assert parse_envelope(body).header.operation_id is None and len(service.robust) == 0


def test_an_option_change_makes_a_different_request(service):
    op = rc.new_operation_id()
    h = rc.robust_header(Header(action=Action.ENUMERATE, resource_uri=SERVICE_URI), op)
    first = msg.build_enumerate_request(h, msg.EnumerateRequest())
    _send(service, first)
    h.options = [Option("msftwinrm:UsePreciseArrays", "true", "xs:boolean")]
    h.must_understand.add("OperationID")
    status, body, _ = _send(service, msg.build_enumerate_request(h, msg.EnumerateRequest()))
    assert status == HTTP_FAULT and _fault(body).subcode_name == "InvalidMessageInformationHeader"


# ------------------------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def server() -> Iterator[MockServerThread]:
    mock = MockServerThread(MockConfig(password="s3cret"))
    mock.start()
    yield mock
    mock.stop()


async def test_the_retransmission_answer_is_chunked_one_envelope_per_chunk(server: MockServerThread):
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8",
               "Authorization": "Basic " + base64.b64encode(b"wmh:s3cret").decode()}
    op = rc.new_operation_id()
    name = "RHTTP" + op[5:13]
    first = _create(name, op)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(server.url, data=first, headers=headers) as resp:
            assert resp.status == 200 and resp.headers.get("Transfer-Encoding") != "chunked"
            original = await resp.read()
        async with session.post(server.url, data=rc.mark_retransmission(first), headers=headers) as resp:
            assert resp.status == 200 and resp.headers.get("Transfer-Encoding") == "chunked"
            chunks: list[bytes] = []
            buffer = b""
            async for data, end_of_chunk in resp.content.iter_chunks():
                buffer += data
                if end_of_chunk and buffer:   # the final zero-length chunk ends the answer
                    chunks.append(buffer)
                    buffer = b""
    assert len(chunks) == 2, "3.2.4.2.1: each chunk a full SOAP envelope"
    assert parse_envelope(chunks[0]).header.action == Action.ACKNOWLEDGE
    assert chunks[1] == original
    await asyncio.sleep(0)

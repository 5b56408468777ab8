"""The mock shell host through the sans-IO WSManService, with an injected clock (MS-WSMV 3.1.4.x;
MS-WMOD 2.10.1), and the SAFE simulated cmd engine."""

from __future__ import annotations

import asyncio

import pytest

from harness.cim.mof import default_store
from harness.targets.mock.answer_later import AnswerLater, WakeSignal, answer_when_ready
from harness.targets.mock.cmd_engine import EXIT_CONTROL_C, CmdContext, SimulatedProcess
from harness.targets.mock.config import MockConfig
from harness.targets.mock.shells import ERROR_WSMAN_QUOTA_MAX_SHELLS
from harness.targets.mock.wsman_service import Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import ERROR_WSMAN_OPERATION_TIMEDOUT, WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import RESOURCE_SHELL_CMD

USER = Principal("wmh")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def store():  # type: ignore[no-untyped-def]
    return default_store()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store, clock: Clock) -> WSManService:  # type: ignore[no-untyped-def]
    return WSManService(store, MockConfig(password="pw", max_shells_per_user=2, max_processes_per_shell=2),
                        clock=clock)


def call(service: WSManService, data: bytes, principal: Principal = USER):  # type: ignore[no-untyped-def]
    _status, body = service.handle(data, principal)
    env = parse_envelope(body)
    if is_fault(env):
        raise parse_fault(env)
    return env


def header(shell_id: str | None = None, timeout: float | None = None) -> Header:
    return Header(action="", resource_uri=RESOURCE_SHELL_CMD,
                  selectors=sh.shell_selectors(shell_id) if shell_id else {}, operation_timeout=timeout)


def create(service: WSManService, **spec: object) -> str:
    env = call(service, sh.build_create_shell_request(header(), sh.ShellSpec(**spec)))  # type: ignore[arg-type]
    return sh.parse_create_shell_response(env).shell_id


def run(service: WSManService, shell_id: str, line: str) -> str:
    return sh.parse_command_response(call(service, sh.build_command_request(header(shell_id),
                                                                            sh.CommandRequest(line))))


def receive(service: WSManService, shell_id: str, cid: str) -> sh.ReceiveResult:
    return sh.parse_receive_response(call(service, sh.build_receive_request(header(shell_id),
                                                                            sh.ReceiveRequest(command_id=cid))))


def test_command_output_and_exit_code(service: WSManService) -> None:
    sid = create(service, environment={"X": "42"})
    cid = run(service, sid, "echo %X% & wmic os get Caption & nope")
    got = receive(service, sid, cid)
    assert got.state is not None and got.state.done and got.state.exit_code == 9009
    assert got.data("stdout").startswith(b"42 \r\nCaption")
    assert b"Windows Server 2022" in got.data("stdout"), "wmic reads the shared CIM store"
    assert b"not recognized" in got.data("stderr")


def test_long_runner_timed_out_then_output_as_time_passes_then_signal(service: WSManService,
                                                                      clock: Clock) -> None:
    sid = create(service)
    cid = run(service, sid, "ping -n 10 127.0.0.1")
    assert b"Reply" in receive(service, sid, cid).data("stdout")
    with pytest.raises(WSManFault) as info:
        receive(service, sid, cid)
    assert info.value.wsman_code == ERROR_WSMAN_OPERATION_TIMEDOUT
    clock.now += 3
    assert receive(service, sid, cid).data("stdout").count(b"Reply") == 3
    call(service, sh.build_signal_request(header(sid), sh.SignalRequest(sh.SIGNAL_CTRL_C, cid)))
    done = receive(service, sid, cid)
    assert done.state is not None and done.state.exit_code == EXIT_CONTROL_C


def test_quota_and_other_users_shells(service: WSManService) -> None:
    create(service)
    sid = create(service)
    with pytest.raises(WSManFault) as info:
        create(service)
    assert (info.value.subcode_name, info.value.wsman_code) == ("QuotaLimit", ERROR_WSMAN_QUOTA_MAX_SHELLS)
    with pytest.raises(WSManFault) as other:
        call(service, sh.build_command_request(header(sid), sh.CommandRequest("echo")), Principal("someone-else"))
    assert other.value.subcode_name == "InvalidSelectors", "another user's shell is not found"
    run(service, sid, "ping -n 5 127.0.0.1")
    run(service, sid, "ping -n 5 127.0.0.1")
    with pytest.raises(WSManFault) as procs:
        run(service, sid, "ping -n 5 127.0.0.1")
    assert procs.value.subcode_name == "QuotaLimit", "MaxProcessesPerShell"


def test_idle_shell_is_reaped(service: WSManService, clock: Clock) -> None:
    sid = create(service, idle_timeout=60.0)
    clock.now += 59
    run(service, sid, "echo still")  # touching the shell restarts its idle clock
    clock.now += 59
    run(service, sid, "echo still")
    clock.now += 61
    with pytest.raises(WSManFault) as info:
        run(service, sid, "echo gone")
    assert info.value.subcode_name == "InvalidSelectors"
    assert not service.shells.shells


def test_disconnect_buffers_and_reconnect_delivers(service: WSManService, clock: Clock) -> None:
    sid = create(service)
    cid = run(service, sid, "ping -n 4 127.0.0.1")
    call(service, sh.build_disconnect_request(header(sid), sh.DisconnectRequest(idle_timeout=30.0)))
    with pytest.raises(WSManFault):
        receive(service, sid, cid)  # a disconnected shell takes no Receive
    clock.now += 10
    call(service, sh.build_reconnect_request(header(sid)))
    got = receive(service, sid, cid)
    assert got.data("stdout").count(b"Reply") == 4 and got.state is not None and got.state.done
    call(service, sh.build_disconnect_request(header(sid), sh.DisconnectRequest(idle_timeout=5.0)))
    clock.now += 6
    with pytest.raises(WSManFault):
        call(service, sh.build_reconnect_request(header(sid)))  # reaped while disconnected


def test_connect_to_a_connected_shell_is_internal_error(service: WSManService) -> None:
    sid = create(service)
    with pytest.raises(WSManFault) as info:
        call(service, sh.build_connect_request(header(sid)))
    assert info.value.subcode_name == "InternalError"


def test_read_only_user_cannot_create_shells(service: WSManService) -> None:
    with pytest.raises(WSManFault) as info:
        call(service, sh.build_create_shell_request(header(), sh.ShellSpec()), Principal("ro", read_only=True))
    assert info.value.subcode_name == "AccessDenied"


def test_bad_codepage_is_invalid_options(service: WSManService) -> None:
    with pytest.raises(WSManFault) as info:
        call(service, sh.build_create_shell_request(header(), sh.ShellSpec(), sh.ShellOptions(codepage=99999)))
    assert info.value.subcode_name == "InvalidOptions"


async def test_receive_wait_is_bounded_and_returns_output_when_ready(store) -> None:  # type: ignore[no-untyped-def]
    service = WSManService(store, MockConfig(password="pw"))
    signal = WakeSignal()
    signal.follow(service.wakeups)
    sid = create(service)
    cid = run(service, sid, "ping -n 2 127.0.0.1")
    receive(service, sid, cid)
    data = sh.build_receive_request(header(sid, timeout=0.2), sh.ReceiveRequest(command_id=cid))
    loop = asyncio.get_running_loop()
    start = loop.time()
    status, body = await answer_when_ready(service, data, USER, signal)
    assert is_fault(parse_envelope(body)) and 0.15 <= loop.time() - start < 1.0, "w:TimedOut after OperationTimeout"
    data = sh.build_receive_request(header(sid, timeout=5.0), sh.ReceiveRequest(command_id=cid))
    status, body = await answer_when_ready(service, data, USER, signal)
    assert status == 200 and b"Reply" in sh.parse_receive_response(parse_envelope(body)).data("stdout")


def receive_request(sid: str, cid: str, timeout: float | None = 5.0) -> bytes:
    return sh.build_receive_request(header(sid, timeout=timeout), sh.ReceiveRequest(command_id=cid))


def test_empty_receive_answers_later_until_the_next_output_is_due(service: WSManService, clock: Clock) -> None:
    """MS-WSMV 3.1.4.14: the handler asks to answer later; the re-ask is due when the simulated
    program's next output is (``ping``: one reply a second), not on a polling tick."""
    sid = create(service)
    cid = run(service, sid, "ping -n 3 127.0.0.1")
    receive(service, sid, cid)
    data = receive_request(sid, cid)
    assert service.handle_or_wait(data, USER, 0.0) == AnswerLater(1.0)
    clock.now += 0.25
    assert service.handle_or_wait(data, USER, 0.25) == AnswerLater(0.75)
    status, body = service.handle(data, USER)
    assert status == 500 and parse_fault(parse_envelope(body)).subcode_name == "TimedOut", "plain handle never waits"
    clock.now += 0.75
    result = service.handle_or_wait(data, USER, 1.0)
    assert isinstance(result, tuple) and b"Reply" in sh.parse_receive_response(parse_envelope(result[1])).data("stdout")


def test_receive_budget_is_operation_timeout_capped_by_max_timeout(store, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    service = WSManService(store, MockConfig(password="pw", max_timeout=3.0), clock=clock)
    sid = create(service)
    cid = run(service, sid, "more")  # waits for stdin: only a Send can change the answer
    assert service.handle_or_wait(receive_request(sid, cid, 2.0), USER, 0.5) == AnswerLater(1.5)
    assert service.handle_or_wait(receive_request(sid, cid, 60.0), USER, 0.0) == AnswerLater(3.0)
    assert service.handle_or_wait(receive_request(sid, cid, None), USER, 1.0) == AnswerLater(2.0)
    result = service.handle_or_wait(receive_request(sid, cid, 2.0), USER, 2.0)
    assert isinstance(result, tuple)
    fault = parse_fault(parse_envelope(result[1]))
    assert fault.subcode_name == "TimedOut" and fault.wsman_code == ERROR_WSMAN_OPERATION_TIMEDOUT


def test_send_signal_delete_and_disconnect_wake_waiting_receives(service: WSManService) -> None:
    woken: list[int] = []
    service.wakeups.add(lambda: woken.append(1))
    sid = create(service)
    cid = run(service, sid, "more")
    assert service.handle_or_wait(receive_request(sid, cid), USER) == AnswerLater(5.0)
    assert not woken, "asking again without a change wakes nobody (no busy loop)"
    call(service, sh.build_send_request(header(sid), [sh.StreamData("stdin", b"x\r\n", cid)]))
    assert len(woken) == 1
    call(service, sh.build_signal_request(header(sid), sh.SignalRequest(sh.SIGNAL_CTRL_C, cid)))
    assert len(woken) == 2
    call(service, sh.build_disconnect_request(header(sid), sh.DisconnectRequest()))
    assert len(woken) == 3
    call(service, msg.build_delete_request(header(sid)))
    assert len(woken) == 4


async def test_receive_returns_promptly_when_output_is_due(store) -> None:  # type: ignore[no-untyped-def]
    service = WSManService(store, MockConfig(password="pw"))
    signal = WakeSignal()
    signal.follow(service.wakeups)
    sid = create(service)
    cid = run(service, sid, "ping -n 2 127.0.0.1")
    receive(service, sid, cid)
    loop = asyncio.get_running_loop()
    start = loop.time()
    status, body = await asyncio.wait_for(answer_when_ready(service, receive_request(sid, cid), USER, signal), 5.0)
    took = loop.time() - start
    assert status == 200 and b"Reply" in sh.parse_receive_response(parse_envelope(body)).data("stdout")
    assert took < 1.03, f"answered {took - 1.0:.3f} s after the output was due"


async def test_signal_on_another_connection_ends_a_waiting_receive(store) -> None:  # type: ignore[no-untyped-def]
    service = WSManService(store, MockConfig(password="pw"))
    signal = WakeSignal()
    signal.follow(service.wakeups)
    sid = create(service)
    cid = run(service, sid, "more")  # never outputs by itself: only a notification can end the wait
    pending = asyncio.ensure_future(answer_when_ready(service, receive_request(sid, cid, 30.0), USER, signal))
    await asyncio.sleep(0.1)
    assert not pending.done()
    loop = asyncio.get_running_loop()
    start = loop.time()
    stop = sh.build_signal_request(header(sid), sh.SignalRequest(sh.SIGNAL_TERMINATE, cid))
    assert (await answer_when_ready(service, stop, USER, signal))[0] == 200
    status, body = await asyncio.wait_for(pending, 2.0)
    assert loop.time() - start < 0.05, "woken by the Signal, not by a poll"
    state = sh.parse_receive_response(parse_envelope(body)).state
    assert status == 200 and state is not None and state.done


def test_engine_never_runs_unknown_programs_and_honours_code_page() -> None:
    ctx = CmdContext({"É": "é"}, "C:\\", "M", "u")
    p = SimulatedProcess("echo %É% & calc.exe", ctx, 65001, 0.0)
    assert bytes(p.output["stdout"]) == "é \r\n".encode() and p.exit_code == 9009
    p = SimulatedProcess("echo é", CmdContext({}, "C:\\", "M", "u"), 437, 0.0)
    assert bytes(p.output["stdout"]) == "é\r\n".encode("cp437")


def test_engine_block_and_drop_buffer_modes() -> None:
    p = SimulatedProcess("ping -n 50 127.0.0.1", CmdContext({}, "C:\\", "M", "u"), 437, 0.0, buffer_limit=200)
    p.poll(100.0)
    assert not p.done and len(p.output["stdout"]) < 300, "Block: a full buffer pauses the command"
    p.drop = True  # a blocked command resumes when room is made: its remaining pings take their time
    p.poll(200.0)
    p.poll(300.0)
    assert p.done and len(p.output["stdout"]) <= 200, "Drop: old output is discarded"

"""MS-WMOD 2.10.1 connection breakdown: the client's TCP connection fails in the middle of an
operation. The server must stay consistent: an enumeration context is still usable or cleanly
invalid (DSP0226 8.1 R8.1-x: w:InvalidEnumerationContext / wsen:InvalidEnumerationContext), a
WinRS shell survives and its output can still be received on a new connection, or after
Disconnect / Reconnect (MS-WSMV 3.1.4.14 - 3.1.4.16), and the server holds nothing for the
vanished client once the operation is over (mock-only leak checks)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.client.resources import wmi_uri
from harness.client.shell import WinRSShell
from harness.client.wsman import WSManClient
from harness.targets.inventory import Target
from harness.transport.tap import Tap
from harness.wire.wsman import messages as msg
from harness.wire.wsman import shell as sh
from harness.wire.wsman.faults import WSManFault
from harness.wire.wsman.ns import Action

SERVICE = wmi_uri("Win32_Service")
#: A command that writes output for about a second (one line a second), then ends.
SLOW_COMMAND = ("ping", ["-n", "2", "127.0.0.1"])


def _pull(wsman: WSManClient, context: str, max_elements: int) -> bytes:
    header = wsman.header(Action.PULL, SERVICE)
    return msg.build_pull_request(header, msg.PullRequest(context, max_elements=max_elements))


@pytest.mark.spec("MS-WMOD 2.10.1", "DSP0226 8.4", "MS-WSMV 3.1.4.9")
@pytest.mark.requires("wsman", "enumerate")
async def test_enumeration_survives_a_client_dropped_mid_pull(wsman: WSManClient, drop_connection: Any,
                                                               wm_outcome: Any) -> None:
    total = len((await wsman.enumerate_all(SERVICE, max_elements=50)).items)
    page = await wsman.enumerate(SERVICE)
    assert page.context is not None
    first = await wsman.pull(SERVICE, page.context, max_elements=2)
    assert first.context is not None and len(first.items) == 2
    # the next Pull is sent completely, then the connection is reset before the answer is read
    await drop_connection(_pull(wsman, first.context, 2))
    try:
        rest = []
        context: str | None = first.context
        while context is not None:
            nxt = await wsman.pull(SERVICE, context, max_elements=50)
            rest.extend(nxt.items)
            context = None if nxt.end_of_sequence else nxt.context
    except WSManFault as fault:
        assert fault.subcode_name == "InvalidEnumerationContext", fault
        wm_outcome("context-invalidated", "the context was invalidated with the dropped connection")
        return
    names = [i.properties["Name"] for i in first.items + rest]
    assert len(names) == len(set(names)), "no instance is delivered twice"
    # the dropped Pull either ran (its two items went to the vanished client) or did not
    assert len(names) in (total, total - 2), (len(names), total)
    wm_outcome("context-usable", f"{total - len(names)} item(s) went with the dropped answer")


@pytest.mark.spec("MS-WMOD 2.10.1", "DSP0226 8.4")
@pytest.mark.requires("wsman", "enumerate")
async def test_enumeration_survives_a_request_cut_in_half(wsman: WSManClient, drop_connection: Any) -> None:
    page = await wsman.enumerate(SERVICE)
    assert page.context is not None
    await drop_connection(_pull(wsman, page.context, 3), sent=0.5)
    # half a request is no request: the context is untouched and yields everything
    nxt = await wsman.pull(SERVICE, page.context, max_elements=3)
    assert len(nxt.items) == 3
    if nxt.context is not None and not nxt.end_of_sequence:
        await wsman.release(SERVICE, nxt.context)


@pytest.mark.spec("MS-WMOD 2.10.1", "MS-WSMV 3.1.4.14")
@pytest.mark.requires("wsman", "winrs")
async def test_shell_survives_a_dropped_receive_and_output_is_received_on_a_new_connection(
        wm_target: Target, wm_tap: Tap, wsman: WSManClient, drop_connection: Any) -> None:
    shell = WinRSShell(wsman)
    await shell.create()
    try:
        cid = await shell.start(*SLOW_COMMAND)
        receive = sh.build_receive_request(shell._header(""), sh.ReceiveRequest(["stdout", "stderr"], cid))
        await drop_connection(receive, sent=0.6)
        async with WSManClient(wm_target, tap=wm_tap) as other:
            again = WinRSShell(other, shell_id=shell.shell_id)
            result = await again.collect(cid)
            await again.signal(cid)
        assert result.done and result.exit_code == 0
        assert result.stdout.count(b"Reply from 127.0.0.1") == 2, result.stdout
    finally:
        await shell.delete()


@pytest.mark.spec("MS-WMOD 2.10.1", "MS-WSMV 3.1.4.15", "MS-WSMV 3.1.4.16")
@pytest.mark.requires("wsman", "winrs", "winrs-disconnect")
async def test_output_is_recovered_by_disconnect_and_reconnect_after_a_breakdown(
        wm_target: Target, wm_tap: Tap, wsman: WSManClient, drop_connection: Any) -> None:
    shell = WinRSShell(wsman)
    await shell.create()
    try:
        cid = await shell.start(*SLOW_COMMAND)
        receive = sh.build_receive_request(shell._header(""), sh.ReceiveRequest(["stdout", "stderr"], cid))
        await drop_connection(receive, sent=0.3)
        async with WSManClient(wm_target, tap=wm_tap) as other:
            again = WinRSShell(other, shell_id=shell.shell_id)
            await again.disconnect()
            await again.reconnect()
            result = await again.collect(cid)
            await again.signal(cid)
        assert result.done and result.stdout.count(b"Reply from 127.0.0.1") == 2, result.stdout
    finally:
        await shell.delete()


@pytest.mark.spec("MS-WMOD 2.10.1")
@pytest.mark.requires("wsman", "enumerate", "winrs")
async def test_the_server_holds_nothing_for_vanished_clients(wsman: WSManClient, drop_connection: Any,
                                                              mock_probe: Any) -> None:
    """Mock only: dropped requests leave no connection state, task, context or shell behind."""
    await wsman.identify()
    baseline = await mock_probe.settles_to(mock_probe.snapshot())
    for fraction in (0.0, 0.5, 1.0):
        page = await wsman.enumerate(SERVICE)
        assert page.context is not None
        # a Pull of everything that the server finishes (EndOfSequence releases the context)
        # although its answer goes nowhere
        await drop_connection(_pull(wsman, page.context, 10_000), sent=fraction)
        if fraction < 1.0:
            await wsman.release(SERVICE, page.context)
    shell = WinRSShell(wsman)
    await shell.create()
    cid = await shell.start(*SLOW_COMMAND)
    await drop_connection(sh.build_receive_request(shell._header(""), sh.ReceiveRequest(["stdout"], cid)))
    await shell.signal(cid)
    await shell.delete()
    after = await mock_probe.settles_to(baseline)
    print("mock insides before / after:", baseline, after)
    assert all(after[k] <= baseline[k] for k in baseline), (baseline, after)

"""Record sessions against our own mock: a small WS-Man session written as the reference capture,
and (:func:`record_wmi_exchanges`) a WMI over DCOM session for capture tests.

``python -m harness.capture.reference captures/mock-wsman.pcapng`` regenerates the committed
reference capture: Identify (MS-WSMV 3.1.4.16), an unauthenticated Get answered 401
(MS-WSMV 2.2.9.1), Get (3.1.4.8), Enumerate / Pull / Release (3.1.4.10 - 3.1.4.13) and a Get
of a missing instance answered with a fault (DSP0226 14). Everything comes from our own mock, so
the file is ours to commit; the password is random and redacted by the tap anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness.transport.tap import Exchange, Tap

TEST_ID = "captures/mock-wsman::reference-session"


async def record_session(url: str, username: str, password: str, tap: Tap) -> None:
    """Drive one short, representative WS-Man session through ``tap``."""
    from harness.client.resources import wmi_uri
    from harness.client.wsman import WSManClient
    from harness.targets.inventory import Target
    from harness.wire.wsman.faults import WSManFault

    service = wmi_uri("Win32_Service")
    target = Target(name="mock", url=url, username=username, password=password, is_mock=True, timeout=10.0)
    async with WSManClient(target, tap=tap) as client:
        await client.identify()
        await client.send_raw(client_get_body(client, service), authenticated=False)
        await client.get(service, {"Name": "WinRM"})
        page = await client.enumerate(service)
        if page.context:
            page2 = await client.pull(service, page.context, max_elements=2)
            if page2.context and not page2.end_of_sequence:
                await client.release(service, page2.context)
        with contextlib.suppress(WSManFault):
            await client.get(service, {"Name": "NoSuchService_WMH"})


def client_get_body(client: object, resource_uri: str) -> bytes:
    from harness.client.wsman import WSManClient
    from harness.wire.wsman import messages as msg
    from harness.wire.wsman.ns import Action

    assert isinstance(client, WSManClient)
    return msg.build_get_request(client.header(Action.GET, resource_uri, {"Name": "WinRM"}))


def record_mock_exchanges(test_id: str = TEST_ID) -> tuple[list[Exchange], str]:
    """Run the mock in a thread, record a session; returns (exchanges, the mock's password)."""
    from harness.targets.mock.runner import MockServerThread
    from harness.transport.tap import current_test

    mock = MockServerThread()
    url = mock.start()
    tap = Tap()
    try:
        token = current_test.set(test_id)
        try:
            asyncio.run(record_session(url, mock.config.username, mock.config.password, tap))
        finally:
            current_test.reset(token)
    finally:
        mock.stop()
    return list(tap.exchanges), mock.config.password


def record_wmi_exchanges(work: Callable[[Any], Awaitable[None]], password: str, *,
                         auth_level: int | None = None) -> list[Exchange]:
    """Run the mock's WMI server (MS-WMI over DCOM, ephemeral ports, user ``admin``), connect our
    WMI client at ``auth_level`` (default: packet privacy), run ``work(client)`` and return the
    DCE/RPC exchanges the capture tap recorded (the password is redacted by the tap)."""
    from harness.auth.users import LocalUser, UserDatabase
    from harness.cim.mof import default_store
    from harness.client.wmi import WmiClient
    from harness.targets.mock.wmi_server import WmiServer
    from harness.transport.dcerpc_client import capture_tap, set_capture_tap
    from harness.wire.dcom.pdu import AuthLevel

    level = AuthLevel.PKT_PRIVACY if auth_level is None else auth_level

    async def session() -> None:
        users = UserDatabase([LocalUser("admin", password)])
        server = WmiServer(default_store(), users)
        await server.start()
        try:
            client = await WmiClient.connect("127.0.0.1", server.epm_port, "admin", password, auth_level=level,
                                             timeout=10)
            await work(client)
            await client.close()
        finally:
            await server.close()
            users.close()

    tap = Tap()
    tap.add_secret(password)
    previous = capture_tap()
    set_capture_tap(tap)
    try:
        asyncio.run(session())
    finally:
        set_capture_tap(previous)
    return list(tap.exchanges)


def main(argv: list[str] | None = None) -> int:
    from harness.capture.synth import write_capture

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.capture.reference OUT.pcapng", file=sys.stderr)
        return 2
    exchanges, password = record_mock_exchanges()
    count = write_capture(exchanges, Path(args[0]), secrets=[password])
    print(f"{args[0]}: {count} packets, {len(exchanges)} HTTP messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Interop fixtures: a real ``wmh serve`` subprocess that unmodified third-party clients talk to.

The server is started once per session on a free loopback port, with the password handed over
through the environment (``WMH_MOCK_PASSWORD``, never on the command line). Every wait is bounded:
start-up polls the port until a deadline, shutdown terminates and then kills after a timeout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from _wire import MockServer

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 5.0
POLL_INTERVAL = 0.05

#: An Identify request as the Windows client sends it (DSP0226 11; MS-WSMV 3.1.4.16): no
#: WS-Addressing headers, only the wsmid:Identify body.
IDENTIFY_REQUEST = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wmh_command() -> list[str]:
    """The ``wmh`` console script of the running interpreter's environment, else ``python -m``."""
    script = Path(sys.executable).with_name("wmh")
    if script.is_file():
        return [str(script)]
    found = shutil.which("wmh")
    if found:
        return [found]
    return [sys.executable, "-m", "harness.cli"]


def _answers_identify(endpoint: str) -> bool:
    """True once the server answers an unauthenticated Identify (MS-WSMV 3.1.4.16) with 200."""
    request = urllib.request.Request(
        endpoint, data=IDENTIFY_REQUEST, method="POST",
        headers={"Content-Type": "application/soap+xml;charset=UTF-8", "WSMANIDENTIFY": "unauthenticated"})
    # start-up probe only: the HTTPS listener's certificate is checked by the tests themselves
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=unverified))
    try:
        with opener.open(request, timeout=1.0) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SHUTDOWN_TIMEOUT)


@pytest.fixture(scope="session")
def mock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServer]:
    """``wmh serve`` as a subprocess on a free port; terminated (then killed) at session end."""
    with _wmh_serve(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def wmh_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MockServer]]:
    """Start more ``wmh serve`` subprocesses with extra options (``--https``, policy switches);
    ``start(*options, https=True)``. All are stopped when the test module ends."""
    with contextlib.ExitStack() as stack:
        def start(*options: str, https: bool = False) -> MockServer:
            return stack.enter_context(_wmh_serve(tmp_path_factory, options, https=https))

        yield start


@contextlib.contextmanager
def _wmh_serve(tmp_path_factory: pytest.TempPathFactory, options: Sequence[str] = (), *,
               https: bool = False) -> Iterator[MockServer]:
    host = "127.0.0.1"
    port = _free_port(host)
    username = "wmh"
    password = "Interop-" + secrets.token_urlsafe(12)
    log_file = tmp_path_factory.mktemp("wmh-serve") / "serve.log"
    env = dict(os.environ)
    env["WMH_MOCK_PASSWORD"] = password
    command = [*_wmh_command(), "serve", "--host", host, "--port", str(port), "--user", username, *options]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = MockServer(host, port, username, password, log_file)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        probe = server.endpoint.replace("http://", "https://", 1) if https else server.endpoint
        while not _answers_identify(probe):
            if process.poll() is not None:
                pytest.fail(f"wmh serve exited with {process.returncode}: {log_file.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"wmh serve did not answer within {STARTUP_TIMEOUT} s: "
                            f"{log_file.read_text(errors='replace')}")
            time.sleep(POLL_INTERVAL)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def service_names() -> set[str]:
    """Names of the Win32_Service instances in the store the server loads (our own reference)."""
    from harness.cim.mof import default_store

    store = default_store()
    return {str(i["Name"]) for i in store.enumerate_instances("root/cimv2", "Win32_Service")}

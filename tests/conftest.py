"""Test-session isolation shared by every test of the harness itself.

Kerberos: with gssapi installed, pyspnego (inside pypsrp, pywinrm and our own client) tries Kerberos
before NTLM and reads the machine's ``/etc/krb5.conf``, whose Debian default names the public
ATHENA.MIT.EDU KDCs. Tests must never send traffic off this machine, so the session points
``KRB5_CONFIG`` at a configuration with no realm and no DNS look-ups: Kerberos attempts fail at once,
locally, and Negotiate falls back to NTLM. The MIT realm tests (tests/kdc) pass their own
configuration explicitly to the processes that use it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_ISOLATED_KRB5 = """[libdefaults]
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 1
"""
_created: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("WMH_KEEP_KRB5_CONFIG"):
        return
    directory = tempfile.mkdtemp(prefix="wmh-krb5-")
    _created.append(directory)
    path = os.path.join(directory, "krb5.conf")
    with open(path, "w", encoding="ascii") as handle:
        handle.write(_ISOLATED_KRB5)
    os.environ["KRB5_CONFIG"] = path


def pytest_unconfigure(config: pytest.Config) -> None:
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)
    _created.clear()


# ------------------------------------------------------------------ the loopback MIT Kerberos realm
KDC_HELPER = Path(__file__).resolve().parent / "kdc" / "mit_realm.py"


def kdc_module() -> ModuleType:
    """tests/kdc/mit_realm.py (loaded by path: tests/ is not a package)."""
    name = "wmh_tests_kdc_mit_realm"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, KDC_HELPER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _built_realm(tmp_path_factory: pytest.TempPathFactory, name: str,
                 enctypes: tuple[str, ...] | None) -> Iterator[Any]:
    """A loopback MIT realm (WMH.TEST) for the whole session, with ``enctypes`` (None: the AES
    default); skips with the reason when krb5kdc or python-gssapi is missing or the KDC refuses."""
    kdc = kdc_module()
    reason = kdc.gssapi_missing() or (
        f"MIT KDC not installed: {', '.join(kdc.missing_programs())}" if kdc.missing_programs() else None)
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp(name) / "realm"
    try:
        with (kdc.mit_realm(directory) if enctypes is None else kdc.mit_realm(directory, enctypes)) as built:
            yield built
    except kdc.RealmUnavailable as exc:
        pytest.skip(f"Kerberos realm ({name}) could not be built: {exc}")


def _realm_env(built: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {**built.client_env, **built.server_env}.items():
        monkeypatch.setenv(name, value)
    return built


@pytest.fixture(scope="session")
def kdc() -> ModuleType:
    """tests/kdc/mit_realm.py itself (RC4_ENCTYPES, find_program, ...)."""
    return kdc_module()


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One MIT realm (WMH.TEST, AES keys) with a KDC on loopback for the whole session."""
    yield from _built_realm(tmp_path_factory, "krb", None)


@pytest.fixture
def krb_env(realm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The realm's client and acceptor variables for this test only (both live in this process)."""
    return _realm_env(realm, monkeypatch)


@pytest.fixture(scope="session")
def rc4_realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second loopback realm whose keys (user, krbtgt, HTTP/) are all RC4-HMAC (etype 23, RFC 4757)."""
    yield from _built_realm(tmp_path_factory, "krb-rc4", tuple(kdc_module().RC4_ENCTYPES))


@pytest.fixture
def rc4_env(rc4_realm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The RC4 realm's client and acceptor variables for this test only."""
    return _realm_env(rc4_realm, monkeypatch)


# ------------------------------------------------------------------ the mock's WMI (DCOM) role
@pytest.fixture
async def start_wmi_server() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await start_wmi_server(store, password, **kwargs)``: the mock's WMI server (MS-WMI over
    DCOM) on ephemeral ports with an administrator ``admin`` and a read-only ``reader`` sharing
    ``password``; everything started is closed after the test."""
    from harness.auth.users import LocalUser, UserDatabase
    from harness.targets.mock.wmi_server import WmiServer

    started: list[tuple[Any, Any]] = []

    async def start(store: Any, password: str, **kwargs: Any) -> Any:
        users = UserDatabase([LocalUser("admin", password), LocalUser("reader", password, read_only=True)])
        server = WmiServer(store, users, **kwargs)
        started.append((server, users))
        await server.start()
        return server

    yield start
    for server, users in reversed(started):
        await server.close()
        users.close()

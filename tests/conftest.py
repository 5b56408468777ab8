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
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One MIT realm (WMH.TEST) with a KDC on loopback for the whole session; skips with the reason
    when krb5kdc or python-gssapi is missing."""
    kdc = kdc_module()
    reason = kdc.gssapi_missing() or (
        f"MIT KDC not installed: {', '.join(kdc.missing_programs())}" if kdc.missing_programs() else None)
    if reason:
        pytest.skip(reason)
    try:
        with kdc.mit_realm(tmp_path_factory.mktemp("krb") / "realm") as built:
            yield built
    except kdc.RealmUnavailable as exc:
        pytest.skip(f"Kerberos realm could not be built: {exc}")


@pytest.fixture
def krb_env(realm: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The realm's client and acceptor variables for this test only (both live in this process)."""
    for name, value in {**realm.client_env, **realm.server_env}.items():
        monkeypatch.setenv(name, value)
    return realm

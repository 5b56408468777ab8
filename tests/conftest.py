"""Test-session isolation shared by every test of the harness itself.

Kerberos: with gssapi installed, pyspnego (inside pypsrp, pywinrm and our own client) tries Kerberos
before NTLM and reads the machine's ``/etc/krb5.conf``, whose Debian default names the public
ATHENA.MIT.EDU KDCs. Tests must never send traffic off this machine, so the session points
``KRB5_CONFIG`` at a configuration with no realm and no DNS look-ups: Kerberos attempts fail at once,
locally, and Negotiate falls back to NTLM. The MIT realm tests (tests/kdc) pass their own
configuration explicitly to the processes that use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

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

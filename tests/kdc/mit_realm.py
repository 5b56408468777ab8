"""A throw-away MIT Kerberos realm on loopback, for the Kerberos tests (RFC 4120).

:func:`mit_realm` builds realm ``WMH.TEST`` in a private directory: generated ``krb5.conf`` and
``kdc.conf`` (nothing machine-wide is read: ``KRB5_CONFIG`` / ``KRB5_KDC_PROFILE`` point at them),
a database created with ``kdb5_util create -s`` and a random master password, the principals
``wmh@WMH.TEST`` (password chosen here) and ``HTTP/localhost@WMH.TEST`` with its ``host/`` and
``WSMAN/`` siblings (random keys, exported to one keytab), and ``krb5kdc -n`` listening on a free
loopback port (TCP and UDP). Every wait is bounded; the KDC is terminated (then killed) on exit.

``mit_realm(directory, enctypes=RC4_ENCTYPES)`` builds the same realm with RC4-HMAC (etype 23,
RFC 4757) keys only, and a krb5.conf that asks for RC4 tickets and session keys, as a Windows domain
with older settings issues them.

The environment is never changed here: :attr:`Realm.client_env` / :attr:`Realm.server_env` are the
variables to hand to a subprocess or to a scoped ``monkeypatch`` only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REALM = "WMH.TEST"
USER = "wmh"
SERVICE_HOST = "localhost"
START_TIMEOUT = 15.0
COMMAND_TIMEOUT = 30.0
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
AES_ENCTYPES = ("aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96")
RC4_ENCTYPES = ("rc4-hmac",)
RC4_NAMES = frozenset({"rc4-hmac", "arcfour-hmac", "arcfour-hmac-md5"})


class RealmUnavailable(Exception):
    """The MIT KDC programs are missing or the realm could not be built (the reason says which)."""


@dataclass(frozen=True)
class Realm:
    directory: Path
    port: int
    krb5_conf: Path
    keytab: Path
    user: str
    password: str = field(repr=False)

    @property
    def principal(self) -> str:
        return f"{self.user}@{REALM}"

    @property
    def client_env(self) -> dict[str, str]:
        """Variables a Kerberos initiator needs: the realm's krb5.conf and a private credential cache."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5CCNAME": f"FILE:{self.directory / 'client.ccache'}"}

    @property
    def server_env(self) -> dict[str, str]:
        """Variables a Kerberos acceptor needs: the realm's krb5.conf and the service keytab."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KTNAME": f"FILE:{self.keytab}"}


def find_program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_programs() -> list[str]:
    return [name for name in ("krb5kdc", "kdb5_util", "kadmin.local") if find_program(name) is None]


def _free_port() -> int:
    """A loopback port free for both TCP and UDP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RealmUnavailable("no free loopback port for the KDC")


def _write_configs(directory: Path, port: int, enctypes: tuple[str, ...] = AES_ENCTYPES) -> tuple[Path, Path]:
    krb5_conf = directory / "krb5.conf"
    kdc_conf = directory / "kdc.conf"
    names = " ".join(enctypes)
    # only for a non-default set: the client then asks for (and accepts) these enctypes alone.
    # allow_rc4: MIT krb5 1.21 (and distribution backports of the CVE-2025-3576 fix) issue no RC4
    # session key without it; older KDCs ignore the unknown relation.
    client_enctypes = ("" if enctypes == AES_ENCTYPES else
                       f"  permitted_enctypes = {names}\n  default_tkt_enctypes = {names}\n"
                       f"  default_tgs_enctypes = {names}\n"
                       + ("  allow_rc4 = true\n" if any(e in RC4_NAMES for e in enctypes) else ""))
    krb5_conf.write_text(
        "[libdefaults]\n"
        f"  default_realm = {REALM}\n"
        "  dns_lookup_kdc = false\n"
        "  dns_lookup_realm = false\n"
        "  dns_canonicalize_hostname = false\n"
        "  rdns = false\n"
        "  udp_preference_limit = 1\n"
        "  forwardable = true\n"
        "  ticket_lifetime = 1h\n"
        f"{client_enctypes}"
        "[realms]\n"
        f"  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n"
        "[domain_realm]\n"
        f"  localhost = {REALM}\n  127.0.0.1 = {REALM}\n",
        encoding="ascii")
    kdc_conf.write_text(
        "[kdcdefaults]\n"
        f"  kdc_listen = 127.0.0.1:{port}\n"
        f"  kdc_tcp_listen = 127.0.0.1:{port}\n"
        "[realms]\n"
        f"  {REALM} = {{\n"
        f"    database_name = {directory / 'principal'}\n"
        f"    key_stash_file = {directory / 'stash'}\n"
        f"    acl_file = {directory / 'kadm5.acl'}\n"
        "    max_life = 1h\n"
        "    max_renewable_life = 1h\n"
        f"    supported_enctypes = {' '.join(e + ':normal' for e in enctypes)}\n"
        "  }\n"
        "[logging]\n"
        f"  kdc = FILE:{directory / 'kdc.log'}\n",
        encoding="ascii")
    (directory / "kadm5.acl").write_text("", encoding="ascii")
    return krb5_conf, kdc_conf


def _run(argv: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RealmUnavailable(f"{Path(argv[0]).name} did not finish within {COMMAND_TIMEOUT} s") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).decode(errors="replace").strip()[-400:]
        raise RealmUnavailable(f"{Path(argv[0]).name} failed ({done.returncode}): {detail}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-400:] if log.exists() else ""
            raise RealmUnavailable(f"krb5kdc exited with {process.returncode}: {text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RealmUnavailable(f"krb5kdc did not listen on port {port} within {START_TIMEOUT} s")


@contextlib.contextmanager
def mit_realm(directory: Path, enctypes: tuple[str, ...] = AES_ENCTYPES) -> Iterator[Realm]:
    """Build and run the realm in ``directory`` (must be empty and private); RealmUnavailable on failure.
    ``enctypes`` are the key (and ticket) encryption types of every principal, e.g. RC4_ENCTYPES."""
    missing = missing_programs()
    if missing:
        raise RealmUnavailable(f"MIT Kerberos KDC programs not installed: {', '.join(missing)}")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    port = _free_port()
    krb5_conf, kdc_conf = _write_configs(directory, port, tuple(enctypes))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KRB5_CONFIG": str(krb5_conf),
           "KRB5_KDC_PROFILE": str(kdc_conf)}
    password = "Krb-" + secrets.token_urlsafe(12)
    keytab = directory / "http.keytab"
    kdb5_util, kadmin, krb5kdc = (str(find_program(n)) for n in ("kdb5_util", "kadmin.local", "krb5kdc"))
    _run([kdb5_util, "create", "-s", "-r", REALM, "-P", secrets.token_urlsafe(24)], env)
    # HTTP/ is the SPN class of WinRM; HOST/ and WSMAN/ are the other ones a Windows machine account
    # carries and that clients ask for (pypsrp defaults to HOST/, the Windows client tries WSMAN/).
    services = [f"{cls}/{host}@{REALM}" for cls in ("HTTP", "host", "WSMAN") for host in (SERVICE_HOST, "127.0.0.1")]
    queries = [f"addprinc -pw {password} {USER}@{REALM}"]
    queries += [f"addprinc -randkey {name}" for name in services]
    queries.append(f"ktadd -k {keytab} {' '.join(services)}")
    for query in queries:
        _run([kadmin, "-r", REALM, "-q", query], env)
    log = directory / "kdc.log"
    process = subprocess.Popen([krb5kdc, "-n", "-r", REALM], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, log)
        yield Realm(directory, port, krb5_conf, keytab, USER, password)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)


def gssapi_missing() -> str | None:
    """Why pyspnego cannot do Kerberos here (None when it can)."""
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as exc:
        return f"python gssapi/krb5 not installed: {exc}"
    return None

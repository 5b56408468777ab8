"""The acceptor's local user database (the mock's SAM), and its NTLM credential file.

pyspnego's NTLM acceptor looks users up in a flat file named by the ``NTLM_USER_FILE`` environment
variable (the format gss-ntlmssp reads; smbpasswd lines ``USER:UID:LM:NT:FLAGS:LCT``). The database
writes that file with NT hashes only (no password on disk; the LM hash is blank because Windows
no longer stores it: MS-NLMP 3.3.1 LMOWFv1 is only used with NoLMHash off) into a private
directory, and :func:`ntlm_user_file` points the variable at it *only while an acceptor runs*,
under a process-wide lock, restoring the previous value afterwards, so nothing leaks between
databases, tests or threads.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from spnego._ntlm_raw.crypto import ntowfv1

NTLM_USER_FILE = "NTLM_USER_FILE"
_ENV_LOCK = threading.RLock()


@dataclass(frozen=True)
class LocalUser:
    """One local account: name, password and whether it may only read (MS-WMOD 2.9.3)."""

    name: str
    password: str = field(repr=False)
    read_only: bool = False


def bare_name(user: str) -> str:
    """``DOMAIN\\user`` and ``user@domain`` name the local account ``user`` (observed Windows behaviour)."""
    return user.split("\\")[-1].split("@")[0]


class UserDatabase:
    """Local users of one acceptor, looked up case-insensitively like a Windows SAM."""

    def __init__(self, users: Iterable[LocalUser], *, machine: str = "WMH-MOCK01") -> None:
        self.machine = machine
        self._users: dict[str, LocalUser] = {}
        for user in users:
            self._users.setdefault(user.name.lower(), user)
        self._dir: str | None = None
        self._finalizer: weakref.finalize[..., UserDatabase] | None = None

    def lookup(self, name: str) -> LocalUser | None:
        return self._users.get(bare_name(name).lower())

    def check_password(self, name: str, password: str) -> LocalUser | None:
        """Basic authentication: the account when the password matches, compared in constant time."""
        user = self.lookup(name)
        if user is None or not hmac.compare_digest(password.encode(), user.password.encode()):
            return None
        return user

    def ntlm_file(self) -> str:
        """Path of the smbpasswd-format credential file for pyspnego's NTLM acceptor (written once).

        Every user gets a line for the empty domain, ``.`` and the machine name: a local account
        can be named with any of them (observed Windows behaviour).
        """
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="wmh-ntlm-")
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
            lines = []
            for uid, user in enumerate(self._users.values(), 1000):
                nt_hash = ntowfv1(user.password).hex().upper()
                for domain in ("", ".", self.machine):
                    qualified = f"{domain}\\{user.name}" if domain else user.name
                    lines.append(f"{qualified}:{uid}:{'0' * 32}:{nt_hash}:[U]:LCT-00000000")
            path = os.path.join(self._dir, "ntlm_users")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        return os.path.join(self._dir, "ntlm_users")

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._dir = None


@contextmanager
def ntlm_user_file(database: UserDatabase) -> Iterator[None]:
    """Point ``NTLM_USER_FILE`` at ``database``'s file for the duration of one acceptor call."""
    path = database.ntlm_file()
    with _ENV_LOCK:
        previous = os.environ.get(NTLM_USER_FILE)
        os.environ[NTLM_USER_FILE] = path
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(NTLM_USER_FILE, None)
            else:
                os.environ[NTLM_USER_FILE] = previous

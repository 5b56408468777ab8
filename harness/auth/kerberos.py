"""Kerberos for WS-Man over HTTP(S), both roles (RFC 4120, RFC 4121; RFC 4559; MS-WSMV 2.2.9.1).

A WinRM listener carries Kerberos two ways: inside SPNEGO under the ``Negotiate`` scheme (RFC 4559,
RFC 4178), and as raw GSS-API Kerberos tokens (RFC 4121 4.1) under the ``Kerberos`` scheme, which a
Windows listener offers when ServiceAuthType Kerberos is true (MS-WSMV 2.2.4.34) and pypsrp uses
when it is offered. Messages sealed by a ``Kerberos``-scheme context are labelled
``application/HTTP-Kerberos-session-encrypted`` instead of ``...-SPNEGO-...`` (MS-WSMV 2.2.9.1.1;
observed Windows behaviour, pypsrp does the same).

The service principal is ``HTTP/<host>`` (Windows registers WinRM under the HTTP service class:
observed Windows behaviour). The acceptor finds its key through the GSS-API default keytab
(``KRB5_KTNAME``); the initiator gets a TGT from the user's password (pyspnego's kinit through
python-gssapi / krb5) into a private in-memory cache. Kerberos is used by the client only for a
user named as a principal (``user@REALM``); a bare or ``DOMAIN\\user`` name goes to NTLM straight
away, without asking any KDC (the Windows client does the same for a local account:
observed Windows behaviour).
"""

from __future__ import annotations

from typing import Any

import spnego
from spnego._ntlm_raw.crypto import ntowfv1

KERBEROS_SCHEME = "Kerberos"
NEGOTIATE_SCHEME = "Negotiate"
#: The service class of the WinRM SPN (``HTTP/host``).
SERVICE_CLASS = "HTTP"
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


def kerberos_unavailable() -> str | None:
    """Why this interpreter cannot do Kerberos (None when pyspnego has its GSS-API backend)."""
    try:
        from spnego._gss import GSSAPIProxy
    except ImportError as exc:   # pragma: no cover - pyspnego always ships it
        return f"pyspnego lacks its GSS-API module: {exc}"
    if "kerberos" not in GSSAPIProxy.available_protocols(spnego.NegotiateOptions.wrapping_winrm):
        return "python-gssapi and krb5 (with IOV wrapping) are not installed"
    return None


def is_principal(username: str) -> bool:
    """``user@REALM`` names a Kerberos principal; ``user`` and ``DOMAIN\\user`` name NTLM accounts."""
    return "@" in username and "\\" not in username


def client_credentials(username: str, password: str, *, kerberos: bool) -> list[Any]:
    """pyspnego credentials for an initiator.

    With ``kerberos`` (and a principal name) the password itself, which pyspnego can use for both a
    Kerberos TGT and NTLM; otherwise only the NT hash (MS-NLMP 3.3.1 NTOWFv1), which keeps SPNEGO
    from trying Kerberos and so from contacting a KDC of whatever realm the machine's krb5.conf names.
    """
    if kerberos and is_principal(username):
        return [spnego.Password(username, password)]
    return [spnego.NTLMHash(username, nt_hash=ntowfv1(password).hex())]


def encryption_protocol(http_scheme: str) -> str:
    """The ``protocol`` parameter of sealed messages for a context made under ``http_scheme``."""
    return KERBEROS_PROTOCOL if http_scheme.lower() == KERBEROS_SCHEME.lower() else SPNEGO_PROTOCOL


__all__ = [
    "KERBEROS_PROTOCOL",
    "KERBEROS_SCHEME",
    "SERVICE_CLASS",
    "client_credentials",
    "encryption_protocol",
    "is_principal",
    "kerberos_unavailable",
]

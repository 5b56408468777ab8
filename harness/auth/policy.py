"""What a WinRM listener accepts: the ``WinRM/Config/Service`` policy knobs.

MS-WMOD 4.1 <1> and the WinRM Group Policy settings name them: *Allow Basic authentication*
(``AllowBasic``), *Allow Negotiate authentication* (``AllowNegotiate``), *Allow unencrypted traffic*
(``AllowUnencrypted``) and *Channel Binding Token hardening level* (``CbtHardeningLevel``:
``None`` | ``Relaxed`` | ``Strict``). Windows Server defaults: Basic off, Negotiate on, unencrypted
off, Relaxed (``winrm get winrm/config/service``). ``Kerberos`` and ``CredSSP`` are the other
ServiceAuthType switches (MS-WSMV 2.2.4.34: Kerberos default true, CredSSP default false; a service
MUST NOT use CredSSP while it is false, MS-WSMV 3.1.4.1.29.2). The mock offers the ``Kerberos``
scheme only when told to (it needs a keytab: ``allow_kerberos``); Kerberos inside Negotiate works
whenever the process has a keytab (``KRB5_KTNAME``). ServiceAuthType has no Digest switch: the
WinRM service never offers Digest (see :mod:`harness.auth`). The mock defaults to Basic on and unencrypted
allowed, so that existing Basic-over-HTTP clients keep working; :meth:`AuthPolicy.windows_default`
gives the Windows values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

BASIC_CHALLENGE = 'Basic realm="WSMAN"'
NEGOTIATE_CHALLENGE = "Negotiate"
KERBEROS_CHALLENGE = "Kerberos"
CREDSSP_CHALLENGE = "CredSSP"


class CbtHardening(enum.Enum):
    """``CbtHardeningLevel`` (WinRM service Auth setting; applies to HTTPS only)."""

    NONE = "None"
    RELAXED = "Relaxed"
    STRICT = "Strict"


@dataclass
class AuthPolicy:
    """The authentication policy of one listener."""

    allow_basic: bool = True
    allow_negotiate: bool = True
    allow_unencrypted: bool = True
    cbt_hardening: CbtHardening = CbtHardening.RELAXED
    #: ServiceAuthType Kerberos (MS-WSMV 2.2.4.34): offer the ``Kerberos`` HTTP scheme (needs a keytab).
    allow_kerberos: bool = False
    #: ServiceAuthType CredSSP (MS-WSMV 2.2.4.34, default false): accept and offer ``CredSSP`` (MS-CSSP).
    allow_credssp: bool = False

    @classmethod
    def windows_default(cls) -> AuthPolicy:
        """The Windows Server defaults (observed Windows behaviour, ``winrm get winrm/config/service``)."""
        return cls(allow_basic=False, allow_negotiate=True, allow_unencrypted=False,
                   cbt_hardening=CbtHardening.RELAXED)

    def challenges(self, *, tls: bool) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401, one header line each (MS-WSMV 2.2.9.1).

        Windows captures show both ``Basic realm="WSMAN"`` before ``Negotiate`` and the reverse (the
        order is not significant, clients choose by name); the mock puts Basic first. Basic is left
        out over plain HTTP while unencrypted traffic is forbidden, since Basic cannot be sealed
        there (observed Windows behaviour).
        """
        offered: list[str] = []
        if self.basic_usable(tls=tls):
            offered.append(BASIC_CHALLENGE)
        if self.allow_negotiate:
            offered.append(NEGOTIATE_CHALLENGE)
        if self.allow_kerberos:
            offered.append(KERBEROS_CHALLENGE)
        if self.allow_credssp:
            offered.append(CREDSSP_CHALLENGE)
        return offered

    def basic_usable(self, *, tls: bool) -> bool:
        """Basic needs AllowBasic and, over HTTP, AllowUnencrypted (its messages cannot be sealed)."""
        return self.allow_basic and (tls or self.allow_unencrypted)

"""Settings of the mock target (the knobs a Windows administrator sets through WinRM config)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.auth.policy import AuthPolicy
from harness.auth.tls import ServerTls
from harness.targets.mock.plugins import Plugin, default_plugins
from harness.targets.mock.root_sddl import DEFAULT_ROOT_SDDL


def _default_password() -> str:
    return os.environ.get("WMH_MOCK_PASSWORD") or secrets.token_urlsafe(12)


@dataclass
class MockConfig:
    """Mock listener and service settings.

    Defaults follow a Windows Server WinRM listener (``winrm get winrm/config``):
    MaxEnvelopeSizekb 500, MaxTimeoutms 60000, enumeration contexts that expire.
    """

    host: str = "127.0.0.1"
    port: int = 0
    machine: str = "WMH-MOCK01"
    username: str = "wmh"
    password: str = field(default_factory=_default_password, repr=False)
    #: Users allowed read access only (MS-WMOD 2.9.3); name -> password.
    read_only_users: dict[str, str] = field(default_factory=dict, repr=False)
    #: ``winrm/config/service`` RootSDDL: who may use resources without an SDDL of their own, the
    #: WinRS cmd shell among them (Shell Create needs GX; harness.targets.mock.root_sddl).
    root_sddl: str = DEFAULT_ROOT_SDDL
    #: The WinRM plug-ins with an SDDL of their own (MS-WSMV 3.1.4.1.34; ``winrm/config/plugin``):
    #: ``microsoft.powershell`` by default; a PowerShell shell Create is checked against its Security
    #: SDDL (harness.targets.mock.plugins). May be changed while the mock runs.
    plugins: list[Plugin] = field(default_factory=default_plugins)
    max_envelope_size: int = 512_000
    max_request_bytes: int = 512_000
    max_timeout: float = 60.0
    enumeration_expiry: float = 60.0
    max_enumerations: int = 1024
    allow_unauthenticated_identify: bool = True
    #: WinRS quotas and idle time-out (``winrm/config/winrs`` MaxShellsPerUser, MaxProcessesPerShell,
    #: IdleTimeout; Windows defaults 30, 25 and 7200 s; MS-WSMV 3.1.4.5, MS-WMOD 2.10.1).
    max_shells_per_user: int = 30
    max_processes_per_shell: int = 25
    shell_idle_timeout: float = 7200.0
    #: ``winrm/config/winrs`` AllowRemoteShellAccess: false refuses every new shell, WinRS and
    #: PowerShell alike (observed Windows behaviour; Group Policy "Allow Remote Shell Access").
    allow_remote_shell_access: bool = True
    #: Which authentication schemes and how much encryption the listener demands
    #: (AllowBasic, AllowNegotiate, AllowUnencrypted, CbtHardeningLevel; MS-WMOD 4.1 <1>).
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    #: Listener certificate and key when serving HTTPS (``wmh serve --https``); None = plain HTTP.
    tls: ServerTls | None = field(default=None, repr=False)
    #: Monotonic clock of the event source (subscription expiry, heartbeats; DSP0226 10.2.5): None =
    #: time.monotonic; tests pass a harness.targets.mock.events.ManualClock and advance it.
    event_clock: Callable[[], float] | None = field(default=None, repr=False, compare=False)
    #: Publisher-initiated subscriptions (MS-WSMV 3.1.4.1.30): the collector's WS-Man URL the mock
    #: enumerates for subscriptions (the "Configure target Subscription Manager" policy of Windows);
    #: None = none. May be changed while the mock runs; re-enumerated every ``..._refresh`` seconds
    #: of the event clock.
    subscription_manager_url: str | None = None
    subscription_manager_refresh: float = 60.0
    #: WMI over DCOM (MS-WMI, MS-DCOM): serve it beside WS-Man, on this endpoint mapper port (135 on
    #: Windows; 0 = ephemeral) and this ORPC port (a dynamic port on Windows; 0 = ephemeral).
    wmi_enabled: bool = True
    epm_port: int = 0
    wmi_port: int = 0
    #: Slow clients (MS-WMOD 2.10.1; mock robustness): a connection must deliver the complete headers of
    #: its next request within ``header_timeout`` seconds of opening or of the previous answer, else it
    #: is closed (http.sys HeaderWait and IdleConnection timers, 120 s by default on Windows); the
    #: body must arrive within ``body_timeout`` seconds (http.sys EntityBody timer, 120 s), else the
    #: answer is HTTP 408 and the connection is closed. Read when the listener starts.
    header_timeout: float = 120.0
    body_timeout: float = 120.0
    #: Fault injection (MS-WMOD 2.10.3 internal failure): CIM classes whose provider fails; a WS-Man
    #: operation on them is answered like a failing WMI provider (WBEM_E_PROVIDER_FAILURE). Mock only;
    #: may be changed while the mock runs.
    failing_providers: set[str] = field(default_factory=set)

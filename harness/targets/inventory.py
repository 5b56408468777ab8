"""Targets and inventories.

A target is one WS-Man/WMI endpoint under test. Inventories are TOML files; credentials are
never stored in them, only the *names* of environment variables that hold them (DESIGN: Targets).

Example inventory::

    [[target]]
    name = "win2022-a"
    url = "http://10.0.0.5:5985/wsman"
    dialect = "wsmv"
    auth = "basic"              # basic | ntlm | negotiate | kerberos | credssp (MS-WSMV 2.2.9.1)
    encryption = "auto"         # ntlm/negotiate message encryption: auto | always | never
    verify_tls = true           # https: verify the certificate (ca_file = "path/ca.pem" to pin a CA)
    username_env = "WMH_WIN_USER"
    password_env = "WMH_WIN_PASSWORD"
    capabilities = ["wsman", "identify", "get", "put", "create", "delete", "enumerate", "invoke"]
    expected_failures = ["WSMV-ENUM-5", "suites/wsman/test_identify.py::test_unauthenticated_identify_is_answered"]

    [[target]]
    name = "mock-2"
    url = "mock"          # one more built-in mock (fleets, xdist)

Without ``capabilities`` the harness applies ``profile = "<name>"`` (harness.targets.capabilities)
or detects them (Identify, then read-only probes). ``expected_failures`` lists node ids or
requirement ids the target is known to fail: they show as XFAIL, and an unexpected pass fails the run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

#: Capabilities the built-in mock implements, each one a feature a suite can ``require``.
MOCK_CAPABILITIES: frozenset[str] = frozenset(
    {
        "wsman",
        "wsmv",
        "identify",
        "get",
        "put",
        "create",
        "delete",
        "enumerate",
        "optimized-enumeration",
        "wql",
        "selector-filter",
        "association-filter",
        "invoke",
        "fragment",
        "cim-store-write",
        "win32-environment",
        "win32-service",
        "cim-schema-uri",
        "eventing",
        "extrinsic-events",
        "push-eventing",
        # publisher-initiated subscriptions (MS-WSMV 3.1.4.1.30; MS-WMOD 3.5)
        "publisher-initiated",
        # WinRS (MS-WSMV 3.1.4.11 - 3.1.4.17; MS-WMOD 3.6)
        "winrs",
        # PowerShell Remoting over WinRS (MS-PSRP 3.1.5; MS-WMOD 2.5.2.8, 3.6) and remote debugging (MS-PSRDP)
        "psrp",
        "psrdp",
        "winrs-disconnect",
        "winrs-quota",
        "shell-idle-reaper",
        # HTTP authentication and message encryption (MS-WSMV 2.2.9.1)
        "ntlm",
        "negotiate",
        "message-encryption",
        # WMI over DCOM (MS-WMI 3.1, MS-DCOM): IWbemServices, semisynchronous event queries
        "wmi",
        "wmi-events",
        # the Windows Server 2003 R2 dialect, MS-WSMAN (WS-Management 2005/06; harness.wire.wsman.dialect)
        "wsman2005",
        # namespace security changed through __SystemSecurity.SetSD (MS-WMOD 2.9.3); changes the
        # target's security, so a real target only has it when its inventory lists it (opt-in)
        "sddl",
        # robust connections for CIM resources (MS-WSMV 3.1.4.1.39; MS-WMOD 2.10.1): Windows 8 / Server
        # 2012 and later send OperationID in responses (<99>), so it is in WINDOWS_CAPABILITIES too
        "robust-connection",
    }
)

#: Capabilities of the mock that a Windows host does not offer out of the box: the 2005/06 dialect is
#: only Windows Server 2003 R2's (MS-WMOD 1.4: incompatible with the DMTF specifications); SetSD changes
#: the target's security (opt-in); Disconnect/Reconnect of cmd shells is for custom remote shells only
#: (MS-WSMV 3.1.4.15); the idle reaper test needs the mock's clock; publisher-initiated subscriptions
#: need Windows Event Forwarding configured on the host (MS-WSMV 3.1.4.1.30). An inventory may list them.
NOT_OUT_OF_THE_BOX: frozenset[str] = frozenset(
    {"wsman2005", "sddl", "winrs-disconnect", "shell-idle-reaper", "publisher-initiated"})

#: What a real Windows WinRM listener offers out of the box (MS-WSMV, WMI plug-in).
WINDOWS_CAPABILITIES: frozenset[str] = MOCK_CAPABILITIES - NOT_OUT_OF_THE_BOX


class InventoryError(ValueError):
    """An inventory file or ``--wm-target`` value that cannot be used, with the reason."""


@dataclass(frozen=True)
class Target:
    """One system under test."""

    name: str
    url: str
    dialect: str = "wsmv"
    auth: str = "basic"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    capabilities: frozenset[str] = MOCK_CAPABILITIES
    is_mock: bool = False
    timeout: float = 30.0
    verify_tls: bool = True
    #: Message encryption with ntlm/negotiate (MS-WSMV 2.2.9.1): "auto" (over HTTP), "always", "never".
    encryption: str = "auto"
    #: CA bundle to verify the HTTPS certificate with (instead of the system store).
    ca_file: str | None = None
    #: Node ids or requirement ids this target is known to fail: XFAIL, and XPASS-ALARM if they pass.
    expected_failures: tuple[str, ...] = ()
    #: A named capability set (harness.targets.capabilities.PROFILES) instead of ``capabilities``.
    profile: str | None = None
    #: The inventory lists neither capabilities nor a profile: detect them (Identify and probes).
    detect_capabilities: bool = False
    #: WMI over DCOM (MS-WMI): host and endpoint mapper port; None = the URL's host and port 135.
    wmi_host: str | None = None
    wmi_port: int | None = None

    @property
    def tls_verify(self) -> bool | str:
        """What the HTTP transport verifies: the CA file, the system store (True) or nothing (False)."""
        if not self.verify_tls:
            return False
        return self.ca_file if self.ca_file else True

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "localhost"

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


def _credential(entry: dict[str, object], key: str) -> str | None:
    env_name = entry.get(f"{key}_env")
    if env_name is None:
        if key in entry:
            raise InventoryError(f"target {entry.get('name')!r}: put {key} in an environment variable "
                                 f"and name it with {key}_env; inventories never hold credentials")
        return None
    if not isinstance(env_name, str):
        raise InventoryError(f"{key}_env must be a string")
    value = os.environ.get(env_name)
    if value is None:
        raise InventoryError(f"environment variable {env_name} (for {key}) is not set")
    return value


def target_from_entry(entry: dict[str, object]) -> Target:
    name = entry.get("name")
    url = entry.get("url")
    if not isinstance(name, str) or not isinstance(url, str):
        raise InventoryError("every [[target]] needs a string name and url")
    is_mock = url == "mock"  # start another built-in mock for this entry (fleets of mocks)
    profile = entry.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise InventoryError(f"target {name!r}: profile must be a string")
    listed = "capabilities" in entry or profile is not None or is_mock
    caps = entry.get("capabilities", sorted(MOCK_CAPABILITIES if is_mock else WINDOWS_CAPABILITIES))
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise InventoryError(f"target {name!r}: capabilities must be a list of strings")
    xfails = entry.get("expected_failures", [])
    if not isinstance(xfails, list) or not all(isinstance(x, str) for x in xfails):
        raise InventoryError(f"target {name!r}: expected_failures must be a list of node ids or requirement ids")
    timeout = entry.get("timeout", 30.0)
    if not isinstance(timeout, int | float):
        raise InventoryError(f"target {name!r}: timeout must be a number")
    wmi_port = entry.get("wmi_port")
    if wmi_port is not None and (not isinstance(wmi_port, int) or isinstance(wmi_port, bool)):
        raise InventoryError(f"target {name!r}: wmi_port must be an integer")
    return Target(
        name=name,
        url=url,
        dialect=_choice(entry, "dialect", ("wsmv", "wsman2005"), "wsmv"),
        auth=_choice(entry, "auth", ("basic", "ntlm", "negotiate", "kerberos", "credssp"), "basic"),
        username=_credential(entry, "username"),
        password=_credential(entry, "password"),
        capabilities=frozenset(caps),
        timeout=float(timeout),
        verify_tls=bool(entry.get("verify_tls", True)),
        encryption=_choice(entry, "encryption", ("auto", "always", "never"), "auto"),
        ca_file=str(entry["ca_file"]) if entry.get("ca_file") else None,
        is_mock=is_mock,
        expected_failures=tuple(xfails),
        profile=profile,
        detect_capabilities=not listed,
        wmi_host=str(entry["wmi_host"]) if entry.get("wmi_host") else None,
        wmi_port=wmi_port,
    )


def _choice(entry: dict[str, object], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = str(entry.get(key, default)).lower()
    if value not in allowed:
        raise InventoryError(f"target {entry.get('name')!r}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def load_inventory(path: Path) -> list[Target]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc}") from exc
    entries = data.get("target", [])
    if not isinstance(entries, list) or not entries:
        raise InventoryError(f"inventory {path} has no [[target]] entries")
    return [target_from_entry(e) for e in entries]


def target_from_url(url: str, capabilities: Sequence[str] | None = None) -> Target:
    """A target named on the command line: ``http://host:5985/wsman``.

    Credentials come from ``WMH_USERNAME`` / ``WMH_PASSWORD``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InventoryError(f"--wm-target must be 'mock' or an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise InventoryError("credentials in the target URL are refused; use WMH_USERNAME / WMH_PASSWORD")
    return Target(
        name=parts.hostname,
        url=url,
        username=os.environ.get("WMH_USERNAME"),
        password=os.environ.get("WMH_PASSWORD"),
        capabilities=frozenset(capabilities) if capabilities else WINDOWS_CAPABILITIES,
    )

"""Capability detection and named capability profiles.

A suite test ``requires`` capabilities; a target lacking one is NOT-SUPPORTED, never a failure.
When an inventory entry lists neither ``capabilities`` nor ``profile`` the harness detects them:

1. Identify (DSP0226 11; MS-WSMV 3.1.4.16): ``ProductVendor`` "Microsoft Corporation" means a
   WinRM listener with the WMI plug-in, so the ``windows`` profile applies as a whole;
2. any other vendor (or no answer to Identify) is probed with read-only requests: a Get of
   ``Win32_OperatingSystem`` (MS-WSMV 3.1.4.8), Enumerate/Pull of ``Win32_Service`` (MS-WSMV
   3.1.4.10), a WQL filter (MS-WSMV 2.2.4.39), optimized enumeration (DSP0226 8.2.3), a selector
   filter (DSP0226 8.3) and a DMTF CIM schema resource URI (DSP0227 7).
   Probes never write: create/put/delete/invoke/eventing are only granted by a profile or a list.

``--wm-profile NAME`` (or ``profile = "NAME"`` in an inventory entry) selects a named set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from harness.targets.inventory import MOCK_CAPABILITIES, WINDOWS_CAPABILITIES, Target

#: Capabilities any DSP0226 implementation offers (transfer Get and enumeration, no WMI classes).
DMTF_WSMAN_BASIC: frozenset[str] = frozenset({"wsman", "identify", "get", "enumerate", "selector-filter"})

#: Named capability sets, selectable with ``--wm-profile``.
PROFILES: dict[str, frozenset[str]] = {
    "windows": WINDOWS_CAPABILITIES,
    "mock": MOCK_CAPABILITIES,
    "read-only": frozenset(WINDOWS_CAPABILITIES - {"put", "create", "delete", "invoke", "cim-store-write",
                                                   "eventing", "push-eventing"}),
    "dmtf-wsman": DMTF_WSMAN_BASIC | {"optimized-enumeration", "cim-schema-uri", "put", "create", "delete"},
    "identify-only": frozenset({"wsman", "identify"}),
}

MICROSOFT = "microsoft"


class CapabilityError(ValueError):
    """An unknown profile name, with the known ones."""


def profile(name: str) -> frozenset[str]:
    """The capability set of a named profile."""
    try:
        return PROFILES[name]
    except KeyError:
        raise CapabilityError(f"unknown capability profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def profile_for_identity(vendor: str | None) -> str | None:
    """The profile implied by an IdentifyResponse ProductVendor (None: probe instead).

    Windows answers "Microsoft Corporation" (observed Windows behaviour; MS-WSMV 3.1.4.16 leaves the
    text to the implementation).
    """
    if vendor and MICROSOFT in vendor.lower():
        return "windows"
    return None


@dataclass
class Detection:
    """What detection found: the capability set and the evidence for each probe."""

    capabilities: frozenset[str]
    vendor: str | None = None
    version: str | None = None
    profile: str | None = None
    probes: dict[str, str] = field(default_factory=dict)  # probe name -> "ok" or the reason it failed


Probe = Callable[[Any], Awaitable[object]]


def _probes() -> list[tuple[str, tuple[str, ...], Probe]]:
    from harness.client.resources import cim_uri, wmi_uri

    service = wmi_uri("Win32_Service")

    async def get_os(c: Any) -> object:
        return await c.get(wmi_uri("Win32_OperatingSystem"))

    async def enumerate_services(c: Any) -> object:
        result = await c.enumerate_all(service, max_elements=50, max_round_trips=200)
        if not result.items:
            raise LookupError("no Win32_Service instances")
        return result

    async def wql(c: Any) -> object:
        return await c.enumerate_all(service, wql="SELECT Name FROM Win32_Service WHERE Name = 'WinRM'",
                                     max_elements=10, max_round_trips=20)

    async def optimized(c: Any) -> object:
        page = await c.enumerate(service, optimize=True, max_elements=1)
        if not page.items:
            raise LookupError("optimized Enumerate returned no items")
        if page.context:
            await c.release(service, page.context)
        return page

    async def selector(c: Any) -> object:
        return await c.enumerate_all(service, selector_filter={"Name": "WinRM"}, max_elements=5, max_round_trips=5)

    async def cim_schema(c: Any) -> object:
        return await c.enumerate_all(cim_uri("CIM_Service"), max_elements=50, max_round_trips=200)

    async def environment(c: Any) -> object:
        return await c.enumerate_all(wmi_uri("Win32_Environment"), max_elements=50, max_round_trips=200)

    async def robust(c: Any) -> object:
        """A Get sent with wsmv:OperationID; a server with Robust Connection support for CIM
        resources answers with the same OperationID (MS-WSMV 3.1.4.1.39). No retransmission."""
        from harness.client.wsman import RobustOptions

        saved = c.robust
        c.robust = RobustOptions(window=0.0, first_bound=0.0, forced_points=())
        try:
            await c.get(wmi_uri("Win32_OperatingSystem"))
            operation = c.last_operation
            if operation is None or not operation.server_supports:
                raise LookupError("the answer carried no wsmv:OperationID (MS-WSMV 3.1.4.1.39)")
            return operation
        finally:
            c.robust = saved

    return [
        ("get Win32_OperatingSystem", ("get", "wsmv"), get_os),
        ("enumerate Win32_Service", ("enumerate", "win32-service"), enumerate_services),
        ("WQL filter", ("wql",), wql),
        ("optimized enumeration", ("optimized-enumeration",), optimized),
        ("selector filter", ("selector-filter",), selector),
        ("CIM schema URI", ("cim-schema-uri",), cim_schema),
        ("enumerate Win32_Environment", ("win32-environment",), environment),
        ("robust connection", ("robust-connection",), robust),
    ]


async def probe_capabilities(client: Any) -> tuple[frozenset[str], dict[str, str]]:
    """Read-only probes against a connected :class:`harness.client.wsman.WSManClient`.

    Returns the capabilities granted and, per probe, "ok" or why it failed (fault subcode or error).
    """
    caps: set[str] = set()
    evidence: dict[str, str] = {}
    for name, grants, probe in _probes():
        try:
            await probe(client)
        except Exception as exc:  # any failure only means "not offered"; the reason is kept
            evidence[name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        evidence[name] = "ok"
        caps.update(grants)
    return frozenset(caps), evidence


async def detect_capabilities(target: Target, *, tap: Any = None) -> Detection:
    """Identify, then the vendor's profile or the probes (module docstring)."""
    from harness.client.wsman import WSManClient

    async with WSManClient(target, tap=tap) as client:
        try:
            info = await client.identify()
        except Exception as exc:  # a target that does not answer Identify is probed as it is
            detection = Detection(frozenset(), probes={"identify": f"{type(exc).__name__}: {exc}"[:300]})
        else:
            detection = Detection(frozenset({"wsman", "identify"}), info.product_vendor, info.product_version,
                                  probes={"identify": "ok"})
            name = profile_for_identity(info.product_vendor)
            if name is not None:
                detection.profile = name
                detection.capabilities = profile(name)
                return detection
        caps, evidence = await probe_capabilities(client)
        detection.probes.update(evidence)
        detection.capabilities = detection.capabilities | caps
        if detection.capabilities:
            detection.capabilities |= {"wsman"}
        return detection


def detect_capabilities_sync(target: Target, *, tap: Any = None, timeout: float = 120.0) -> Detection:
    """:func:`detect_capabilities` from synchronous code (its own event loop in a helper thread,
    so that it also works when the caller already runs a loop)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(detect_capabilities(target, tap=tap))
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="wmh-capabilities", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"capability detection of {target.name} did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    result: Detection = box["result"]
    return result

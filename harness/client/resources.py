"""Resource URIs for WMI and DMTF CIM classes (MS-WSMV 2.2.4.x; DSP0226 7.1)."""

from __future__ import annotations

from harness.wire.wsman.ns import RESOURCE_CIM_PREFIX, RESOURCE_WMI_PREFIX

DEFAULT_NAMESPACE = "root/cimv2"


def wmi_uri(class_name: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service``."""
    return f"{RESOURCE_WMI_PREFIX}{namespace.replace(chr(92), '/').strip('/')}/{class_name}"


def cim_uri(class_name: str) -> str:
    """``http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_Service`` (namespace via ``__cimnamespace``)."""
    return f"{RESOURCE_CIM_PREFIX}{class_name}"

"""CIM status codes and the typed error of the CIM layer.

The numeric codes are the CIM status codes of DSP0200 (CIM operations over HTTP, "Status codes")
that MS-WMI 2.2.11 maps onto the WBEM_E_* HRESULT values (e.g. CIM_ERR_NOT_FOUND = 6 is
WBEM_E_NOT_FOUND 0x80041002).
"""

from __future__ import annotations

import enum


class CimStatus(enum.IntEnum):
    """CIM status codes (DSP0200 "Status codes", MS-WMI 2.2.11)."""

    FAILED = 1
    ACCESS_DENIED = 2
    INVALID_NAMESPACE = 3
    INVALID_PARAMETER = 4
    INVALID_CLASS = 5
    NOT_FOUND = 6
    NOT_SUPPORTED = 7
    CLASS_HAS_CHILDREN = 8
    CLASS_HAS_INSTANCES = 9
    INVALID_SUPERCLASS = 10
    ALREADY_EXISTS = 11
    NO_SUCH_PROPERTY = 12
    TYPE_MISMATCH = 13
    QUERY_LANGUAGE_NOT_SUPPORTED = 14
    INVALID_QUERY = 15
    METHOD_NOT_AVAILABLE = 16
    METHOD_NOT_FOUND = 17


#: WBEM_E_* HRESULT (MS-WMI 2.2.11) closest to each CIM status; used by the DCOM role.
WBEM_HRESULT: dict[CimStatus, int] = {
    CimStatus.FAILED: 0x80041001,
    CimStatus.ACCESS_DENIED: 0x80041003,
    CimStatus.INVALID_NAMESPACE: 0x8004100E,
    CimStatus.INVALID_PARAMETER: 0x80041008,
    CimStatus.INVALID_CLASS: 0x80041010,
    CimStatus.NOT_FOUND: 0x80041002,
    CimStatus.NOT_SUPPORTED: 0x8004100C,
    CimStatus.CLASS_HAS_CHILDREN: 0x80041025,
    CimStatus.CLASS_HAS_INSTANCES: 0x80041026,
    CimStatus.INVALID_SUPERCLASS: 0x8004100D,
    CimStatus.ALREADY_EXISTS: 0x80041019,
    # IWbemClassObject::Get / ::Put of a property the class lacks answer WBEM_E_NOT_FOUND (not
    # WBEM_E_INVALID_PROPERTY, 0x80041031, which is for an invalid property *value* or name syntax).
    CimStatus.NO_SUCH_PROPERTY: 0x80041002,
    CimStatus.TYPE_MISMATCH: 0x80041005,
    CimStatus.QUERY_LANGUAGE_NOT_SUPPORTED: 0x80041018,
    CimStatus.INVALID_QUERY: 0x80041017,
    CimStatus.METHOD_NOT_AVAILABLE: 0x80041055,
    CimStatus.METHOD_NOT_FOUND: 0x8004102E,
}


class CimError(Exception):
    """A CIM operation failed with a DSP0200 status code and a human-readable description."""

    status: CimStatus
    description: str

    def __init__(self, status: CimStatus, description: str = "") -> None:
        self.status = CimStatus(status)
        self.description = description
        text = f"{self.status.name} ({int(self.status)})"
        super().__init__(f"{text}: {description}" if description else text)

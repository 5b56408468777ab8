"""Coercion of Python values to typed CIM values and the identity of key values.

The intrinsic CIM data types and their value ranges are those of DSP0004 5.2 (Table 2); the store,
method invocation and the protocol codecs all coerce incoming values through :func:`coerce_value`, so
that every value held by the store carries its declared CIM type.

Error policy (shared by every caller):

* a value of a kind that cannot represent the declared type (a list for a scalar, a float for an
  integer, a bool for a number, ...) -> ``CimError(TYPE_MISMATCH)`` (DSP0200 CIM_ERR_TYPE_MISMATCH);
* a value of an acceptable kind that is out of range or unparsable (``"12x"`` for uint32, 300 for
  uint8) -> ``CimError(INVALID_PARAMETER)`` (DSP0200 CIM_ERR_INVALID_PARAMETER).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

import pywbem

from harness.cim.errors import CimError, CimStatus

INTEGER_TYPES = frozenset({"uint8", "sint8", "uint16", "sint16", "uint32", "sint32", "uint64", "sint64"})
REAL_TYPES = frozenset({"real32", "real64"})
ALL_TYPES = INTEGER_TYPES | REAL_TYPES | frozenset({"string", "char16", "boolean", "datetime", "reference"})

#: Upper bound of the length of a numeric string accepted for coercion (no unbounded int parsing).
MAX_NUMBER_TEXT = 64

#: Parses an object path text into an instance name (injected by the store to avoid an import cycle).
PathParser = Callable[[str], pywbem.CIMInstanceName]


def _mismatch(name: str, cim_type: str, value: object) -> CimError:
    return CimError(
        CimStatus.TYPE_MISMATCH,
        f"{name}: a {type(value).__name__} value cannot be converted to CIM type {cim_type}",
    )


def _invalid(name: str, cim_type: str, value: object, why: str = "") -> CimError:
    extra = f" ({why})" if why else ""
    return CimError(CimStatus.INVALID_PARAMETER, f"{name}: value {value!r} is not a valid {cim_type}{extra}")


def _coerce_integer(value: object, cim_type: str, name: str) -> Any:
    cls = pywbem.type_from_name(cim_type)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _mismatch(name, cim_type, value)
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > MAX_NUMBER_TEXT:
            raise _invalid(name, cim_type, value)
        try:
            number = int(text, 0) if text.lower().lstrip("+-").startswith("0x") else int(text, 10)
        except ValueError as exc:
            raise _invalid(name, cim_type, value) from exc
    else:
        number = int(value)
    if not cls.minvalue <= number <= cls.maxvalue:
        raise _invalid(name, cim_type, value, f"range {cls.minvalue}..{cls.maxvalue}")
    return cls(number)


def _coerce_real(value: object, cim_type: str, name: str) -> Any:
    cls = pywbem.type_from_name(cim_type)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _mismatch(name, cim_type, value)
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT:
            raise _invalid(name, cim_type, value)
        try:
            return cls(float(value))
        except ValueError as exc:
            raise _invalid(name, cim_type, value) from exc
    try:
        return cls(float(value))
    except OverflowError as exc:
        raise _invalid(name, cim_type, value) from exc


def _coerce_boolean(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise _invalid(name, "boolean", value)
    raise _mismatch(name, "boolean", value)


def _coerce_datetime(value: object, name: str) -> pywbem.CIMDateTime:
    if isinstance(value, pywbem.CIMDateTime):
        return value
    if isinstance(value, _dt.datetime | _dt.timedelta):
        return pywbem.CIMDateTime(value)
    if isinstance(value, str):
        try:
            return pywbem.CIMDateTime(value)
        except ValueError as exc:
            raise _invalid(name, "datetime", value) from exc
    raise _mismatch(name, "datetime", value)


def _coerce_reference(value: object, name: str, parse_path: PathParser | None) -> pywbem.CIMInstanceName:
    if isinstance(value, pywbem.CIMInstanceName):
        return value
    if isinstance(value, str):
        if parse_path is None:
            raise _mismatch(name, "reference", value)
        try:
            return parse_path(value)
        except CimError as exc:
            raise _invalid(name, "reference", value, exc.description) from exc
    raise _mismatch(name, "reference", value)


def coerce_scalar(
    value: object,
    cim_type: str,
    *,
    name: str = "value",
    embedded: bool = False,
    parse_path: PathParser | None = None,
) -> Any:
    """Coerce one non-NULL scalar to the pywbem representation of ``cim_type`` (DSP0004 5.2)."""
    if cim_type in INTEGER_TYPES:
        return _coerce_integer(value, cim_type, name)
    if cim_type in REAL_TYPES:
        return _coerce_real(value, cim_type, name)
    if cim_type == "boolean":
        return _coerce_boolean(value, name)
    if cim_type == "string":
        if isinstance(value, str):
            return value
        if embedded and isinstance(value, pywbem.CIMInstance | pywbem.CIMClass):
            return value
        raise _mismatch(name, cim_type, value)
    if cim_type == "char16":
        if isinstance(value, str) and len(value) == 1:
            return pywbem.Char16(value)
        if isinstance(value, str):
            raise _invalid(name, cim_type, value, "exactly one character")
        raise _mismatch(name, cim_type, value)
    if cim_type == "datetime":
        return _coerce_datetime(value, name)
    if cim_type == "reference":
        return _coerce_reference(value, name, parse_path)
    raise CimError(CimStatus.INVALID_PARAMETER, f"{name}: unknown CIM type {cim_type!r}")


def coerce_value(
    value: object,
    cim_type: str,
    is_array: bool,
    *,
    name: str = "value",
    embedded: bool = False,
    parse_path: PathParser | None = None,
) -> Any:
    """Coerce ``value`` (``None`` stays NULL) to ``cim_type``; arrays take a list or tuple (DSP0004 7.9.2).

    Array elements may be NULL (DSP0004 7.9.2 allows NULL array elements).
    """
    if value is None:
        return None
    if is_array:
        if not isinstance(value, list | tuple):
            raise _mismatch(name, cim_type + "[]", value)
        return [
            None if item is None else coerce_scalar(item, cim_type, name=name, embedded=embedded, parse_path=parse_path)
            for item in value
        ]
    if isinstance(value, list | tuple):
        raise _mismatch(name, cim_type, value)
    return coerce_scalar(value, cim_type, name=name, embedded=embedded, parse_path=parse_path)


def is_embedded(qualifiers: Mapping[str, Any]) -> bool:
    """True if an EmbeddedInstance / EmbeddedObject qualifier marks a string as an object (DSP0004 5.6.3)."""
    return "EmbeddedInstance" in qualifiers or "EmbeddedObject" in qualifiers


def key_identity(value: object) -> object:
    """A hashable identity of a key value for instance lookup.

    String keys compare case-insensitively (observed Windows behaviour: WMI finds
    ``Win32_Service.Name="winrm"`` as well as ``"WinRM"``); references compare by class name and
    key bindings, ignoring host and namespace (DSP0004 8.2.5 model paths).
    """
    if isinstance(value, pywbem.CIMInstanceName):
        return (
            "ref",
            value.classname.lower(),
            tuple(sorted((str(k).lower(), key_identity(v)) for k, v in value.keybindings.items())),
        )
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", int(value))
    if isinstance(value, float):
        return ("real", float(value))
    if isinstance(value, pywbem.CIMDateTime):
        return ("dt", str(value))
    if isinstance(value, str):
        # numeric strings (keys of an untyped object path) equal the integer value they spell
        text = value.strip()
        if text.isdigit() and len(text) <= MAX_NUMBER_TEXT:
            return ("int", int(text))
        return ("str", value.casefold())
    return ("other", repr(value))

"""xs:duration parsing and formatting (XML Schema 2 3.2.6), as used by wsman:OperationTimeout
(DSP0226 6.1), wsen:Expires / MaxTime (DSP0226 8.2, 8.3) and cim:Interval (DSP0230 9.2)."""

from __future__ import annotations

import math
import re

from .errors import WSManDecodeError

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=[\d.])(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?|\.\d+)S)?)?$"
)

#: xs:duration years and months have no fixed length; for a timeout we count a year as 365 days and
#: a month as 30 days (documented approximation, DSP0226 6.1 only uses seconds in practice).
_YEAR = 365 * 86400
_MONTH = 30 * 86400
_MAX_DIGITS = 18


def parse_duration(text: str) -> float:
    """Parse an xs:duration (``PT60.000S``, ``P1DT2H``, ``PT0.5S``) into seconds.

    Raises :class:`WSManDecodeError` on anything that is not a valid xs:duration.
    """
    value = text.strip()
    m = _DURATION.match(value)
    if m is None or len(value) > 64:
        raise WSManDecodeError(f"invalid xs:duration {text[:64]!r}", fault="InvalidMessageInformationHeader")
    parts = m.groupdict()
    for key in ("y", "mo", "d", "h", "mi"):
        if parts[key] is not None and len(parts[key]) > _MAX_DIGITS:
            raise WSManDecodeError(f"xs:duration component too large in {text[:64]!r}")
    total = 0.0
    total += int(parts["y"] or 0) * _YEAR
    total += int(parts["mo"] or 0) * _MONTH
    total += int(parts["d"] or 0) * 86400
    total += int(parts["h"] or 0) * 3600
    total += int(parts["mi"] or 0) * 60
    if parts["s"] is not None:
        total += float(parts["s"])
    if not math.isfinite(total):
        raise WSManDecodeError(f"xs:duration out of range {text[:64]!r}")
    return -total if parts["sign"] else total


def format_duration(seconds: float) -> str:
    """Format seconds the way Windows writes OperationTimeout: ``PT60.000S`` (observed Windows
    behaviour: seconds only, three decimals)."""
    if not math.isfinite(seconds):
        raise ValueError("duration must be finite")
    sign = "-" if seconds < 0 else ""
    return f"{sign}PT{abs(seconds):.3f}S"


def format_interval(days: int, hours: int, minutes: int, seconds: int, microseconds: int) -> str:
    """Format a CIM interval as xs:duration ``PnDTnHnMn.nnnnnnS`` (DSP0230 9.2 cim:Interval)."""
    sec = f"{seconds}.{microseconds:06d}" if microseconds else str(seconds)
    return f"P{days}DT{hours}H{minutes}M{sec}S"


def parse_duration_exact(text: str) -> tuple[int, int]:
    """Parse an xs:duration into (whole seconds, microseconds) without float rounding, for
    cim:Interval (DSP0230 9.2). Negative durations are refused (CIM intervals are unsigned)."""
    value = text.strip()
    m = _DURATION.match(value)
    if m is None or len(value) > 64:
        raise WSManDecodeError(f"invalid xs:duration {text[:64]!r}", fault="InvalidRepresentation")
    parts = m.groupdict()
    if parts["sign"]:
        raise WSManDecodeError(f"negative interval {text[:64]!r}", fault="InvalidRepresentation")
    for key in ("y", "mo", "d", "h", "mi"):
        if parts[key] is not None and len(parts[key]) > _MAX_DIGITS:
            raise WSManDecodeError(f"xs:duration component too large in {text[:64]!r}")
    whole = (int(parts["y"] or 0) * _YEAR + int(parts["mo"] or 0) * _MONTH + int(parts["d"] or 0) * 86400
             + int(parts["h"] or 0) * 3600 + int(parts["mi"] or 0) * 60)
    micros = 0
    sec = parts["s"]
    if sec is not None:
        ipart, _, frac = sec.partition(".")
        if len(ipart) > _MAX_DIGITS:
            raise WSManDecodeError(f"xs:duration component too large in {text[:64]!r}")
        whole += int(ipart or 0)
        micros = int((frac + "000000")[:6]) if frac else 0
    return whole, micros

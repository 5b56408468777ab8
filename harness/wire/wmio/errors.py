"""Typed errors of the MS-WMIO codec.

The decoder raises only :class:`WmioDecodeError` (with the absolute byte offset in the input where the
problem was found); the encoder raises only :class:`WmioEncodeError`.
"""

from __future__ import annotations


class WmioError(Exception):
    """Base of the MS-WMIO codec errors."""


class WmioDecodeError(WmioError):
    """Malformed MS-WMIO bytes. ``offset`` is the absolute offset into the decoded buffer."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset


class WmioEncodeError(WmioError):
    """A model object that cannot be represented in MS-WMIO (bad value for its CIM type, NUL in a string...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

"""Typed decode error of the WS-Man codec."""

from __future__ import annotations


class WSManDecodeError(Exception):
    """Malformed bytes, XML or message shape. The only exception the decoders raise.

    ``fault`` names the entry of :data:`harness.wire.wsman.faults.FAULTS` a server should answer
    with (e.g. ``"VersionMismatch"`` for a SOAP 1.1 envelope, MS-WSMV 3.1.4.1.x / SOAP 1.2 part 1 5.4.7;
    ``"EncodingLimit"`` when the message is too large, DSP0226 14.6).
    """

    def __init__(self, reason: str, *, fault: str = "SchemaValidationError") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fault = fault

    def __str__(self) -> str:
        return self.reason

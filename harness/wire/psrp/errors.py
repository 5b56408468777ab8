"""Typed errors of the sans-IO MS-PSRP codec.

Decoders raise only :class:`PsrpDecodeError`, encoders only :class:`PsrpEncodeError` and the state machines
only :class:`PsrpStateError`. Every error carries a human readable ``reason``.
"""

from __future__ import annotations


class PsrpError(Exception):
    """Base of every MS-PSRP codec error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PsrpDecodeError(PsrpError):
    """Malformed MS-PSRP bytes: fragment (MS-PSRP 2.2.4), message header (2.2.1) or CLIXML (2.2.5)."""


class PsrpEncodeError(PsrpError):
    """A value that cannot be represented on the wire (out of range integer, unsupported Python type...)."""


class PsrpStateError(PsrpError):
    """An operation or message that is illegal in the current RunspacePool / pipeline state (MS-PSRP 3.1.1, 3.2.1)."""

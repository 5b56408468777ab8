"""Typed errors of the authentication layer."""

from __future__ import annotations


class AuthError(Exception):
    """Authentication failed or could not be carried out; ``reason`` says why (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncryptionError(AuthError):
    """A ``multipart/encrypted`` body that cannot be built or opened (MS-WSMV 2.2.9.1)."""

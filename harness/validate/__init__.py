"""Validation of captured and generated messages: XSD validation of WS-Man envelopes."""

from __future__ import annotations

from .schema import SchemaViolation, WSManValidator, default_validator, schemas_dir

__all__ = ["SchemaViolation", "WSManValidator", "default_validator", "schemas_dir"]

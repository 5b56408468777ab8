"""MS-PSRP 2.2.3.15 ErrorRecord: build and read the object carried by ERROR_RECORD (2.2.2.20) and by the
``ExceptionAsErrorRecord`` of RUNSPACEPOOL_STATE (2.2.2.9) / PIPELINE_STATE (2.2.2.21).

Only the properties of 2.2.3.15 without invocation information are modelled (``SerializeExtendedInfo`` false);
other properties of a received record are kept in ``extra_properties``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from harness.wire.psrp.clixml import PSObject
from harness.wire.psrp.enums import ErrorCategory
from harness.wire.psrp.errors import PsrpDecodeError

ERROR_RECORD_TYPE_NAMES: Final = ("System.Management.Automation.ErrorRecord", "System.Object")

_OPTIONAL_STRINGS: Final = (
    ("activity", "ErrorCategory_Activity"),
    ("reason", "ErrorCategory_Reason"),
    ("target_name", "ErrorCategory_TargetName"),
    ("target_type", "ErrorCategory_TargetType"),
    ("category_message", "ErrorCategory_Message"),
    ("details_message", "ErrorDetails_Message"),
    ("recommended_action", "ErrorDetails_RecommendedAction"),
)
_KNOWN: Final = frozenset(
    {
        "Exception",
        "TargetObject",
        "FullyQualifiedErrorId",
        "InvocationInfo",
        "ErrorCategory_Category",
        "SerializeExtendedInfo",
    }
    | {name for _, name in _OPTIONAL_STRINGS}
)


@dataclass
class ErrorRecordInfo:
    """The fields of an ErrorRecord (MS-PSRP 2.2.3.15) that a harness needs to produce or check."""

    message: str
    fully_qualified_error_id: str
    category: int = ErrorCategory.NotSpecified
    exception_type: str = "System.Management.Automation.RuntimeException"
    target_object: Any = None
    activity: str | None = None
    reason: str | None = None
    target_name: str | None = None
    target_type: str | None = None
    category_message: str | None = None
    details_message: str | None = None
    recommended_action: str | None = None
    extra_properties: dict[str, Any] = field(default_factory=dict)

    def to_object(self) -> PSObject:
        """The ``<Obj>`` of the record: TN ErrorRecord, ToString = message, extended properties of 2.2.3.15."""
        exception = PSObject(
            type_names=[self.exception_type, "System.Exception", "System.Object"],
            to_string=self.message,
            adapted_properties={"Message": self.message, "Data": None, "InnerException": None, "HResult": -2146233087},
        )
        props: dict[str, Any] = {
            "Exception": exception,
            "TargetObject": self.target_object,
            "FullyQualifiedErrorId": self.fully_qualified_error_id,
            "InvocationInfo": None,
            "ErrorCategory_Category": int(self.category),
        }
        for attr, name in _OPTIONAL_STRINGS:
            value = getattr(self, attr)
            if value is not None:
                props[name] = value
        props["SerializeExtendedInfo"] = False
        props.update(self.extra_properties)
        return PSObject(type_names=list(ERROR_RECORD_TYPE_NAMES), to_string=self.message, extended_properties=props)

    @classmethod
    def from_object(cls, value: Any) -> ErrorRecordInfo:
        """Read a received ErrorRecord object. Raises :class:`PsrpDecodeError` if mandatory fields are missing."""
        if not isinstance(value, PSObject):
            raise PsrpDecodeError(f"ErrorRecord must be an Obj, got {type(value).__name__}")
        error_id = value.get("FullyQualifiedErrorId")
        category = value.get("ErrorCategory_Category")
        if type(error_id) is not str or type(category) is not int:
            raise PsrpDecodeError("ErrorRecord needs FullyQualifiedErrorId (S) and ErrorCategory_Category (I32)")
        exception = value.get("Exception")
        message = value.to_string or ""
        exception_type = "System.Exception"
        if isinstance(exception, PSObject):
            exception_type = exception.type_names[0] if exception.type_names else exception_type
            text = exception.get("Message")
            message = text if type(text) is str else (exception.to_string or message)
        record = cls(message, error_id, category, exception_type, value.get("TargetObject"))
        for attr, name in _OPTIONAL_STRINGS:
            text = value.get(name)
            if text is not None and type(text) is not str:
                raise PsrpDecodeError(f"ErrorRecord {name} must be a string")
            setattr(record, attr, text)
        record.extra_properties = {k: v for k, v in value.extended_properties.items() if k not in _KNOWN}
        return record

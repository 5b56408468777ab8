"""MS-PSRP 2.2.3.15 ErrorRecord objects, read back by pypsrp in ERROR_RECORD / PIPELINE_STATE / RUNSPACEPOOL_STATE."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pypsrp import messages as pm
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import PSObject, deserialize, serialize
from harness.wire.psrp.enums import ErrorCategory, PSInvocationState, RunspacePoolState
from harness.wire.psrp.errors import PsrpDecodeError
from harness.wire.psrp.messages import (
    Destination,
    ErrorRecordMessage,
    PipelineStateMessage,
    RunspacePoolStateMessage,
    build_message,
)
from harness.wire.psrp.records import ErrorRecordInfo

RECORD = ErrorRecordInfo(
    "Cannot find path 'C:\\nope'",
    "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
    ErrorCategory.ObjectNotFound,
    "System.Management.Automation.ItemNotFoundException",
    target_object="C:\\nope",
    activity="Get-Item",
    reason="ItemNotFoundException",
    target_name="C:\\nope",
    target_type="String",
)


@pytest.mark.parametrize(
    "payload",
    [
        ErrorRecordMessage(RECORD.to_object()),
        PipelineStateMessage(PSInvocationState.Failed, RECORD.to_object()),
        RunspacePoolStateMessage(RunspacePoolState.Broken, RECORD.to_object()),
    ],
    ids=lambda p: type(p).__name__,
)
def test_pypsrp_reads_our_error_records(payload: Any) -> None:
    message = pm.Message.unpack(build_message(Destination.CLIENT, payload, uuid.UUID(int=1)), Serializer())
    data: Any = message.data
    record = getattr(data, "error_record", data)
    assert record.fq_error == RECORD.fully_qualified_error_id
    assert record.category == ErrorCategory.ObjectNotFound
    assert (record.activity, record.reason, record.target_name, record.target_type) == (
        "Get-Item",
        "ItemNotFoundException",
        "C:\\nope",
        "String",
    )
    assert str(record) == RECORD.message
    assert record.exception.adapted_properties["Message"] == RECORD.message


def test_error_record_round_trip() -> None:
    obj = deserialize(serialize(RECORD.to_object()))
    assert ErrorRecordInfo.from_object(obj) == RECORD
    extra = ErrorRecordInfo("m", "Id", extra_properties={"ErrorDetails_ScriptStackTrace": "at line 1"})
    assert ErrorRecordInfo.from_object(deserialize(serialize(extra.to_object()))) == extra


@pytest.mark.parametrize(
    "value",
    [
        "not an object",
        PSObject(extended_properties={"FullyQualifiedErrorId": "x"}),
        PSObject(extended_properties={"FullyQualifiedErrorId": 1, "ErrorCategory_Category": 1}),
        PSObject(
            extended_properties={"FullyQualifiedErrorId": "x", "ErrorCategory_Category": 1, "ErrorCategory_Reason": 5}
        ),
    ],
)
def test_bad_error_records(value: Any) -> None:
    with pytest.raises(PsrpDecodeError):
        ErrorRecordInfo.from_object(value)

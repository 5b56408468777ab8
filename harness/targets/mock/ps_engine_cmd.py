"""``powershell.exe`` inside the mock's simulated cmd (MS-WSMV 3.1.4.11; what pywinrm's ``run_ps`` sends).

``powershell -EncodedCommand <base64>`` is decoded (base64 of the UTF-16LE script text, the documented
powershell.exe contract) and ``powershell -Command <text>`` is taken as is; either script runs in the
SAFE engine of :mod:`harness.targets.mock.ps_engine` -- never a real process. Output objects become text
lines on stdout; error records go to stderr in the ``#< CLIXML`` form Windows PowerShell writes when its
stderr is redirected (observed Windows behaviour, what pywinrm's ``_clean_error_msg`` parses). A script
that fails (``throw``) exits 1, otherwise 0 (observed Windows behaviour of ``-EncodedCommand``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from harness.targets.mock import cmd_engine
from harness.targets.mock.cmd_engine import CmdContext, Emit, ReadStdin, Sleep
from harness.targets.mock.ps_engine import (
    DebugStop,
    HostCall,
    Out,
    PsError,
    ReadInput,
    Rec,
    Runspace,
    Wait,
    commands_program,
    format_value,
    to_text,
)
from harness.wire.psrp.clixml import encode_string
from harness.wire.psrp.messages import Command, ErrorRecordMessage, InformationRecord, WarningRecord
from harness.wire.psrp.records import ErrorRecordInfo

#: Bytes of a script accepted on a command line (cmd.exe's own limit is 8191 characters).
MAX_ENCODED: Final = 32 * 1024
CLIXML_HEADER: Final = "#< CLIXML\r\n"
_NS: Final = "http://schemas.microsoft.com/powershell/2004/04"


def decode_encoded_command(text: str) -> str:
    """The script of ``-EncodedCommand``: base64 of UTF-16LE. Raises ValueError with the reason."""
    if len(text) > MAX_ENCODED:
        raise ValueError("the encoded command is too long")
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot process the command because the value specified with -EncodedCommand is not "
                         f"properly encoded ({exc}).") from None


def _script_of(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        flag = args[i].lower()
        if flag in ("-encodedcommand", "-enc", "-e", "-ec", "-en", "-encoded") and i + 1 < len(args):
            return decode_encoded_command(args[i + 1])
        if flag in ("-command", "-c", "-com") and i + 1 < len(args):
            return " ".join(args[i + 1:])
        if flag in ("-executionpolicy", "-ep", "-inputformat", "-outputformat", "-windowstyle", "-version"):
            i += 2
            continue
        if not flag.startswith("-"):
            return " ".join(args[i:])
        i += 1
    return None


def clixml_error(message: str) -> str:
    """One error record as the ``#< CLIXML`` stderr stream of powershell.exe (observed Windows behaviour)."""
    lines = "".join(f'<S S="Error">{encode_string(line + chr(13) + chr(10))}</S>'
                    for line in message.splitlines() or [""])
    return f'{CLIXML_HEADER}<Objs Version="1.1.0.1" xmlns="{_NS}">{lines}</Objs>'


def _error_text(record: ErrorRecordInfo) -> str:
    return f"{record.message}\r\n    + CategoryInfo          : {record.reason or 'NotSpecified'}\r\n" \
           f"    + FullyQualifiedErrorId : {record.fully_qualified_error_id}"


def powershell_program(raw: str, args: list[str], ctx: CmdContext, depth: int) -> cmd_engine.Program:
    """The cmd built-in ``powershell`` / ``powershell.exe``: the script in the SAFE engine."""
    try:
        script = _script_of(args)
    except ValueError as exc:
        yield Emit("stderr", f"{exc}\r\n")
        return 1
    if script is None:
        yield Emit("stderr", "Interactive PowerShell is not available in this shell; use -Command or "
                             "-EncodedCommand.\r\n")
        return 1
    runspace = Runspace(ctx.store, ctx.machine, ctx.user, dict(ctx.environment))
    program = commands_program(runspace, [Command(script, is_script=True)], has_input=False)
    errors: list[str] = []
    send: Any = None
    code = 0
    try:
        while True:
            step = program.send(send)
            send = None
            if isinstance(step, Out):
                yield Emit("stdout", format_value(step.value) + "\r\n")
            elif isinstance(step, Rec):
                payload = step.payload
                if isinstance(payload, ErrorRecordMessage):
                    errors.append(_error_text(ErrorRecordInfo.from_object(payload.data)))
                elif isinstance(payload, WarningRecord):
                    yield Emit("stdout", f"WARNING: {payload.message}\r\n")
                elif isinstance(payload, InformationRecord) and "PSHOST" in payload.tags:
                    yield Emit("stdout", to_text(payload.message_data) + "\r\n")
            elif isinstance(step, Wait):
                yield Sleep(step.seconds)
            elif isinstance(step, ReadInput):
                send = []
            elif isinstance(step, HostCall):
                if step.parameters:
                    yield Emit("stdout", to_text(step.parameters[0]))
                else:
                    line = yield ReadStdin()
                    send = (line or b"").decode(ctx.codec, "replace").splitlines()[0] if line else ""
            elif isinstance(step, DebugStop):
                send = 0
    except StopIteration:
        pass
    except PsError as exc:
        errors.append(_error_text(exc.record))
        code = 1
    if errors:
        yield Emit("stderr", clixml_error("\r\n".join(errors)))
    return code


def install_powershell_command() -> None:
    """Register ``powershell`` (and ``powershell.exe``) as a built-in of the simulated cmd."""
    cmd_engine._BUILTINS.setdefault("powershell", powershell_program)


__all__ = ["CLIXML_HEADER", "clixml_error", "decode_encoded_command", "install_powershell_command",
           "powershell_program"]

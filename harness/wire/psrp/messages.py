"""MS-PSRP 2.2.1 message framing and the 2.2.2.x message payloads.

Message layout (MS-PSRP 2.2.1)::

    Destination  uint32 LE   0x00000001 client, 0x00000002 server
    MessageType  uint32 LE   :class:`MessageType`
    RPID         GUID        RunspacePool id, .NET (mixed-endian) byte order
    PID          GUID        pipeline id, all zero for RunspacePool messages
    Data         bytes       UTF-8 byte order mark, then the CLIXML of the payload

Every payload class converts to/from the :class:`~harness.wire.psrp.clixml.PSObject` layout of its 2.2.2.x
section (``to_value`` / ``from_value``) and to/from CLIXML bytes (``to_clixml`` / :func:`parse_payload`).
"""

from __future__ import annotations

import datetime as dt
import enum
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar

from harness.wire.psrp.clixml import (
    ARRAYLIST_TYPE_NAMES,
    PRIMITIVE_DICTIONARY_TYPE_NAMES,
    DecodeLimits,
    PSObject,
    deserialize,
    ps_list,
    serialize_bytes,
)
from harness.wire.psrp.enums import (
    ApartmentState,
    CommandTypes,
    HostMethodId,
    PipelineResultTypes,
    ProgressRecordType,
    PSInvocationState,
    PSThreadOptions,
    RemoteStreamOptions,
    RunspacePoolState,
    enum_object,
)
from harness.wire.psrp.errors import PsrpDecodeError
from harness.wire.psrp.primitives import DateTime, Int64, UInt32, Version

UTF8_BOM: Final = b"\xef\xbb\xbf"
HEADER: Final = struct.Struct("<II16s16s")
HEADER_SIZE: Final = HEADER.size  # 40
NIL_UUID: Final = uuid.UUID(int=0)


class Destination(enum.IntEnum):
    """MS-PSRP 2.2.1 Destination."""

    CLIENT = 0x00000001
    SERVER = 0x00000002


class MessageType(enum.IntEnum):
    """MS-PSRP 2.2.1 MessageType: every message of the protocol."""

    SESSION_CAPABILITY = 0x00010002
    INIT_RUNSPACEPOOL = 0x00010004
    PUBLIC_KEY = 0x00010005
    ENCRYPTED_SESSION_KEY = 0x00010006
    PUBLIC_KEY_REQUEST = 0x00010007
    CONNECT_RUNSPACEPOOL = 0x00010008
    RUNSPACEPOOL_INIT_DATA = 0x0002100B
    RESET_RUNSPACE_STATE = 0x0002100C
    SET_MAX_RUNSPACES = 0x00021002
    SET_MIN_RUNSPACES = 0x00021003
    RUNSPACE_AVAILABILITY = 0x00021004
    RUNSPACEPOOL_STATE = 0x00021005
    CREATE_PIPELINE = 0x00021006
    GET_AVAILABLE_RUNSPACES = 0x00021007
    USER_EVENT = 0x00021008
    APPLICATION_PRIVATE_DATA = 0x00021009
    GET_COMMAND_METADATA = 0x0002100A
    RUNSPACEPOOL_HOST_CALL = 0x00021100
    RUNSPACEPOOL_HOST_RESPONSE = 0x00021101
    PIPELINE_INPUT = 0x00041002
    END_OF_PIPELINE_INPUT = 0x00041003
    PIPELINE_OUTPUT = 0x00041004
    ERROR_RECORD = 0x00041005
    PIPELINE_STATE = 0x00041006
    DEBUG_RECORD = 0x00041007
    VERBOSE_RECORD = 0x00041008
    WARNING_RECORD = 0x00041009
    PROGRESS_RECORD = 0x00041010
    INFORMATION_RECORD = 0x00041011
    PIPELINE_HOST_CALL = 0x00041100
    PIPELINE_HOST_RESPONSE = 0x00041101


# --------------------------------------------------------------------------------------------------------------
# framing


@dataclass(frozen=True)
class Message:
    """One decoded MS-PSRP 2.2.1 message; ``data`` is the CLIXML without the byte order mark."""

    destination: Destination
    message_type: MessageType
    rpid: uuid.UUID
    pid: uuid.UUID
    data: bytes

    def payload(self, limits: DecodeLimits | None = None) -> Payload:
        return parse_payload(self.message_type, self.data, limits)


def pack_message(message: Message, *, bom: bool = True) -> bytes:
    """MS-PSRP 2.2.1 bytes. The BOM is written when there is data (END_OF_PIPELINE_INPUT has none)."""
    prefix = UTF8_BOM if bom and message.data else b""
    header = HEADER.pack(
        int(message.destination), int(message.message_type), message.rpid.bytes_le, message.pid.bytes_le
    )
    return header + prefix + message.data


def unpack_message(data: bytes) -> Message:
    """Decode the 2.2.1 header; the BOM is optional (pypsrp sends none). Raises :class:`PsrpDecodeError`."""
    if len(data) < HEADER_SIZE:
        raise PsrpDecodeError(f"PSRP message of {len(data)} bytes is shorter than its 40-byte header")
    destination, message_type, rpid, pid = HEADER.unpack_from(data)
    try:
        dest = Destination(destination)
    except ValueError as exc:
        raise PsrpDecodeError(f"invalid Destination 0x{destination:08x}") from exc
    try:
        kind = MessageType(message_type)
    except ValueError as exc:
        raise PsrpDecodeError(f"unknown MessageType 0x{message_type:08x}") from exc
    body = bytes(data[HEADER_SIZE:])
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]
    return Message(dest, kind, uuid.UUID(bytes_le=rpid), uuid.UUID(bytes_le=pid), body)


def build_message(
    destination: Destination, payload: Payload, rpid: uuid.UUID, pid: uuid.UUID = NIL_UUID, *, bom: bool = True
) -> bytes:
    """Serialize ``payload`` and frame it (MS-PSRP 2.2.1)."""
    return pack_message(Message(destination, payload.MESSAGE_TYPE, rpid, pid, payload.to_clixml()), bom=bom)


# --------------------------------------------------------------------------------------------------------------
# property converters


@dataclass(frozen=True)
class _Conv:
    to_wire: Callable[[Any], Any]
    from_wire: Callable[[Any], Any]


def _bad(expected: str, value: Any) -> PsrpDecodeError:
    return PsrpDecodeError(f"expected {expected}, got {type(value).__name__}")


def _check(
    predicate: Callable[[Any], bool], expected: str, convert: Callable[[Any], Any] = lambda v: v
) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not predicate(value):
            raise _bad(expected, value)
        return convert(value)

    return decode


_ANY = _Conv(lambda v: v, lambda v: v)
_I32 = _Conv(int, _check(lambda v: type(v) is int, "I32"))
_I64 = _Conv(Int64, _check(lambda v: isinstance(v, Int64), "I64", int))
_U32 = _Conv(UInt32, _check(lambda v: isinstance(v, UInt32), "U32", int))
_B = _Conv(bool, _check(lambda v: type(v) is bool, "B"))
_S = _Conv(str, _check(lambda v: type(v) is str, "S"))
_S_OR_NIL = _Conv(lambda v: v, _check(lambda v: v is None or type(v) is str, "S or Nil"))
_B_OR_NIL = _Conv(lambda v: v, _check(lambda v: v is None or type(v) is bool, "B or Nil"))
_VERSION = _Conv(Version, _check(lambda v: isinstance(v, Version), "Version", str))
_BA = _Conv(bytes, _check(lambda v: type(v) is bytes, "BA"))
_DT = _Conv(lambda v: v, _check(lambda v: isinstance(v, (dt.datetime, DateTime)), "DT"))
_G = _Conv(lambda v: v, _check(lambda v: isinstance(v, uuid.UUID), "G"))

_E = TypeVar("_E", bound=enum.IntEnum)


def _enum(enum_type: type[enum.IntEnum] | type[enum.IntFlag], *, lenient: bool = False) -> _Conv:
    """An enum property: ``<Obj>`` with TN/ToString/``<I32>`` (MS-PSRP 2.2.5.2.5)."""

    def decode(value: Any) -> Any:
        if not isinstance(value, PSObject) or type(value.value) is not int:
            raise _bad(f"{enum_type.__name__} enum object", value)
        try:
            return enum_type(value.value)
        except ValueError as exc:
            if lenient:
                return value.value
            raise PsrpDecodeError(f"{value.value} is not a {enum_type.__name__}") from exc

    return _Conv(lambda v: enum_object(enum_type, v), decode)


def _int_enum(enum_type: type[_E]) -> _Conv:
    """An enum carried as a bare ``<I32>`` (RunspaceState, PipelineState)."""

    def decode(value: Any) -> Any:
        if type(value) is not int:
            raise _bad("I32", value)
        try:
            return enum_type(value)
        except ValueError as exc:
            raise PsrpDecodeError(f"{value} is not a {enum_type.__name__}") from exc

    return _Conv(int, decode)


def _items_of(value: Any, what: str) -> list[Any]:
    if not isinstance(value, PSObject) or value.container not in ("LST", "IE"):
        raise _bad(f"{what} list object", value)
    return list(value.items)


_STR_LIST = _Conv(
    lambda v: ps_list(list(v), ("System.String[]", "System.Array", "System.Object")),
    lambda v: [_S.from_wire(item) for item in _items_of(v, "string")],
)
_ARRAY_LIST = _Conv(lambda v: ps_list(list(v), ARRAYLIST_TYPE_NAMES), lambda v: _items_of(v, "parameter"))


@dataclass(frozen=True)
class _Prop:
    attr: str
    name: str
    conv: _Conv
    optional: bool = False  # omitted when None; may be absent on the wire


_P = TypeVar("_P", bound="Payload")


class Payload:
    """Base of the 2.2.2.x payloads: a ``PSObject`` whose ``<MS>`` holds ``_PROPS`` in order."""

    MESSAGE_TYPE: ClassVar[MessageType]
    _PROPS: ClassVar[tuple[_Prop, ...]] = ()
    _TYPE_NAMES: ClassVar[tuple[str, ...]] = ()
    _KEEP_EXTRA: ClassVar[bool] = False

    def to_value(self) -> Any:
        props: dict[str, Any] = {}
        for prop in self._PROPS:
            value = getattr(self, prop.attr)
            if value is None and prop.optional:
                continue
            props[prop.name] = None if value is None else prop.conv.to_wire(value)
        if self._KEEP_EXTRA:
            props.update(getattr(self, "extra_properties", {}))
        return PSObject(type_names=list(self._TYPE_NAMES), to_string=self._to_string(), extended_properties=props)

    def _to_string(self) -> str | None:
        return None

    @classmethod
    def from_value(cls: type[_P], value: Any) -> _P:
        if not isinstance(value, PSObject):
            raise PsrpDecodeError(f"{cls.MESSAGE_TYPE.name} payload must be an Obj, got {type(value).__name__}")
        kwargs: dict[str, Any] = {}
        known = set()
        for prop in cls._PROPS:
            name = _member(value, prop.name)
            known.add(prop.name if name is None else name)
            if name is None:
                if prop.optional:
                    kwargs[prop.attr] = None
                    continue
                raise PsrpDecodeError(f"{cls.MESSAGE_TYPE.name}: missing property {prop.name!r}")
            raw = value.get(name)
            try:
                kwargs[prop.attr] = None if raw is None and _nullable(prop) else prop.conv.from_wire(raw)
            except PsrpDecodeError as exc:
                raise PsrpDecodeError(f"{cls.MESSAGE_TYPE.name}.{prop.name}: {exc.reason}") from exc
        if cls._KEEP_EXTRA:
            kwargs["extra_properties"] = {k: v for k, v in value.extended_properties.items() if k not in known}
        return cls(**kwargs)

    def to_clixml(self) -> bytes:
        return serialize_bytes(self.to_value())


def _member(value: PSObject, name: str) -> str | None:
    """The name under which ``value`` carries the property ``name``: exact match first, then a case-insensitive
    one (.NET PSObject member lookup ignores case, so PowerShell accepts e.g. pypsrp's ``CI`` for ``ci``).
    ``None`` when absent."""
    if value.has(name):
        return name
    folded = name.casefold()
    for props in (value.extended_properties, value.adapted_properties):
        for candidate in props:
            if candidate.casefold() == folded:
                return candidate
    return None


def _nullable(prop: _Prop) -> bool:
    return prop.optional or prop.conv is _ANY


# --------------------------------------------------------------------------------------------------------------
# shared complex objects


def null_host_info() -> PSObject:
    """HostInfo (MS-PSRP 2.2.3.14) of a client without a host: every ``_is*Null`` true, use the runspace host."""
    return PSObject(
        extended_properties={
            "_isHostNull": True,
            "_isHostUINull": True,
            "_isHostRawUINull": True,
            "_useRunspaceHost": True,
        }
    )


_PSOBJECT_LIST_TYPE_NAMES: Final = (
    "System.Collections.Generic.List`1[[System.Management.Automation.PSObject, System.Management.Automation, "
    "Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
    "System.Object",
)


@dataclass
class CommandParameter:
    """MS-PSRP 2.2.3.13: ``N`` (name, Nil for a positional argument) and ``V`` (value)."""

    name: str | None
    value: Any = None

    def to_value(self) -> PSObject:
        return PSObject(extended_properties={"N": self.name, "V": self.value})

    @classmethod
    def from_value(cls, value: Any) -> CommandParameter:
        if not isinstance(value, PSObject) or not value.has("N") or not value.has("V"):
            raise PsrpDecodeError("command parameter must be an Obj with N and V")
        return cls(_S_OR_NIL.from_wire(value.get("N")), value.get("V"))


_MERGE_PROPS: Final = (
    ("merge_error", "MergeError"),
    ("merge_warning", "MergeWarning"),
    ("merge_verbose", "MergeVerbose"),
    ("merge_debug", "MergeDebug"),
    ("merge_information", "MergeInformation"),
)
_MERGE = _enum(PipelineResultTypes, lenient=True)


@dataclass
class Command:
    """MS-PSRP 2.2.3.12 Command. The per-stream merge properties (protocol 2.2+) are omitted when ``None``."""

    cmd: str
    is_script: bool = False
    use_local_scope: bool | None = None
    merge_my_result: int = 0
    merge_to_result: int = 0
    merge_previous_results: int = 0
    args: list[CommandParameter] = field(default_factory=list)
    merge_error: int | None = None
    merge_warning: int | None = None
    merge_verbose: int | None = None
    merge_debug: int | None = None
    merge_information: int | None = None

    def to_value(self) -> PSObject:
        props: dict[str, Any] = {
            "Cmd": self.cmd,
            "IsScript": self.is_script,
            "UseLocalScope": self.use_local_scope,
            "MergeMyResult": _MERGE.to_wire(self.merge_my_result),
            "MergeToResult": _MERGE.to_wire(self.merge_to_result),
            "MergePreviousResults": _MERGE.to_wire(self.merge_previous_results),
        }
        for attr, name in _MERGE_PROPS:
            merge = getattr(self, attr)
            if merge is not None:
                props[name] = _MERGE.to_wire(merge)
        props["Args"] = ps_list([arg.to_value() for arg in self.args], _PSOBJECT_LIST_TYPE_NAMES)
        return PSObject(extended_properties=props)

    @classmethod
    def from_value(cls, value: Any) -> Command:
        if not isinstance(value, PSObject):
            raise _bad("Command Obj", value)
        try:
            command = cls(
                cmd=_S.from_wire(value.get("Cmd")),
                is_script=_B.from_wire(value.get("IsScript")),
                use_local_scope=_B_OR_NIL.from_wire(value.get("UseLocalScope")),
                merge_my_result=_MERGE.from_wire(value.get("MergeMyResult")),
                merge_to_result=_MERGE.from_wire(value.get("MergeToResult")),
                merge_previous_results=_MERGE.from_wire(value.get("MergePreviousResults")),
                args=[CommandParameter.from_value(a) for a in _items_of(value.get("Args"), "Args")],
            )
        except PsrpDecodeError as exc:
            raise PsrpDecodeError(f"Command: {exc.reason}") from exc
        for attr, name in _MERGE_PROPS:
            if value.has(name):
                setattr(command, attr, _MERGE.from_wire(value.get(name)))
        return command


@dataclass
class PowerShell:
    """MS-PSRP 2.2.3.11 PowerShell: the pipeline of a CREATE_PIPELINE message."""

    commands: list[Command]
    is_nested: bool = False
    history: str | None = None
    redirect_shell_error_output_pipe: bool = False
    extra_cmds: list[list[Command]] = field(default_factory=list)

    def to_value(self) -> PSObject:
        props: dict[str, Any] = {
            "Cmds": ps_list([c.to_value() for c in self.commands], _PSOBJECT_LIST_TYPE_NAMES),
            "IsNested": self.is_nested,
            "History": self.history,
            "RedirectShellErrorOutputPipe": self.redirect_shell_error_output_pipe,
        }
        if self.extra_cmds:
            statements = [
                PSObject(extended_properties={"Cmds": ps_list([c.to_value() for c in stmt], _PSOBJECT_LIST_TYPE_NAMES)})
                for stmt in self.extra_cmds
            ]
            props["ExtraCmds"] = ps_list(statements, _PSOBJECT_LIST_TYPE_NAMES)
        return PSObject(extended_properties=props)

    @classmethod
    def from_value(cls, value: Any) -> PowerShell:
        if not isinstance(value, PSObject):
            raise _bad("PowerShell Obj", value)
        extra: list[list[Command]] = []
        if value.get("ExtraCmds") is not None:  # pypsrp writes <Nil N="ExtraCmds" /> when there are none
            for stmt in _items_of(value.get("ExtraCmds"), "ExtraCmds"):
                if not isinstance(stmt, PSObject):
                    raise _bad("statement Obj", stmt)
                extra.append([Command.from_value(c) for c in _items_of(stmt.get("Cmds"), "Cmds")])
        # History and RedirectShellErrorOutputPipe are listed in 2.2.3.11 but absent from the CREATE_PIPELINE
        # example of 2.2.2.10: an absent History reads as Null, an absent RedirectShellErrorOutputPipe as false.
        redirect = value.get("RedirectShellErrorOutputPipe") if value.has("RedirectShellErrorOutputPipe") else False
        return cls(
            commands=[Command.from_value(c) for c in _items_of(value.get("Cmds"), "Cmds")],
            is_nested=_B.from_wire(value.get("IsNested")),
            history=_S_OR_NIL.from_wire(value.get("History")),
            redirect_shell_error_output_pipe=_B.from_wire(redirect),
            extra_cmds=extra,
        )


_POWERSHELL = _Conv(lambda v: v.to_value(), PowerShell.from_value)


# --------------------------------------------------------------------------------------------------------------
# payloads, MS-PSRP 2.2.2.1 .. 2.2.2.31


@dataclass
class SessionCapability(Payload):
    """MS-PSRP 2.2.2.1."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.SESSION_CAPABILITY
    protocol_version: str = "2.3"
    ps_version: str = "2.0"
    serialization_version: str = "1.1.0.1"
    time_zone: bytes | None = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("protocol_version", "protocolversion", _VERSION),
        _Prop("ps_version", "PSVersion", _VERSION),
        _Prop("serialization_version", "SerializationVersion", _VERSION),
        _Prop("time_zone", "TimeZone", _BA, optional=True),
    )


@dataclass
class InitRunspacePool(Payload):
    """MS-PSRP 2.2.2.2. ``host_info`` is the HostInfo object (2.2.3.14), ``application_arguments`` a
    PSPrimitiveDictionary object or ``None``."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.INIT_RUNSPACEPOOL
    min_runspaces: int = 1
    max_runspaces: int = 1
    thread_options: PSThreadOptions = PSThreadOptions.Default
    apartment_state: ApartmentState = ApartmentState.Unknown
    host_info: Any = field(default_factory=null_host_info)
    application_arguments: Any = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("min_runspaces", "MinRunspaces", _I32),
        _Prop("max_runspaces", "MaxRunspaces", _I32),
        _Prop("thread_options", "PSThreadOptions", _enum(PSThreadOptions)),
        _Prop("apartment_state", "ApartmentState", _enum(ApartmentState)),
        _Prop("host_info", "HostInfo", _ANY),
        _Prop("application_arguments", "ApplicationArguments", _ANY),
    )


@dataclass
class PublicKey(Payload):
    """MS-PSRP 2.2.2.3: base64 of the PUBLICKEYBLOB (see :mod:`harness.wire.psrp.keyexchange`)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PUBLIC_KEY
    public_key: str = ""
    _PROPS: ClassVar[tuple[_Prop, ...]] = (_Prop("public_key", "PublicKey", _S),)


@dataclass
class EncryptedSessionKey(Payload):
    """MS-PSRP 2.2.2.4: base64 of the SIMPLEBLOB holding the RSA-encrypted AES-256 session key."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.ENCRYPTED_SESSION_KEY
    encrypted_session_key: str = ""
    _PROPS: ClassVar[tuple[_Prop, ...]] = (_Prop("encrypted_session_key", "EncryptedSessionKey", _S),)


@dataclass
class PublicKeyRequest(Payload):
    """MS-PSRP 2.2.2.5: the data is an empty string ``<S />``."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PUBLIC_KEY_REQUEST

    def to_value(self) -> Any:
        return ""

    @classmethod
    def from_value(cls, value: Any) -> PublicKeyRequest:
        if value != "" or type(value) is not str:
            raise PsrpDecodeError("PUBLIC_KEY_REQUEST data must be an empty <S>")
        return cls()


@dataclass
class ConnectRunspacePool(Payload):
    """MS-PSRP 2.2.2.29: either ``<S />`` (no change) or MinRunspaces/MaxRunspaces."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.CONNECT_RUNSPACEPOOL
    min_runspaces: int | None = None
    max_runspaces: int | None = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("min_runspaces", "MinRunspaces", _I32, optional=True),
        _Prop("max_runspaces", "MaxRunspaces", _I32, optional=True),
    )

    def to_value(self) -> Any:
        if self.min_runspaces is None and self.max_runspaces is None:
            return ""
        return super().to_value()

    @classmethod
    def from_value(cls, value: Any) -> ConnectRunspacePool:
        if value == "" and type(value) is str:
            return cls()
        return super().from_value(value)


@dataclass
class RunspacePoolInitData(Payload):
    """MS-PSRP 2.2.2.30."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RUNSPACEPOOL_INIT_DATA
    min_runspaces: int = 1
    max_runspaces: int = 1
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("min_runspaces", "MinRunspaces", _I32),
        _Prop("max_runspaces", "MaxRunspaces", _I32),
    )


@dataclass
class ResetRunspaceState(Payload):
    """MS-PSRP 2.2.2.31."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RESET_RUNSPACE_STATE
    call_id: int = 0
    _PROPS: ClassVar[tuple[_Prop, ...]] = (_Prop("call_id", "ci", _I64),)


@dataclass
class SetMaxRunspaces(Payload):
    """MS-PSRP 2.2.2.6: ``MaxRunspaces`` and the call id, named ``ci`` by 2.2.2.6 and its example.

    Decoding accepts any case (:func:`_member`; .NET PSObject member lookup ignores case). Encoding writes ``CI``
    as pypsrp does, because pypsrp's decoder matches the name case-sensitively while PowerShell accepts both.
    """

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.SET_MAX_RUNSPACES
    max_runspaces: int = 1
    call_id: int = 0
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("max_runspaces", "MaxRunspaces", _I32),
        _Prop("call_id", "CI", _I64),
    )


@dataclass
class SetMinRunspaces(Payload):
    """MS-PSRP 2.2.2.7: ``MinRunspaces`` and the call id ``ci`` (see :class:`SetMaxRunspaces`)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.SET_MIN_RUNSPACES
    min_runspaces: int = 1
    call_id: int = 0
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("min_runspaces", "MinRunspaces", _I32),
        _Prop("call_id", "CI", _I64),
    )


def _availability_to_wire(value: bool | int) -> Any:
    return value if isinstance(value, bool) else Int64(value)


def _availability_from_wire(value: Any) -> bool | int:
    if type(value) is bool:
        return value
    if isinstance(value, Int64):
        return int(value)
    raise _bad("B or I64", value)


@dataclass
class RunspaceAvailability(Payload):
    """MS-PSRP 2.2.2.8: Boolean answer to SET_MIN/MAX_RUNSPACES or Int64 count for GET_AVAILABLE_RUNSPACES."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RUNSPACE_AVAILABILITY
    response: bool | int = True
    call_id: int = 0
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("response", "SetMinMaxRunspacesResponse", _Conv(_availability_to_wire, _availability_from_wire)),
        _Prop("call_id", "ci", _I64),
    )


@dataclass
class RunspacePoolStateMessage(Payload):
    """MS-PSRP 2.2.2.9 RUNSPACEPOOL_STATE; ``exception_as_error_record`` is an ErrorRecord object (2.2.3.15)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RUNSPACEPOOL_STATE
    state: RunspacePoolState = RunspacePoolState.Opened
    exception_as_error_record: Any = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("state", "RunspaceState", _int_enum(RunspacePoolState)),
        _Prop("exception_as_error_record", "ExceptionAsErrorRecord", _ANY, optional=True),
    )


@dataclass
class CreatePipeline(Payload):
    """MS-PSRP 2.2.2.10."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.CREATE_PIPELINE
    power_shell: PowerShell = field(default_factory=lambda: PowerShell([]))
    no_input: bool = True
    apartment_state: ApartmentState = ApartmentState.Unknown
    remote_stream_options: int = 0
    add_to_history: bool = False
    host_info: Any = field(default_factory=null_host_info)
    is_nested: bool = False
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("no_input", "NoInput", _B),
        _Prop("apartment_state", "ApartmentState", _enum(ApartmentState)),
        _Prop("remote_stream_options", "RemoteStreamOptions", _enum(RemoteStreamOptions, lenient=True)),
        _Prop("add_to_history", "AddToHistory", _B),
        _Prop("host_info", "HostInfo", _ANY),
        _Prop("power_shell", "PowerShell", _POWERSHELL),
        _Prop("is_nested", "IsNested", _B),
    )


@dataclass
class GetAvailableRunspaces(Payload):
    """MS-PSRP 2.2.2.11."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.GET_AVAILABLE_RUNSPACES
    call_id: int = 0
    _PROPS: ClassVar[tuple[_Prop, ...]] = (_Prop("call_id", "ci", _I64),)


@dataclass
class UserEvent(Payload):
    """MS-PSRP 2.2.2.12 (PSEventArgs properties)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.USER_EVENT
    event_identifier: int = 0
    source_identifier: str = ""
    time_generated: Any = field(default_factory=lambda: dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    sender: Any = None
    source_args: Any = None
    message_data: Any = None
    computer_name: str | None = None
    runspace_id: uuid.UUID = NIL_UUID
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("event_identifier", "PSEventArgs.EventIdentifier", _I32),
        _Prop("source_identifier", "PSEventArgs.SourceIdentifier", _S),
        _Prop("time_generated", "PSEventArgs.TimeGenerated", _DT),
        _Prop("sender", "PSEventArgs.Sender", _ANY),
        _Prop("source_args", "PSEventArgs.SourceArgs", _ANY),
        _Prop("message_data", "PSEventArgs.MessageData", _ANY),
        _Prop("computer_name", "PSEventArgs.ComputerName", _S_OR_NIL),
        _Prop("runspace_id", "PSEventArgs.RunspaceId", _G),
    )


@dataclass
class ApplicationPrivateData(Payload):
    """MS-PSRP 2.2.2.13: ``data`` is a PSPrimitiveDictionary object."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.APPLICATION_PRIVATE_DATA
    data: Any = field(
        default_factory=lambda: PSObject(type_names=list(PRIMITIVE_DICTIONARY_TYPE_NAMES), container="DCT")
    )
    _PROPS: ClassVar[tuple[_Prop, ...]] = (_Prop("data", "ApplicationPrivateData", _ANY),)


@dataclass
class GetCommandMetadata(Payload):
    """MS-PSRP 2.2.2.14."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.GET_COMMAND_METADATA
    names: list[str] = field(default_factory=lambda: ["*"])
    command_type: int = CommandTypes.All
    namespace: Any = None
    argument_list: Any = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("names", "Name", _STR_LIST),
        _Prop("command_type", "CommandType", _enum(CommandTypes, lenient=True)),
        _Prop("namespace", "Namespace", _ANY),
        _Prop("argument_list", "ArgumentList", _ANY),
    )


_HOST_CALL_PROPS: Final = (
    _Prop("call_id", "ci", _I64),
    _Prop("method_id", "mi", _enum(HostMethodId)),
    _Prop("parameters", "mp", _ARRAY_LIST),
)
_HOST_RESPONSE_PROPS: Final = (
    _Prop("call_id", "ci", _I64),
    _Prop("method_id", "mi", _enum(HostMethodId)),
    _Prop("result", "mr", _ANY, optional=True),
    _Prop("error", "me", _ANY, optional=True),
)


@dataclass
class RunspacePoolHostCall(Payload):
    """MS-PSRP 2.2.2.15: ci (call id), mi (2.2.3.17 method id), mp (parameters)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RUNSPACEPOOL_HOST_CALL
    call_id: int = 0
    method_id: HostMethodId = HostMethodId.GetName
    parameters: list[Any] = field(default_factory=list)
    _PROPS: ClassVar[tuple[_Prop, ...]] = _HOST_CALL_PROPS


@dataclass
class RunspacePoolHostResponse(Payload):
    """MS-PSRP 2.2.2.16: ci, mi, mr (return value, omitted for void methods), me (ErrorRecord on failure)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.RUNSPACEPOOL_HOST_RESPONSE
    call_id: int = 0
    method_id: HostMethodId = HostMethodId.GetName
    result: Any = None
    error: Any = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = _HOST_RESPONSE_PROPS


@dataclass
class PipelineHostCall(RunspacePoolHostCall):
    """MS-PSRP 2.2.2.27 (same layout as 2.2.2.15)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PIPELINE_HOST_CALL


@dataclass
class PipelineHostResponse(RunspacePoolHostResponse):
    """MS-PSRP 2.2.2.28 (same layout as 2.2.2.16)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PIPELINE_HOST_RESPONSE


@dataclass
class _WholeValue(Payload):
    """A payload whose data is one serialized object as is."""

    data: Any = None

    def to_value(self) -> Any:
        return self.data

    @classmethod
    def from_value(cls: type[_P], value: Any) -> _P:
        return cls(value)  # type: ignore[call-arg]


@dataclass
class PipelineInput(_WholeValue):
    """MS-PSRP 2.2.2.17: one input object."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PIPELINE_INPUT


@dataclass
class PipelineOutput(_WholeValue):
    """MS-PSRP 2.2.2.19: one output object."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PIPELINE_OUTPUT


@dataclass
class ErrorRecordMessage(_WholeValue):
    """MS-PSRP 2.2.2.20: an ErrorRecord object (2.2.3.15)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.ERROR_RECORD


@dataclass
class EndOfPipelineInput(Payload):
    """MS-PSRP 2.2.2.18: no data."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.END_OF_PIPELINE_INPUT

    def to_clixml(self) -> bytes:
        return b""


@dataclass
class PipelineStateMessage(Payload):
    """MS-PSRP 2.2.2.21 PIPELINE_STATE."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PIPELINE_STATE
    state: PSInvocationState = PSInvocationState.Completed
    exception_as_error_record: Any = None
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("state", "PipelineState", _int_enum(PSInvocationState)),
        _Prop("exception_as_error_record", "ExceptionAsErrorRecord", _ANY, optional=True),
    )


@dataclass
class _InformationalRecord(Payload):
    """MS-PSRP 2.2.3.16 InformationalRecord; further (invocation info) properties are kept in ``extra_properties``."""

    message: str = ""
    serialize_invocation_info: bool = False
    extra_properties: dict[str, Any] = field(default_factory=dict)
    _KEEP_EXTRA: ClassVar[bool] = True
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("message", "InformationalRecord_Message", _S),
        _Prop("serialize_invocation_info", "InformationalRecord_SerializeInvocationInfo", _B),
    )

    def _to_string(self) -> str | None:
        return self.message


@dataclass
class DebugRecord(_InformationalRecord):
    """MS-PSRP 2.2.2.22."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.DEBUG_RECORD
    _TYPE_NAMES: ClassVar[tuple[str, ...]] = (
        "System.Management.Automation.DebugRecord",
        "System.Management.Automation.InformationalRecord",
        "System.Object",
    )


@dataclass
class VerboseRecord(_InformationalRecord):
    """MS-PSRP 2.2.2.23."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.VERBOSE_RECORD
    _TYPE_NAMES: ClassVar[tuple[str, ...]] = (
        "System.Management.Automation.VerboseRecord",
        "System.Management.Automation.InformationalRecord",
        "System.Object",
    )


@dataclass
class WarningRecord(_InformationalRecord):
    """MS-PSRP 2.2.2.24."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.WARNING_RECORD
    _TYPE_NAMES: ClassVar[tuple[str, ...]] = (
        "System.Management.Automation.WarningRecord",
        "System.Management.Automation.InformationalRecord",
        "System.Object",
    )


@dataclass
class ProgressRecord(Payload):
    """MS-PSRP 2.2.2.25."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PROGRESS_RECORD
    activity: str = ""
    activity_id: int = 0
    status_description: str = ""
    current_operation: str | None = None
    parent_activity_id: int = -1
    percent_complete: int = -1
    record_type: ProgressRecordType = ProgressRecordType.Processing
    seconds_remaining: int = -1
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("activity", "Activity", _S),
        _Prop("activity_id", "ActivityId", _I32),
        _Prop("status_description", "StatusDescription", _S),
        _Prop("current_operation", "CurrentOperation", _S_OR_NIL),
        _Prop("parent_activity_id", "ParentActivityId", _I32),
        _Prop("percent_complete", "PercentComplete", _I32),
        _Prop("record_type", "Type", _enum(ProgressRecordType)),
        _Prop("seconds_remaining", "SecondsRemaining", _I32),
    )


@dataclass
class InformationRecord(Payload):
    """MS-PSRP 2.2.2.26 (protocol 2.3); unknown properties are kept in ``extra_properties``.

    Written as note properties (``<MS>``) of an untyped object: the only shape pypsrp, a client used
    against real Windows hosts, reads (it refuses the other). The 2.2.2.26 example shows a typed
    object with adapted properties (``<Props>``), which the decoder accepts too; which one Windows
    sends in the PSRP message is to be confirmed on a capture (tests/unit/psrp/test_psrp_golden_spec.py
    pins the difference)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.INFORMATION_RECORD
    message_data: Any = None
    source: str = ""
    time_generated: Any = field(default_factory=lambda: dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    tags: list[str] = field(default_factory=list)
    user: str = ""
    computer: str = ""
    process_id: int = 0
    native_thread_id: int = 0
    managed_thread_id: int = 0
    extra_properties: dict[str, Any] = field(default_factory=dict)
    _KEEP_EXTRA: ClassVar[bool] = True
    _PROPS: ClassVar[tuple[_Prop, ...]] = (
        _Prop("message_data", "MessageData", _ANY),
        _Prop("source", "Source", _S),
        _Prop("time_generated", "TimeGenerated", _DT),
        _Prop("tags", "Tags", _STR_LIST),
        _Prop("user", "User", _S),
        _Prop("computer", "Computer", _S),
        _Prop("process_id", "ProcessId", _U32),
        _Prop("native_thread_id", "NativeThreadId", _U32),
        _Prop("managed_thread_id", "ManagedThreadId", _U32),
    )


PAYLOAD_TYPES: Final[dict[MessageType, type[Payload]]] = {
    cls.MESSAGE_TYPE: cls
    for cls in (
        SessionCapability,
        InitRunspacePool,
        PublicKey,
        EncryptedSessionKey,
        PublicKeyRequest,
        ConnectRunspacePool,
        RunspacePoolInitData,
        ResetRunspaceState,
        SetMaxRunspaces,
        SetMinRunspaces,
        RunspaceAvailability,
        RunspacePoolStateMessage,
        CreatePipeline,
        GetAvailableRunspaces,
        UserEvent,
        ApplicationPrivateData,
        GetCommandMetadata,
        RunspacePoolHostCall,
        RunspacePoolHostResponse,
        PipelineInput,
        EndOfPipelineInput,
        PipelineOutput,
        ErrorRecordMessage,
        PipelineStateMessage,
        DebugRecord,
        VerboseRecord,
        WarningRecord,
        ProgressRecord,
        InformationRecord,
        PipelineHostCall,
        PipelineHostResponse,
    )
}
"""The payload class of every :class:`MessageType`."""


def parse_payload(message_type: MessageType, data: bytes, limits: DecodeLimits | None = None) -> Payload:
    """Decode the CLIXML ``data`` of a message into its payload class. Raises only :class:`PsrpDecodeError`."""
    cls = PAYLOAD_TYPES[message_type]
    if cls is EndOfPipelineInput:
        if data not in (b"", UTF8_BOM):
            raise PsrpDecodeError("END_OF_PIPELINE_INPUT must carry no data")
        return EndOfPipelineInput()
    value = deserialize(data, limits=limits) if limits is not None else deserialize(data)
    return cls.from_value(value)

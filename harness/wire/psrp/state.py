"""Sans-IO RunspacePool and pipeline state machines for both roles (MS-PSRP 3.1 client, 3.2 server).

Feed decoded :class:`~harness.wire.psrp.messages.Message` objects to :meth:`RunspacePool.receive`; it returns
events. Calls that make the local side send something queue messages; fetch them with
:meth:`RunspacePool.take_outgoing` (already framed as :class:`Message`, ready to be packed and fragmented).
Anything not allowed in the current state (a call or a received message) raises :class:`PsrpStateError`.

RunspacePool states (MS-PSRP 2.2.3.4; transitions: 3.1.1.2.2 client, 3.2.1.2.2 server: from Opened a pool
reaches Closed or Broken, and the server sends RUNSPACEPOOL_STATE when it becomes Opened or Broken,
3.2.5.4.9) as implemented here::

    client  BeforeOpen -open()-> Opening -> NegotiationSent -SESSION_CAPABILITY-> NegotiationSucceeded
            -RUNSPACEPOOL_STATE(Opened)-> Opened -close()-> Closing -RUNSPACEPOOL_STATE(Closed)/closed()-> Closed
            Opened -disconnect()-> Disconnected -connect()-> Connecting -RUNSPACEPOOL_INIT_DATA-> Opened
            BeforeOpen -connect()-> Connecting (a new client attaching to a disconnected pool)
    server  BeforeOpen -SESSION_CAPABILITY-> NegotiationSucceeded -INIT_RUNSPACEPOOL-> Opening
            -accept_open()-> Opened -close()-> Closed ; NegotiationSucceeded -CONNECT_RUNSPACEPOOL-> Opened
    both    any non-final state -RUNSPACEPOOL_STATE(Broken)/fail()-> Broken

Pipeline states (PSInvocationState, MS-PSRP 2.2.3.5; transitions: 3.1.1.3.2 client, 3.2.1.3.2 server: once
Completed, Stopped or Failed, neither side sends anything more for that pipeline)::

    NotStarted -invoke()/CREATE_PIPELINE-> Running -PIPELINE_STATE(Completed|Failed|Stopped)-> final
    Running -stop()-> Stopping -PIPELINE_STATE(Stopped)-> Stopped ; Running <-> Disconnected
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from harness.wire.psrp.enums import PSInvocationState, RunspacePoolState
from harness.wire.psrp.errors import PsrpStateError
from harness.wire.psrp.messages import (
    NIL_UUID,
    ApplicationPrivateData,
    ConnectRunspacePool,
    CreatePipeline,
    DebugRecord,
    Destination,
    EncryptedSessionKey,
    EndOfPipelineInput,
    ErrorRecordMessage,
    GetAvailableRunspaces,
    InformationRecord,
    InitRunspacePool,
    Message,
    MessageType,
    Payload,
    PipelineHostCall,
    PipelineHostResponse,
    PipelineInput,
    PipelineOutput,
    PipelineStateMessage,
    ProgressRecord,
    PublicKey,
    PublicKeyRequest,
    ResetRunspaceState,
    RunspaceAvailability,
    RunspacePoolHostCall,
    RunspacePoolHostResponse,
    RunspacePoolInitData,
    RunspacePoolStateMessage,
    SessionCapability,
    SetMaxRunspaces,
    SetMinRunspaces,
    UserEvent,
    VerboseRecord,
    WarningRecord,
)
from harness.wire.psrp.primitives import Version

PROTOCOL_VERSION: Final = "2.3"


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


_S = RunspacePoolState
POOL_TRANSITIONS: Final[dict[RunspacePoolState, frozenset[RunspacePoolState]]] = {
    _S.BeforeOpen: frozenset({_S.Opening, _S.NegotiationSucceeded, _S.Connecting, _S.Broken, _S.Closed}),
    _S.Opening: frozenset({_S.NegotiationSent, _S.Opened, _S.Broken, _S.Closed}),
    _S.NegotiationSent: frozenset({_S.NegotiationSucceeded, _S.Broken, _S.Closed}),
    _S.NegotiationSucceeded: frozenset({_S.Opening, _S.Opened, _S.Broken, _S.Closed}),
    _S.Opened: frozenset({_S.Closing, _S.Closed, _S.Broken, _S.Disconnected}),
    _S.Closing: frozenset({_S.Closed, _S.Broken}),
    _S.Disconnected: frozenset({_S.Connecting, _S.Closed, _S.Broken}),
    _S.Connecting: frozenset({_S.NegotiationSucceeded, _S.Opened, _S.Broken, _S.Closed}),
    _S.Closed: frozenset(),
    _S.Broken: frozenset(),
}
"""Legal RunspacePool state changes (MS-PSRP 3.1.1 / 3.2.1 abstract data model)."""

_I = PSInvocationState
PIPELINE_TRANSITIONS: Final[dict[PSInvocationState, frozenset[PSInvocationState]]] = {
    _I.NotStarted: frozenset({_I.Running, _I.Failed, _I.Stopped}),
    _I.Running: frozenset({_I.Stopping, _I.Completed, _I.Failed, _I.Stopped, _I.Disconnected}),
    _I.Stopping: frozenset({_I.Stopped, _I.Completed, _I.Failed}),
    _I.Disconnected: frozenset({_I.Running, _I.Stopped, _I.Failed}),
    _I.Completed: frozenset(),
    _I.Failed: frozenset(),
    _I.Stopped: frozenset(),
}
"""Legal pipeline state changes (MS-PSRP 3.1.1 / 3.2.1)."""

FINAL_PIPELINE_STATES: Final = frozenset({_I.Completed, _I.Failed, _I.Stopped})


# --------------------------------------------------------------------------------------------------------------
# events


@dataclass(frozen=True)
class PoolStateChanged:
    old: RunspacePoolState
    new: RunspacePoolState
    error_record: Any = None


@dataclass(frozen=True)
class PipelineStateChanged:
    pid: uuid.UUID
    old: PSInvocationState
    new: PSInvocationState
    error_record: Any = None


@dataclass(frozen=True)
class PayloadReceived:
    """A received message that the application has to look at (output, records, host calls, keys, events...)."""

    message_type: MessageType
    pid: uuid.UUID
    payload: Payload


@dataclass(frozen=True)
class PipelineCreated:
    """Server: a CREATE_PIPELINE arrived; ``pipeline`` is the new server-side state machine."""

    pipeline: Pipeline
    request: CreatePipeline


Event = PoolStateChanged | PipelineStateChanged | PayloadReceived | PipelineCreated


# --------------------------------------------------------------------------------------------------------------
# runspace pool


class RunspacePool:
    """One RunspacePool (identified by ``rpid``) seen from ``role``."""

    def __init__(
        self, role: Role, rpid: uuid.UUID | None = None, *, min_runspaces: int = 1, max_runspaces: int = 1
    ) -> None:
        if not 1 <= min_runspaces <= max_runspaces:
            raise PsrpStateError("need 1 <= min_runspaces <= max_runspaces")
        self.role = role
        self.rpid = rpid or uuid.uuid4()
        self.state = RunspacePoolState.BeforeOpen
        self.min_runspaces = min_runspaces
        self.max_runspaces = max_runspaces
        self.peer_capability: SessionCapability | None = None
        self.application_private_data: Any = None
        self.pipelines: dict[uuid.UUID, Pipeline] = {}
        self._outgoing: list[Message] = []
        self._next_call_id = 1
        self._pending_calls: dict[int, tuple[MessageType, int]] = {}
        self._key_requested = False

    # -- plumbing ----------------------------------------------------------------------------------------------

    @property
    def _destination(self) -> Destination:
        return Destination.SERVER if self.role is Role.CLIENT else Destination.CLIENT

    def _send(self, payload: Payload, pid: uuid.UUID = NIL_UUID) -> None:
        self._outgoing.append(Message(self._destination, payload.MESSAGE_TYPE, self.rpid, pid, payload.to_clixml()))

    def take_outgoing(self) -> list[Message]:
        """Messages queued for the peer since the last call, in order."""
        out, self._outgoing = self._outgoing, []
        return out

    def _set_state(self, new: RunspacePoolState, events: list[Event], error_record: Any = None) -> None:
        if new is self.state:
            return
        if new not in POOL_TRANSITIONS[self.state]:
            raise PsrpStateError(f"RunspacePool cannot go from {self.state.name} to {new.name}")
        events.append(PoolStateChanged(self.state, new, error_record))
        self.state = new
        if new in (RunspacePoolState.Closed, RunspacePoolState.Broken):
            for pipeline in self.pipelines.values():
                if pipeline.state not in FINAL_PIPELINE_STATES:
                    pipeline._force(
                        PSInvocationState.Failed if new is RunspacePoolState.Broken else PSInvocationState.Stopped,
                        events,
                    )

    def _require(self, *states: RunspacePoolState, action: str) -> None:
        if self.state not in states:
            allowed = ", ".join(s.name for s in states)
            raise PsrpStateError(f"{action} not allowed in RunspacePool state {self.state.name} (needs {allowed})")

    def _require_role(self, role: Role, action: str) -> None:
        if self.role is not role:
            raise PsrpStateError(f"{action} is a {role.value} operation")

    def _call_id(self, message_type: MessageType, value: int = 0) -> int:
        call_id = self._next_call_id
        self._next_call_id += 1
        self._pending_calls[call_id] = (message_type, value)
        return call_id

    @staticmethod
    def _capability() -> SessionCapability:
        return SessionCapability(protocol_version=PROTOCOL_VERSION, ps_version="2.0", serialization_version="1.1.0.1")

    # -- client operations (MS-PSRP 3.1) ------------------------------------------------------------------------

    def open(self, init: InitRunspacePool | None = None) -> list[Event]:
        """Client: SESSION_CAPABILITY + INIT_RUNSPACEPOOL (MS-PSRP 2.2.2.1, 2.2.2.2)."""
        self._require_role(Role.CLIENT, "open")
        self._require(RunspacePoolState.BeforeOpen, action="open")
        events: list[Event] = []
        self._set_state(RunspacePoolState.Opening, events)
        self._send(self._capability())
        self._send(init or InitRunspacePool(min_runspaces=self.min_runspaces, max_runspaces=self.max_runspaces))
        self._set_state(RunspacePoolState.NegotiationSent, events)
        return events

    def connect(self, min_runspaces: int | None = None, max_runspaces: int | None = None) -> list[Event]:
        """Client: SESSION_CAPABILITY + CONNECT_RUNSPACEPOOL to a disconnected pool (MS-PSRP 2.2.2.1, 2.2.2.29)."""
        self._require_role(Role.CLIENT, "connect")
        self._require(RunspacePoolState.BeforeOpen, RunspacePoolState.Disconnected, action="connect")
        events: list[Event] = []
        self._set_state(RunspacePoolState.Connecting, events)
        self._send(self._capability())
        self._send(ConnectRunspacePool(min_runspaces, max_runspaces))
        return events

    def disconnect(self) -> list[Event]:
        """Either role: the WinRS shell was disconnected (MS-WSMV Disconnect; no PSRP message)."""
        self._require(RunspacePoolState.Opened, action="disconnect")
        events: list[Event] = []
        self._set_state(RunspacePoolState.Disconnected, events)
        for pipeline in self.pipelines.values():
            if pipeline.state is PSInvocationState.Running:
                pipeline._force(PSInvocationState.Disconnected, events)
        return events

    def set_max_runspaces(self, value: int) -> int:
        """Client: SET_MAX_RUNSPACES (MS-PSRP 2.2.2.6); returns the call id."""
        self._require_role(Role.CLIENT, "set_max_runspaces")
        self._require(RunspacePoolState.Opened, action="set_max_runspaces")
        call_id = self._call_id(MessageType.SET_MAX_RUNSPACES, value)
        self._send(SetMaxRunspaces(value, call_id))
        return call_id

    def set_min_runspaces(self, value: int) -> int:
        """Client: SET_MIN_RUNSPACES (MS-PSRP 2.2.2.7); returns the call id."""
        self._require_role(Role.CLIENT, "set_min_runspaces")
        self._require(RunspacePoolState.Opened, action="set_min_runspaces")
        call_id = self._call_id(MessageType.SET_MIN_RUNSPACES, value)
        self._send(SetMinRunspaces(value, call_id))
        return call_id

    def get_available_runspaces(self) -> int:
        """Client: GET_AVAILABLE_RUNSPACES (MS-PSRP 2.2.2.11); returns the call id."""
        self._require_role(Role.CLIENT, "get_available_runspaces")
        self._require(RunspacePoolState.Opened, action="get_available_runspaces")
        call_id = self._call_id(MessageType.GET_AVAILABLE_RUNSPACES)
        self._send(GetAvailableRunspaces(call_id))
        return call_id

    def reset_runspace_state(self) -> int:
        """Client: RESET_RUNSPACE_STATE (MS-PSRP 2.2.2.31); returns the call id."""
        self._require_role(Role.CLIENT, "reset_runspace_state")
        self._require(RunspacePoolState.Opened, action="reset_runspace_state")
        call_id = self._call_id(MessageType.RESET_RUNSPACE_STATE)
        self._send(ResetRunspaceState(call_id))
        return call_id

    def send_public_key(self, public_key: str) -> None:
        """Client: PUBLIC_KEY (MS-PSRP 2.2.2.3), ``public_key`` from :func:`keyexchange.encode_public_key`."""
        self._require_role(Role.CLIENT, "send_public_key")
        self._require(RunspacePoolState.Opened, action="send_public_key")
        self._key_requested = True
        self._send(PublicKey(public_key))

    def host_response(self, response: RunspacePoolHostResponse) -> None:
        """Client: answer a RUNSPACEPOOL_HOST_CALL (MS-PSRP 2.2.2.16)."""
        self._require_role(Role.CLIENT, "host_response")
        self._require(RunspacePoolState.Opened, action="host_response")
        self._send(response)

    def create_pipeline(self, request: CreatePipeline, pid: uuid.UUID | None = None) -> Pipeline:
        """Client: CREATE_PIPELINE (MS-PSRP 2.2.2.10); the new pipeline is Running."""
        self._require_role(Role.CLIENT, "create_pipeline")
        self._require(RunspacePoolState.Opened, action="create_pipeline")
        pipeline = Pipeline(self, pid or uuid.uuid4(), no_input=request.no_input)
        if pipeline.pid in self.pipelines:
            raise PsrpStateError(f"pipeline {pipeline.pid} already exists")
        self.pipelines[pipeline.pid] = pipeline
        self._send(request, pipeline.pid)
        pipeline._force(PSInvocationState.Running, [])
        return pipeline

    def close(self) -> list[Event]:
        """Client: start closing (the WinRS shell is deleted). Server: RUNSPACEPOOL_STATE(Closed)."""
        events: list[Event] = []
        if self.role is Role.CLIENT:
            self._require(RunspacePoolState.Opened, RunspacePoolState.Disconnected, action="close")
            self._set_state(
                RunspacePoolState.Closing if self.state is RunspacePoolState.Opened else RunspacePoolState.Closed,
                events,
            )
        else:
            self._require(RunspacePoolState.Opened, RunspacePoolState.Disconnected, action="close")
            self._send(RunspacePoolStateMessage(RunspacePoolState.Closed))
            self._set_state(RunspacePoolState.Closed, events)
        return events

    def closed(self) -> list[Event]:
        """Either role: the transport is gone (shell deleted): Closing/Opened -> Closed."""
        events: list[Event] = []
        if self.state not in (RunspacePoolState.Closed, RunspacePoolState.Broken):
            self._set_state(RunspacePoolState.Closed, events)
        return events

    # -- server operations (MS-PSRP 3.2) ------------------------------------------------------------------------

    def accept_open(self, private_data: ApplicationPrivateData | None = None) -> list[Event]:
        """Server: APPLICATION_PRIVATE_DATA + RUNSPACEPOOL_STATE(Opened) (MS-PSRP 2.2.2.13, 2.2.2.9)."""
        self._require_role(Role.SERVER, "accept_open")
        self._require(RunspacePoolState.Opening, action="accept_open")
        events: list[Event] = []
        self._send(private_data or ApplicationPrivateData())
        self._send(RunspacePoolStateMessage(RunspacePoolState.Opened))
        self._set_state(RunspacePoolState.Opened, events)
        return events

    def fail(self, error_record: Any = None) -> list[Event]:
        """Either role: the pool is Broken; the server also sends RUNSPACEPOOL_STATE(Broken)."""
        events: list[Event] = []
        if self.role is Role.SERVER:
            self._send(RunspacePoolStateMessage(RunspacePoolState.Broken, error_record))
        self._set_state(RunspacePoolState.Broken, events, error_record)
        return events

    def request_public_key(self) -> None:
        """Server: PUBLIC_KEY_REQUEST (MS-PSRP 2.2.2.5)."""
        self._require_role(Role.SERVER, "request_public_key")
        self._require(RunspacePoolState.Opened, action="request_public_key")
        self._send(PublicKeyRequest())

    def send_encrypted_session_key(self, encrypted_session_key: str) -> None:
        """Server: ENCRYPTED_SESSION_KEY answering a PUBLIC_KEY (MS-PSRP 2.2.2.4)."""
        self._require_role(Role.SERVER, "send_encrypted_session_key")
        self._require(RunspacePoolState.Opened, action="send_encrypted_session_key")
        if not self._key_requested:
            raise PsrpStateError("ENCRYPTED_SESSION_KEY without a preceding PUBLIC_KEY")
        self._key_requested = False
        self._send(EncryptedSessionKey(encrypted_session_key))

    def host_call(self, call: RunspacePoolHostCall) -> None:
        """Server: RUNSPACEPOOL_HOST_CALL (MS-PSRP 2.2.2.15)."""
        self._require_role(Role.SERVER, "host_call")
        self._require(RunspacePoolState.Opened, action="host_call")
        self._send(call)

    def user_event(self, event: UserEvent) -> None:
        """Server: USER_EVENT (MS-PSRP 2.2.2.12)."""
        self._require_role(Role.SERVER, "user_event")
        self._require(RunspacePoolState.Opened, action="user_event")
        self._send(event)

    # -- receiving ---------------------------------------------------------------------------------------------

    def receive(self, message: Message) -> list[Event]:
        """Process one message from the peer.

        Raises :class:`PsrpStateError` if the message is not legal in the current state (or for this role, pool or
        pipeline) and :class:`PsrpDecodeError` if its payload is malformed.
        """
        expected = Destination.CLIENT if self.role is Role.CLIENT else Destination.SERVER
        if message.destination is not expected:
            raise PsrpStateError(
                f"message addressed to the {message.destination.name.lower()} received by a {self.role.value}"
            )
        if message.rpid != self.rpid:
            raise PsrpStateError(f"message for RunspacePool {message.rpid}, this is {self.rpid}")
        if message.pid != NIL_UUID and message.message_type is not MessageType.CREATE_PIPELINE:
            pipeline = self.pipelines.get(message.pid)
            if pipeline is None:
                raise PsrpStateError(f"message {message.message_type.name} for unknown pipeline {message.pid}")
            return pipeline._receive(message.message_type, message.payload())
        handler = (_CLIENT_HANDLERS if self.role is Role.CLIENT else _SERVER_HANDLERS).get(message.message_type)
        if handler is None:
            raise PsrpStateError(
                f"{message.message_type.name} is not a RunspacePool message a {self.role.value} can receive"
            )
        return handler(self, message)

    # client side handlers

    def _on_capability(self, message: Message) -> list[Event]:
        capability = message.payload()
        assert isinstance(capability, SessionCapability)
        events: list[Event] = []
        if Version(capability.protocol_version).parts[0] != 2:
            self._set_state(RunspacePoolState.Broken, events)
            return events
        self.peer_capability = capability
        if self.role is Role.CLIENT:
            self._require(RunspacePoolState.NegotiationSent, RunspacePoolState.Connecting, action="SESSION_CAPABILITY")
            if self.state is RunspacePoolState.NegotiationSent:
                self._set_state(RunspacePoolState.NegotiationSucceeded, events)
        else:
            self._require(RunspacePoolState.BeforeOpen, action="SESSION_CAPABILITY")
            self._send(self._capability())
            self._set_state(RunspacePoolState.NegotiationSucceeded, events)
        return events

    def _on_private_data(self, message: Message) -> list[Event]:
        self._require(
            RunspacePoolState.NegotiationSucceeded,
            RunspacePoolState.Connecting,
            RunspacePoolState.Opened,
            action="APPLICATION_PRIVATE_DATA",
        )
        payload = message.payload()
        assert isinstance(payload, ApplicationPrivateData)
        self.application_private_data = payload.data
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    def _on_pool_state(self, message: Message) -> list[Event]:
        payload = message.payload()
        assert isinstance(payload, RunspacePoolStateMessage)
        events: list[Event] = []
        if payload.state is RunspacePoolState.Opened:
            self._require(
                RunspacePoolState.NegotiationSucceeded,
                RunspacePoolState.Connecting,
                action="RUNSPACEPOOL_STATE(Opened)",
            )
        elif payload.state not in (RunspacePoolState.Closed, RunspacePoolState.Broken):
            raise PsrpStateError(f"server announced RunspacePool state {payload.state.name}")
        self._set_state(payload.state, events, payload.exception_as_error_record)
        return events

    def _on_init_data(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Connecting, action="RUNSPACEPOOL_INIT_DATA")
        payload = message.payload()
        assert isinstance(payload, RunspacePoolInitData)
        self.min_runspaces, self.max_runspaces = payload.min_runspaces, payload.max_runspaces
        events: list[Event] = [PayloadReceived(message.message_type, NIL_UUID, payload)]
        self._set_state(RunspacePoolState.Opened, events)
        return events

    def _on_availability(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action="RUNSPACE_AVAILABILITY")
        payload = message.payload()
        assert isinstance(payload, RunspaceAvailability)
        request = self._pending_calls.pop(payload.call_id, None)
        if request is None:
            raise PsrpStateError(f"RUNSPACE_AVAILABILITY for unknown call id {payload.call_id}")
        kind, value = request
        if payload.response is True and kind is MessageType.SET_MAX_RUNSPACES:
            self.max_runspaces = value
        elif payload.response is True and kind is MessageType.SET_MIN_RUNSPACES:
            self.min_runspaces = value
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    def _on_opened_notification(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action=message.message_type.name)
        payload = message.payload()
        if isinstance(payload, PublicKeyRequest):
            self._key_requested = True
        elif isinstance(payload, EncryptedSessionKey):
            if not self._key_requested:
                raise PsrpStateError("ENCRYPTED_SESSION_KEY without a PUBLIC_KEY")
            self._key_requested = False
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    # server side handlers

    def _on_init(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.NegotiationSucceeded, action="INIT_RUNSPACEPOOL")
        payload = message.payload()
        assert isinstance(payload, InitRunspacePool)
        events: list[Event] = []
        if not 1 <= payload.min_runspaces <= payload.max_runspaces:
            self.fail()
            return [PoolStateChanged(RunspacePoolState.NegotiationSucceeded, RunspacePoolState.Broken)]
        self.min_runspaces, self.max_runspaces = payload.min_runspaces, payload.max_runspaces
        events.append(PayloadReceived(message.message_type, NIL_UUID, payload))
        self._set_state(RunspacePoolState.Opening, events)
        return events

    def _on_connect(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.NegotiationSucceeded, action="CONNECT_RUNSPACEPOOL")
        payload = message.payload()
        assert isinstance(payload, ConnectRunspacePool)
        if payload.min_runspaces is not None:
            self.min_runspaces = payload.min_runspaces
        if payload.max_runspaces is not None:
            self.max_runspaces = payload.max_runspaces
        events: list[Event] = [PayloadReceived(message.message_type, NIL_UUID, payload)]
        self._send(RunspacePoolInitData(self.min_runspaces, self.max_runspaces))
        self._send(
            ApplicationPrivateData(self.application_private_data)
            if self.application_private_data is not None
            else ApplicationPrivateData()
        )
        self._set_state(RunspacePoolState.Opened, events)
        return events

    def _on_set_runspaces(self, message: Message) -> list[Event]:
        """MS-PSRP 2.2.2.6 / 2.2.2.7 / 2.2.2.8: apply if it keeps 1 <= min <= max, answer with RUNSPACE_AVAILABILITY."""
        self._require(RunspacePoolState.Opened, action=message.message_type.name)
        payload = message.payload()
        ok = False
        if isinstance(payload, SetMaxRunspaces):
            ok = payload.max_runspaces >= max(self.min_runspaces, 1)
            if ok:
                self.max_runspaces = payload.max_runspaces
        elif isinstance(payload, SetMinRunspaces):
            ok = 1 <= payload.min_runspaces <= self.max_runspaces
            if ok:
                self.min_runspaces = payload.min_runspaces
        assert isinstance(payload, (SetMaxRunspaces, SetMinRunspaces))
        self._send(RunspaceAvailability(ok, payload.call_id))
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    def _on_get_available(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action="GET_AVAILABLE_RUNSPACES")
        payload = message.payload()
        assert isinstance(payload, GetAvailableRunspaces)
        busy = sum(1 for p in self.pipelines.values() if p.state is PSInvocationState.Running)
        self._send(RunspaceAvailability(max(self.max_runspaces - busy, 0), payload.call_id))
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    def _on_reset(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action="RESET_RUNSPACE_STATE")
        payload = message.payload()
        assert isinstance(payload, ResetRunspaceState)
        self._send(RunspaceAvailability(True, payload.call_id))
        return [PayloadReceived(message.message_type, NIL_UUID, payload)]

    def _on_public_key(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action="PUBLIC_KEY")
        self._key_requested = True
        return [PayloadReceived(message.message_type, NIL_UUID, message.payload())]

    def _on_server_notification(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action=message.message_type.name)
        return [PayloadReceived(message.message_type, NIL_UUID, message.payload())]

    def _on_create_pipeline(self, message: Message) -> list[Event]:
        self._require(RunspacePoolState.Opened, action="CREATE_PIPELINE")
        if message.pid == NIL_UUID or message.pid in self.pipelines:
            raise PsrpStateError(f"CREATE_PIPELINE with missing or reused pipeline id {message.pid}")
        payload = message.payload()
        assert isinstance(payload, CreatePipeline)
        pipeline = Pipeline(self, message.pid, no_input=payload.no_input)
        self.pipelines[message.pid] = pipeline
        events: list[Event] = [PipelineCreated(pipeline, payload)]
        pipeline._force(PSInvocationState.Running, events)
        return events


_Handler = Callable[[RunspacePool, Message], list[Event]]
_CLIENT_HANDLERS: Final[dict[MessageType, _Handler]] = {
    MessageType.SESSION_CAPABILITY: RunspacePool._on_capability,
    MessageType.APPLICATION_PRIVATE_DATA: RunspacePool._on_private_data,
    MessageType.RUNSPACEPOOL_STATE: RunspacePool._on_pool_state,
    MessageType.RUNSPACEPOOL_INIT_DATA: RunspacePool._on_init_data,
    MessageType.RUNSPACE_AVAILABILITY: RunspacePool._on_availability,
    MessageType.PUBLIC_KEY_REQUEST: RunspacePool._on_opened_notification,
    MessageType.ENCRYPTED_SESSION_KEY: RunspacePool._on_opened_notification,
    MessageType.USER_EVENT: RunspacePool._on_opened_notification,
    MessageType.RUNSPACEPOOL_HOST_CALL: RunspacePool._on_opened_notification,
}
_SERVER_HANDLERS: Final[dict[MessageType, _Handler]] = {
    MessageType.SESSION_CAPABILITY: RunspacePool._on_capability,
    MessageType.INIT_RUNSPACEPOOL: RunspacePool._on_init,
    MessageType.CONNECT_RUNSPACEPOOL: RunspacePool._on_connect,
    MessageType.SET_MAX_RUNSPACES: RunspacePool._on_set_runspaces,
    MessageType.SET_MIN_RUNSPACES: RunspacePool._on_set_runspaces,
    MessageType.GET_AVAILABLE_RUNSPACES: RunspacePool._on_get_available,
    MessageType.RESET_RUNSPACE_STATE: RunspacePool._on_reset,
    MessageType.PUBLIC_KEY: RunspacePool._on_public_key,
    MessageType.RUNSPACEPOOL_HOST_RESPONSE: RunspacePool._on_server_notification,
    MessageType.GET_COMMAND_METADATA: RunspacePool._on_server_notification,
    MessageType.CREATE_PIPELINE: RunspacePool._on_create_pipeline,
}


# --------------------------------------------------------------------------------------------------------------
# pipeline

_CLIENT_PIPELINE_STREAMS: Final = frozenset(
    {
        MessageType.PIPELINE_OUTPUT,
        MessageType.ERROR_RECORD,
        MessageType.DEBUG_RECORD,
        MessageType.VERBOSE_RECORD,
        MessageType.WARNING_RECORD,
        MessageType.PROGRESS_RECORD,
        MessageType.INFORMATION_RECORD,
        MessageType.PIPELINE_HOST_CALL,
    }
)
"""Server-to-client pipeline messages allowed while Running or Stopping (MS-PSRP 2.2.2.19 - 2.2.2.27)."""


@dataclass
class Pipeline:
    """One pipeline of a :class:`RunspacePool` (same role as the pool)."""

    pool: RunspacePool
    pid: uuid.UUID
    no_input: bool = True
    state: PSInvocationState = PSInvocationState.NotStarted
    input_closed: bool = False
    _host_calls: set[int] = field(default_factory=set)

    def _force(self, new: PSInvocationState, events: list[Event], error_record: Any = None) -> None:
        if new is self.state:
            return
        if new not in PIPELINE_TRANSITIONS[self.state]:
            raise PsrpStateError(f"pipeline cannot go from {self.state.name} to {new.name}")
        events.append(PipelineStateChanged(self.pid, self.state, new, error_record))
        self.state = new

    def _require(self, *states: PSInvocationState, action: str) -> None:
        if self.state not in states:
            raise PsrpStateError(f"{action} not allowed in pipeline state {self.state.name}")

    def _send(self, payload: Payload) -> None:
        self.pool._send(payload, self.pid)

    # client operations

    def send_input(self, value: Any) -> None:
        """Client: PIPELINE_INPUT (MS-PSRP 2.2.2.17); only if the pipeline was created with NoInput false."""
        self.pool._require_role(Role.CLIENT, "send_input")
        self._require(PSInvocationState.Running, action="PIPELINE_INPUT")
        if self.no_input or self.input_closed:
            raise PsrpStateError("the pipeline does not accept input")
        self._send(PipelineInput(value))

    def end_input(self) -> None:
        """Client: END_OF_PIPELINE_INPUT."""
        self.pool._require_role(Role.CLIENT, "end_input")
        self._require(PSInvocationState.Running, action="END_OF_PIPELINE_INPUT")
        if self.no_input or self.input_closed:
            raise PsrpStateError("the pipeline input is already closed")
        self.input_closed = True
        self._send(EndOfPipelineInput())

    def stop(self) -> list[Event]:
        """Stop requested: client sent / server got the WinRS Signal (MS-WSMV); PIPELINE_STATE (2.2.2.21) ends it."""
        self._require(PSInvocationState.Running, action="stop")
        events: list[Event] = []
        self._force(PSInvocationState.Stopping, events)
        return events

    def host_response(self, response: PipelineHostResponse) -> None:
        """Client: PIPELINE_HOST_RESPONSE to a PIPELINE_HOST_CALL."""
        self.pool._require_role(Role.CLIENT, "host_response")
        self._require(PSInvocationState.Running, PSInvocationState.Stopping, action="PIPELINE_HOST_RESPONSE")
        if response.call_id not in self._host_calls:
            raise PsrpStateError(f"no pending pipeline host call {response.call_id}")
        self._host_calls.discard(response.call_id)
        self._send(response)

    def reconnect(self) -> list[Event]:
        """Either role: the disconnected pipeline is reattached (MS-WSMV Reconnect/Connect)."""
        self._require(PSInvocationState.Disconnected, action="reconnect")
        events: list[Event] = []
        self._force(PSInvocationState.Running, events)
        return events

    # server operations

    def _stream(self, payload: Payload) -> None:
        self.pool._require_role(Role.SERVER, payload.MESSAGE_TYPE.name)
        self._require(PSInvocationState.Running, PSInvocationState.Stopping, action=payload.MESSAGE_TYPE.name)
        self._send(payload)

    def output(self, value: Any) -> None:
        """Server: PIPELINE_OUTPUT (MS-PSRP 2.2.2.19)."""
        self._stream(PipelineOutput(value))

    def write(
        self,
        record: ErrorRecordMessage | DebugRecord | VerboseRecord | WarningRecord | ProgressRecord | InformationRecord,
    ) -> None:
        """Server: one of the record streams (ERROR/DEBUG/VERBOSE/WARNING/PROGRESS/INFORMATION_RECORD)."""
        self._stream(record)

    def host_call(self, call: PipelineHostCall) -> None:
        """Server: PIPELINE_HOST_CALL."""
        self._stream(call)
        self._host_calls.add(call.call_id)

    def finish(self, state: PSInvocationState = PSInvocationState.Completed, error_record: Any = None) -> list[Event]:
        """Server: PIPELINE_STATE with a final state (Completed, Failed or Stopped)."""
        self.pool._require_role(Role.SERVER, "finish")
        if state not in FINAL_PIPELINE_STATES:
            raise PsrpStateError(f"{state.name} is not a final pipeline state")
        events: list[Event] = []
        self._force(state, events, error_record)
        self._send(PipelineStateMessage(state, error_record))
        return events

    # receiving

    def _receive(self, message_type: MessageType, payload: Payload) -> list[Event]:
        if self.pool.role is Role.CLIENT:
            if message_type is MessageType.PIPELINE_STATE:
                assert isinstance(payload, PipelineStateMessage)
                if payload.state not in FINAL_PIPELINE_STATES and payload.state is not PSInvocationState.Running:
                    raise PsrpStateError(f"server announced pipeline state {payload.state.name}")
                events: list[Event] = []
                self._force(payload.state, events, payload.exception_as_error_record)
                return events
            if message_type in _CLIENT_PIPELINE_STREAMS:
                self._require(PSInvocationState.Running, PSInvocationState.Stopping, action=message_type.name)
                if isinstance(payload, PipelineHostCall):
                    self._host_calls.add(payload.call_id)
                return [PayloadReceived(message_type, self.pid, payload)]
        else:
            if message_type is MessageType.PIPELINE_INPUT or message_type is MessageType.END_OF_PIPELINE_INPUT:
                self._require(PSInvocationState.Running, PSInvocationState.Stopping, action=message_type.name)
                if self.no_input or self.input_closed:
                    raise PsrpStateError(f"{message_type.name} for a pipeline whose input is closed")
                self.input_closed = message_type is MessageType.END_OF_PIPELINE_INPUT
                return [PayloadReceived(message_type, self.pid, payload)]
            if message_type is MessageType.PIPELINE_HOST_RESPONSE:
                self._require(PSInvocationState.Running, PSInvocationState.Stopping, action=message_type.name)
                assert isinstance(payload, PipelineHostResponse)
                if payload.call_id not in self._host_calls:
                    raise PsrpStateError(f"PIPELINE_HOST_RESPONSE for unknown call id {payload.call_id}")
                self._host_calls.discard(payload.call_id)
                return [PayloadReceived(message_type, self.pid, payload)]
        raise PsrpStateError(f"{message_type.name} is not a pipeline message a {self.pool.role.value} can receive")

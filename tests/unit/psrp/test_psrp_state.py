"""RunspacePool / pipeline state machines (MS-PSRP 3.1, 3.2): a client and a server talking through the full
sans-IO stack (payload -> message -> fragments -> odd chunking -> defragment -> message)."""

from __future__ import annotations

import uuid

import pytest

from harness.wire.psrp.clixml import PSObject
from harness.wire.psrp.enums import HostMethodId, PSInvocationState, RunspacePoolState
from harness.wire.psrp.errors import PsrpStateError
from harness.wire.psrp.fragments import Defragmenter, Fragmenter
from harness.wire.psrp.keyexchange import (
    decode_public_key,
    decrypt_secure_string,
    decrypt_session_key,
    encode_public_key,
    encrypt_secure_string,
    encrypt_session_key,
    generate_exchange_key,
    generate_session_key,
)
from harness.wire.psrp.messages import (
    NIL_UUID,
    Command,
    CreatePipeline,
    Destination,
    EncryptedSessionKey,
    Message,
    MessageType,
    PipelineHostCall,
    PipelineHostResponse,
    PipelineOutput,
    PowerShell,
    PublicKey,
    RunspaceAvailability,
    RunspacePoolStateMessage,
    SessionCapability,
    VerboseRecord,
    pack_message,
    unpack_message,
)
from harness.wire.psrp.state import (
    Event,
    PayloadReceived,
    Pipeline,
    PipelineCreated,
    PipelineStateChanged,
    PoolStateChanged,
    Role,
    RunspacePool,
)


def state(obj: RunspacePool | Pipeline) -> RunspacePoolState | PSInvocationState:
    """Read the state through a call so mypy does not narrow it across the actions of a test."""
    return obj.state


class Wire:
    """Carries messages in one direction through fragments of 60 bytes, delivered in 17-byte chunks."""

    def __init__(self) -> None:
        self.fragmenter = Fragmenter(max_size=60)
        self.defragmenter = Defragmenter()

    def carry(self, messages: list[Message]) -> list[Message]:
        stream = b"".join(b"".join(self.fragmenter.fragment(pack_message(m))) for m in messages)
        out: list[bytes] = []
        for offset in range(0, len(stream), 17):
            out.extend(self.defragmenter.feed(stream[offset : offset + 17]))
        assert self.defragmenter.idle
        return [unpack_message(data) for data in out]


class Session:
    def __init__(self) -> None:
        self.client = RunspacePool(Role.CLIENT, min_runspaces=1, max_runspaces=2)
        self.server = RunspacePool(Role.SERVER, self.client.rpid)
        self.to_server = Wire()
        self.to_client = Wire()

    def flush_client(self) -> list[Event]:
        events: list[Event] = []
        for message in self.to_server.carry(self.client.take_outgoing()):
            assert message.destination is Destination.SERVER
            events.extend(self.server.receive(message))
        return events

    def flush_server(self) -> list[Event]:
        events: list[Event] = []
        for message in self.to_client.carry(self.server.take_outgoing()):
            assert message.destination is Destination.CLIENT
            events.extend(self.client.receive(message))
        return events

    def open(self) -> None:
        self.client.open()
        assert state(self.client) is RunspacePoolState.NegotiationSent
        server_events = self.flush_client()
        assert state(self.server) is RunspacePoolState.Opening
        assert any(
            isinstance(e, PayloadReceived) and e.message_type is MessageType.INIT_RUNSPACEPOOL for e in server_events
        )
        self.server.accept_open()
        client_events = self.flush_server()
        assert state(self.client) is RunspacePoolState.Opened
        assert [e.new for e in client_events if isinstance(e, PoolStateChanged)] == [
            RunspacePoolState.NegotiationSucceeded,
            RunspacePoolState.Opened,
        ]


def test_open_pipeline_output_and_close() -> None:
    session = Session()
    session.open()
    request = CreatePipeline(PowerShell([Command("Get-Date")]), no_input=False)
    client_pipeline = session.client.create_pipeline(request)
    client_pipeline.send_input("in-1")
    client_pipeline.end_input()
    events = session.flush_client()
    created = [e for e in events if isinstance(e, PipelineCreated)]
    assert len(created) == 1 and created[0].request == request
    server_pipeline = created[0].pipeline
    assert server_pipeline.pid == client_pipeline.pid
    assert [e.message_type for e in events if isinstance(e, PayloadReceived)] == [
        MessageType.PIPELINE_INPUT,
        MessageType.END_OF_PIPELINE_INPUT,
    ]
    server_pipeline.output(PSObject(type_names=["System.DateTime"], to_string="now"))
    server_pipeline.write(VerboseRecord("working"))
    server_pipeline.host_call(PipelineHostCall(1, HostMethodId.WriteLine2, ["hi"]))
    server_pipeline.finish()
    events = session.flush_server()
    kinds = [e.message_type for e in events if isinstance(e, PayloadReceived)]
    assert kinds == [MessageType.PIPELINE_OUTPUT, MessageType.VERBOSE_RECORD, MessageType.PIPELINE_HOST_CALL]
    output = events[0]
    assert isinstance(output, PayloadReceived) and isinstance(output.payload, PipelineOutput)
    assert output.payload.data.to_string == "now"
    assert state(client_pipeline) is PSInvocationState.Completed
    assert any(isinstance(e, PipelineStateChanged) and e.new is PSInvocationState.Completed for e in events)
    with pytest.raises(PsrpStateError):
        client_pipeline.host_response(PipelineHostResponse(1, HostMethodId.WriteLine2))
    # close: client starts, server confirms
    session.client.close()
    assert state(session.client) is RunspacePoolState.Closing
    session.server.close()
    session.flush_server()
    assert state(session.client) is RunspacePoolState.Closed
    assert state(session.server) is RunspacePoolState.Closed


def test_pipeline_host_call_round_trip_and_stop() -> None:
    session = Session()
    session.open()
    pipeline = session.client.create_pipeline(CreatePipeline(PowerShell([Command("Read-Host")])))
    server_pipeline = next(e for e in session.flush_client() if isinstance(e, PipelineCreated)).pipeline
    server_pipeline.host_call(PipelineHostCall(7, HostMethodId.ReadLine, []))
    session.flush_server()
    pipeline.host_response(PipelineHostResponse(7, HostMethodId.ReadLine, "answer"))
    events = session.flush_client()
    assert isinstance(events[0], PayloadReceived) and events[0].payload == PipelineHostResponse(
        7, HostMethodId.ReadLine, "answer"
    )
    pipeline.stop()
    server_pipeline.stop()
    assert state(pipeline) is PSInvocationState.Stopping
    server_pipeline.finish(PSInvocationState.Stopped)
    session.flush_server()
    assert state(pipeline) is PSInvocationState.Stopped
    with pytest.raises(PsrpStateError):
        server_pipeline.output("late")


def test_runspace_counts_and_availability() -> None:
    session = Session()
    session.open()
    call = session.client.set_max_runspaces(5)
    session.flush_client()
    events = session.flush_server()
    payload = events[0].payload  # type: ignore[union-attr]
    assert payload == RunspaceAvailability(True, call)
    assert session.client.max_runspaces == session.server.max_runspaces == 5
    session.client.set_min_runspaces(9)
    session.flush_client()
    events = session.flush_server()
    assert events[0].payload.response is False  # type: ignore[union-attr]
    assert session.client.min_runspaces == 1
    call = session.client.get_available_runspaces()
    session.flush_client()
    events = session.flush_server()
    assert events[0].payload == RunspaceAvailability(5, call)  # type: ignore[union-attr]
    session.client.reset_runspace_state()
    session.flush_client()
    assert session.flush_server()[0].payload.response is True  # type: ignore[union-attr]


def test_key_exchange_through_the_state_machines() -> None:
    session = Session()
    session.open()
    private_key = generate_exchange_key()
    session.server.request_public_key()
    assert session.flush_server()[0].message_type is MessageType.PUBLIC_KEY_REQUEST  # type: ignore[union-attr]
    session.client.send_public_key(encode_public_key(private_key.public_key()))
    event = session.flush_client()[0]
    assert isinstance(event, PayloadReceived) and isinstance(event.payload, PublicKey)
    session_key = generate_session_key()
    session.server.send_encrypted_session_key(
        encrypt_session_key(session_key, decode_public_key(event.payload.public_key))
    )
    event = session.flush_server()[0]
    assert isinstance(event, PayloadReceived) and isinstance(event.payload, EncryptedSessionKey)
    client_key = decrypt_session_key(event.payload.encrypted_session_key, private_key)
    assert decrypt_secure_string(encrypt_secure_string("secret", session_key), client_key) == "secret"
    with pytest.raises(PsrpStateError):
        session.server.send_encrypted_session_key("again")


def test_disconnect_and_reconnect_by_a_new_client() -> None:
    session = Session()
    session.open()
    pipeline = session.client.create_pipeline(CreatePipeline(PowerShell([Command("sleep")])))
    session.flush_client()
    session.client.disconnect()
    session.server.disconnect()
    assert state(pipeline) is PSInvocationState.Disconnected
    assert state(session.client) is RunspacePoolState.Disconnected
    # the server pool goes back to accepting a negotiation from a new client
    server = RunspacePool(Role.SERVER, session.client.rpid, max_runspaces=3)
    newcomer = RunspacePool(Role.CLIENT, session.client.rpid)
    newcomer.connect()
    assert state(newcomer) is RunspacePoolState.Connecting
    for message in newcomer.take_outgoing():
        server.receive(message)
    assert state(server) is RunspacePoolState.Opened
    for message in server.take_outgoing():
        newcomer.receive(message)
    assert state(newcomer) is RunspacePoolState.Opened
    assert newcomer.max_runspaces == 3
    reconnected = pipeline.reconnect()[0]
    assert isinstance(reconnected, PipelineStateChanged) and reconnected.new is PSInvocationState.Running


def test_broken_pool_fails_its_pipelines() -> None:
    session = Session()
    session.open()
    pipeline = session.client.create_pipeline(CreatePipeline(PowerShell([Command("x")])))
    session.flush_client()
    session.server.fail(PSObject(extended_properties={"Message": "gone"}))
    events = session.flush_server()
    assert state(session.client) is RunspacePoolState.Broken
    assert state(pipeline) is PSInvocationState.Failed
    assert any(isinstance(e, PoolStateChanged) and e.error_record is not None for e in events)


def _message(
    pool: RunspacePool,
    payload: object,
    destination: Destination = Destination.CLIENT,
    pid: uuid.UUID = NIL_UUID,
) -> Message:
    assert hasattr(payload, "to_clixml")
    return Message(destination, payload.MESSAGE_TYPE, pool.rpid, pid, payload.to_clixml())  # type: ignore[attr-defined]


def test_illegal_transitions_raise() -> None:
    client = RunspacePool(Role.CLIENT)
    with pytest.raises(PsrpStateError):
        client.create_pipeline(CreatePipeline())
    with pytest.raises(PsrpStateError):  # server announcing Opened before negotiation
        client.receive(_message(client, RunspacePoolStateMessage(RunspacePoolState.Opened)))
    with pytest.raises(PsrpStateError):  # a server-only operation
        client.accept_open()
    with pytest.raises(PsrpStateError):  # wrong destination
        client.receive(_message(client, SessionCapability(), Destination.SERVER))
    with pytest.raises(PsrpStateError):  # wrong pool
        client.receive(
            Message(
                Destination.CLIENT,
                MessageType.SESSION_CAPABILITY,
                uuid.uuid4(),
                uuid.UUID(int=0),
                SessionCapability().to_clixml(),
            )
        )
    client.open()
    with pytest.raises(PsrpStateError):
        client.open()
    with pytest.raises(PsrpStateError):  # pipeline message for an unknown pipeline
        client.receive(_message(client, PipelineOutput("x"), pid=uuid.uuid4()))
    server = RunspacePool(Role.SERVER, client.rpid)
    with pytest.raises(PsrpStateError):  # INIT before SESSION_CAPABILITY
        server.receive(client.take_outgoing()[1])
    with pytest.raises(PsrpStateError):
        RunspacePool(Role.CLIENT, min_runspaces=3, max_runspaces=2)
    closed = RunspacePool(Role.CLIENT)
    closed.closed()
    with pytest.raises(PsrpStateError):
        closed._set_state(RunspacePoolState.Opened, [])


def test_incompatible_protocol_version_breaks_the_pool() -> None:
    client = RunspacePool(Role.CLIENT)
    client.open()
    events = client.receive(_message(client, SessionCapability("3.0")))
    assert state(client) is RunspacePoolState.Broken
    assert isinstance(events[-1], PoolStateChanged)


def test_pipeline_input_rules() -> None:
    session = Session()
    session.open()
    pipeline: Pipeline = session.client.create_pipeline(CreatePipeline(PowerShell([Command("x")]), no_input=True))
    with pytest.raises(PsrpStateError):
        pipeline.send_input("no input allowed")
    with pytest.raises(PsrpStateError):
        pipeline.finish()  # server-only
    with pytest.raises(PsrpStateError):
        pipeline.reconnect()

"""Enumeration contexts held by the mock expire (MS-WSMV 3.1.4.8; DSP0226 8.2 wsen:Expires)."""

from __future__ import annotations

from harness.cim.mof import default_store
from harness.client.resources import wmi_uri
from harness.targets.mock.config import MockConfig
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action

URI = wmi_uri("Win32_Service")
ADMIN = Principal("wmh")


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _enumerate(service: WSManService) -> str:
    status, body = service.handle(msg.build_enumerate_request(
        Header(action=Action.ENUMERATE, resource_uri=URI), msg.EnumerateRequest()), ADMIN)
    assert status == HTTP_OK
    context = msg.parse_enumerate_response(parse_envelope(body)).context
    assert context
    return context


def _pull(service: WSManService, context: str) -> tuple[int, bytes]:
    return service.handle(msg.build_pull_request(
        Header(action=Action.PULL, resource_uri=URI), msg.PullRequest(context, 2)), ADMIN)


def test_an_idle_context_expires_and_a_later_pull_is_invalid_enumeration_context():
    clock = Clock()
    service = WSManService(default_store(), MockConfig(password="x", enumeration_expiry=30), clock=clock)
    context = _enumerate(service)
    clock.now += 20
    status, body = _pull(service, context)
    assert status == HTTP_OK
    page = msg.parse_pull_response(parse_envelope(body))
    assert page.context and len(page.items) == 2
    clock.now += 31
    status, body = _pull(service, page.context)
    assert status == HTTP_FAULT
    assert parse_fault(parse_envelope(body)).subcode_name == "InvalidEnumerationContext"
    assert len(service.enumerations) == 0, "the expired context was not freed"


def test_a_finished_enumeration_frees_its_context():
    service = WSManService(default_store(), MockConfig(password="x"))
    context: str | None = _enumerate(service)
    while context:
        status, body = _pull(service, context)
        assert status == HTTP_OK
        page = msg.parse_pull_response(parse_envelope(body))
        context = None if page.end_of_sequence else page.context
    assert len(service.enumerations) == 0

"""The mock's winrm/config resources against the MS-WSMV 4.2 examples and the 2.2.4.x config
schema text (golden files in ``fixtures/golden/wsman/spec/more/``).

The 4.2.1 / 4.2.2 example requests are fed to ``WSManService.handle`` unchanged (or with the
changes named in the test) and the answers compared with the example responses. The examples
show a Windows Vista / Server 2008 service (their values are the defaults Appendix B gives for
those versions); the mock is a Windows Server 2016-2022 service, so where Appendix B says later
Windows behaves differently the test expects the later behaviour, named with its note.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from lxml import etree

from harness.client.winrm_config import (
    URI_CLIENT,
    URI_CLIENT_DEFAULT_PORTS,
    URI_CONFIG,
    URI_LISTENER,
    URI_SERVICE,
    URI_SERVICE_DEFAULT_PORTS,
    URI_WINRS,
    ConfigTree,
    parse_config,
)
from harness.targets.mock.wsman_service import HTTP_FAULT, HTTP_OK, Principal, WSManService
from harness.wire.wsman import messages as msg
from harness.wire.wsman.envelope import parse_envelope
from harness.wire.wsman.faults import WSManFault, is_fault, parse_fault
from harness.wire.wsman.header import Header
from harness.wire.wsman.ns import Action
from harness.wire.wsman.shell import ShellSpec, build_create_shell_request

MORE = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "wsman" / "spec" / "more"
CFG = "http://schemas.microsoft.com/wbem/wsman/1/config"
ADMIN = Principal("wmh")
TO = "http://localhost:80/wsman"

#: The config types' element sequences of the MS-WSMV 2.2.4.x schema text (the "?" of optional
#: elements dropped), from the fixture beside the 4.2 examples.
SCHEMA: dict[str, list[str]] = {
    key: [name.rstrip("?") for name in names]
    for key, names in tomllib.loads((MORE / "config-type-sequences.toml").read_text()).items()
}
#: Service elements Windows Server 2012+ writes that ServiceType (2.2.4.36) does not declare
#: (observed Windows behaviour, ``winrm get winrm/config/service``); the mock writes them after
#: IPv6Filter, around CertificateThumbprint, as Windows does.
OBSERVED_SERVICE_EXTRAS = ["EnableCompatibilityHttpListener", "EnableCompatibilityHttpsListener",
                           "AllowRemoteAccess"]


def example(name: str) -> bytes:
    return (MORE / f"wsmv-{name}.xml").read_bytes()


def answer_tree(status: int, body: bytes) -> tuple[ConfigTree, etree._Element]:
    assert status == HTTP_OK, body
    env = parse_envelope(body)
    parse = msg.parse_put_response if env.header.action == Action.PUT_RESPONSE else msg.parse_get_response
    item = parse(env).item
    assert item is not None
    return parse_config(item), item


def fault(status: int, body: bytes) -> WSManFault:
    assert status == HTTP_FAULT, body
    env = parse_envelope(body)
    assert is_fault(env)
    return parse_fault(env)


def get(service: WSManService, uri: str) -> ConfigTree:
    header = Header(action=Action.GET, to=TO, resource_uri=uri)
    return answer_tree(*service.handle(msg.build_get_request(header), ADMIN))[0]


def groups(tree: ConfigTree, path: str = "") -> dict[str, ConfigTree]:
    """Every group of the tree by schema key (``Client/Auth``, ``DefaultPorts``, ...)."""
    out = {path or tree.name: tree}
    for name, value in tree.values.items():
        if isinstance(value, ConfigTree):
            key = "DefaultPorts" if name == "DefaultPorts" else (f"{tree.name}/{name}" if name == "Auth" else name)
            out.update(groups(value, key))
    return out


def lexical(text: str) -> str:
    if text in ("true", "false"):
        return "boolean"
    return "unsignedInt" if text.isdigit() else "string"


# ------------------------------------------------------------------------------ 4.2.1 Get
def test_4_2_1_get_of_the_whole_config(service: WSManService) -> None:
    status, body = service.handle(example("4.2.1-get-config-request"), ADMIN)
    env = parse_envelope(body)
    assert env.header.action == Action.GET_RESPONSE
    assert env.header.relates_to == "uuid:613DCD71-95AF-4ED5-86E2-1D6AB44ECE66"
    assert len(body) <= 51200  # the example's MaxEnvelopeSize
    mine, item = answer_tree(status, body)
    theirs_item = msg.parse_get_response(parse_envelope(example("4.2.1-get-config-response"))).item
    assert theirs_item is not None
    theirs = parse_config(theirs_item)

    # Same root, and ONE namespace for the whole tree, nested groups included (4.2.1).
    assert (mine.name, mine.namespace) == (theirs.name, theirs.namespace) == ("Config", CFG)
    assert {etree.QName(e).namespace for e in item.iter() if isinstance(e.tag, str)} == {CFG}
    # The same groups at the same places.
    mine_groups, their_groups = groups(mine), groups(theirs)
    assert set(their_groups) <= set(mine_groups)
    assert set(mine_groups) == {"Config", "Client", "Client/Auth", "DefaultPorts", "Service", "Service/Auth", "Winrs"}
    for key, their_group in their_groups.items():
        my_group = mine_groups[key]
        # every element of the example is answered, in the example's order, with the same lexical type
        assert [n for n in my_group.names() if n in their_group.names()] == their_group.names(), key
        for name in their_group.names():
            value = their_group.values[name]
            if isinstance(value, str):
                assert lexical(my_group.text(name)) == lexical(value) or name in ("RootSDDL", "TrustedHosts",
                                                                                   "IPv4Filter", "IPv6Filter"), name
        # everything else the mock answers is in the schema sequence (in its order), or a documented
        # observed extra of Service
        allowed = SCHEMA["DefaultPorts" if key == "DefaultPorts" else key]
        extras = OBSERVED_SERVICE_EXTRAS if key == "Service" else []
        assert [n for n in my_group.names() if n not in extras] == [n for n in allowed if n in my_group.names()], key
        assert set(my_group.names()) <= set(allowed) | set(extras), key
    # the example is a Vista-era service: its values are the Appendix B defaults of those versions
    # (<9> MaxBatchItems 20, <20> MaxConnections 5, <27> IdleTimeout 900000, <31> 5, <33> 80, <34> 2)
    # while the mock answers the later ones (2.2.4.10, 2.2.4.36, 2.2.4.42 SHOULD values)
    assert (theirs.text("MaxBatchItems"), mine.text("MaxBatchItems")) == ("20", "32000")
    assert (theirs.group("Service").text("MaxConnections"), mine.group("Service").text("MaxConnections")) == (
        "5", "300")


# ------------------------------------------------------------------------------ 4.2.2 Put
def test_4_2_2_put_as_published_is_refused_by_a_windows_7_and_later_service(service: WSManService) -> None:
    """MS-WSMV 2.2.4.10 <10>: Windows 7 / 2008 R2 and later allow no MaxProviderRequests below
    4294967295; the example (a Vista service) Puts 25. The whole Put is refused, nothing changes."""
    before = get(service, URI_CONFIG)
    refused = fault(*service.handle(example("4.2.2-put-config-request"), ADMIN))
    assert refused.subcode == "w:InvalidParameter" and "MaxProviderRequests" in refused.reason
    assert get(service, URI_CONFIG).values == before.values


def _without(data: bytes, *names: str) -> bytes:
    """The example request without the named cfg elements (wherever they are)."""
    root = etree.fromstring(data)
    for name in names:
        found = root.findall(f".//{{{CFG}}}{name}")
        assert found, name
        for el in found:
            parent = el.getparent()
            assert parent is not None
            parent.remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def test_4_2_2_put_changes_the_live_settings_and_answers_the_new_config(service: WSManService) -> None:
    """The 4.2.2 Put without the three settings later Windows fixes (MaxProviderRequests <10>,
    MaxConcurrentOperations <17>: at least 4294967295; MaxShellRunTime <30>: a change is
    w:InternalError) is accepted: the answer is a PutResponse with the new representation, every
    value the request carries reads back as sent (4.2.2 response body), and the service acts on them."""
    data = _without(example("4.2.2-put-config-request"), "MaxProviderRequests", "MaxConcurrentOperations",
                    "MaxShellRunTime")
    status, body = service.handle(data, ADMIN)
    env = parse_envelope(body)
    assert env.header.relates_to == "uuid:47F4F498-0050-4DCF-BCA1-5611732CF7DE"
    mine, _ = answer_tree(status, body)
    sent = parse_config(msg.parse_put_request(parse_envelope(data)).item)  # type: ignore[arg-type]

    def check(sent_group: ConfigTree, my_group: ConfigTree) -> None:
        for name, value in sent_group.values.items():
            if isinstance(value, ConfigTree):
                check(value, my_group.group(name))
            else:
                assert my_group.text(name) == value, name

    check(sent, mine)
    assert mine.text("MaxBatchItems") == "10"
    # the service acts on them
    cfg = service.config
    assert (cfg.max_envelope_size, cfg.max_timeout, cfg.enumeration_expiry) == (50 * 1024, 60.0, 60.0)
    assert (cfg.max_shells_per_user, cfg.max_processes_per_shell, cfg.shell_idle_timeout) == (2, 5, 900.0)
    assert cfg.auth.allow_basic is False and cfg.auth.allow_unencrypted is False
    # Client and Service DefaultPorts are separate settings (2.2.4.5, 2.2.4.35)
    assert get(service, URI_CLIENT_DEFAULT_PORTS).values == {"HTTP": "80", "HTTPS": "443"}
    assert get(service, URI_SERVICE_DEFAULT_PORTS).values == {"HTTP": "80", "HTTPS": "443"}
    # and a later Get answers the same
    assert get(service, URI_CONFIG).values == mine.values


def test_4_2_2_put_of_the_current_max_shell_run_time_is_no_change(service: WSManService) -> None:
    current = get(service, URI_WINRS).text("MaxShellRunTime")
    header = Header(action=Action.PUT, to=TO, resource_uri=URI_WINRS)
    body = etree.Element(f"{{{URI_WINRS}}}Winrs", nsmap={"cfg": URI_WINRS})
    etree.SubElement(body, f"{{{URI_WINRS}}}MaxShellRunTime").text = current
    assert service.handle(msg.build_put_request(header, copy.deepcopy(body)), ADMIN)[0] == HTTP_OK
    body[0].text = "28800000"  # the 4.2.2 value: a change
    assert fault(*service.handle(msg.build_put_request(header, body), ADMIN)).subcode == "w:InternalError"


# ------------------------------------------------------------------------------ 2.2.4.x ranges
def _put(service: WSManService, uri: str, name: str, root: str, value: str) -> tuple[int, bytes]:
    header = Header(action=Action.PUT, to=TO, resource_uri=uri)
    body = etree.Element(f"{{{uri}}}{root}", nsmap={"cfg": uri})
    etree.SubElement(body, f"{{{uri}}}{name}").text = value
    return service.handle(msg.build_put_request(header, body), ADMIN)


def test_winrs_zero_means_unlimited(service: WSManService) -> None:
    """MS-WSMV 2.2.4.42: MaxShellsPerUser 0 = unlimited shells; Get answers the configured 0."""
    assert _put(service, URI_WINRS, "MaxShellsPerUser", "Winrs", "0")[0] == HTTP_OK
    assert get(service, URI_WINRS).text("MaxShellsPerUser") == "0"
    shell_uri = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
    for _ in range(3):
        header = Header(action=Action.CREATE, to=TO, resource_uri=shell_uri)
        assert service.handle(build_create_shell_request(header, ShellSpec()), ADMIN)[0] == HTTP_OK


def test_winrs_idle_timeout_any_value_with_an_effective_minimum(service: WSManService) -> None:
    """MS-WSMV 2.2.4.42: IdleTimeout 0..0x7FFFFFFF MUST be allowed; below 60000 the service acts as
    if 60000 were set (Appendix B <28>)."""
    assert _put(service, URI_WINRS, "IdleTimeout", "Winrs", "0")[0] == HTTP_OK
    assert get(service, URI_WINRS).text("IdleTimeout") == "0"
    assert service.config.shell_idle_timeout == 60.0
    service.config.shell_idle_timeout = 90.0  # changed behind the resource's back: Get follows
    assert get(service, URI_WINRS).text("IdleTimeout") == "90000"


def test_minimums_of_the_schema_text(service: WSManService) -> None:
    """2.2.4.10 MaxEnvelopeSizekb >= 32, MaxTimeoutms >= 500; 2.2.4.36 EnumerationTimeoutms >= 500;
    2.2.4.6 NetworkDelayms >= 500: the minimum is accepted, one below it refused."""
    for uri, root, name, low in [(URI_CONFIG, "Config", "MaxEnvelopeSizekb", 32),
                                 (URI_CONFIG, "Config", "MaxTimeoutms", 500),
                                 (URI_SERVICE, "Service", "EnumerationTimeoutms", 500),
                                 (URI_CLIENT, "Client", "NetworkDelayms", 500)]:
        assert fault(*_put(service, uri, name, root, str(low - 1))).subcode == "w:InvalidParameter", name
        assert _put(service, uri, name, root, str(low))[0] == HTTP_OK, name


def test_listener_put_of_listening_on_is_an_internal_error(service: WSManService) -> None:
    """MS-WSMV 3.1.4.1.29.5: "MUST return a wsman:InternalError fault in response to a Put request
    if the ListeningOn property is present"."""
    header = Header(action=Action.PUT, to=TO, resource_uri=URI_LISTENER,
                    selectors={"Address": "*", "Transport": "HTTP"})
    body = etree.Element(f"{{{URI_LISTENER}}}Listener", nsmap={"cfg": URI_LISTENER})
    etree.SubElement(body, f"{{{URI_LISTENER}}}ListeningOn").text = "10.0.0.1"
    assert fault(*service.handle(msg.build_put_request(header, body), ADMIN)).subcode == "w:InternalError"

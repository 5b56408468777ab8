"""Property tests of the MS-PSRP 2.2.5 CLIXML codec: object graph round trips, pypsrp agreement, robustness."""

from __future__ import annotations

import contextlib
import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import PSObject, deserialize, graphs_equal, serialize
from harness.wire.psrp.errors import PsrpDecodeError
from harness.wire.psrp.messages import MessageType, parse_payload, unpack_message
from harness.wire.psrp.primitives import (
    INT_TYPES,
    Char,
    DateTime,
    Duration,
    Int32,
    ScriptBlock,
    SecureString,
    Single,
    Uri,
    Version,
    XmlDocument,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
names = st.one_of(st.sampled_from(["Name", "Id", "_x", "a b", "Value"]), texts)
timezones = st.one_of(
    st.none(),
    st.just(dt.UTC),
    st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)
datetimes = st.datetimes(timezones=timezones)

primitives = st.one_of(
    st.none(),
    texts,
    st.booleans(),
    st.integers(Int32.MIN, Int32.MAX),
    *[st.integers(t.MIN, t.MAX).map(t) for t in INT_TYPES],
    st.floats(allow_nan=False),
    st.floats(width=32, allow_nan=False).map(Single),
    st.binary(max_size=24),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
    datetimes,
    st.builds(DateTime, datetimes, st.integers(1, 9)),
    st.integers(-(2**63), 2**63 - 1).map(Duration),
    st.characters(max_codepoint=0xFFFF).map(Char),
    texts.map(Uri),
    texts.map(XmlDocument),
    texts.map(ScriptBlock),
    st.lists(st.integers(0, 2**31 - 1), min_size=2, max_size=4).map(lambda p: Version(".".join(map(str, p)))),
    st.binary(max_size=32).map(SecureString),
)
type_name_lists = st.lists(st.sampled_from(["System.Object", "A.B", "List`1[[X, Y]]", "Deserialized.Z"]), max_size=3)


@st.composite
def psobjects(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> PSObject:
    obj = PSObject(
        type_names=draw(type_name_lists),
        to_string=draw(st.one_of(st.none(), texts)),
        adapted_properties=draw(st.dictionaries(names, children, max_size=3)),
        extended_properties=draw(st.dictionaries(names, children, max_size=3)),
    )
    content = draw(st.sampled_from(["none", "value", "LST", "IE", "STK", "QUE", "DCT"]))
    if content == "value":
        obj.value = draw(primitives)
    elif content == "DCT":
        obj.container = "DCT"
        obj.entries = draw(st.lists(st.tuples(children, children), max_size=3))
    elif content != "none":
        obj.container = content
        obj.items = draw(st.lists(children, max_size=4))
    return obj


values = st.recursive(primitives, psobjects, max_leaves=12)


@st.composite
def graphs(draw: st.DrawFn) -> Any:
    """A graph with shared nodes and, sometimes, a cycle."""
    shared = draw(psobjects(values))
    others = draw(st.lists(values, max_size=3))
    root = PSObject(type_names=["Root"], container="LST", items=[shared, *others, shared])
    if draw(st.booleans()):
        shared.extended_properties["back"] = root
    return root


@SETTINGS
@given(values)
def test_value_round_trip(value: Any) -> None:
    text = serialize(value)
    decoded = deserialize(text)
    assert graphs_equal(decoded, value)
    assert serialize(decoded) == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_graph_round_trip_keeps_sharing(root: PSObject) -> None:
    decoded = deserialize(serialize(root))
    assert decoded == root
    assert decoded.items[0] is decoded.items[-1]


@settings(max_examples=100, deadline=None)
@given(texts)
def test_strings_agree_with_pypsrp(text: str) -> None:
    assert Serializer().deserialize(serialize(text)) == text
    element = Serializer().serialize(text)
    assert element is not None
    assert deserialize(ET.tostring(element, encoding="unicode")) == text


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(Int32.MIN, Int32.MAX), texts),
        max_size=5,
    )
)
def test_dictionaries_agree_with_pypsrp(mapping: dict[str, Any]) -> None:
    assert Serializer().deserialize(serialize(mapping)) == mapping
    element = Serializer().serialize(mapping)
    assert element is not None
    assert deserialize(ET.tostring(element, encoding="unicode")).as_dict() == mapping


@SETTINGS
@given(st.binary(max_size=300))
def test_decoder_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(PsrpDecodeError):
        deserialize(data)


@SETTINGS
@given(values, st.data())
def test_decoder_never_crashes_on_mutated_xml(value: Any, data: st.DataObject) -> None:
    text = serialize(value).encode("utf-8", "surrogatepass")
    position = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.binary(max_size=6))
    cut = data.draw(st.integers(0, 4))
    with contextlib.suppress(PsrpDecodeError):
        deserialize(text[:position] + junk + text[position + cut :])


@SETTINGS
@given(st.binary(max_size=200), st.sampled_from(list(MessageType)))
def test_message_decoders_never_crash(data: bytes, message_type: MessageType) -> None:
    for decode in (lambda: unpack_message(data), lambda: parse_payload(message_type, data)):
        with contextlib.suppress(PsrpDecodeError):
            decode()

"""Throughput of the MS-PSRP codec against pypsrp and psrpcore on the same data.

Run: ``python benchmarks/bench_psrp.py [--quick]``. Prints MB/s or objects/s for ours, pypsrp and psrpcore and
the ratios (peer time / our time, so > 1 means we are faster). psrpcore (PyPI ``psrpcore``, in the test
extras) is optional: its columns are skipped with the reason when it is not installed.

* fragment: our ``Fragmenter.fragment`` vs pypsrp's fragment loop (its ``_byte_iterator`` + ``Fragment.pack``,
  without the message serialization its ``Fragmenter.fragment`` also does).
* defragment: our ``Defragmenter.feed`` vs pypsrp's ``Fragmenter.defragment`` with its ``Message.unpack`` step
  patched out, so both only reassemble bytes.
* CLIXML: ``serialize`` / ``deserialize`` of a pipeline-output-like list of objects vs pypsrp's ``Serializer``.

psrpcore, the second peer:

* fragment: its ``PSRPMessage.fragment`` + ``create_fragment`` (what its ``data_to_send`` does per fragment),
  one fragment of at most the same size at a time, so the bytes equal ours.
* defragment: its ``RunspacePool.receive_data`` + ``next_event`` with ``unpack_message`` and
  ``_process_message`` patched out (bytes only), fed the same fragments as WSMan Receive payloads of at most
  one max size each (it needs whole fragments per payload).
* CLIXML: ``psrpcore.types.serialize`` to an element and ``ET.tostring``; ``deserialize`` of our text's element
  (a ``PSList`` of ``PSObject`` with the same adapted and extended properties).
"""

from __future__ import annotations

import argparse
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from unittest import mock

from _timing import best_time as best_run
from pypsrp import powershell as pypsrp_powershell
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import PSObject, deserialize, ps_list, serialize
from harness.wire.psrp.fragments import FRAGMENT_HEADER_SIZE, Defragmenter, Fragmenter
from harness.wire.psrp.primitives import Int64

try:
    import psrpcore
    import psrpcore.types as psrpcore_types
    from psrpcore import _payload as psrpcore_payload

    PSRPCORE: str | None = None
except ImportError as exc:  # optional peer
    PSRPCORE = f"psrpcore skipped: not installed ({exc.name}); pip install psrpcore"


def report(name: str, unit: str, amount: float, ours: float, theirs: float, core: float | None = None) -> None:
    line = (f"{name:<20} ours {amount / ours:10.1f} {unit}   pypsrp {amount / theirs:10.1f} {unit} "
            f"ratio {theirs / ours:6.2f}x")
    if core is not None:
        line += f"   psrpcore {amount / core:10.1f} {unit} ratio {core / ours:6.2f}x"
    print(line)


def best_time(func: Callable[[], Any], repeat: int) -> float:
    return float(best_run(func, repeat)[0])


def core_time(func: Callable[[], Any] | None, repeat: int) -> float | None:
    return None if func is None else best_time(func, repeat)


def bench_fragments(repeat: int, count: int) -> None:
    max_size = 32 * 1024
    messages = [os.urandom(size) for size in ([5_000] * count + [1_000_000])]
    total_mb = sum(len(m) for m in messages) / 1e6

    def ours_fragment() -> list[list[bytes]]:
        fragmenter = Fragmenter(max_size=max_size)
        return [fragmenter.fragment(m) for m in messages]

    pypsrp_helper = pypsrp_powershell.Fragmenter(max_size, Serializer())

    def pypsrp_fragment() -> list[list[bytes]]:
        out = []
        for object_id, message in enumerate(messages, 1):
            frags = []
            for index, (chunk, end) in enumerate(
                pypsrp_helper._byte_iterator(message, max_size - FRAGMENT_HEADER_SIZE)
            ):
                frags.append(pypsrp_powershell.Fragment(object_id, index, chunk, index == 0, end).pack())
            out.append(frags)
        return out

    runspace_pool_id = uuid.uuid4()

    def psrpcore_fragment() -> list[list[bytes]]:
        out = []
        for object_id, message in enumerate(messages, 1):
            pending = psrpcore_payload.PSRPMessage(None, bytearray(message), runspace_pool_id, None, object_id)
            frags = []
            while len(pending):
                f = pending.fragment(max_size - FRAGMENT_HEADER_SIZE)
                frags.append(psrpcore_payload.create_fragment(f.object_id, f.fragment_id, f.data, f.end))
            out.append(frags)
        return out

    assert ours_fragment() == pypsrp_fragment()
    if PSRPCORE is None:
        assert psrpcore_fragment() == ours_fragment()
    report("fragment", "MB/s", total_mb, best_time(ours_fragment, repeat), best_time(pypsrp_fragment, repeat),
           core_time(psrpcore_fragment if PSRPCORE is None else None, repeat))

    stream = b"".join(b"".join(f) for f in ours_fragment())
    chunks = [stream[i : i + 100_000] for i in range(0, len(stream), 100_000)]

    def ours_defragment() -> list[bytes]:
        defragmenter = Defragmenter()
        return [m for chunk in chunks for m in defragmenter.feed(chunk)]

    def pypsrp_defragment() -> Any:
        # pypsrp needs whole fragments per call: feed it the whole stream at once
        with mock.patch("pypsrp.powershell.Message.unpack", staticmethod(lambda data, serializer: data)):
            result: Any = pypsrp_powershell.Fragmenter(max_size, Serializer()).defragment(stream)
        return result

    payloads: list[bytes] = []  # whole fragments, at most max_size per payload (one WSMan Receive stream each)
    for frag in (f for fs in ours_fragment() for f in fs):
        if payloads and len(payloads[-1]) + len(frag) <= max_size:
            payloads[-1] += frag
        else:
            payloads.append(frag)

    def psrpcore_defragment() -> list[bytes]:
        out: list[bytes] = []
        pool = psrpcore.ClientRunspacePool()
        with mock.patch("psrpcore._base.unpack_message",
                        lambda data: psrpcore_payload.Message(0, None, None, None, data)), \
                mock.patch.object(pool, "_process_message", lambda message: message.data):
            for payload in payloads:
                pool.receive_data(psrpcore_payload.PSRPPayload(payload, psrpcore_payload.StreamType.default, None))
                while (event := pool.next_event()) is not None:
                    out.append(event)
        return out

    assert ours_defragment() == pypsrp_defragment() == messages
    if PSRPCORE is None:
        assert psrpcore_defragment() == messages
    report("defragment", "MB/s", total_mb, best_time(ours_defragment, repeat), best_time(pypsrp_defragment, repeat),
           core_time(psrpcore_defragment if PSRPCORE is None else None, repeat))


def psrpcore_objects(count: int) -> Any:
    """The objects of ``sample_objects`` as a psrpcore ``PSList`` of ``PSObject``."""
    items = []
    for i in range(count):
        obj = psrpcore_types.PSObject()
        obj.PSObject.type_names = ["Deserialized.System.Diagnostics.Process", "Deserialized.System.Object"]
        obj.PSObject.to_string = f"System.Diagnostics.Process (process_{i})"
        for name, value in (("Name", f"process_{i}"), ("Id", i), ("Path", f"C:\\Windows\\System32\\proc{i}.exe"),
                            ("Responding", i % 2 == 0), ("Handles", i * 3)):
            obj.PSObject.adapted_properties.append(psrpcore_types.PSNoteProperty(name, value))
        psrpcore_types.add_note_property(obj, "WorkingSet64", psrpcore_types.PSInt64(i * 4096))
        psrpcore_types.add_note_property(obj, "Company", None)
        items.append(obj)
    return psrpcore_types.PSList(items)


def sample_objects(count: int) -> tuple[PSObject, list[GenericComplexObject]]:
    ours = []
    theirs = []
    for i in range(count):
        props: dict[str, Any] = {
            "Name": f"process_{i}",
            "Id": i,
            "Path": f"C:\\Windows\\System32\\proc{i}.exe",
            "Responding": i % 2 == 0,
            "Handles": i * 3,
        }
        ours.append(
            PSObject(
                type_names=["Deserialized.System.Diagnostics.Process", "Deserialized.System.Object"],
                to_string=f"System.Diagnostics.Process (process_{i})",
                adapted_properties=dict(props),
                extended_properties={"WorkingSet64": Int64(i * 4096), "Company": None},
            )
        )
        obj = GenericComplexObject()
        obj.types = ["Deserialized.System.Diagnostics.Process", "Deserialized.System.Object"]
        obj.to_string = f"System.Diagnostics.Process (process_{i})"
        obj.adapted_properties = dict(props)
        obj.extended_properties = {"WorkingSet64": i * 4096, "Company": None}
        theirs.append(obj)
    return ps_list(ours), theirs


def bench_clixml(repeat: int, count: int) -> None:
    ours_value, theirs_value = sample_objects(count)
    text = serialize(ours_value)

    def ours_serialize() -> str:
        return serialize(ours_value)

    def pypsrp_serialize() -> str:
        element = Serializer().serialize(theirs_value)
        assert element is not None
        return ET.tostring(element, encoding="unicode")

    core_value = psrpcore_objects(count) if PSRPCORE is None else None
    cipher = psrpcore_types.PSCryptoProvider() if PSRPCORE is None else None

    def psrpcore_serialize() -> str:
        return ET.tostring(psrpcore_types.serialize(core_value, cipher), encoding="unicode")

    if PSRPCORE is None:
        assert psrpcore_serialize().count("<Props>") == text.count("<Props>") == count
    report("CLIXML serialize", "obj/s", count, best_time(ours_serialize, repeat), best_time(pypsrp_serialize, repeat),
           core_time(psrpcore_serialize if PSRPCORE is None else None, repeat))

    def ours_deserialize() -> Any:
        return deserialize(text)

    def pypsrp_deserialize() -> Any:
        return Serializer().deserialize(text)

    def psrpcore_deserialize() -> Any:
        return psrpcore_types.deserialize(ET.fromstring(text), cipher)

    assert len(pypsrp_deserialize()) == len(ours_deserialize().items) == count
    if PSRPCORE is None:
        assert len(psrpcore_deserialize()) == count
    report("CLIXML deserialize", "obj/s", count, best_time(ours_deserialize, repeat),
           best_time(pypsrp_deserialize, repeat), core_time(psrpcore_deserialize if PSRPCORE is None else None, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small data, few repetitions")
    args = parser.parse_args()
    repeat, messages, objects = (2, 50, 200) if args.quick else (5, 400, 2000)
    if PSRPCORE is not None:
        print(PSRPCORE)
    bench_fragments(repeat, messages)
    bench_clixml(repeat, objects)


if __name__ == "__main__":
    main()

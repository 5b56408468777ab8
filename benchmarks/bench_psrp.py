"""Throughput of the MS-PSRP codec against pypsrp on the same data.

Run: ``python benchmarks/bench_psrp.py [--quick]``. Prints MB/s or objects/s for ours and pypsrp and the ratio
(pypsrp time / our time, so > 1 means we are faster).

* fragment: our ``Fragmenter.fragment`` vs pypsrp's fragment loop (its ``_byte_iterator`` + ``Fragment.pack``,
  without the message serialization its ``Fragmenter.fragment`` also does).
* defragment: our ``Defragmenter.feed`` vs pypsrp's ``Fragmenter.defragment`` with its ``Message.unpack`` step
  patched out, so both only reassemble bytes.
* CLIXML: ``serialize`` / ``deserialize`` of a pipeline-output-like list of objects vs pypsrp's ``Serializer``.
"""

from __future__ import annotations

import argparse
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from unittest import mock

from pypsrp import powershell as pypsrp_powershell
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

from harness.wire.psrp.clixml import PSObject, deserialize, ps_list, serialize
from harness.wire.psrp.fragments import FRAGMENT_HEADER_SIZE, Defragmenter, Fragmenter
from harness.wire.psrp.primitives import Int64


def best_time(func: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def report(name: str, unit: str, amount: float, ours: float, theirs: float) -> None:
    print(
        f"{name:<24} ours {amount / ours:12.1f} {unit}   pypsrp {amount / theirs:12.1f} {unit}   "
        f"ratio {theirs / ours:6.2f}x"
    )


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

    assert ours_fragment() == pypsrp_fragment()
    report("fragment", "MB/s", total_mb, best_time(ours_fragment, repeat), best_time(pypsrp_fragment, repeat))

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

    assert ours_defragment() == pypsrp_defragment() == messages
    report("defragment", "MB/s", total_mb, best_time(ours_defragment, repeat), best_time(pypsrp_defragment, repeat))


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

    report("CLIXML serialize", "obj/s", count, best_time(ours_serialize, repeat), best_time(pypsrp_serialize, repeat))

    def ours_deserialize() -> Any:
        return deserialize(text)

    def pypsrp_deserialize() -> Any:
        return Serializer().deserialize(text)

    assert len(pypsrp_deserialize()) == len(ours_deserialize().items) == count
    report(
        "CLIXML deserialize", "obj/s", count, best_time(ours_deserialize, repeat), best_time(pypsrp_deserialize, repeat)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small data, few repetitions")
    args = parser.parse_args()
    repeat, messages, objects = (2, 50, 200) if args.quick else (5, 400, 2000)
    bench_fragments(repeat, messages)
    bench_clixml(repeat, objects)


if __name__ == "__main__":
    main()

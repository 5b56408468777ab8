"""Decode/encode throughput of harness.wire.wmio against impacket's WMIO decoder on the same blobs.

Run: python benchmarks/bench_wmio.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from harness.wire.wmio import (
    CimType,
    Qualifier,
    WmiClass,
    WmiInstance,
    WmiProperty,
    decode_encoding_unit,
    encode_encoding_unit,
)


def _sample_instance() -> WmiInstance:
    props = [WmiProperty(f"P{i}", t, is_array=(i % 3 == 0),
                         qualifiers=[Qualifier("CIMTYPE", CimType.STRING, t.name.lower(), flavor=3)])
             for i, t in enumerate([CimType.STRING, CimType.UINT32, CimType.SINT64, CimType.BOOLEAN,
                                    CimType.STRING, CimType.UINT16, CimType.DATETIME, CimType.UINT64] * 3)]
    values = {}
    for p in props:
        sample = {CimType.STRING: "Service name", CimType.UINT32: 4000, CimType.SINT64: -12345678901,
                  CimType.BOOLEAN: True, CimType.UINT16: 7, CimType.DATETIME: "20240101120000.000000+000",
                  CimType.UINT64: 2**40}[p.cim_type]
        values[p.name] = [sample, sample] if p.is_array and p.cim_type is not CimType.DATETIME else sample
        if p.is_array and p.cim_type is CimType.DATETIME:
            values[p.name] = None
    return WmiInstance(WmiClass("Win32_Bench", ["CIM_Service"], properties=props), values)


def _rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    golden = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "wmio" / "ms-wmio-3.2-myclass-instance.hex"
    lines = golden.read_text().splitlines()
    blobs = {
        "ms-wmio-3 instance": bytes.fromhex("".join(x for x in lines if not x.startswith("#"))),
        "24-property instance": encode_encoding_unit(_sample_instance()),
    }
    try:
        from impacket.dcerpc.v5.dcom import wmi
    except ImportError:  # pragma: no cover
        wmi = None
    for label, blob in blobs.items():
        obj = decode_encoding_unit(blob)
        ours = _rate(lambda b=blob: decode_encoding_unit(b))
        enc = _rate(lambda o=obj: encode_encoding_unit(o))
        print(f"{label} ({len(blob)} octets)")
        print(f"  ours     decode {ours:10.0f} ops/s   encode {enc:10.0f} ops/s")
        if wmi is not None:
            def imp(b: bytes = blob) -> None:
                block = wmi.ENCODING_UNIT(b)["ObjectBlock"]
                block.parseObject()
            theirs = _rate(imp)
            print(f"  impacket decode {theirs:10.0f} ops/s   (no encoder usable for arbitrary instances)")
            print(f"  ratio ours/impacket decode: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()

"""Sans-IO MS-WMIO codec: the binary encoding of CIM classes and instances used by WMI over DCOM.

``decode_encoding_unit`` / ``encode_encoding_unit`` handle the EncodingUnit (MS-WMIO 2.2.1);
``decode_object_block`` / ``encode_object_block`` the bare ObjectBlock (2.2.2, 2.2.5).
"""

from __future__ import annotations

from .decoder import decode_encoding_unit, decode_object_block
from .encoder import encode_encoding_unit, encode_object_block
from .errors import WmioDecodeError, WmioEncodeError, WmioError
from .model import (
    CIM_ARRAY_FLAG,
    CIM_INHERITED_FLAG,
    CimType,
    Decoration,
    ObjectFlags,
    Qualifier,
    QualifierFlavor,
    Value,
    WmiClass,
    WmiInstance,
    WmiMethod,
    WmiObject,
    WmiProperty,
)

__all__ = [
    "CIM_ARRAY_FLAG",
    "CIM_INHERITED_FLAG",
    "CimType",
    "Decoration",
    "ObjectFlags",
    "Qualifier",
    "QualifierFlavor",
    "Value",
    "WmiClass",
    "WmiInstance",
    "WmiMethod",
    "WmiObject",
    "WmiProperty",
    "WmioDecodeError",
    "WmioEncodeError",
    "WmioError",
    "decode_encoding_unit",
    "decode_object_block",
    "encode_encoding_unit",
    "encode_object_block",
]

"""MS-WMIO 2.2.78 Encoded-String: a flag octet, then a NUL-terminated string.

Flag 0x00: "compressed" -- one octet per character (the character's code point must be < 256, i.e.
ISO-8859-1), terminated by one 0x00. Flag 0x01: UTF-16LE code units terminated by 0x0000.
"""

from __future__ import annotations

from .errors import WmioDecodeError, WmioEncodeError

COMPRESSED = 0x00
UNICODE = 0x01


def encode_string(text: str) -> bytes:
    """Encode ``text`` compressed when every character fits one octet, otherwise UTF-16LE (2.2.78)."""
    if "\x00" in text:
        raise WmioEncodeError("an Encoded-String cannot contain NUL (MS-WMIO 2.2.78)")
    try:
        return b"\x00" + text.encode("latin-1") + b"\x00"
    except UnicodeEncodeError:
        return b"\x01" + text.encode("utf-16-le", "surrogatepass") + b"\x00\x00"


def decode_string(buf: bytes, offset: int, end: int) -> tuple[str, int]:
    """Decode the Encoded-String at ``offset`` not extending past ``end``; return (text, next offset)."""
    if offset < 0 or offset >= end:
        raise WmioDecodeError("Encoded-String outside its block", offset)
    flag = buf[offset]
    start = offset + 1
    if flag == COMPRESSED:
        nul = buf.find(b"\x00", start, end)
        if nul < 0:
            raise WmioDecodeError("unterminated compressed Encoded-String", offset)
        return buf[start:nul].decode("latin-1"), nul + 1
    if flag == UNICODE:
        pos = start
        while True:
            nul = buf.find(b"\x00\x00", pos, end)
            if nul < 0:
                raise WmioDecodeError("unterminated UTF-16 Encoded-String", offset)
            if (nul - start) % 2 == 0:
                break
            pos = nul + 1
        return buf[start:nul].decode("utf-16-le", "surrogatepass"), nul + 2
    raise WmioDecodeError(f"invalid Encoded-String flag 0x{flag:02x}", offset)

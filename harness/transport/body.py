"""Reading a whole HTTP body with a size bound (server requests and client responses alike).

aiohttp's ``StreamReader.read(n)`` returns what has arrived so far, up to ``n`` bytes: one TCP
segment, or one HTTP chunk of a chunked body (RFC 9112 7.1; MS-WSMV 3.2.4.2.1 streams several
messages that way). A single call therefore truncates any body that arrives in pieces; this reads
until the end of the body or one byte past the limit, so the caller can tell "too large".
"""

from __future__ import annotations

import aiohttp


async def read_body(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (the caller compares the length with its own bound)."""
    data = bytearray()
    while len(data) < limit:
        piece = await content.read(limit - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


__all__ = ["read_body"]

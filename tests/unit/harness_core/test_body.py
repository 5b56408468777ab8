"""harness.transport.body.read_body: a body that arrives in pieces is read whole, within the bound."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.transport.body import read_body


class _Pieces:
    """What aiohttp's StreamReader.read(n) does: at most n bytes of what has arrived so far."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = list(pieces)

    async def read(self, n: int) -> bytes:
        if not self.pieces:
            return b""
        head = self.pieces[0][:n]
        self.pieces[0] = self.pieces[0][n:]
        if not self.pieces[0]:
            self.pieces.pop(0)
        return head


async def test_every_piece_is_read() -> None:
    stream: Any = _Pieces(b"<s:Envelope>", b"...", b"</s:Envelope>")
    assert await read_body(stream, 1000) == b"<s:Envelope>...</s:Envelope>"


async def test_reading_stops_one_byte_past_the_limit() -> None:
    stream: Any = _Pieces(b"a" * 10, b"b" * 10)
    assert await read_body(stream, 15) == b"a" * 10 + b"b" * 5


async def test_a_chunked_answer_sent_in_pieces_arrives_whole() -> None:
    """Over real HTTP: a chunked response written in three pieces with pauses (RFC 9112 7.1)."""
    import asyncio

    import aiohttp

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"one-", b"two-", b"three"):
            await response.write(piece)
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.get(f"http://127.0.0.1:{port}/") as resp:
            assert await read_body(resp.content, 1000) == b"one-two-three"
    finally:
        await runner.cleanup()

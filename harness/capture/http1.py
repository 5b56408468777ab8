"""Sans-IO extraction of HTTP/1.1 messages from a reassembled TCP half-stream (RFC 9112).

* 3 / 4: request line ``method SP request-target SP HTTP-version``, status line
  ``HTTP-version SP status-code SP [reason-phrase]``;
* 5: header fields up to the empty line (bounded: 64 KiB of header);
* 6.3: message body length: ``Transfer-Encoding: chunked`` (7.1) wins over ``Content-Length``;
  responses to HEAD, 1xx, 204 and 304 have no body; a response with neither is delimited by the
  connection close; a request with neither has no body.

Holes in the stream (segments missing from the capture) cut a message: it is returned with an
error naming the missing byte range, and parsing resumes at the next request or status line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.capture.reader import HalfStream

MAX_HEADER = 64 * 1024
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/(\d)\.(\d)$")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")
_RESYNC_REQUEST = re.compile(rb"(?:^|\r\n)((?:POST|GET|PUT|HEAD|DELETE|OPTIONS|PATCH) \S+ HTTP/1\.[01]\r\n)")
_RESYNC_RESPONSE = re.compile(rb"(?:^|\r\n)(HTTP/1\.[01] \d{3}[^\r\n]*\r\n)")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?\r\n")


@dataclass
class HttpMessage:
    """One HTTP/1.1 message; ``offset`` is where it starts in its half-stream."""

    is_request: bool
    offset: int
    frame: int | None
    method: str = ""
    target: str = ""
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = True
    errors: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return None

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    @property
    def summary(self) -> str:
        return f"{self.method} {self.target}" if self.is_request else f"{self.status} {self.reason}".strip()


class _Cut(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _dechunk(data: bytes, pos: int) -> tuple[bytes, int]:
    """Decode a chunked body (RFC 9112 7.1) starting at ``pos``; returns (body, end position)."""
    parts: list[bytes] = []
    while True:
        m = _CHUNK_SIZE.match(data, pos)
        if m is None:
            if len(data) - pos < 20 and b"\r\n" not in data[pos:]:
                raise _Cut("chunked body cut short (chunk size line missing)")
            raise ValueError(f"bad chunk size line at body offset {pos}")
        size = int(m.group(1), 16)
        pos = m.end()
        if size == 0:
            end = data.find(b"\r\n\r\n", pos - 2)  # trailer section ends with an empty line
            if end < 0:
                raise _Cut("chunked body cut short (trailer)")
            return b"".join(parts), end + 4
        if pos + size + 2 > len(data):
            raise _Cut(f"chunked body cut short ({size}-byte chunk)")
        parts.append(data[pos:pos + size])
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        pos += size + 2


def _parse_one(data: bytes, pos: int, is_request: bool, at_end: bool,
               request_method: str | None) -> tuple[HttpMessage, int]:
    """Parse the message at ``pos``; raises _Cut when the data ends inside it, ValueError when malformed."""
    head_end = data.find(b"\r\n\r\n", pos, pos + MAX_HEADER)
    if head_end < 0:
        if len(data) - pos >= MAX_HEADER:
            raise ValueError(f"header section longer than {MAX_HEADER} bytes")
        raise _Cut("header section cut short")
    lines = data[pos:head_end].split(b"\r\n")
    msg = HttpMessage(is_request, pos, None)
    if is_request:
        m = _REQUEST_LINE.match(lines[0])
        if m is None:
            raise ValueError(f"not an HTTP/1.x request line: {lines[0][:80]!r}")
        msg.method, msg.target = m.group(1).decode("ascii"), m.group(2).decode("latin-1")
    else:
        m = _STATUS_LINE.match(lines[0])
        if m is None:
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        msg.status, msg.reason = int(m.group(3)), (m.group(4) or b"").decode("latin-1")
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"malformed header field line {line[:80]!r}")
        msg.headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    body_start = head_end + 4
    te = (msg.header("Transfer-Encoding") or "").lower()
    cl = msg.header("Content-Length")
    no_body = (not is_request and msg.status is not None
               and (msg.status < 200 or msg.status in (204, 304) or request_method == "HEAD"))
    if no_body:
        return msg, body_start
    if "chunked" in te:
        msg.body, end = _dechunk(data, body_start)
        return msg, end
    if cl is not None:
        if not cl.isdigit():
            raise ValueError(f"bad Content-Length {cl!r}")
        end = body_start + int(cl)
        if end > len(data):
            msg.body = data[body_start:]
            raise _Cut(f"body cut short: {len(data) - body_start} of {int(cl)} bytes")
        msg.body = data[body_start:end]
        return msg, end
    if is_request:
        return msg, body_start
    if not at_end:
        raise _Cut("close-delimited body followed by a hole in the stream")
    msg.body = data[body_start:]
    return msg, len(data)


def _resync(data: bytes, pos: int, is_request: bool) -> int:
    pattern = _RESYNC_REQUEST if is_request else _RESYNC_RESPONSE
    m = pattern.search(data, pos)
    return m.start(1) if m else len(data)


def extract_messages(half: HalfStream, is_request: bool,
                     request_methods: list[str] | None = None) -> list[HttpMessage]:
    """Every HTTP message in one direction of a stream, in order."""
    out: list[HttpMessage] = []
    methods = list(request_methods or [])
    final_responses = 0
    for n, (base, data) in enumerate(half.chunks):
        at_end = n == len(half.chunks) - 1
        hole_after = next(((a, b) for a, b in half.missing if a == base + len(data)), None)
        pos = 0
        if n > 0 or base > 0:
            pos = _resync(data, 0, is_request)  # after a hole: the next message start
        while pos < len(data):
            method = methods[final_responses] if not is_request and final_responses < len(methods) else None
            try:
                msg, end = _parse_one(data, pos, is_request, at_end, method)
            except _Cut as cut:
                msg = HttpMessage(is_request, base + pos, half.frame_at(base + pos), complete=False)
                try:
                    partial, _ = _parse_one(data + b"\r\n\r\n", pos, is_request, True, method)
                    msg.method, msg.target, msg.status, msg.reason = (
                        partial.method, partial.target, partial.status, partial.reason)
                    msg.headers = partial.headers
                except (_Cut, ValueError):
                    pass
                where = (f"segments missing from the capture (bytes {hole_after[0]}-{hole_after[1] - 1})"
                         if hole_after else "the capture ends")
                msg.errors.append(f"incomplete message: {cut.reason}; {where}")
                out.append(msg)
                break
            except ValueError as exc:
                bad = HttpMessage(is_request, base + pos, half.frame_at(base + pos), complete=False)
                bad.errors.append(f"malformed HTTP: {exc}")
                out.append(bad)
                pos = _resync(data, pos + 1, is_request)
                continue
            msg.offset = base + pos
            msg.frame = half.frame_at(base + pos)
            out.append(msg)
            if not is_request and (msg.status or 0) >= 200:
                final_responses += 1
            pos = end
    return out

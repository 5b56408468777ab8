"""Check the WS-Man traffic in a capture: per-message XSD validation, decoding and protocol rules.

For every HTTP message of every TCP stream (:mod:`harness.capture.reader`, :mod:`harness.capture.http1`):

* ``application/soap+xml`` bodies (MS-WSMV 2.1: WS-Man travels as SOAP 1.2 over HTTP POST) are
  validated against our XSDs (:mod:`harness.validate`) and decoded with our codec
  (:func:`harness.wire.wsman.parse_envelope`, :func:`~harness.wire.wsman.parse_fault`);
* ``multipart/encrypted`` / ``multipart/x-multi-encrypted`` bodies (MS-WSMV 2.2.9.1 encrypted
  messages: SPNEGO, Kerberos or CredSSP session encryption) are reported as encrypted; a
  :data:`Decryptor` registered with :func:`register_decryptor_factory` turns them back into SOAP
  (the extension point for the authentication work);
* request/response rules over each stream, requests and responses paired in order (RFC 9112 9.3):
  - the response's ``wsa:RelatesTo`` is the request's ``wsa:MessageID`` (WS-Addressing 2004/08
    section 3, "reply" relationship; DSP0226 5, addressing of responses);
  - HTTP 500 (and 400) carries a SOAP fault, HTTP 200 never does (SOAP 1.2 part 2 7.5.1.2 HTTP
    binding; MS-WSMV 2.1: observed Windows behaviour answers faults with 500);
  - for WS-Transfer, WS-Enumeration and WS-Eventing actions a non-fault response's action is the
    request action + ``Response`` (DSP0226 7, 8, 10; MS-WSMV 3.1.4.1 - 3.1.4.13).

TLS (WinRM over HTTPS, MS-WSMV 2.1 port 5986, or any port): a stream whose first bytes are a TLS
handshake is decrypted with an NSS key log (:mod:`harness.capture.tls`; ``--tls-keylog`` or the
``SSLKEYLOGFILE`` convention) and its application data goes through the same HTTP reassembly as a
cleartext stream. Without its secrets in the key log the stream is one ``info`` report
("TLS, no keys": not a failure); secrets that do not open it give an ``encrypted`` report ("TLS,
cannot decrypt"); a record that fails authentication after others opened is a ``fail``.

CredSSP (MS-CSSP 3.1.5; MS-WSMV 2.2.9.1.1): a connection using the ``CredSSP`` scheme tunnels a TLS
session through its auth headers and sealed bodies; :mod:`harness.capture.credssp_decrypt` opens it
with the same key log, the sealed messages are then checked like NTLM/Kerberos-opened ones and the
CredSSP steps are listed per message (an authInfo only as present). Without the keys: "CredSSP, no
keys" (info, not a failure).

Verdicts: ``pass``, ``fail``, ``encrypted`` (not checked: needs a password and a decryptor) and
``info`` (an HTTP message without a SOAP body, e.g. a 401 challenge; not a failure).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.capture.http1 import HttpMessage, extract_messages
from harness.capture.reader import CaptureReadError, TcpStream, frames_from_bytes, read_frames, reassemble
from harness.capture.tls import KeyLog, TlsDecryptError, TlsSession, decrypt_tcp_stream, read_keylog, tls_stream
from harness.wire.wsman import WSManDecodeError, is_fault, parse_envelope, parse_fault
from harness.wire.wsman.ns import NS_ENUMERATION, NS_TRANSFER, Action

if TYPE_CHECKING:
    from harness.capture.credssp_decrypt import CredSSPStream

Verdict = Literal["pass", "fail", "encrypted", "info"]

SOAP_TYPES = frozenset({"application/soap+xml"})
ENCRYPTED_TYPES = frozenset({"multipart/encrypted", "multipart/x-multi-encrypted"})
NS_EVENTING = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
_PAIRED_ACTION_PREFIXES = (NS_TRANSFER + "/", NS_ENUMERATION + "/", NS_EVENTING + "/")
MAX_BODY_CHECK = 64 * 1024 * 1024

#: Turns an encrypted message into its SOAP body (or raises ValueError with the reason).
#: Arguments: the stream, the message, and the messages before it in the same stream (for the
#: authentication handshake that established the session key).
Decryptor = Callable[[TcpStream, HttpMessage, list[HttpMessage]], bytes]
_decryptor_factories: list[Callable[[str], Decryptor | None]] = []
_keytab_decryptor_factories: list[Callable[[str], Decryptor | None]] = []
_kerberos_password_factories: list[Callable[[str], Decryptor | None]] = []


class NotDecryptable(ValueError):
    """Raised by a :data:`Decryptor` that has nothing to open a message with (no authentication
    handshake in the capture, another protocol): the message stays ``encrypted`` (not checked)."""


class KeysMissing(NotDecryptable):
    """Raised by a :data:`Decryptor` whose keys were simply not given (CredSSP without the TLS
    session's secrets in a key log): the message is ``info`` (not checked, not a failure), like a
    TLS stream without keys."""


#: What opening a stream gives per message (keyed by (is request, body offset)): the plaintext,
#: NotDecryptable (nothing to open it with), or the reason it failed.
Opened = bytes | str | NotDecryptable


def plaintext_of(result: Opened) -> bytes:
    """The plaintext of an opened message; its NotDecryptable, or ValueError with the reason it failed."""
    if isinstance(result, NotDecryptable):
        raise result
    if isinstance(result, str):
        raise ValueError(result)
    return result


def stream_decryptor(open_stream: Callable[[TcpStream], Mapping[tuple[bool, int], Opened]],
                     scheme: str) -> Decryptor:
    """A :data:`Decryptor` that opens each TCP stream once (its session keys come from the
    authentication handshake at its start) and then answers message by message."""
    streams: dict[int, Mapping[tuple[bool, int], Opened]] = {}

    def decrypt(stream: TcpStream, message: HttpMessage, before: list[HttpMessage]) -> bytes:
        opened = streams.get(id(stream))
        if opened is None:
            opened = streams[id(stream)] = open_stream(stream)
        result = opened.get((message.is_request, message.offset))
        if result is None:
            raise NotDecryptable(f"the message is not {scheme} session-encrypted")
        return plaintext_of(result)

    return decrypt


def register_decryptor_factory(factory: Callable[[str], Decryptor | None]) -> None:
    """Register a factory that builds a :data:`Decryptor` from a password (auth work plugs in here)."""
    _decryptor_factories.append(factory)


def register_keytab_decryptor_factory(factory: Callable[[str], Decryptor | None]) -> None:
    """Register a factory that builds a :data:`Decryptor` from a keytab path (Kerberos: the
    service key opens the ticket, RFC 4120 5.3; harness.capture.krb_decrypt plugs in here)."""
    _keytab_decryptor_factories.append(factory)


def register_kerberos_password_decryptor_factory(factory: Callable[[str], Decryptor | None]) -> None:
    """Register a factory that builds a Kerberos :data:`Decryptor` from a password: it opens the
    tickets whose service key the password gives (RC4-HMAC: MD4 of the password, RFC 4757 3; AES
    with the default salt, RFC 3962 4); harness.capture.krb_decrypt plugs in here."""
    _kerberos_password_factories.append(factory)


def _chain(decryptors: list[Decryptor]) -> Decryptor:
    """Try each decryptor in turn; the next one gets a message the previous one could not open."""
    def decrypt(stream: TcpStream, msg: HttpMessage, before: list[HttpMessage]) -> bytes:
        reasons: list[str] = []
        for dec in decryptors:
            try:
                return dec(stream, msg, before)
            except NotDecryptable as exc:
                reasons.append(str(exc))
        raise NotDecryptable("; ".join(reasons))
    return decrypt


def decryptor_for(password: str | None, keytab: str | None = None) -> Decryptor | None:
    found: list[Decryptor] = []
    if keytab or password:
        # The built-in Kerberos decryptor (MS-WSMV 2.2.9.1.1; RFC 4121 4.2.6.2, RFC 4757 7.3) registers
        # itself on import; the ticket names its etype (RFC 4120 5.3), which picks the cipher and the
        # Wrap token format (MS-KILE 3.4.5.4.1).
        from harness.capture import krb_decrypt  # noqa: F401
    if keytab:
        found += [dec for factory in _keytab_decryptor_factories if (dec := factory(keytab)) is not None][:1]
    if password:
        # The built-in NTLM decryptor (MS-WSMV 2.2.9.1.1, MS-NLMP 3.4) registers itself on import.
        from harness.capture import decrypt  # noqa: F401
        found += [dec for factory in _decryptor_factories if (dec := factory(password)) is not None][:1]
        found += [dec for factory in _kerberos_password_factories if (dec := factory(password)) is not None][:1]
    if not found:
        return None
    return found[0] if len(found) == 1 else _chain(found)


@dataclass
class MessageReport:
    """The verdict on one HTTP message of the capture."""

    index: int
    stream: int
    direction: Literal["request", "response"]
    frame: int | None
    http: str
    action: str | None
    message_id: str | None
    relates_to: str | None
    verdict: Verdict
    errors: list[str] = field(default_factory=list)
    size: int = 0
    #: What a DCE/RPC message carried (harness.capture.dcerpc): WMI objects, HRESULT.
    objects: list[str] = field(default_factory=list)


@dataclass
class CaptureReport:
    """The result of checking one capture."""

    source: str
    frames: int
    streams: int
    messages: list[MessageReport]
    stream_notes: list[str] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.messages) and all(m.verdict in ("pass", "info") for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class _Decoded:
    report: MessageReport
    msg: HttpMessage
    soap: bool = False
    fault: bool = False


def _validator() -> Any:
    from harness.validate import default_validator

    return default_validator()


def _check_body(d: _Decoded, body: bytes, validator: Any) -> None:
    r = d.report
    d.soap = True
    try:
        env = parse_envelope(body)
    except WSManDecodeError as exc:
        if validator is not None:
            r.errors.extend(f"XSD: {e}" for e in validator.validate(body))
        r.errors.append(f"codec: {exc.reason}")
        return
    if validator is not None:  # the codec's tree, validated without a second parse (left unchanged)
        r.errors.extend(f"XSD: {e}" for e in validator.validate_tree(env.body.getroottree().getroot()))
    r.action = env.header.action or None
    r.message_id = env.header.message_id if env.header.message_id else None
    r.relates_to = env.header.relates_to
    if is_fault(env):
        d.fault = True
        try:
            fault = parse_fault(env)
            if r.action is None:
                r.action = fault.action
        except WSManDecodeError as exc:
            r.errors.append(f"codec: malformed fault: {exc.reason}")


def _classify(stream: TcpStream, msg: HttpMessage, before: list[HttpMessage], d: _Decoded,
              validator: Any, password: str | None, decryptor: Decryptor | None) -> None:
    r = d.report
    r.errors.extend(msg.errors)
    ctype = msg.content_type
    if not msg.complete:
        return
    if len(msg.body) > MAX_BODY_CHECK:
        r.errors.append(f"body of {len(msg.body)} bytes exceeds the {MAX_BODY_CHECK}-byte check limit")
        return
    if ctype in ENCRYPTED_TYPES:
        if decryptor is None:
            r.verdict = "encrypted"
            r.errors.append("encrypted: needs --password" if not password else
                            "encrypted: no decryptor for this authentication protocol yet (MS-WSMV 2.2.9.1)")
            return
        try:
            body = decryptor(stream, msg, before)
        except KeysMissing as exc:
            r.verdict = "info"
            r.objects.append(f"sealed, not opened: {exc}")
            return
        except NotDecryptable as exc:
            r.verdict = "encrypted"
            r.errors.append(f"encrypted: no decryptor could open it ({exc})")
            return
        except ValueError as exc:
            r.errors.append(f"decryption failed: {exc}")
            return
        _check_body(d, body, validator)
        return
    if ctype in SOAP_TYPES:
        _check_body(d, msg.body, validator)
        return
    if msg.body:
        r.verdict = "info"
        r.errors.append(f"not WS-Man: Content-Type {ctype or '(none)'}")
    else:
        r.verdict = "info"


def _pair_rules(req: _Decoded, resp: _Decoded) -> list[str]:
    """Request/response rules (see the module docstring)."""
    errors: list[str] = []
    status = resp.msg.status
    if req.soap and not resp.soap and resp.report.verdict == "info" and status is not None and status != 401:
        errors.append(f"HTTP {status} answer to a WS-Man request carries no SOAP envelope")
    if not resp.soap:
        return errors
    if status in (400, 500) and not resp.fault:
        errors.append(f"HTTP {status} without a SOAP fault")
    if status == 200 and resp.fault:
        errors.append("HTTP 200 carrying a SOAP fault (faults are sent with 500)")
    if not req.soap:
        return errors
    want = req.report.message_id
    if want and resp.report.relates_to != want:
        errors.append(f"RelatesTo {resp.report.relates_to!r} is not the request's MessageID {want!r}")
    action = req.report.action
    # DSP0226 10.2.5: in pull delivery an idle subscription answers a Pull with a Heartbeat.
    pull_heartbeat = action == Action.PULL and resp.report.action == Action.HEARTBEAT
    if (action and not resp.fault and action.startswith(_PAIRED_ACTION_PREFIXES)
            and resp.report.action != action + "Response" and not pull_heartbeat):
        errors.append(f"response Action {resp.report.action!r} does not answer {action!r} "
                      f"(expected {action + 'Response'!r})")
    return errors


def _tls_report(stream: TcpStream, session: TlsSession, keylog: KeyLog | None,
                notes: list[str]) -> MessageReport | None:
    """The report on a TLS stream's decryption (None when it opened cleanly: its HTTP messages speak)."""
    notes.extend(f"stream {stream.index} TLS {n}" for n in session.notes)
    for side, half in (("client", session.client), ("server", session.server)):
        fatal = [a for a in half.alerts if a != "close_notify"]
        if fatal:
            notes.append(f"stream {stream.index} TLS {side} sent alert(s): {', '.join(fatal)}")
        if half.skipped:
            notes.append(f"stream {stream.index} TLS {side}: {half.skipped} record(s) skipped")
    status = session.status
    reasons = [h.error for h in (session.client, session.server) if h.error]
    if status == "decrypted":
        random = session.client_random.hex() if session.client_random else "?"
        notes.append(f"stream {stream.index}: {session.description} decrypted with the key log (client random "
                     f"{random}; {session.client.decrypted} + {session.server.decrypted} records)")
        return None
    report = MessageReport(index=0, stream=stream.index, direction="request", frame=stream.first_frame,
                           http=session.description, action=None, message_id=None, relates_to=None,
                           verdict="info", size=stream.to_server.length + stream.to_client.length)
    if status in ("no keys", "incomplete"):
        hint = "" if keylog is not None else " (give --tls-keylog PATH or set SSLKEYLOGFILE)"
        why = "; ".join(reasons) if reasons else (
            "no TLS handshake to take keys from" if status == "incomplete" and keylog is not None else
            "no key log")
        report.errors.append(f"TLS, no keys: {why}{hint}")
    elif status in ("cannot decrypt", "unsupported"):
        report.verdict = "encrypted"
        report.errors.append(f"TLS, cannot decrypt: {'; '.join(reasons) or status}")
    else:
        report.verdict = "fail"
        report.errors.append(f"TLS decryption failed part way: {'; '.join(reasons)}")
    return report


def check_streams(streams: list[TcpStream], *, validator: Any = None, password: str | None = None,
                  decryptor: Decryptor | None = None,
                  keylog: KeyLog | None = None) -> tuple[list[MessageReport], list[str]]:
    """Per-message reports and stream-level notes for reassembled streams; TLS streams are
    decrypted with ``keylog`` first (see the module docstring)."""
    reports: list[MessageReport] = []
    notes: list[str] = []
    for stream in streams:
        for label, half in (("client->server", stream.to_server), ("server->client", stream.to_client)):
            for a, b in half.missing:
                notes.append(f"stream {stream.index} {label}: bytes {a}-{b - 1} missing from the capture")
            if half.duplicates or half.out_of_order:
                notes.append(f"stream {stream.index} {label}: {half.duplicates} retransmitted/duplicate and "
                             f"{half.out_of_order} out-of-order segment(s) put in order")
        if tls_stream(stream):
            stream, session = decrypt_tcp_stream(stream, keylog)
            tls_report = _tls_report(stream, session, keylog, notes)
            if tls_report is not None:
                reports.append(tls_report)
            if not stream.to_server.chunks and not stream.to_client.chunks:
                continue
        if _is_dcerpc(stream):
            reports += _dcerpc_reports(stream, password, notes)
            continue
        requests = extract_messages(stream.to_server, True)
        responses = extract_messages(stream.to_client, False, [m.method for m in requests])
        if not requests and not responses:
            continue
        credssp = _credssp(stream, requests, responses, keylog, notes, reports)
        stream_decryptor = decryptor if credssp is None else credssp.decryptor(decryptor)
        decoded_req: list[_Decoded] = []
        decoded_resp: list[_Decoded] = []
        for msgs, out, direction in ((requests, decoded_req, "request"), (responses, decoded_resp, "response")):
            for i, msg in enumerate(msgs):
                rep = MessageReport(index=0, stream=stream.index,
                                    direction="request" if direction == "request" else "response",
                                    frame=msg.frame, http=msg.summary, action=None, message_id=None,
                                    relates_to=None, verdict="pass", size=len(msg.body))
                d = _Decoded(rep, msg)
                _classify(stream, msg, msgs[:i], d, validator, password, stream_decryptor)
                if credssp is not None:   # the CredSSP steps the message carried (never a secret)
                    rep.objects.extend(credssp.steps.get((msg.is_request, msg.offset), []))
                    rep.errors.extend(credssp.errors.get((msg.is_request, msg.offset), []))
                out.append(d)
        finals = [d for d in decoded_resp if (d.msg.status or 0) >= 200 or d.msg.status is None]
        for i, req in enumerate(decoded_req):
            if i >= len(finals):
                if req.msg.complete:
                    req.report.errors.append("no response to this request in the capture")
                continue
            finals[i].report.errors.extend(_pair_rules(req, finals[i]))
        for extra in finals[len(decoded_req):]:
            extra.report.errors.append("response without a request in the capture")
        ordered = sorted(decoded_req + decoded_resp,
                         key=lambda d: (d.report.frame if d.report.frame is not None else 1 << 62))
        for d in ordered:
            real_errors = [e for e in d.report.errors if not e.startswith("not WS-Man")]
            if real_errors and d.report.verdict in ("pass", "info"):
                d.report.verdict = "fail"
            reports.append(d.report)
    reports.sort(key=lambda r: (r.frame if r.frame is not None else 1 << 62, r.stream))
    for i, r in enumerate(reports, 1):
        r.index = i
    return reports, notes


def _credssp(stream: TcpStream, requests: list[HttpMessage], responses: list[HttpMessage], keylog: KeyLog | None,
             notes: list[str], reports: list[MessageReport]) -> CredSSPStream | None:
    """A connection using the CredSSP scheme: its TLS session opened with ``keylog``
    (harness.capture.credssp_decrypt; MS-CSSP 3.1.5, MS-WSMV 2.2.9.1.1); its notes, and a stream
    report unless every session opened ("CredSSP, no keys" info, "cannot decrypt", or a failure)."""
    from harness.capture.credssp_decrypt import open_credssp_stream, uses_credssp

    if not uses_credssp(requests) and not uses_credssp(responses):
        return None
    opened = open_credssp_stream(stream.index, requests, responses, keylog)
    notes.extend(opened.notes)
    summary = opened.summary()
    if summary is not None:
        verdict, text = summary
        reports.append(MessageReport(index=0, stream=stream.index, direction="request", frame=stream.first_frame,
                                     http="CredSSP " + ", ".join(dict.fromkeys(s.description for s in opened.sessions)),
                                     action=None, message_id=None, relates_to=None,
                                     verdict="info" if verdict == "info" else "encrypted" if verdict == "encrypted"
                                     else "fail", errors=[text],
                                     size=stream.to_server.length + stream.to_client.length))
    return opened


def _is_dcerpc(stream: TcpStream) -> bool:
    """A stream whose client opens with a DCE/RPC bind, alter_context or request (C706 12.6.3.1)."""
    from harness.capture.dcerpc import looks_like_dcerpc

    chunks = stream.to_server.chunks
    return bool(chunks) and chunks[0][0] == 0 and looks_like_dcerpc(chunks[0][1][:16])


def _dcerpc_reports(stream: TcpStream, password: str | None, notes: list[str]) -> list[MessageReport]:
    """DCE/RPC PDUs of a stream as message reports (harness.capture.dcerpc: WMI over DCOM)."""
    from harness.capture.dcerpc import dissect_stream

    messages, stream_notes = dissect_stream(stream, password)
    notes.extend(stream_notes)
    return [MessageReport(index=0, stream=m.stream, direction=m.direction, frame=m.frame, http=m.summary,
                          action=m.method, message_id=None, relates_to=None, verdict=m.verdict,
                          errors=list(m.errors), size=m.size,
                          objects=([m.auth] if m.auth else []) + list(m.objects))
            for m in messages]


def check_capture(path: Path, *, password: str | None = None, validator: Any = None,
                  validate: bool = True, keytab: str | None = None,
                  keylog: KeyLog | None = None) -> CaptureReport:
    """Read, reassemble and check ``path``; :class:`CaptureReadError` when unreadable.
    ``keylog``: TLS secrets (:func:`harness.capture.tls.read_keylog`) for TLS streams."""
    start = time.perf_counter()
    frames = read_frames(path)
    return _finish(str(path), frames, path.stat().st_size, start, password, validator, validate, keytab, keylog)


def check_capture_bytes(data: bytes, *, password: str | None = None, validator: Any = None,
                        validate: bool = True, source: str = "<memory>", keytab: str | None = None,
                        keylog: KeyLog | None = None) -> CaptureReport:
    start = time.perf_counter()
    return _finish(source, frames_from_bytes(data), len(data), start, password, validator, validate, keytab, keylog)


def _finish(source: str, frames: list[Any], size: int, start: float, password: str | None,
            validator: Any, validate: bool, keytab: str | None = None, keylog: KeyLog | None = None) -> CaptureReport:
    streams = reassemble(frames)
    if validator is None and validate:
        validator = _validator()
    messages, notes = check_streams(streams, validator=validator, password=password,
                                    decryptor=decryptor_for(password, keytab), keylog=keylog)
    return CaptureReport(source, len(frames), len(streams), messages, notes, size, time.perf_counter() - start)


def format_report(report: CaptureReport) -> str:
    """The human-readable per-message report."""
    lines = [f"{report.source}: {report.frames} frames, {report.streams} TCP stream(s), "
             f"{len(report.messages)} HTTP message(s)"]
    for note in report.stream_notes:
        lines.append(f"  note: {note}")
    for m in report.messages:
        action = m.action.rsplit("/", 1)[-1] if m.action else "-"
        lines.append(f"  #{m.index:<4} stream {m.stream:<3} frame {m.frame if m.frame is not None else '?':<6} "
                     f"{m.direction:<8} {m.http:<28} {action:<26} {m.verdict.upper()}")
        lines.extend(f"        - {e}" for e in m.errors)
        if m.objects:
            lines.append(f"        = {'; '.join(m.objects)}")
    counts: dict[str, int] = {}
    for m in report.messages:
        counts[m.verdict] = counts.get(m.verdict, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no HTTP messages found"
    lines.append(f"{'PASS' if report.passed else 'FAIL'}: {summary}")
    return "\n".join(lines)


def run_check_pcap(file: str, *, as_json: bool, password: str | None,
                   keytab: str | None = None, tls_keylog: str | None = None) -> tuple[int, str]:
    """``wmh check-pcap``: (exit code, output). 0 all pass, 1 a message failed, 2 unreadable file
    (or unreadable TLS key log ``tls_keylog``, NSS key log format)."""
    keylog = None
    if tls_keylog:
        try:
            keylog = read_keylog(tls_keylog)
        except TlsDecryptError as exc:
            return 2, f"wmh check-pcap: {exc.reason}"
    try:
        report = check_capture(Path(file), password=password, keytab=keytab, keylog=keylog)
    except CaptureReadError as exc:
        return 2, f"wmh check-pcap: cannot read {file}: {exc.reason}"
    out = json.dumps(report.to_json(), indent=1) if as_json else format_report(report)
    return (0 if report.passed else 1), out

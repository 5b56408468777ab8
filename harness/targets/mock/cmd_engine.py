"""A SAFE simulated ``cmd.exe`` for the mock's WinRS shells (MS-WSMV 3.1.4.11 "Text-based Command
Shell"; MS-WMOD 3.6).

Nothing here ever starts a host process or touches the host file system: every command is a
Python generator over a fake ``C:\\`` and the shared CIM store. A program yields steps --
:class:`Emit` (text on stdout/stderr), :class:`Sleep` (simulated time), :class:`ReadStdin` (input
sent with Send) -- and returns its exit code. :class:`SimulatedProcess` drives one command line with
an injectable clock, so a long runner (``ping -n N``) produces output as time passes and can be
stopped by a Signal at any point.

Faithful cmd.exe details (observed Windows behaviour): each Command runs in its own ``cmd /c``,
so ``set X=Y`` only changes that command's copy of the shell environment; ``%VAR%`` is expanded
when the line is parsed (an undefined variable stays literal); ``&``, ``&&``, ``||`` and ``|``
combine commands; an unknown command prints "is not recognized as an internal or external
command" on stderr and exits 9009; output is encoded in the shell code page (WINRS_CODEPAGE).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from harness.cim.errors import CimError
from harness.cim.store import CimStore

#: Exit code of an unknown command (observed Windows behaviour: cmd.exe returns 9009).
EXIT_NOT_RECOGNIZED: Final = 9009
#: STATUS_CONTROL_C_EXIT: the exit code of a console process stopped by Ctrl+C / Ctrl+Break
#: (observed Windows behaviour; ntstatus.h 0xC000013A).
EXIT_CONTROL_C: Final = 0xC000013A
#: Exit code the mock reports for a command ended by the terminate signal (mock choice: Windows
#: deletes the command; the code is not observable by a client that follows MS-WSMV 3.1.4.12).
EXIT_TERMINATED: Final = 1
#: Bytes kept per output stream before a running command blocks (or drops, BufferMode Drop).
DEFAULT_BUFFER_LIMIT: Final = 1 << 20
#: Bytes of stdin a command may have pending.
MAX_STDIN: Final = 1 << 20
#: Steps a command may take in one poll (a runaway program cannot hang the service).
MAX_STEPS_PER_POLL: Final = 10_000
MAX_NESTING: Final = 8


class CodePageError(ValueError):
    """A WINRS_CODEPAGE value that names no code page the mock can encode."""


def codec_for(codepage: int) -> str:
    """Python codec of a Windows code page (65001 = UTF-8, 1200 = UTF-16LE, else ``cpN``)."""
    name = {65001: "utf-8", 1200: "utf-16-le", 20127: "ascii", 28591: "latin-1"}.get(codepage, f"cp{codepage}")
    try:
        codecs.lookup(name)
    except LookupError:
        raise CodePageError(f"code page {codepage} is not supported") from None
    return name


# ---------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class Emit:
    stream: str  # "stdout" | "stderr"
    text: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class ReadStdin:
    """Ask for input: the program receives the pending bytes, or None at end of input."""


Step = Emit | Sleep | ReadStdin
Program = Generator[Step, bytes | None, int]


class _ExitLine(Exception):
    """``exit`` without /b inside a line: stop the whole command line."""

    def __init__(self, code: int) -> None:
        self.code = code


# ---------------------------------------------------------------------------------- context
@dataclass
class FakeFile:
    name: str
    content: bytes = b""
    stamp: str = "05/08/2021  08:20 AM"


@dataclass
class FakeDir:
    name: str
    children: dict[str, FakeDir | FakeFile] = field(default_factory=dict)
    stamp: str = "05/08/2021  08:20 AM"


def default_drive() -> FakeDir:
    """The fake ``C:\\`` every shell sees (a Windows Server layout; nothing from the host)."""
    root = FakeDir("C:")
    for name in ("PerfLogs", "Program Files", "Program Files (x86)", "Users", "Windows"):
        root.children[name.lower()] = FakeDir(name)
    users = root.children["users"]
    assert isinstance(users, FakeDir)
    for name in ("Administrator", "Public", "wmh"):
        users.children[name.lower()] = FakeDir(name)
    windows = root.children["windows"]
    assert isinstance(windows, FakeDir)
    windows.children["system32"] = FakeDir("System32")
    windows.children["win.ini"] = FakeFile("win.ini", b"; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n")
    return root


@dataclass
class CmdContext:
    """What one command sees: environment (names case-insensitive), directory, host facts, store."""

    environment: dict[str, str]
    cwd: str
    machine: str
    user: str
    store: CimStore | None = None
    drive: FakeDir = field(default_factory=default_drive)
    codec: str = "cp437"

    def get(self, name: str) -> str | None:
        for k, v in self.environment.items():
            if k.lower() == name.lower():
                return v
        return None

    def set(self, name: str, value: str) -> None:
        for k in list(self.environment):
            if k.lower() == name.lower():
                del self.environment[k]
        if value:
            self.environment[name] = value

    def copy(self) -> CmdContext:
        return CmdContext(dict(self.environment), self.cwd, self.machine, self.user, self.store, self.drive,
                          self.codec)

    def resolve(self, path: str) -> FakeDir | FakeFile | None:
        """Look a path up in the fake drive (absolute ``C:\\...`` or relative to ``cwd``)."""
        p = path.strip().strip('"').replace("/", "\\")
        if not p:
            return None
        if len(p) >= 2 and p[1] == ":":
            if p[0].lower() != "c":
                return None
            full = p
        else:
            full = self.cwd.rstrip("\\") + "\\" + p
        node: FakeDir | FakeFile = self.drive
        for part in [x for x in full[2:].split("\\") if x and x != "."]:
            if not isinstance(node, FakeDir):
                return None
            child = node.children.get(part.lower())
            if child is None:
                return None
            node = child
        return node

    def canonical(self, path: str) -> str:
        p = path.strip().strip('"').replace("/", "\\")
        full = p if len(p) >= 2 and p[1] == ":" else self.cwd.rstrip("\\") + "\\" + p
        parts = [x for x in full[2:].split("\\") if x and x != "."]
        return "C:\\" + "\\".join(parts)


# ---------------------------------------------------------------------------------- parsing
_VAR = re.compile(r"%([^%\r\n]+)%")


def expand(line: str, ctx: CmdContext) -> str:
    """Expand ``%NAME%`` at parse time; an undefined variable stays as written (cmd /c rule)."""
    def sub(m: re.Match[str]) -> str:
        value = ctx.get(m.group(1))
        return m.group(0) if value is None else value
    return _VAR.sub(sub, line)


def split_operators(line: str) -> list[tuple[str, list[str]]]:
    """Split a line into ``(operator, pipeline stages)``: operator is the one *before* the
    pipeline (``""`` for the first, then ``&``, ``&&`` or ``||``). Quotes protect operators."""
    chains: list[tuple[str, list[str]]] = []
    stages: list[str] = []
    current: list[str] = []
    op = ""
    quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            quoted = not quoted
        if not quoted and ch in "&|":
            stages.append("".join(current))
            current = []
            two = line[i:i + 2]
            if two in ("&&", "||"):
                chains.append((op, stages))
                stages, op = [], two
                i += 2
                continue
            if ch == "&":
                chains.append((op, stages))
                stages, op = [], "&"
            i += 1
            continue
        current.append(ch)
        i += 1
    stages.append("".join(current))
    chains.append((op, stages))
    return chains


def split_args(text: str) -> list[str]:
    """Words of a command, quotes removed (cmd argument rules, simplified: no escapes)."""
    out: list[str] = []
    word: list[str] = []
    quoted = False
    has = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            has = True
        elif ch in " \t" and not quoted:
            if has:
                out.append("".join(word))
            word, has = [], False
        else:
            word.append(ch)
            has = True
    if has:
        out.append("".join(word))
    return out


# ---------------------------------------------------------------------------------- builtins
Builtin = Callable[[str, list[str], CmdContext, int], Program]
_BUILTINS: dict[str, Builtin] = {}


def _builtin(*names: str) -> Callable[[Builtin], Builtin]:
    def register(fn: Builtin) -> Builtin:
        for n in names:
            _BUILTINS[n] = fn
        return fn
    return register


def _out(text: str) -> Emit:
    return Emit("stdout", text)


def _err(text: str) -> Emit:
    return Emit("stderr", text)


@_builtin("echo")
def _echo(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    if not raw.strip() and raw[:1] not in (".", ":", "("):
        yield _out("ECHO is on.\r\n")
    else:
        yield _out(raw[1:] + "\r\n")
    return 0


@_builtin("set")
def _set(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    text = raw.strip()
    if "=" in text:
        name, _, value = text.partition("=")
        if not name.strip():
            yield _err("The syntax of the command is incorrect.\r\n")
            return 1
        ctx.set(name.strip(), value)
        return 0
    matches = sorted((k, v) for k, v in ctx.environment.items() if k.lower().startswith(text.lower()))
    if not matches:
        yield _err(f"Environment variable {text} not defined\r\n")
        return 1
    for k, v in matches:
        yield _out(f"{k}={v}\r\n")
    return 0


@_builtin("exit")
def _exit(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    words = [a for a in args if a.lower() != "/b"]
    code = _int(words[0]) if words else 0
    if any(a.lower() == "/b" for a in args):
        return code
    raise _ExitLine(code)
    yield  # pragma: no cover - makes this a generator


def _int(text: str) -> int:
    t = text.strip()
    try:
        return int(t, 0) if t.lower().startswith("0x") else int(t)
    except ValueError:
        return 0


@_builtin("cmd", "cmd.exe")
def _cmd(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    m = re.match(r"\s*/[cCkK]\s+(.*)$", raw, re.S)
    if m is None:
        yield _out("Microsoft Windows [Version " + _version(ctx) + "]\r\n")
        return 0
    if depth >= MAX_NESTING:
        yield _err("The command line is nested too deeply.\r\n")
        return 1
    try:
        return (yield from run_line(m.group(1), ctx.copy(), depth + 1))
    except _ExitLine as exc:
        return exc.code


@_builtin("type")
def _type(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    if not args:
        yield _err("The syntax of the command is incorrect.\r\n")
        return 1
    code = 0
    for name in args:
        node = ctx.resolve(name)
        if isinstance(node, FakeFile):
            yield _out(node.content.decode(ctx.codec, errors="replace"))
        elif isinstance(node, FakeDir):
            yield _err("Access is denied.\r\n")
            code = 1
        else:
            yield _err("The system cannot find the file specified.\r\n")
            code = 1
    return code


@_builtin("hostname")
def _hostname(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    yield _out(ctx.machine + "\r\n")
    return 0


@_builtin("whoami")
def _whoami(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    yield _out(f"{ctx.machine}\\{ctx.user}".lower() + "\r\n")
    return 0


def _os_instance(ctx: CmdContext) -> Any:
    if ctx.store is None:
        return None
    try:
        found = ctx.store.enumerate_instances("root/cimv2", "Win32_OperatingSystem")
    except CimError:
        return None
    return found[0] if found else None


def _version(ctx: CmdContext) -> str:
    os_instance = _os_instance(ctx)
    version = str(os_instance["Version"]) if os_instance is not None and os_instance["Version"] else "10.0.20348"
    return version


@_builtin("ver")
def _ver(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    yield _out(f"\r\nMicrosoft Windows [Version {_version(ctx)}]\r\n")
    return 0


@_builtin("cd", "chdir")
def _cd(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    target = raw.strip().strip('"')
    if target.lower().startswith("/d"):
        target = target[2:].strip().strip('"')
    if not target:
        yield _out(ctx.cwd + "\r\n")
        return 0
    node = ctx.resolve(target)
    if not isinstance(node, FakeDir):
        yield _err("The system cannot find the path specified.\r\n")
        return 1
    ctx.cwd = ctx.canonical(target)
    return 0


@_builtin("dir")
def _dir(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    paths = [a for a in args if not a.startswith("/")]
    path = paths[0] if paths else ctx.cwd
    node = ctx.resolve(path)
    if not isinstance(node, FakeDir):
        yield _out(" Volume in drive C has no label.\r\n Volume Serial Number is 5A1E-0C3D\r\n\r\n")
        yield _err("File Not Found\r\n")
        return 1
    yield _out(" Volume in drive C has no label.\r\n Volume Serial Number is 5A1E-0C3D\r\n\r\n")
    yield _out(f" Directory of {ctx.canonical(path)}\r\n\r\n")
    files = dirs = size = 0
    for child in sorted(node.children.values(), key=lambda c: c.name.lower()):
        if isinstance(child, FakeDir):
            dirs += 1
            yield _out(f"{child.stamp}    <DIR>          {child.name}\r\n")
        else:
            files += 1
            size += len(child.content)
            yield _out(f"{child.stamp}    {len(child.content):>14,} {child.name}\r\n")
    yield _out(f"{files:>16} File(s) {size:>14,} bytes\r\n{dirs:>16} Dir(s)  21,474,836,480 bytes free\r\n")
    return 0


def _read_all() -> Generator[Step, bytes | None, bytes]:
    data = bytearray()
    while True:
        chunk = yield ReadStdin()
        if chunk is None:
            return bytes(data)
        data += chunk
        if len(data) > MAX_STDIN:
            return bytes(data[:MAX_STDIN])


@_builtin("findstr")
def _findstr(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    flags = {a.lower() for a in args if a.startswith("/")}
    words = [a for a in args if not a.startswith("/")]
    if not words:
        yield _err("FINDSTR: Bad command line\r\n")
        return 2
    needles = words[0].split() if "/c:" not in raw.lower() else [words[0]]
    text = (yield from _read_all()).decode(ctx.codec, errors="replace")
    found = False
    for line in text.splitlines():
        hay = line.lower() if "/i" in flags else line
        if any((n.lower() if "/i" in flags else n) in hay for n in needles):
            found = True
            yield _out(line + "\r\n")
    return 0 if found else 1


@_builtin("more")
def _more(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    while True:
        chunk = yield ReadStdin()
        if chunk is None:
            return 0
        yield _out(chunk.decode(ctx.codec, errors="replace").replace("\r\n", "\n").replace("\n", "\r\n"))


@_builtin("ping")
def _ping(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    """``ping -n N host``: one reply a second, like the real command (a long runner to Signal)."""
    count = 4
    hosts = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.lower() in ("-n", "/n") and i + 1 < len(args):
            count = max(1, min(_int(args[i + 1]), 100_000))
            i += 2
            continue
        if a.lower() in ("-t", "/t"):
            count = 100_000
        elif not a.startswith(("-", "/")):
            hosts.append(a)
        i += 1
    if not hosts:
        yield _err("IP address must be specified.\r\n")
        return 1
    host = hosts[0]
    if host.lower() not in ("127.0.0.1", "localhost", "::1", ctx.machine.lower()):
        yield _out(f"Ping request could not find host {host}. Please check the name and try again.\r\n")
        return 1
    address = "::1" if host == "::1" else "127.0.0.1"
    yield _out(f"\r\nPinging {host} [{address}] with 32 bytes of data:\r\n")
    for n in range(count):
        if n:
            yield Sleep(1.0)
        yield _out(f"Reply from {address}: bytes=32 time<1ms TTL=128\r\n")
    yield _out(f"\r\nPing statistics for {address}:\r\n    Packets: Sent = {count}, Received = {count}, "
               f"Lost = 0 (0% loss),\r\nApproximate round trip times in milli-seconds:\r\n"
               f"    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n")
    return 0


_WMIC_ALIASES: Final = {"os": "Win32_OperatingSystem", "computersystem": "Win32_ComputerSystem",
                        "service": "Win32_Service", "process": "Win32_Process", "bios": "Win32_BIOS",
                        "environment": "Win32_Environment"}


@_builtin("wmic")
def _wmic(raw: str, args: list[str], ctx: CmdContext, depth: int) -> Program:
    """``wmic <alias> get <props>`` over the shared CIM store (MS-WMOD 2.4: one store for every
    protocol). Observed Windows behaviour: wmic ends its lines with CR CR LF and pads columns."""
    if len(args) < 3 or args[1].lower() != "get" or args[0].lower() not in _WMIC_ALIASES or ctx.store is None:
        yield _err(f"{args[0] if args else ''} - Alias not found.\r\n" if args else "Invalid GET Expression.\r\n")
        return 44135
    classname = _WMIC_ALIASES[args[0].lower()]
    props = [p for p in ",".join(args[2:]).split(",") if p.strip()]
    try:
        instances = ctx.store.enumerate_instances("root/cimv2", classname)
        cls = ctx.store.get_class("root/cimv2", classname)
    except CimError:
        yield _err("No Instance(s) Available.\r\n")
        return 0
    names = []
    for p in props:
        real = next((n for n in cls.properties if n.lower() == p.strip().lower()), None)
        if real is None:
            yield _err("Node - " + ctx.machine + "\r\nERROR:\r\nDescription = Invalid query\r\n")
            return 44135
        names.append(real)
    names.sort(key=str.lower)
    rows = [[_wmic_value(i.get(n)) for n in names] for i in instances]
    widths = [max([len(n)] + [len(r[c]) for r in rows]) + 2 for c, n in enumerate(names)]
    yield _out("".join(n.ljust(w) for n, w in zip(names, widths, strict=True)) + "\r\r\n")
    for r in rows:
        yield _out("".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + "\r\r\n")
    yield _out("\r\r\n")
    return 0


def _wmic_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list):
        return "{" + ", ".join(f'"{v}"' for v in value) + "}"
    return str(value)


def _not_recognized(name: str) -> Program:
    yield _err(f"'{name}' is not recognized as an internal or external command,\r\n"
               "operable program or batch file.\r\n")
    return EXIT_NOT_RECOGNIZED


# ---------------------------------------------------------------------------------- composition
def run_stage(stage: str, ctx: CmdContext, depth: int) -> Program:
    text = stage.lstrip()  # trailing blanks belong to the command (echo keeps them, as cmd does)
    if not text.strip():
        return 0
    m = re.match(r'("[^"]*"|[^\s/(]+)', text)
    token = m.group(1) if m else text
    name, raw = token.strip('"'), text[len(token):]
    fn = _BUILTINS.get(name.lower()) or _BUILTINS.get(name.lower().removesuffix(".exe"))
    if fn is None and "." in name:
        # "echo.", "echo.text": cmd ends the command name at the dot for internal commands.
        head, _, _rest = name.partition(".")
        if head.lower() in _BUILTINS:
            fn, name, raw = _BUILTINS[head.lower()], head, text[len(head):]
    if fn is None:
        return (yield from _not_recognized(name))
    return (yield from fn(raw, split_args(raw), ctx, depth))


def _capture(program: Program, sink: bytearray, codec: str) -> Program:
    """Run ``program`` with its stdout captured into ``sink`` (the left side of a pipe)."""
    try:
        step = next(program)
        while True:
            if isinstance(step, Emit) and step.stream == "stdout":
                sink += step.text.encode(codec, errors="replace")
                step = program.send(None)
            else:
                value = yield step
                step = program.send(value)
    except StopIteration as stop:
        return int(stop.value or 0)


def _feed(program: Program, data: bytes) -> Program:
    """Run ``program`` with stdin from ``data`` then end of input (the right side of a pipe)."""
    pending: bytes | None = data
    try:
        step = next(program)
        while True:
            if isinstance(step, ReadStdin):
                given, pending = pending, None
                step = program.send(given if given else None)
            else:
                value = yield step
                step = program.send(value)
    except StopIteration as stop:
        return int(stop.value or 0)


def run_line(line: str, ctx: CmdContext, depth: int = 0) -> Program:
    """Run a whole command line: expansion, then ``&``/``&&``/``||`` chains of pipelines."""
    code = 0
    for op, stages in split_operators(expand(line, ctx)):
        if (op == "&&" and code != 0) or (op == "||" and code == 0):
            continue
        if len(stages) == 1:
            code = yield from run_stage(stages[0], ctx, depth)
            continue
        data = b""
        for n, stage in enumerate(stages):
            sink = bytearray()
            program = run_stage(stage, ctx, depth)
            if n:
                program = _feed(program, data)
            if n < len(stages) - 1:
                code = yield from _capture(program, sink, ctx.codec)
                data = bytes(sink)
            else:
                code = yield from program
    return code


# ---------------------------------------------------------------------------------- process
class SimulatedProcess:
    """One running command line, driven by :meth:`poll` with the service clock.

    Output is kept per stream as encoded bytes; when a stream holds ``buffer_limit`` bytes the
    program pauses (BufferMode Block) or the oldest bytes are dropped (``drop=True``, BufferMode
    Drop while disconnected, MS-WSMV 3.1.4.15).
    """

    def __init__(self, command_line: str, ctx: CmdContext, codepage: int, now: float, *,
                 buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        self.command_line = command_line
        self.codec = codec_for(codepage)
        self.buffer_limit = buffer_limit
        self.drop = False
        self.output: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.exit_code: int | None = None
        self.stdin = bytearray()
        self.stdin_closed = False
        ctx.codec = self.codec
        self._program: Program = run_line(command_line, ctx)
        self._wake_at: float | None = None
        self._waiting_stdin = False
        self._pending: bytes | None = None
        self._started = False
        self.poll(now)

    @property
    def done(self) -> bool:
        return self.exit_code is not None

    def next_wake(self) -> float | None:
        """When the program next produces something without input (None: never / waiting)."""
        return None if self.done else self._wake_at

    def write_stdin(self, data: bytes, end: bool, now: float) -> None:
        """Input from Send (MS-WSMV 3.1.4.13); ``end`` closes stdin."""
        if not self.done:
            room = MAX_STDIN - len(self.stdin)
            self.stdin += data[:max(room, 0)]
            self.stdin_closed = self.stdin_closed or end
        self.poll(now)

    def signal(self, name: str) -> None:
        """terminate / ctrl_c / ctrl_break (MS-WSMV 2.2.4.38): stop the program now."""
        if self.done:
            return
        self._program.close()
        if name == "terminate":
            for buf in self.output.values():
                buf.clear()
            self.exit_code = EXIT_TERMINATED
        else:
            self._emit(Emit("stdout", "^C"))
            self.exit_code = EXIT_CONTROL_C

    def _emit(self, step: Emit) -> None:
        buf = self.output.setdefault(step.stream, bytearray())
        buf += step.text.encode(self.codec, errors="replace")
        if self.drop and len(buf) > self.buffer_limit:
            del buf[: len(buf) - self.buffer_limit]

    def _full(self) -> bool:
        return not self.drop and any(len(b) >= self.buffer_limit for b in self.output.values())

    def poll(self, now: float) -> None:
        """Advance the program as far as simulated time, input and buffer room allow."""
        at = now  # simulated time of the next step: a woken program continues from its wake time
        for _ in range(MAX_STEPS_PER_POLL):
            if self.done or self._full():
                return
            if self._wake_at is not None:
                if now < self._wake_at:
                    return
                at, self._wake_at = self._wake_at, None
            send: bytes | None = None
            if self._waiting_stdin:
                if self.stdin:
                    send, self.stdin = bytes(self.stdin), bytearray()
                elif not self.stdin_closed:
                    return
                self._waiting_stdin = False
            try:
                step = self._program.send(send) if self._started else next(self._program)
                self._started = True
            except StopIteration as stop:
                self.exit_code = int(stop.value or 0)
                return
            except _ExitLine as exc:
                self.exit_code = exc.code
                return
            if isinstance(step, Emit):
                self._emit(step)
            elif isinstance(step, Sleep):
                self._wake_at = at + max(step.seconds, 0.0)
            else:
                self._waiting_stdin = True

    def take(self, streams: list[str], budget: int) -> Iterator[tuple[str, bytes]]:
        """Remove up to ``budget`` bytes of buffered output of the wanted streams, in order."""
        for name in streams:
            buf = self.output.get(name)
            if not buf or budget <= 0:
                continue
            chunk = bytes(buf[:budget])
            del buf[:len(chunk)]
            budget -= len(chunk)
            yield name, chunk

    def buffered(self, streams: list[str]) -> int:
        return sum(len(self.output.get(n, b"")) for n in streams)


__all__ = ["EXIT_CONTROL_C", "EXIT_NOT_RECOGNIZED", "EXIT_TERMINATED", "CmdContext", "CodePageError", "Emit",
           "FakeDir", "FakeFile", "ReadStdin", "SimulatedProcess", "Sleep", "codec_for", "default_drive", "expand",
           "run_line", "split_args", "split_operators"]

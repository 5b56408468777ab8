"""Parser and formatter of WMI object paths.

Grammar (MS-WMI 2.2.1.1 object paths, DSP0004 8.2 model paths)::

    path       = [ "\\\\" host "\\" namespace ":" | "//" host "/" namespace ":" | namespace ":" ] objectref
    objectref  = classname [ "." keybinding *( "," keybinding ) | "=" keyvalue | "=@" ]
    keybinding = propname "=" keyvalue
    keyvalue   = '"' chars '"' | "'" chars "'" | integer | "TRUE" | "FALSE"

Inside quoted values a backslash escapes the next character (``\\"`` and ``\\\\``), so a reference key
can hold a nested, escaped object path. ``Class="x"`` (an unnamed single key) and ``Class=@`` (a
singleton) are WMI forms (MS-WMI 2.2.1.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pywbem

from harness.cim.errors import CimError, CimStatus

MAX_PATH_LENGTH = 8192
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9A-Fa-f]+|[0-9]+)(?![A-Za-z0-9_.])")
_WORD = re.compile(r"(?i:true|false)(?![A-Za-z0-9_])")

KeyValue = str | int | bool


@dataclass(frozen=True)
class ObjectPath:
    """A parsed object path; ``keys`` is empty for a class path, ``(None, v)`` for ``Class="v"``."""

    classname: str
    keys: tuple[tuple[str | None, KeyValue], ...] = ()
    host: str | None = None
    namespace: str | None = None
    singleton: bool = False
    is_instance: bool = field(default=False)

    def instance_name(self) -> pywbem.CIMInstanceName:
        """The path as an untyped pywbem instance name; an unnamed key needs :meth:`CimStore.resolve_path`."""
        if any(name is None for name, _ in self.keys):
            raise CimError(
                CimStatus.INVALID_PARAMETER,
                f"object path of {self.classname} has an unnamed key; resolve it against the class",
            )
        return pywbem.CIMInstanceName(
            self.classname,
            keybindings={str(name): value for name, value in self.keys},
            namespace=self.namespace,
            host=self.host,
        )


def _fail(text: str, pos: int, why: str) -> CimError:
    return CimError(CimStatus.INVALID_PARAMETER, f"invalid object path at column {pos + 1}: {why}: {text!r}")


def _split_prefix(text: str) -> tuple[str | None, str | None, str]:
    """Split off ``\\\\host\\namespace:`` (outside of quotes) and return (host, namespace, rest)."""
    quote: str | None = None
    escaped = False
    colon = -1
    start = 0
    if text.startswith(("\\\\", "//")):
        # The server name may be ``.`` (the local server, MS-WMI 2.2.1.1) or a dotted DNS name:
        # the scan for ``:`` starts after it, so its dots are not mistaken for the key separator.
        seps = [i for i in (text.find("\\", 2), text.find("/", 2)) if i >= 0]
        start = min(seps) if seps else len(text)
    for i, ch in enumerate(text):
        if i < start:
            continue
        if escaped:
            escaped = False
        elif ch == "\\" and quote is not None:
            escaped = True
        elif quote is not None:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == ":":
            colon = i
            break
        elif ch in ".=":
            break
    if colon < 0:
        return None, None, text
    prefix, rest = text[:colon], text[colon + 1 :]
    host: str | None = None
    if prefix.startswith(("\\\\", "//")):
        body = prefix[2:].replace("\\", "/")
        host, _, namespace = body.partition("/")
        if not host:
            raise _fail(text, 2, "empty host")
    else:
        namespace = prefix.replace("\\", "/").lstrip("/")
    if not namespace:
        raise _fail(text, colon, "empty namespace")
    return host, namespace, rest


def _parse_value(text: str, pos: int, full: str) -> tuple[KeyValue, int]:
    if pos >= len(text):
        raise _fail(full, pos, "missing key value")
    ch = text[pos]
    if ch in "\"'":
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if c == ch:
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise _fail(full, pos, "unterminated string")
    m = _NUMBER.match(text, pos)
    if m:
        return int(m.group(0), 0) if "x" in m.group(0).lower() else int(m.group(0), 10), m.end()
    m = _WORD.match(text, pos)
    if m:
        return m.group(0).lower() == "true", m.end()
    raise _fail(full, pos, "expected a quoted string, a number, TRUE or FALSE")


def parse_object_path(text: str) -> ObjectPath:
    """Parse a WMI object path (MS-WMI 2.2.1.1); ``CimError(INVALID_PARAMETER)`` on malformed text."""
    if len(text) > MAX_PATH_LENGTH:
        raise CimError(CimStatus.INVALID_PARAMETER, "object path too long")
    stripped = text.strip()
    host, namespace, rest = _split_prefix(stripped)
    m = _IDENT.match(rest)
    if not m:
        raise _fail(text, 0, "expected a class name")
    classname = m.group(0)
    pos = m.end()
    if pos == len(rest):
        return ObjectPath(classname, (), host, namespace, False, False)
    if rest[pos] == "=":
        if rest[pos + 1 :].strip() == "@":
            return ObjectPath(classname, (), host, namespace, True, True)
        value, end = _parse_value(rest, pos + 1, text)
        if rest[end:].strip():
            raise _fail(text, end, "unexpected text after key value")
        return ObjectPath(classname, ((None, value),), host, namespace, False, True)
    if rest[pos] != ".":
        raise _fail(text, pos, "expected '.', '=' or end of path")
    keys: list[tuple[str | None, KeyValue]] = []
    pos += 1
    seen: set[str] = set()
    while True:
        km = _IDENT.match(rest, pos)
        if not km:
            raise _fail(text, pos, "expected a key property name")
        if km.group(0).lower() in seen:
            raise _fail(text, pos, f"duplicate key {km.group(0)}")
        seen.add(km.group(0).lower())
        pos = km.end()
        if pos >= len(rest) or rest[pos] != "=":
            raise _fail(text, pos, "expected '='")
        value, pos = _parse_value(rest, pos + 1, text)
        keys.append((km.group(0), value))
        if pos == len(rest):
            break
        if rest[pos] != ",":
            raise _fail(text, pos, "expected ',' or end of path")
        pos += 1
    return ObjectPath(classname, tuple(keys), host, namespace, False, True)


def _format_value(value: object) -> str:
    if isinstance(value, pywbem.CIMInstanceName):
        value = format_object_path(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def format_object_path(path: pywbem.CIMInstanceName, *, with_namespace: bool = True) -> str:
    """Format an instance name as a WMI path (``\\\\HOST\\root\\cimv2:Class.Key="v"``, MS-WMI 2.2.1.1)."""
    keys = sorted(path.keybindings.items(), key=lambda kv: str(kv[0]).lower())
    body: str = str(path.classname) + ("=@" if not keys else "." + ",".join(f"{k}={_format_value(v)}" for k, v in keys))
    if not with_namespace or not path.namespace:
        return body
    namespace = str(path.namespace).replace("/", "\\")
    if path.host:
        return f"\\\\{path.host}\\{namespace}:{body}"
    return f"{namespace}:{body}"

"""Small lxml helpers shared by the WS-Man message codecs (messages, shell, eventing, header).

Internal to :mod:`harness.wire.wsman`; every decode failure is a :class:`WSManDecodeError`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from lxml import etree

from .errors import WSManDecodeError

if TYPE_CHECKING:
    from .envelope import Envelope
    from .header import Header

_Element = etree._Element

#: Largest xs:unsignedInt (XML Schema part 2 3.3.22).
MAX_UINT: Final = 2**32 - 1


def sub(parent: _Element, tag: str, text: str | None = None) -> _Element:
    """Append a ``tag`` child to ``parent``, with ``text`` when given."""
    e = etree.SubElement(parent, tag)
    if text is not None:
        e.text = text
    return e


def text(el: _Element) -> str:
    """The element's text, stripped ("" when it has none)."""
    return (el.text or "").strip()


def children(el: _Element) -> list[_Element]:
    """The element children (comments and processing instructions left out)."""
    return [c for c in el if isinstance(c.tag, str)]


def uint(el: _Element | str, what: str) -> int:
    """An xs:unsignedInt (XML Schema part 2 3.3.22) from an element's text or a string."""
    t = text(el) if not isinstance(el, str) else el.strip()
    if not t.isdigit() or len(t) > 10 or int(t) > MAX_UINT:
        raise WSManDecodeError(f"{what} must be an xs:unsignedInt, got {t[:20]!r}")
    return int(t)


def expect_action(env: Envelope, action: str) -> None:
    """w:ActionNotSupported unless the request's wsa:Action is ``action`` (DSP0226 5.4.1)."""
    if env.header.action != action:
        raise WSManDecodeError(f"expected action {action}, got {env.header.action or '(none)'}",
                               fault="ActionNotSupported")


def payload(env: Envelope, tag: str | None) -> _Element:
    """The body's first element, which must be ``tag`` when given (w:InvalidBody otherwise)."""
    p = env.payload
    if p is None:
        raise WSManDecodeError(f"empty body, expected {tag}", fault="InvalidBody")
    if tag is not None and p.tag != tag:
        raise WSManDecodeError(f"body holds {p.tag!r}, expected {tag!r}", fault="InvalidBody")
    return p


def with_action(header: Header, action: str) -> Header:
    """``header`` with wsa:Action set to ``action`` (a copy when it differs; the caller's is not changed)."""
    return header if header.action == action else replace(header, action=action)

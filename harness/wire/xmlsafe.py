"""Hardened XML reading shared by the XML codecs (WS-Man envelopes, PSRP CLIXML).

The reader refuses DTDs and entity declarations (XML bombs, XXE), never resolves entities, never
touches the network and keeps lxml's tree limits (``huge_tree=False``). Each codec keeps its own
typed error: it passes an error factory that turns a reason into that error, so every failure
raises only the codec's error (DSP0226 5 for the SOAP envelope, MS-PSRP 2.2.5 for CLIXML).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lxml import etree

#: Turns a human readable reason into the calling codec's typed error.
ErrorFactory = Callable[[str], Exception]


class HardenedParser:
    """A per-thread lxml parser with DTDs, entities and network access switched off.

    ``keep_comments`` keeps comments and processing instructions in the tree (WS-Man keeps them
    so that a signed or echoed body stays as sent); ``collect_ids=False`` skips the xml:id table.
    """

    def __init__(self, *, keep_comments: bool, collect_ids: bool = True) -> None:
        self._keep_comments = keep_comments
        self._collect_ids = collect_ids
        self._local = threading.local()

    def get(self) -> etree.XMLParser:
        """The parser of the calling thread (lxml parsers are not thread safe)."""
        parser: etree.XMLParser | None = getattr(self._local, "parser", None)
        if parser is None:
            parser = etree.XMLParser(
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
                dtd_validation=False,
                huge_tree=False,
                remove_comments=not self._keep_comments,
                remove_pis=not self._keep_comments,
                strip_cdata=True,
                collect_ids=self._collect_ids,
            )
            self._local.parser = parser
        return parser


def parse_hardened(raw: bytes, parser: HardenedParser, error: ErrorFactory) -> etree._Element:
    """Parse one XML document into its root element, refusing any DTD.

    The size and emptiness checks stay with the caller (their limits and reasons differ per
    protocol). Every failure raises ``error(reason)``.
    """
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise error("DTD not allowed")
    try:
        root = etree.fromstring(raw, parser.get())
    except etree.XMLSyntaxError as exc:
        raise error(f"not well-formed XML: {exc}") from None
    except Exception as exc:  # lxml may raise ValueError/TypeError/LookupError on odd input
        raise error(f"cannot parse XML: {type(exc).__name__}: {exc}") from None
    if root is None:
        raise error("no root element")
    docinfo = root.getroottree().docinfo
    # A DOCTYPE in another encoding (UTF-16...) escapes the byte scan above: refuse it here.
    if getattr(docinfo, "doctype", "") or getattr(docinfo, "internalDTD", None) is not None:
        raise error("DTD not allowed")
    return root


def xs_boolean(text: str, *, ignore_case: bool = False) -> bool | None:
    """The value of an xs:boolean lexical form (XML Schema 1.1 Part 2 3.3.2: ``true``, ``false``,
    ``1``, ``0``; whitespace collapsed), or None when ``text`` is none of them. ``ignore_case``
    also takes ``TRUE`` / ``False``, as Windows does for WinRS options (observed Windows
    behaviour: pywinrm sends ``WINRS_NOPROFILE`` as ``FALSE``)."""
    value = text.strip()
    if ignore_case:
        value = value.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    return None

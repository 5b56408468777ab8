"""XSD validation of WS-Management envelopes against the project's own schemas
(fixtures/schemas/*.xsd, written from SOAP 1.2, WS-Addressing 2004/08, DSP0226, DSP0227, DSP0230,
MS-WSMV)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

from harness.cim.mof import fixtures_dir
from harness.wire.wsman.envelope import parse_xml
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.ns import NS_ADDRESSING, NS_XSI

_XSI_TYPE = "{" + NS_XSI + "}type"
_XSI_NIL = "{" + NS_XSI + "}nil"
_ENTRY = "wsman-all.xsd"
#: Schemas of the Windows Server 2003 R2 dialect (MS-WSMAN, WS-Management 2005/06), loaded beside
#: the entry point so that messages of both dialects validate (harness.wire.wsman.dialect).
_EXTRA = ("wsman2005/wsman.xsd",)
_MAX_ERRORS = 50


class SchemaViolation(Exception):
    """A message that does not validate. ``message_kind`` names the message (direction and action)."""

    def __init__(self, message_kind: str, errors: list[str], xml: bytes) -> None:
        super().__init__(f"{message_kind}: {len(errors)} schema error(s): " + "; ".join(errors[:3]))
        self.message_kind = message_kind
        self.errors = errors
        self.xml = xml


def schemas_dir() -> Path:
    """``<repo>/fixtures/schemas`` (:func:`harness.cim.mof.fixtures_dir`; env WMH_FIXTURES overrides
    the fixtures directory)."""
    return fixtures_dir() / "schemas"


def _action_of(root: Any) -> str:
    for el in root.iter("{" + NS_ADDRESSING + "}Action"):
        return (el.text or "").strip()
    return ""


def _all_dialects_entry(d: Path) -> Any:
    """An in-memory schema document that imports the entry point and the schemas of the other
    dialect (:data:`_EXTRA`), so that one libxml2 schema validates both dialects."""
    if not any((d / name).is_file() for name in _EXTRA):
        return etree.parse(str(d / _ENTRY))
    imports = [f'<xs:import namespace="urn:wm-harness:schemas:all" schemaLocation="{_ENTRY}"/>']
    for name in _EXTRA:
        if (d / name).is_file():
            target = etree.parse(str(d / name)).getroot().get("targetNamespace", "")
            imports.append(f'<xs:import namespace="{target}" schemaLocation="{name}"/>')
    text = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:wm-harness:schemas:dialects">'
            + "".join(imports) + "</xs:schema>")
    return etree.fromstring(text, base_url=(d.resolve() / "wsman-dialects.xsd").as_uri())


class WSManValidator:
    """Validates whole envelopes (SOAP 1.2 envelope, WS-Man headers and the known body payloads).

    Open content (class instances, DSP0230) is validated laxly: element declarations are used where
    they exist. ``xsi:type`` values that name types outside our schemas (e.g. ``p:Win32_Service_Type``,
    whose schema is the class itself) are ignored, as a lax processor without that schema would.
    """

    def __init__(self, directory: Path | None = None) -> None:
        d = directory or schemas_dir()
        extra = [str((d / name).resolve()) for name in _EXTRA if (d / name).is_file()]
        self.schema = xmlschema.XMLSchema10([str((d / _ENTRY).resolve()), *extra] if extra else str(d / _ENTRY))
        self._known_types = frozenset(str(k) for k in self.schema.maps.types)
        self._namespaces = frozenset(str(ns) for ns in self.schema.maps.namespaces if ns)
        self._lock = threading.Lock()
        # libxml2 validates the same schemas about two orders of magnitude faster than the pure-Python
        # processor, which stays the reference for the type map (and the fallback).
        self._fast: etree.XMLSchema | None
        try:
            self._fast = etree.XMLSchema(_all_dialects_entry(d))
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError):
            self._fast = None

    def _prepare(self, root: Any) -> None:
        namespaces = self._namespaces
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            # xsi:nil on an element without declaration (a CIM property, DSP0230 9.1): the element is
            # open content; its nil-ness is checked by the codec, not the XSD.
            if (_XSI_NIL in el.attrib and el.tag.partition("}")[0][1:] not in namespaces
                    and el.attrib.pop(_XSI_NIL).strip() in ("true", "1")):
                el.attrib.pop(_XSI_TYPE, None)  # a nil value has no content to check against its type
            t = el.get(_XSI_TYPE)
            if t is None:
                continue
            prefix, _, local = t.rpartition(":")
            uri = el.nsmap.get(prefix or None)
            if uri is None or "{" + uri + "}" + local not in self._known_types:
                del el.attrib[_XSI_TYPE]

    def validate(self, data: bytes) -> list[str]:
        """Schema errors of ``data`` ([] when valid). Malformed XML gives one error string."""
        try:
            root = parse_xml(data)
        except WSManDecodeError as exc:
            return [f"not well-formed: {exc.reason}"]
        self._prepare(root)
        errors: list[str] = []
        if self._fast is not None:
            if self._fast.validate(root):
                return []
            log: Any = self._fast.error_log  # lxml's stubs do not type the log as iterable
            entries: list[Any] = list(log)
            for entry in entries:
                errors.append(f"{entry.path or '/'} line {entry.line}: {entry.message}")
                if len(errors) >= _MAX_ERRORS:
                    break
            return errors
        with self._lock:
            try:
                for err in self.schema.iter_errors(etree.ElementTree(root)):
                    errors.append(f"{err.path or '/'}: {err.reason or err.message}")
                    if len(errors) >= _MAX_ERRORS:
                        break
            except (xmlschema.XMLSchemaException, KeyError, ValueError) as exc:
                errors.append(f"validation aborted: {exc}")
        return errors

    def assert_valid(self, data: bytes, direction: str) -> None:
        """Raise :class:`SchemaViolation` when ``data`` does not validate."""
        errors = self.validate(data)
        if errors:
            kind = direction
            try:
                action = _action_of(parse_xml(data))
                if action:
                    kind = f"{direction} {action}"
            except WSManDecodeError:
                pass
            raise SchemaViolation(kind, errors, data)


_default: WSManValidator | None = None
_default_lock = threading.Lock()


def default_validator() -> WSManValidator:
    """The process-wide validator (schemas are loaded once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = WSManValidator()
        return _default

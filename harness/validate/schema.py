"""XSD validation of WS-Management envelopes against the project's own schemas
(fixtures/schemas/*.xsd, written from SOAP 1.2, WS-Addressing 2004/08, DSP0226, DSP0227, DSP0230,
MS-WSMV).

libxml2 (``lxml.etree.XMLSchema``) validates. What the lax handling of open content needs (the
target namespaces and the global type names of the schema set, for ``xsi:type`` and ``xsi:nil``)
is read from the XSD files themselves with lxml (:func:`schema_index`), so the pure-Python
processor (xmlschema) is imported only when libxml2 cannot compile the set, or when a caller asks
for :attr:`WSManValidator.schema`.

Two entry points: :meth:`WSManValidator.validate` takes bytes (it parses them with the hardened
parser), :meth:`WSManValidator.validate_tree` takes a tree the caller already parsed (e.g. the one
behind a :class:`~harness.wire.wsman.envelope.Envelope`) and never changes it.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from harness.wire.wsman.envelope import parse_xml
from harness.wire.wsman.errors import WSManDecodeError
from harness.wire.wsman.ns import NS_ADDRESSING, NS_XSI

if TYPE_CHECKING:
    import xmlschema

_Element = etree._Element

NS_XS = "http://www.w3.org/2001/XMLSchema"
_XS = "{" + NS_XS + "}"
_XSI_TYPE = "{" + NS_XSI + "}type"
_XSI_NIL = "{" + NS_XSI + "}nil"
_ENTRY = "wsman-all.xsd"
#: Schemas of the Windows Server 2003 R2 dialect (MS-WSMAN, WS-Management 2005/06), loaded beside
#: the entry point so that messages of both dialects validate (harness.wire.wsman.dialect).
_EXTRA = ("wsman2005/wsman.xsd",)
_MAX_ERRORS = 50

#: The built-in datatypes of XML Schema 1.0 (part 2, 3.2 and 3.3) and xs:anyType: the ``xsi:type``
#: values in the XSD namespace that a processor resolves without any schema document.
BUILTIN_TYPES = frozenset(_XS + name for name in (
    "anyType", "anySimpleType",
    "string", "boolean", "decimal", "float", "double", "duration", "dateTime", "time", "date",
    "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth", "hexBinary", "base64Binary", "anyURI",
    "QName", "NOTATION",
    "normalizedString", "token", "language", "NMTOKEN", "NMTOKENS", "Name", "NCName", "ID", "IDREF",
    "IDREFS", "ENTITY", "ENTITIES", "integer", "nonPositiveInteger", "negativeInteger", "long", "int",
    "short", "byte", "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort",
    "unsignedByte", "positiveInteger",
))

#: The xsi:type and xsi:nil attributes from the context node down, in document order (a union of
#: attribute steps: about three times faster in libxml2 than an element predicate).
_XSI_ATTRIBUTES = etree.XPath("descendant-or-self::*/@xsi:type | descendant-or-self::*/@xsi:nil",
                              namespaces={"xsi": NS_XSI})


def _xsi_carriers(root: _Element) -> list[_Element]:
    """The elements under ``root`` (inclusive) with an xsi:type or xsi:nil attribute, in document
    order, each once."""
    found: Any = _XSI_ATTRIBUTES(root)
    if not found:
        return []
    return list(dict.fromkeys(attr.getparent() for attr in found))

#: Reader of our own schema files: no DTD, no entities, no network.
_XSD_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


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
    from harness.cim.mof import fixtures_dir

    return fixtures_dir() / "schemas"


def _action_of(root: _Element) -> str:
    for el in root.iter("{" + NS_ADDRESSING + "}Action"):
        return (el.text or "").strip()
    return ""


def _entry_files(d: Path) -> list[Path]:
    """The entry point and the other dialect's schemas that exist in ``d``."""
    return [d / _ENTRY, *(d / name for name in _EXTRA if (d / name).is_file())]


@dataclass(frozen=True)
class SchemaIndex:
    """What the schema set declares, read from the XSD files (XML Schema 1.0 part 1, 4.2):
    ``namespaces`` (target namespaces, plus the XSD and xsi namespaces every processor knows),
    ``types`` (global simple and complex types, Clark notation, plus :data:`BUILTIN_TYPES`) and
    ``files`` (every schema document reached through xs:include / xs:import / xs:redefine)."""

    namespaces: frozenset[str]
    types: frozenset[str]
    files: tuple[Path, ...]


def schema_index(directory: Path | None = None) -> SchemaIndex:
    """Walk the schema set from the entry point (and the other dialect's schemas) with lxml.

    An included document without a targetNamespace takes the includer's (chameleon include,
    XML Schema 1.0 part 1, 4.2.1); a schemaLocation that does not exist is skipped, as schema
    processors do for imports of a namespace they already know."""
    d = directory or schemas_dir()
    namespaces: set[str] = {NS_XS, NS_XSI}
    types: set[str] = set(BUILTIN_TYPES)
    seen: dict[tuple[Path, str | None], None] = {}
    pending: list[tuple[Path, str | None]] = [(p.resolve(), None) for p in _entry_files(d)]
    while pending:
        path, chameleon = pending.pop()
        if (path, chameleon) in seen or not path.is_file():
            continue
        seen[(path, chameleon)] = None
        root = etree.parse(str(path), _XSD_PARSER).getroot()
        tns = root.get("targetNamespace") or chameleon or ""
        if tns:
            namespaces.add(tns)
        for child in root:
            tag = child.tag
            if tag in (_XS + "complexType", _XS + "simpleType"):
                name = child.get("name")
                if name:
                    types.add("{" + tns + "}" + name if tns else name)
            elif tag in (_XS + "include", _XS + "redefine", _XS + "import"):
                location = child.get("schemaLocation")
                if location and "://" not in location:
                    target = (path.parent / location).resolve()
                    pending.append((target, tns or None) if tag != _XS + "import" else (target, None))
    return SchemaIndex(frozenset(namespaces), frozenset(types), tuple(sorted({p for p, _ in seen})))


def _all_dialects_entry(d: Path) -> Any:
    """An in-memory schema document that imports the entry point and the schemas of the other
    dialect (:data:`_EXTRA`), so that one libxml2 schema validates both dialects."""
    if not any((d / name).is_file() for name in _EXTRA):
        return etree.parse(str(d / _ENTRY), _XSD_PARSER)
    imports = [f'<xs:import namespace="urn:wm-harness:schemas:all" schemaLocation="{_ENTRY}"/>']
    for name in _EXTRA:
        if (d / name).is_file():
            target = etree.parse(str(d / name), _XSD_PARSER).getroot().get("targetNamespace", "")
            imports.append(f'<xs:import namespace="{target}" schemaLocation="{name}"/>')
    text = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:wm-harness:schemas:dialects">'
            + "".join(imports) + "</xs:schema>")
    return etree.fromstring(text, base_url=(d.resolve() / "wsman-dialects.xsd").as_uri())


class WSManValidator:
    """Validates whole envelopes (SOAP 1.2 envelope, WS-Man headers and the known body payloads).

    Open content (class instances, DSP0230) is validated laxly: element declarations are used where
    they exist. ``xsi:type`` values that name types outside our schemas (e.g. ``p:Win32_Service_Type``,
    whose schema is the class itself) are ignored, as a lax processor without that schema would;
    so is ``xsi:nil`` on an element of a namespace the schemas do not declare (a CIM property,
    DSP0230 9.1: the codec checks its nil-ness), together with its ``xsi:type`` when it is nil.

    Thread-safe; one instance per process is enough (:func:`default_validator`).
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory or schemas_dir()
        index = schema_index(self._directory)
        self._known_types = index.types
        self._namespaces = index.namespaces
        self._lock = threading.Lock()
        self._schema: xmlschema.XMLSchema10 | None = None
        self._fast: etree.XMLSchema | None
        try:
            self._fast = etree.XMLSchema(_all_dialects_entry(self._directory))
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError):
            self._fast = None
            self._load_fallback()  # now, so that a schema set xmlschema cannot load fails here

    @property
    def libxml2(self) -> bool:
        """True when libxml2 validates (the fast path); False when xmlschema does (the fallback)."""
        return self._fast is not None

    @property
    def known_types(self) -> frozenset[str]:
        """Type names (Clark notation) an ``xsi:type`` may name and keep (see :func:`schema_index`)."""
        return self._known_types

    @property
    def namespaces(self) -> frozenset[str]:
        """Namespaces the schema set declares (see :func:`schema_index`)."""
        return self._namespaces

    @property
    def schema(self) -> xmlschema.XMLSchema10:
        """The pure-Python processor (xmlschema) over the same files, built on first use: the
        fallback when libxml2 cannot compile the set, and a second opinion for tests."""
        return self._load_fallback()

    def _load_fallback(self) -> xmlschema.XMLSchema10:
        with self._lock:
            if self._schema is None:
                import xmlschema

                d = self._directory
                extra = [str(p.resolve()) for p in _entry_files(d)[1:]]
                self._schema = xmlschema.XMLSchema10([str((d / _ENTRY).resolve()), *extra] if extra
                                                     else str(d / _ENTRY))
            return self._schema

    # ------------------------------------------------------------------ lax open content
    def _ignored(self, el: _Element) -> tuple[str, ...]:
        """The xsi attributes of ``el`` a lax processor without the instance's schema ignores."""
        attrib = el.attrib
        tag = el.tag
        assert isinstance(tag, str)  # _xsi_carriers gives elements only
        nil = attrib.get(_XSI_NIL)
        if nil is not None and (tag[1:].partition("}")[0] if tag[:1] == "{" else "") not in self._namespaces:
            if nil.strip() in ("true", "1"):  # a nil value has no content to check against its type
                return (_XSI_NIL, _XSI_TYPE) if _XSI_TYPE in attrib else (_XSI_NIL,)
            ignored: tuple[str, ...] = (_XSI_NIL,)
        else:
            ignored = ()
        t = attrib.get(_XSI_TYPE)
        if t is not None:
            prefix, _, local = t.strip().rpartition(":")
            uri = el.nsmap.get(prefix or None)
            if uri is None or "{" + uri + "}" + local not in self._known_types:
                ignored += (_XSI_TYPE,)
        return ignored

    def _prepared(self, root: _Element, *, owned: bool) -> _Element:
        """``root`` without the ignored xsi attributes. ``owned``: the tree is ours (parsed from
        bytes here) and is changed in place; otherwise a copy is changed, and only when needed."""
        carriers = _xsi_carriers(root)
        plan = [(i, names) for i, el in enumerate(carriers) if (names := self._ignored(el))]
        if not plan:
            return root
        if not owned:
            # Same structure, same attributes: the copy's carriers are the original's, in order
            # (the decisions were made on the original, whose in-scope prefixes are authoritative).
            root = copy.deepcopy(root)
            carriers = _xsi_carriers(root)
        for i, names in plan:
            attrib = carriers[i].attrib
            for name in names:
                del attrib[name]
        return root

    # ------------------------------------------------------------------ validation
    def _errors(self, root: _Element) -> list[str]:
        errors: list[str] = []
        if self._fast is not None:
            with self._lock:  # the error log belongs to the schema object: one validation at a time
                if self._fast.validate(root):
                    return []
                log: Any = self._fast.error_log  # lxml's stubs do not type the log as iterable
                entries: list[Any] = list(log)
            for entry in entries:
                errors.append(f"{entry.path or '/'} line {entry.line}: {entry.message}")
                if len(errors) >= _MAX_ERRORS:
                    break
            return errors
        import xmlschema

        schema = self.schema
        with self._lock:
            try:
                for err in schema.iter_errors(etree.ElementTree(root)):
                    errors.append(f"{err.path or '/'}: {err.reason or err.message}")
                    if len(errors) >= _MAX_ERRORS:
                        break
            except (xmlschema.XMLSchemaException, KeyError, ValueError) as exc:
                errors.append(f"validation aborted: {exc}")
        return errors

    def validate_tree(self, root: _Element) -> list[str]:
        """Schema errors of the parsed message ``root`` ([] when valid). ``root`` is not changed
        (when xsi attributes must be ignored, a copy is validated), so the same tree can go on to
        the codec: parse once, validate, decode."""
        return self._errors(self._prepared(root, owned=False))

    def validate(self, data: bytes) -> list[str]:
        """Schema errors of ``data`` ([] when valid). Malformed XML gives one error string."""
        try:
            root = parse_xml(data)
        except WSManDecodeError as exc:
            return [f"not well-formed: {exc.reason}"]
        return self._errors(self._prepared(root, owned=True))

    def assert_valid_tree(self, root: _Element, direction: str, data: bytes | None = None) -> None:
        """Raise :class:`SchemaViolation` when ``root`` does not validate. ``data`` is the message as
        received (kept in the exception); without it the tree is serialized. ``root`` is not changed."""
        errors = self.validate_tree(root)
        if errors:
            raise SchemaViolation(_kind(root, direction), errors,
                                  data if data is not None else etree.tostring(root))

    def assert_valid(self, data: bytes, direction: str) -> None:
        """Raise :class:`SchemaViolation` when ``data`` does not validate."""
        try:
            root = parse_xml(data)
        except WSManDecodeError as exc:
            raise SchemaViolation(direction, [f"not well-formed: {exc.reason}"], data) from None
        errors = self._errors(self._prepared(root, owned=True))
        if errors:
            raise SchemaViolation(_kind(root, direction), errors, data)


def _kind(root: _Element, direction: str) -> str:
    action = _action_of(root)
    return f"{direction} {action}" if action else direction


_default: WSManValidator | None = None
_default_lock = threading.Lock()


def default_validator() -> WSManValidator:
    """The process-wide validator (schemas are loaded once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = WSManValidator()
        return _default

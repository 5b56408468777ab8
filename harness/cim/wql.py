"""WQL parser (lark LALR grammar in ``wql.lark``) and WHERE-clause evaluation.

WQL is the WMI dialect of the CIM query languages (MS-WMI 2.2.1 "WQL query", DSP0202 for the CQL
base; the operators, LIKE wildcards, ISA and the ASSOCIATORS OF / REFERENCES OF statements follow the
WMI "WQL (SQL for WMI)" reference). Sans-IO: text in, immutable dataclasses out.

Evaluation semantics (WMI behaviour):

* string comparisons are case-insensitive;
* numeric comparisons use the type of the property value (a string literal compared with a number is
  converted when it spells a number);
* any comparison involving NULL is false; ``IS [NOT] NULL`` tests for NULL;
* ``ISA`` tests the class of an embedded object / reference (``TargetInstance ISA 'Win32_Service'``),
  or, on ``__THIS`` / ``__CLASS``, the class of the instance itself.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import lark
import pywbem

from harness.cim.errors import CimError, CimStatus
from harness.cim.paths import ObjectPath, parse_object_path

MAX_QUERY_LENGTH = 16384
MAX_NESTING = 100
MAX_LITERAL_DIGITS = 64


class WqlSyntaxError(CimError):
    """Malformed WQL: status INVALID_QUERY (DSP0200 CIM_ERR_INVALID_QUERY), with the 1-based column."""

    column: int

    def __init__(self, description: str, column: int = 0) -> None:
        self.column = column
        where = f" at column {column}" if column > 0 else ""
        super().__init__(CimStatus.INVALID_QUERY, f"{description}{where}")


# ---------------------------------------------------------------- AST


@dataclass(frozen=True)
class Property:
    """A (possibly dotted) property reference: ``Name`` or ``TargetInstance.Name``."""

    parts: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.parts)


LiteralValue = str | int | float | bool | None


@dataclass(frozen=True)
class Literal_:
    value: LiteralValue


Operand = Property | Literal_


@dataclass(frozen=True)
class Comparison:
    op: Literal["=", "<>", "<", "<=", ">", ">="]
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Like:
    operand: Operand
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    operand: Operand
    negated: bool = False


@dataclass(frozen=True)
class Isa:
    operand: Operand
    classname: str


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    expr: Expr


Expr = Comparison | Like | IsNull | Isa | And | Or | Not


@dataclass(frozen=True)
class WqlQuery:
    """A parsed WQL statement.

    ``select``: ``properties`` (None for ``*``), ``classname``, ``where``, ``within`` (seconds, event
    queries). ``associators`` / ``references``: ``object_path`` (text between the braces) and the
    filters of the WHERE clause (MS-WMI / WQL "ASSOCIATORS OF Statement", "REFERENCES OF Statement").
    """

    kind: Literal["select", "associators", "references"]
    properties: tuple[str, ...] | None = None
    classname: str = ""
    where: Expr | None = None
    within: float | None = None
    object_path: str = ""
    parsed_path: ObjectPath | None = None
    assoc_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None
    required_qualifier: str | None = None
    required_assoc_qualifier: str | None = None
    classdefs_only: bool = False
    keys_only: bool = False
    schema_only: bool = False


# ---------------------------------------------------------------- LIKE


@functools.lru_cache(maxsize=512)
def like_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a WQL LIKE pattern into an anchored, case-insensitive regex.

    ``%`` any run of characters, ``_`` one character, ``[abc]`` a set, ``[a-z]`` / ``[a=z]`` a range,
    ``[^...]`` the complement (WQL "LIKE Operator"; WMI documents ``=`` as the range separator, ``-``
    is accepted as well). A ``]`` directly after ``[`` or ``[^`` is literal. ValueError if malformed.
    """
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
            i += 1
        elif ch == "_":
            out.append(".")
            i += 1
        elif ch == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            start = j
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"unterminated '[' at offset {i} in LIKE pattern")
            body = pattern[start:j]
            parts: list[str] = []
            k = 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] in "-=":
                    lo, hi = body[k], body[k + 2]
                    if ord(lo) > ord(hi):
                        raise ValueError(f"reversed range {lo}{body[k + 1]}{hi} in LIKE pattern")
                    parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    k += 3
                else:
                    parts.append(re.escape(body[k]))
                    k += 1
            out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
            i = j + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def like_match(value: str, pattern: str) -> bool:
    """WQL ``value LIKE pattern`` (case-insensitive, whole-string)."""
    return like_to_regex(pattern).fullmatch(value) is not None


# ---------------------------------------------------------------- parser


@functools.lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("harness.cim").joinpath("wql.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


def _unescape(token: lark.Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\(.)", r"\1", body, flags=re.DOTALL)


def _col(item: Any) -> int:
    col = getattr(item, "column", None)
    if isinstance(col, int):
        return col
    meta = getattr(item, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return int(meta.column)
    return 0


def _number(token: lark.Token) -> int | float:
    text = str(token)
    digits = text.lstrip("+-")
    if len(digits) > MAX_LITERAL_DIGITS:
        raise WqlSyntaxError(f"numeric literal too long ({len(digits)} characters)", _col(token))
    if token.type == "HEX_NUMBER":
        return int(text, 16)
    if token.type == "REAL_NUMBER":
        return float(text)
    return int(text, 10)


_FILTER_VALUES = {
    "assocclass": "assoc_class",
    "resultclass": "result_class",
    "role": "role",
    "resultrole": "result_role",
    "requiredqualifier": "required_qualifier",
    "requiredassocqualifier": "required_assoc_qualifier",
}
_FILTER_FLAGS = {"classdefsonly": "classdefs_only", "keysonly": "keys_only", "schemaonly": "schema_only"}
_REFERENCES_FILTERS = {"resultclass", "role", "requiredqualifier", "classdefsonly", "keysonly", "schemaonly"}


class _Builder(lark.Transformer[lark.Token, Any]):
    """Turns the parse tree into the AST (depth is bounded before this runs)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    # --- literals and operands
    def string(self, items: list[lark.Token]) -> tuple[str, int]:
        return _unescape(items[0]), _col(items[0])

    def hex_number(self, items: list[lark.Token]) -> int | float:
        return _number(items[0])

    real_number = hex_number
    int_number = hex_number

    def literal(self, items: list[Any]) -> Literal_:
        value = items[0]
        if isinstance(value, tuple):
            return Literal_(value[0])
        return Literal_(value)

    def true(self, _: list[Any]) -> Literal_:
        return Literal_(True)

    def false(self, _: list[Any]) -> Literal_:
        return Literal_(False)

    def null(self, _: list[Any]) -> Literal_:
        return Literal_(None)

    def property(self, items: list[lark.Token]) -> Property:
        return Property(tuple(str(t) for t in items))

    def class_name(self, items: list[lark.Token]) -> str:
        return str(items[0])

    # --- predicates
    def compare(self, items: list[Any]) -> Comparison:
        op = str(items[1])
        if op == "!=":
            op = "<>"
        return Comparison(op, items[0], items[2])  # type: ignore[arg-type]

    def _like(self, operand: Operand, pattern: tuple[str, int], negated: bool) -> Like:
        try:
            like_to_regex(pattern[0])
        except ValueError as exc:
            raise WqlSyntaxError(f"invalid LIKE pattern: {exc}", pattern[1]) from exc
        return Like(operand, pattern[0], negated)

    def like(self, items: list[Any]) -> Like:
        return self._like(items[0], items[2], False)

    def not_like(self, items: list[Any]) -> Like:
        return self._like(items[0], items[3], True)

    def is_null(self, items: list[Any]) -> IsNull:
        return IsNull(items[0], False)

    def is_not_null(self, items: list[Any]) -> IsNull:
        return IsNull(items[0], True)

    def isa(self, items: list[Any]) -> Isa:
        name, col = items[2]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise WqlSyntaxError(f"ISA needs a class name, got {name!r}", col)
        return Isa(items[0], name)

    def and_(self, items: list[Any]) -> And:
        return And(items[0], items[2])

    def or_(self, items: list[Any]) -> Or:
        return Or(items[0], items[2])

    def not_(self, items: list[Any]) -> Not:
        return Not(items[1])

    # --- SELECT
    def select_all(self, _: list[Any]) -> None:
        return None

    def select_props(self, items: list[Property]) -> tuple[str, ...]:
        return tuple(p.name for p in items)

    def within(self, items: list[Any]) -> float:
        value = float(items[1])
        if value < 0:
            raise WqlSyntaxError("WITHIN interval must not be negative", _col(items[0]))
        return value

    def where(self, items: list[Any]) -> Expr:
        expr = items[1]
        if isinstance(expr, Literal_ | Property):
            raise WqlSyntaxError("WHERE needs a condition", _col(items[0]))
        return expr  # type: ignore[no-any-return]

    def tail_none(self, _: list[Any]) -> tuple[Expr | None, float | None]:
        return None, None

    def tail_within(self, items: list[Any]) -> tuple[Expr | None, float | None]:
        return None, items[0]

    def tail_where(self, items: list[Any]) -> tuple[Expr | None, float | None]:
        return items[0], None

    def tail_within_where(self, items: list[Any]) -> tuple[Expr | None, float | None]:
        return items[1], items[0]

    def tail_where_within(self, items: list[Any]) -> tuple[Expr | None, float | None]:
        return items[0], items[1]

    def select_query(self, items: list[Any]) -> WqlQuery:
        where, within = items[4]
        return WqlQuery("select", properties=items[1], classname=items[3], where=where, within=within)

    # --- ASSOCIATORS OF / REFERENCES OF
    def filter_value(self, items: list[lark.Token]) -> tuple[str, str | bool, int]:
        return str(items[0]), str(items[1]), _col(items[0])

    def filter_flag(self, items: list[lark.Token]) -> tuple[str, str | bool, int]:
        return str(items[0]), True, _col(items[0])

    def assoc_where(self, items: list[Any]) -> list[tuple[str, str | bool, int]]:
        return list(items[1:])

    def _assoc(self, kind: Literal["associators", "references"], items: list[Any]) -> WqlQuery:
        token = items[2]
        text = str(token)[1:-1].strip()
        try:
            parsed = parse_object_path(text)
        except CimError as exc:
            raise WqlSyntaxError(f"invalid object path: {exc.description}", _col(token)) from exc
        fields: dict[str, Any] = {}
        for name, value, col in items[3] if len(items) > 3 else []:
            low = name.lower()
            if kind == "references" and low not in _REFERENCES_FILTERS:
                raise WqlSyntaxError(f"{name} is not valid in REFERENCES OF", col)
            if low in _FILTER_VALUES and value is not True:
                attr = _FILTER_VALUES[low]
            elif low in _FILTER_FLAGS and value is True:
                attr = _FILTER_FLAGS[low]
            else:
                raise WqlSyntaxError(f"unknown or malformed filter {name!r}", col)
            if attr in fields:
                raise WqlSyntaxError(f"filter {name} given twice", col)
            fields[attr] = value
        if fields.get("classdefs_only") and fields.get("keys_only"):
            raise WqlSyntaxError("ClassDefsOnly and KeysOnly exclude each other", 0)
        return WqlQuery(kind, object_path=text, parsed_path=parsed, **fields)

    def associators_query(self, items: list[Any]) -> WqlQuery:
        return self._assoc("associators", items)

    def references_query(self, items: list[Any]) -> WqlQuery:
        return self._assoc("references", items)


def _tree_depth(tree: lark.Tree[lark.Token]) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, lark.Tree):
            stack.extend((child, depth + 1) for child in node.children)
    return deepest


def parse_wql(text: str) -> WqlQuery:
    """Parse one WQL statement; :class:`WqlSyntaxError` (INVALID_QUERY) with the column on error."""
    if not isinstance(text, str):
        raise WqlSyntaxError("query must be text")
    if len(text) > MAX_QUERY_LENGTH:
        raise WqlSyntaxError(f"query longer than {MAX_QUERY_LENGTH} characters")
    if not text.strip():
        raise WqlSyntaxError("empty query", 1)
    try:
        tree = _parser().parse(text)
    except lark.UnexpectedCharacters as exc:
        raise WqlSyntaxError(f"unexpected character {exc.char!r}", exc.column) from None
    except lark.UnexpectedEOF:
        raise WqlSyntaxError("unexpected end of query", len(text) + 1) from None
    except lark.UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise WqlSyntaxError("unexpected end of query", len(text) + 1) from None
        raise WqlSyntaxError(f"unexpected {str(exc.token)!r}", exc.column) from None
    except lark.LarkError as exc:
        raise WqlSyntaxError(f"cannot parse query: {exc}") from None
    if _tree_depth(tree) > MAX_NESTING:
        raise WqlSyntaxError(f"query nested deeper than {MAX_NESTING} levels")
    try:
        result = _Builder(text).transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, CimError):
            raise exc.orig_exc from None
        raise WqlSyntaxError(f"cannot parse query: {exc.orig_exc}") from None
    if not isinstance(result, WqlQuery):  # pragma: no cover - the grammar only yields queries
        raise WqlSyntaxError("not a WQL statement", 1)
    return result


# ---------------------------------------------------------------- evaluation

IsaFunc = Callable[[str, str], bool]
_MISSING = object()


def _lookup(value: Any, name: str) -> Any:
    if isinstance(value, pywbem.CIMInstance):
        if name.upper() == "__CLASS":
            return value.classname
        prop = value.properties.get(name)
        return _MISSING if prop is None else prop.value
    if isinstance(value, pywbem.CIMInstanceName):
        if name.upper() == "__CLASS":
            return value.classname
        return value.keybindings.get(name, _MISSING)
    return _MISSING


def _resolve(operand: Operand, instance: pywbem.CIMInstance) -> Any:
    if isinstance(operand, Literal_):
        return operand.value
    current: Any = instance
    for i, part in enumerate(operand.parts):
        if i == 0 and part.upper() == "__THIS":
            continue
        if i == 0 and part.upper() == "__RELPATH" and instance.path is not None:
            current = str(instance.path.copy()).split(":", 1)[-1]
            continue
        current = _lookup(current, part)
        if current is _MISSING or current is None:
            return None
    return current


def _to_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_LITERAL_DIGITS:
            return None
        try:
            return int(text, 0) if text.lower().lstrip("+-").startswith("0x") else int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return None
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
    return None


def _to_datetime(value: Any) -> _dt.datetime | _dt.timedelta | None:
    if isinstance(value, pywbem.CIMDateTime):
        result: _dt.datetime | _dt.timedelta = value.datetime if value.datetime is not None else value.timedelta
        return result
    if isinstance(value, str):
        try:
            dt = pywbem.CIMDateTime(value.strip())
        except ValueError:
            return None
        parsed: _dt.datetime | _dt.timedelta = dt.datetime if dt.datetime is not None else dt.timedelta
        return parsed
    return None


def _normalize_pair(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Convert two non-NULL values to comparable Python values, or None if they cannot be compared."""
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return None
    if isinstance(a, pywbem.CIMDateTime) or isinstance(b, pywbem.CIMDateTime):
        da, db = _to_datetime(a), _to_datetime(b)
        if da is None or db is None or type(da) is not type(db):
            return None
        return da, db
    if isinstance(a, bool) or isinstance(b, bool):
        ba, bb = _to_bool(a), _to_bool(b)
        return None if ba is None or bb is None else (ba, bb)
    if isinstance(a, int | float) or isinstance(b, int | float):
        na, nb = _to_number(a), _to_number(b)
        return None if na is None or nb is None else (na, nb)
    if isinstance(a, pywbem.CIMInstanceName) or isinstance(b, pywbem.CIMInstanceName):
        return str(a).casefold(), str(b).casefold()
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    return None


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    pair = _normalize_pair(a, b)
    if pair is None:
        return False
    x, y = pair
    try:
        if op == "=":
            return bool(x == y)
        if op == "<>":
            return bool(x != y)
        if op == "<":
            return bool(x < y)
        if op == "<=":
            return bool(x <= y)
        if op == ">":
            return bool(x > y)
        return bool(x >= y)
    except TypeError:
        return False


def _class_of(value: Any, operand: Operand, instance: pywbem.CIMInstance) -> str | None:
    if isinstance(operand, Property) and operand.parts[0].upper() == "__THIS" and len(operand.parts) == 1:
        return str(instance.classname)
    if isinstance(value, pywbem.CIMInstance | pywbem.CIMInstanceName | pywbem.CIMClass):
        return str(value.classname)
    if isinstance(operand, Property) and operand.parts[-1].upper() == "__CLASS" and isinstance(value, str):
        return value
    return None


def evaluate_where(expr: Expr, instance: pywbem.CIMInstance, isa: IsaFunc) -> bool:
    """Evaluate a WHERE expression against ``instance``; ``isa(classname, ancestor)`` answers ISA."""
    if isinstance(expr, And):
        return evaluate_where(expr.left, instance, isa) and evaluate_where(expr.right, instance, isa)
    if isinstance(expr, Or):
        return evaluate_where(expr.left, instance, isa) or evaluate_where(expr.right, instance, isa)
    if isinstance(expr, Not):
        return not evaluate_where(expr.expr, instance, isa)
    if isinstance(expr, Comparison):
        return _compare(expr.op, _resolve(expr.left, instance), _resolve(expr.right, instance))
    if isinstance(expr, IsNull):
        is_null = _resolve(expr.operand, instance) is None
        return not is_null if expr.negated else is_null
    if isinstance(expr, Like):
        value = _resolve(expr.operand, instance)
        if value is None or isinstance(value, list | tuple | pywbem.CIMInstance):
            return False
        matched = like_match(str(value), expr.pattern)
        return not matched if expr.negated else matched
    value = _resolve(expr.operand, instance)
    cls = _class_of(value, expr.operand, instance)
    return cls is not None and isa(cls, expr.classname)


def where_properties(expr: Expr | None) -> list[Property]:
    """Every property referenced by a WHERE expression (for validation against the class)."""
    out: list[Property] = []
    stack: list[Expr] = [] if expr is None else [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, And | Or):
            stack.extend((node.right, node.left))
        elif isinstance(node, Not):
            stack.append(node.expr)
        elif isinstance(node, Comparison):
            out.extend(o for o in (node.left, node.right) if isinstance(o, Property))
        elif isinstance(node.operand, Property):
            out.append(node.operand)
    return out

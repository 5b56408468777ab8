"""A tiny tokenizer and parser for the PowerShell script forms the mock's SAFE engine understands.

This is not PowerShell: it recognises the small subset that :mod:`harness.targets.mock.ps_engine`
executes (statements separated by ``;`` or new lines, ``|`` pipelines of commands with ``-Name value``
parameters, quoted strings with ``$var`` expansion in double quotes, numbers, ``$env:NAME``,
``$_``/``$input``/``$PSVersionTable`` and other variables with ``.Property`` access, ``{ ... }``
script blocks, ``$x = ...`` assignments, ``+ - * /`` and ``throw``). Every statement keeps its
line number, so breakpoints can be set on lines (MS-PSRDP 1.3). Anything else raises
:class:`ScriptSyntaxError` with the reason. Input is bounded (:data:`MAX_SCRIPT`, :data:`MAX_DEPTH`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

MAX_SCRIPT: Final = 64 * 1024
MAX_DEPTH: Final = 16


class ScriptSyntaxError(ValueError):
    """The script is outside the subset the mock understands (or is malformed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Literal:
    value: object


@dataclass(frozen=True)
class Var:
    """``$name`` (lower-cased; ``env:path`` for the environment drive) and ``.Prop`` accesses."""

    name: str
    props: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interpolated:
    """A double-quoted string: text parts and variables."""

    parts: tuple[str | Var, ...]


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class ArrayExpr:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class SubPipeline:
    """``( pipeline )`` used as a value, with ``.Prop`` accesses after the parenthesis."""

    pipeline: Pipeline
    props: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    """``{ ... }``: a script block, parsed, with its source text."""

    statements: tuple[Statement, ...]
    text: str


Expr = Literal | Var | Interpolated | BinOp | ArrayExpr | Block | SubPipeline


@dataclass(frozen=True)
class Arg:
    """One command argument: ``name`` None for a positional value; ``value`` None for a switch."""

    name: str | None
    value: Expr | None


@dataclass(frozen=True)
class CommandCall:
    name: str
    args: tuple[Arg, ...] = ()


Stage = CommandCall | Expr


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]


@dataclass(frozen=True)
class Assign:
    target: Var
    value: Pipeline


@dataclass(frozen=True)
class Throw:
    value: Expr | None


@dataclass(frozen=True)
class Statement:
    line: int
    body: Pipeline | Assign | Throw
    text: str = ""


@dataclass
class Script:
    statements: list[Statement] = field(default_factory=list)


# ---------------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    kind: str  # word param str istr num var op block end
    text: str
    line: int
    value: object = None


_VAR_RE = re.compile(r"\$(?:\{([^}]{1,256})\}|((?:env:)?[A-Za-z_][\w]*|_)((?:\.[A-Za-z_]\w*)*))", re.IGNORECASE)
_NUM_RE = re.compile(r"-?\d{1,30}(?:\.\d{1,30})?(?![\w.:\\-])")
_PARAM_RE = re.compile(r"-[A-Za-z][\w]*:?")
_WORD_RE = re.compile(r"[^\s|;{}(),=\"'$]+")
_OPS: Final = "|;=+*/,()"


def _var_name(raw: str) -> str:
    """Variable names are case-insensitive (kept lower-case); environment names keep their case."""
    return "env:" + raw[4:] if raw.lower().startswith("env:") else raw.lower()


def _interpolate(text: str) -> tuple[str | Var, ...]:
    parts: list[str | Var] = []
    pos = 0
    for m in _VAR_RE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        parts.append(Var(_var_name(m.group(1) or m.group(2))))
        # in a double-quoted string ".Prop" is literal text (PowerShell needs $( ) for member access)
        if m.group(3):
            parts.append(m.group(3))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text``; blocks are kept as one ``block`` token holding their inner text."""
    if len(text) > MAX_SCRIPT:
        raise ScriptSyntaxError(f"script longer than {MAX_SCRIPT} characters")
    out: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(Token("op", "\n", line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c == "`" and i + 1 < n and text[i + 1] in "\r\n":  # line continuation
            i += 1
            while i < n and text[i] in "\r\n":
                line += text[i] == "\n"
                i += 1
        elif c == "'":
            j = i + 1
            buf = []
            while True:
                if j >= n:
                    raise ScriptSyntaxError(f"line {line}: unterminated string")
                if text[j] == "'" and j + 1 < n and text[j + 1] == "'":
                    buf.append("'")
                    j += 2
                elif text[j] == "'":
                    break
                else:
                    buf.append(text[j])
                    j += 1
            out.append(Token("str", text[i:j + 1], line, "".join(buf)))
            line += text[i:j].count("\n")
            i = j + 1
        elif c == '"':
            j = i + 1
            buf = []
            while True:
                if j >= n:
                    raise ScriptSyntaxError(f"line {line}: unterminated string")
                if text[j] == "`" and j + 1 < n:
                    buf.append({"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(text[j + 1], text[j + 1]))
                    j += 2
                elif text[j] == '"' and j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    buf.append(text[j])
                    j += 1
            out.append(Token("istr", text[i:j + 1], line, "".join(buf)))
            line += text[i:j].count("\n")
            i = j + 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ScriptSyntaxError(f"line {line}: missing closing '}}'")
            out.append(Token("block", text[i + 1:j - 1], line))
            line += text[i:j].count("\n")
            i = j
        elif c == "}":
            raise ScriptSyntaxError(f"line {line}: unexpected '}}'")
        elif c == "$":
            m = _VAR_RE.match(text, i)
            if m is None:
                raise ScriptSyntaxError(f"line {line}: bad variable reference")
            name = _var_name(m.group(1) or m.group(2))
            props = tuple(p for p in (m.group(3) or "").split(".") if p)
            out.append(Token("var", m.group(0), line, Var(name, props)))
            i = m.end()
        elif (m := _NUM_RE.match(text, i)) is not None and not (c == "-" and out and out[-1].kind in (
                "var", "num", "str", "istr")):
            number = m.group(0)
            out.append(Token("num", number, line, float(number) if "." in number else int(number)))
            i = m.end()
        elif c == "-" and (m := _PARAM_RE.match(text, i)) is not None:
            out.append(Token("param", m.group(0), line, m.group(0)[1:].rstrip(":")))
            i = m.end()
        elif c in _OPS or c == "-":
            out.append(Token("op", c, line))
            i += 1
        else:
            m = _WORD_RE.match(text, i)
            if m is None:  # pragma: no cover - every other character starts a word
                raise ScriptSyntaxError(f"line {line}: unexpected character {c!r}")
            out.append(Token("word", m.group(0), line, m.group(0)))
            i = m.end()
    return out


# ---------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, tokens: list[Token], depth: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = depth

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in ops

    def script(self) -> Script:
        out = Script()
        while self.peek() is not None:
            if self.at_op(";", "\n"):
                self.next()
                continue
            start = self.pos
            stmt = self.statement()
            text = " ".join(t.text for t in self.tokens[start:self.pos])
            out.statements.append(Statement(self.tokens[start].line, stmt, text))
            if self.peek() is not None and not self.at_op(";", "\n"):
                tok = self.next()
                raise ScriptSyntaxError(f"line {tok.line}: unexpected token {tok.text!r}")
        return out

    def statement(self) -> Pipeline | Assign | Throw:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "word" and tok.text.lower() == "throw":
            self.next()
            value = None if self.peek() is None or self.at_op(";", "\n") else self.expression()
            return Throw(value)
        if (tok.kind == "var" and self.pos + 1 < len(self.tokens)
                and self.tokens[self.pos + 1].kind == "op" and self.tokens[self.pos + 1].text == "="):
            self.pos += 2
            assert isinstance(tok.value, Var)
            return Assign(tok.value, self.pipeline())
        return self.pipeline()

    def pipeline(self) -> Pipeline:
        stages: list[Stage] = [self.stage()]
        while self.at_op("|"):
            self.next()
            while self.at_op("\n"):
                self.next()
            stages.append(self.stage())
        return Pipeline(tuple(stages))

    def stage(self) -> Stage:
        tok = self.peek()
        if tok is None or (tok.kind == "op" and tok.text in ";\n|"):
            raise ScriptSyntaxError(f"line {tok.line if tok else '?'}: empty pipeline element")
        if tok.kind == "word" or (tok.kind == "op" and tok.text == "&"):
            return self.command()
        return self.expression()

    def command(self) -> CommandCall:
        name = self.next().text
        args: list[Arg] = []
        while (tok := self.peek()) is not None and not (tok.kind == "op" and tok.text in ";\n|)"):
            if tok.kind == "param":
                self.next()
                nxt = self.peek()
                if nxt is None or nxt.kind == "param" or (nxt.kind == "op" and nxt.text in ";\n|)"):
                    args.append(Arg(str(tok.value), None))
                else:
                    args.append(Arg(str(tok.value), self.argument()))
            else:
                args.append(Arg(None, self.argument()))
        return CommandCall(name, tuple(args))

    def argument(self) -> Expr:
        """A command-mode argument: one value, or a comma list of values."""
        first = self.primary(command_mode=True)
        if not self.at_op(","):
            return first
        items = [first]
        while self.at_op(","):
            self.next()
            items.append(self.primary(command_mode=True))
        return ArrayExpr(tuple(items))

    def expression(self) -> Expr:
        left = self.term()
        while self.at_op("+", "-"):
            op = self.next().text
            left = BinOp(op, left, self.term())
        if self.at_op(","):
            items = [left]
            while self.at_op(","):
                self.next()
                items.append(self.term())
            return ArrayExpr(tuple(items))
        return left

    def term(self) -> Expr:
        left = self.primary()
        while self.at_op("*", "/"):
            op = self.next().text
            left = BinOp(op, left, self.primary())
        return left

    def primary(self, *, command_mode: bool = False) -> Expr:
        if self.peek() is None:
            raise ScriptSyntaxError("unexpected end of script")
        tok = self.next()
        if tok.kind in ("str", "num"):
            return Literal(tok.value)
        if tok.kind == "istr":
            return Interpolated(_interpolate(str(tok.value)))
        if tok.kind == "var":
            assert isinstance(tok.value, Var)
            return tok.value
        if tok.kind == "word" and command_mode:
            return Literal(tok.text)
        if tok.kind == "word" and tok.text.lower() in ("$true", "$false"):  # pragma: no cover - vars above
            return Literal(tok.text.lower() == "$true")
        if tok.kind == "block":
            return parse_block(tok.text, tok.line, self.depth + 1)
        if tok.kind == "op" and tok.text == "(":
            inner = self.pipeline()
            if not self.at_op(")"):
                raise ScriptSyntaxError(f"line {tok.line}: missing ')'")
            self.next()
            props: list[str] = []
            while (nxt := self.peek()) is not None and nxt.kind == "word" and nxt.text.startswith("."):
                props.extend(p for p in self.next().text.split(".") if p)
            if not props and len(inner.stages) == 1 and not isinstance(inner.stages[0], CommandCall):
                return inner.stages[0]
            return SubPipeline(inner, tuple(props))
        raise ScriptSyntaxError(f"line {tok.line}: unexpected token {tok.text!r}")


def parse_block(text: str, line: int, depth: int) -> Block:
    if depth > MAX_DEPTH:
        raise ScriptSyntaxError(f"script blocks nested deeper than {MAX_DEPTH}")
    tokens = tokenize(text)
    tokens = [Token(t.kind, t.text, t.line + line - 1, t.value) for t in tokens]
    return Block(tuple(_Parser(tokens, depth).script().statements), text)


def parse_script(text: str) -> Script:
    """Parse a whole script. Raises :class:`ScriptSyntaxError`."""
    return _Parser(tokenize(text), 0).script()


__all__ = ["Arg", "ArrayExpr", "Assign", "BinOp", "Block", "CommandCall", "Expr", "Interpolated", "Literal",
           "Pipeline", "Script", "ScriptSyntaxError", "Stage", "Statement", "SubPipeline", "Throw", "Token", "Var",
           "parse_block", "parse_script", "tokenize"]

"""Property tests: WQL parsing never raises anything but CimError; LIKE agrees with an fnmatch oracle."""

from __future__ import annotations

import contextlib
import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cim import CimError, parse_wql
from harness.cim.wql import like_match

TOKENS = [
    "SELECT",
    "select",
    "*",
    "FROM",
    "WHERE",
    "WITHIN",
    "AND",
    "OR",
    "NOT",
    "LIKE",
    "IS",
    "NULL",
    "ISA",
    "TRUE",
    "FALSE",
    "ASSOCIATORS",
    "REFERENCES",
    "OF",
    "(",
    ")",
    ",",
    ".",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "Name",
    "Win32_Service",
    "TargetInstance",
    "'x%'",
    '"y"',
    "'unterminated",
    "0x1F",
    "12",
    "-3",
    "1.5e3",
    '{Win32_Service.Name="a"}',
    "{",
    "}",
    "AssocClass",
    "KeysOnly",
    "\\",
    "'[a-'",
    "9" * 80,
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_token_soup_only_raises_cim_error(tokens: list[str]) -> None:
    with contextlib.suppress(CimError):
        parse_wql(" ".join(tokens))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_raises_cim_error(text: str) -> None:
    with contextlib.suppress(CimError):
        parse_wql(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_random_where_only_raises_cim_error(text: str) -> None:
    with contextlib.suppress(CimError):
        parse_wql("SELECT * FROM X WHERE " + text)


def like_oracle(value: str, pattern: str) -> bool:
    """Independent oracle: translate WQL LIKE to an fnmatch pattern and match case-insensitively."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch == "[":
            end = pattern.index("]", i + 2 if pattern[i + 1 : i + 2] in ("]", "^") else i + 1)
            if pattern[i + 1] == "^" and pattern[i + 2] == "]":
                end = pattern.index("]", i + 3)
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            out.append("[" + ("!" if negate else "") + body.replace("=", "-") + "]")
            i = end
        elif ch in "*?":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
        i += 1
    return fnmatch.fnmatchcase(value.lower(), "".join(out).lower())


ALPHABET = "abcAB%_x."
atoms = st.one_of(
    st.sampled_from(["a", "b", "x", "A", ".", "%", "_", "*", "?"]),
    st.sampled_from(["[ab]", "[^a]", "[a-c]", "[^x-z]", "[a=b]", "[%]", "[_]"]),
)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcxyzAB.*?%_", max_size=10), st.lists(atoms, max_size=6))
def test_like_matches_oracle(value: str, parts: list[str]) -> None:
    pattern = "".join(parts)
    assert like_match(value, pattern) == like_oracle(value, pattern)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcAB", max_size=8))
def test_like_literal_and_percent_identities(value: str) -> None:
    literal = value.replace("%", "[%]").replace("_", "[_]").replace("[", "[[]")
    assert like_match(value, literal)
    assert like_match(value.upper(), literal.lower())
    assert like_match(value, "%")
    assert like_match(value, value[:2] + "%")

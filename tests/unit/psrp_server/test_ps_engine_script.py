"""The script subset parser of the mock's safe PowerShell engine (harness.targets.mock.ps_engine_script)."""

from __future__ import annotations

import pytest

from harness.targets.mock.ps_engine_script import (
    Arg,
    ArrayExpr,
    Assign,
    BinOp,
    Block,
    CommandCall,
    Interpolated,
    Literal,
    Pipeline,
    ScriptSyntaxError,
    Throw,
    Var,
    parse_script,
)


def test_statements_keep_their_line_numbers() -> None:
    script = parse_script("Write-Output 'a'; Write-Output 'b'\n\n# comment\nGet-Date\n")
    assert [s.line for s in script.statements] == [1, 1, 4]
    first = script.statements[0].body
    assert first == Pipeline((CommandCall("Write-Output", (Arg(None, Literal("a")),)),))


def test_pipelines_parameters_switches_and_blocks() -> None:
    [stmt] = parse_script("Get-Service -Name WinRM,BITS | ForEach-Object { $_.Name } | Measure-Object -Sum").statements
    assert isinstance(stmt.body, Pipeline)
    get, each, measure = stmt.body.stages
    assert isinstance(get, CommandCall) and get.args[0].name == "Name"
    assert get.args[0].value == ArrayExpr((Literal("WinRM"), Literal("BITS")))
    assert isinstance(each, CommandCall) and isinstance(each.args[0].value, Block)
    assert each.args[0].value.statements[0].body == Pipeline((Var("_", ("Name",)),))
    assert isinstance(measure, CommandCall) and measure.args[0].name == "Sum" and measure.args[0].value is None


def test_expressions_strings_assignments_and_throw() -> None:
    script = parse_script("$env:X = \"v $env:Y!\"; 1 + 2 * 3; 'it''s'; throw 'bad'")
    assign, arith, quoted, throw = (s.body for s in script.statements)
    assert assign == Assign(Var("env:X"), Pipeline((Interpolated(("v ", Var("env:Y"), "!")),)))
    assert arith == Pipeline((BinOp("+", Literal(1), BinOp("*", Literal(2), Literal(3))),))
    assert quoted == Pipeline((Literal("it's"),))
    assert throw == Throw(Literal("bad"))


@pytest.mark.parametrize("text", ["'unterminated", "\"open", "{ no end", "}", "Write-Output 'a' )", "| x",
                                  "$", "1 +"])
def test_malformed_scripts_raise_only_the_typed_error(text: str) -> None:
    with pytest.raises(ScriptSyntaxError):
        parse_script(text)


def test_size_and_nesting_are_bounded() -> None:
    with pytest.raises(ScriptSyntaxError, match="longer"):
        parse_script("x" * 70_000)
    with pytest.raises(ScriptSyntaxError, match="nested"):
        parse_script("ForEach-Object " + "{ ForEach-Object " * 20 + "}" * 20)

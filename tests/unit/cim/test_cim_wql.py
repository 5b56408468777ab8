"""WQL: parsing of every construct, errors with their column, evaluation, exec_query."""

from __future__ import annotations

import pytest
from pywbem import CIMDateTime, CIMInstance, CIMInstanceName, CIMProperty, Uint32, Uint64

from harness.cim import CimError, CimStatus, CimStore, WqlSyntaxError, evaluate_where, parse_wql
from harness.cim.wql import (
    And,
    Comparison,
    Isa,
    IsNull,
    Like,
    Literal_,
    Not,
    Or,
    Property,
    like_match,
)

NS = "root/cimv2"


def where(text: str):  # type: ignore[no-untyped-def]
    q = parse_wql(f"SELECT * FROM C WHERE {text}")
    assert q.where is not None
    return q.where


# ---------------------------------------------------------------- parsing


def test_select_star_and_list() -> None:
    q = parse_wql("select * from Win32_Service")
    assert (q.kind, q.properties, q.classname, q.where, q.within) == ("select", None, "Win32_Service", None, None)
    q = parse_wql("SELECT Name, State FROM Win32_Service")
    assert q.properties == ("Name", "State")


def test_keywords_case_insensitive_and_names_with_keyword_prefix() -> None:
    q = parse_wql("sElEcT Notes, Origin, Island, Orders FrOm X wHeRe Notes = 1 aNd NoT Origin iS nUlL")
    assert q.properties == ("Notes", "Origin", "Island", "Orders")
    assert q.where == And(Comparison("=", Property(("Notes",)), Literal_(1)), Not(IsNull(Property(("Origin",)))))


@pytest.mark.parametrize("op", ["=", "<>", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    expected = "<>" if op == "!=" else op
    assert where(f"A {op} 5") == Comparison(expected, Property(("A",)), Literal_(5))  # type: ignore[arg-type]


def test_literals() -> None:
    assert where("A = 'it\\'s'") == Comparison("=", Property(("A",)), Literal_("it's"))
    assert where('A = "say \\"hi\\" \\\\ x"') == Comparison("=", Property(("A",)), Literal_('say "hi" \\ x'))
    assert where("A = 0x1F").right == Literal_(31)
    assert where("A = -12").right == Literal_(-12)
    assert where("A = 1.5e3").right == Literal_(1500.0)
    assert where("A = .25").right == Literal_(0.25)
    assert where("A = TRUE").right == Literal_(True)
    assert where("A = false").right == Literal_(False)
    assert where("A = NULL").right == Literal_(None)
    assert where("5 < A") == Comparison("<", Literal_(5), Property(("A",)))


def test_precedence_and_parentheses() -> None:
    a, b, c = (Comparison("=", Property((n,)), Literal_(1)) for n in "ABC")
    assert where("A = 1 OR B = 1 AND C = 1") == Or(a, And(b, c))
    assert where("(A = 1 OR B = 1) AND C = 1") == And(Or(a, b), c)
    assert where("NOT A = 1 AND B = 1") == And(Not(a), b)
    assert where("NOT (A = 1 OR B = 1)") == Not(Or(a, b))


def test_like_isnull_isa_dotted() -> None:
    assert where("Name LIKE 'Win%'") == Like(Property(("Name",)), "Win%")
    assert where("Name NOT LIKE '[^a-c]_'") == Like(Property(("Name",)), "[^a-c]_", negated=True)
    assert where("X IS NULL") == IsNull(Property(("X",)))
    assert where("X IS NOT NULL") == IsNull(Property(("X",)), negated=True)
    assert where("TargetInstance ISA 'Win32_Service'") == Isa(Property(("TargetInstance",)), "Win32_Service")
    assert where("TargetInstance.Name = 'x'") == Comparison("=", Property(("TargetInstance", "Name")), Literal_("x"))


def test_within_both_orders() -> None:
    q = parse_wql("SELECT * FROM __InstanceModificationEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Service'")
    assert q.within == 5.0 and isinstance(q.where, Isa)
    q = parse_wql("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Process' WITHIN 0.5")
    assert q.within == 0.5 and isinstance(q.where, Isa)
    assert parse_wql("SELECT * FROM __InstanceDeletionEvent WITHIN 10").within == 10.0


def test_associators_of() -> None:
    q = parse_wql(
        'ASSOCIATORS OF {Win32_Service.Name="WinRM"} WHERE AssocClass = Win32_DependentService '
        "ResultClass=Win32_Service Role=Dependent ResultRole=Antecedent RequiredQualifier=Dynamic "
        "RequiredAssocQualifier=Association KeysOnly"
    )
    assert q.kind == "associators"
    assert q.object_path == 'Win32_Service.Name="WinRM"'
    assert (q.assoc_class, q.result_class, q.role, q.result_role) == (
        "Win32_DependentService",
        "Win32_Service",
        "Dependent",
        "Antecedent",
    )
    assert (q.required_qualifier, q.required_assoc_qualifier, q.keys_only) == ("Dynamic", "Association", True)
    assert parse_wql("associators of {Win32_LogicalDisk='C:'} where ClassDefsOnly").classdefs_only


def test_references_of_with_full_path() -> None:
    q = parse_wql('REFERENCES OF {\\\\WMH-MOCK01\\root\\cimv2:Win32_Service.Name="a}b"} WHERE ResultClass = X Role=Y')
    assert q.kind == "references"
    assert q.parsed_path is not None and q.parsed_path.host == "WMH-MOCK01"
    assert q.parsed_path.namespace == "root/cimv2" and q.parsed_path.keys == (("Name", "a}b"),)
    assert (q.result_class, q.role) == ("X", "Y")


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("SELECT * FROM", 14),
        ("SELECT FROM X", 13),
        ("SELECT * FROM X WHERE", 22),
        ("SELECT * FROM X WHERE A = ", 27),
        ("SELECT * FROM X WHERE A @ 1", 25),
        ("SELECT * FROM X WHERE A LIKE '[ab'", 30),
        ("SELECT * FROM X WHERE A LIKE 'a[z-a]'", 30),
        ("SELECT * FROM X WHERE A = 'open", 27),
        ("SELECT * FROM X WHERE A ISA 'not a class'", 29),
        ("SELECT * FROM X WHERE (A = 1", 29),
        ("SELECT * FROM X WITHIN -1", 17),
        ("SELECT * FROM X WHERE 1", 24),
        ("ASSOCIATORS OF {Win32_Service.Name=} WHERE Role=x", 16),
        ("ASSOCIATORS OF {X.K=1} WHERE Bogus=x", 30),
        ("ASSOCIATORS OF {X.K=1} WHERE Role=a Role=b", 37),
        ("REFERENCES OF {X.K=1} WHERE AssocClass=A", 29),
        ("DELETE FROM X", 1),
    ],
)
def test_syntax_errors_carry_column(text: str, column: int) -> None:
    with pytest.raises(WqlSyntaxError) as exc:
        parse_wql(text)
    assert exc.value.status == CimStatus.INVALID_QUERY
    assert exc.value.column == column, exc.value.description


def test_deep_parentheses_do_not_nest_the_tree() -> None:
    q = parse_wql("SELECT * FROM X WHERE " + "(" * 300 + "A = 1" + ")" * 300)
    assert q.where == Comparison("=", Property(("A",)), Literal_(1))


def test_empty_and_oversized_queries() -> None:
    for text in ("", "   ", "SELECT * FROM X WHERE " + "NOT " * 200 + "A = 1", "S" * 20000):
        with pytest.raises(WqlSyntaxError):
            parse_wql(text)
    with pytest.raises(WqlSyntaxError):
        parse_wql("SELECT * FROM X WHERE A = " + "9" * 100)


# ---------------------------------------------------------------- LIKE


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("WinRM", "win%", True),
        ("WinRM", "%RM", True),
        ("WinRM", "%", True),
        ("", "%", True),
        ("WinRM", "W_nRM", True),
        ("WinRM", "W_RM", False),
        ("WinRM", "[vw]inrm", True),
        ("WinRM", "[^w]inrm", False),
        ("Xinrm", "[^w]inrm", True),
        ("WinRM", "[a-z]in%", True),
        ("WinRM", "[a=f]in%", False),
        ("dinrm", "[a=f]in%", True),
        ("50%", "50[%]", True),
        ("500", "50[%]", False),
        ("a_b", "a[_]b", True),
        ("axb", "a[_]b", False),
        ("a]b", "a[]]b", True),
        ("a.b", "a.b", True),
        ("axb", "a.b", False),
        ("a\nb", "a_b", True),
        ("(x)", "(%)", True),
    ],
)
def test_like_patterns(value: str, pattern: str, expected: bool) -> None:
    assert like_match(value, pattern) is expected


# ---------------------------------------------------------------- evaluation


def _inst() -> CIMInstance:
    inst = CIMInstance("Win32_Service")
    inst["Name"] = "WinRM"
    inst["State"] = "Running"
    inst["ProcessId"] = Uint32(1120)
    inst["Size"] = Uint64(2**40)
    inst["Started"] = True
    inst.properties["Description"] = CIMProperty("Description", None, type="string")
    inst["Boot"] = CIMDateTime("20250302071544.500000+000")
    inst["Addrs"] = ["a", "b"]
    target = CIMInstance("Win32_Service", properties={"Name": "Spooler"})
    inst.properties["TargetInstance"] = CIMProperty("TargetInstance", target, embedded_object="instance")
    inst.path = CIMInstanceName("Win32_Service", keybindings={"Name": "WinRM"})
    return inst


def _isa(cls: str, ancestor: str) -> bool:
    chain = {"win32_service": ["win32_service", "win32_baseservice", "cim_service"]}
    return ancestor.lower() in chain.get(cls.lower(), [cls.lower()])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Name = 'winrm'", True),
        ("Name <> 'WINRM'", False),
        ("Name > 'A'", True),
        ("Name < 'a'", False),
        ("ProcessId = 1120", True),
        ("ProcessId = '1120'", True),
        ("ProcessId > 0x400", True),
        ("ProcessId >= 1120.0", True),
        ("ProcessId < 100", False),
        ("Size > 1000000", True),
        ("Started = TRUE", True),
        ("Started = 'true'", True),
        ("Started <> FALSE", True),
        ("Description = 'x'", False),
        ("Description <> 'x'", False),
        ("Description IS NULL", True),
        ("Description IS NOT NULL", False),
        ("Name IS NOT NULL", True),
        ("Missing = 1", False),
        ("Missing IS NULL", True),
        ("Name = NULL", False),
        ("NOT Description = 'x'", True),
        ("Boot > '20250101000000.000000+000'", True),
        ("Boot < '20250101000000.000000+000'", False),
        ("Addrs = 'a'", False),
        ("Name LIKE 'win%'", True),
        ("Name NOT LIKE 'win%'", False),
        ("Description LIKE '%'", False),
        ("Description NOT LIKE '%'", False),
        ("TargetInstance ISA 'CIM_Service'", True),
        ("TargetInstance ISA 'Win32_Process'", False),
        ("TargetInstance.Name = 'spooler'", True),
        ("TargetInstance.Missing IS NULL", True),
        ("Name.Sub = 'x'", False),
        ("__CLASS = 'win32_service'", True),
        ("__THIS ISA 'Win32_BaseService'", True),
        ("__CLASS ISA 'CIM_Service'", True),
        ("State = 'Running' AND (ProcessId = 1 OR Name = 'WinRM')", True),
        ("State = 'Stopped' OR NOT Started = TRUE", False),
        ("1 = 1", True),
        ("'a' = 'A'", True),
        ("ProcessId = 'abc'", False),
    ],
)
def test_evaluate(text: str, expected: bool) -> None:
    assert evaluate_where(where(text), _inst(), _isa) is expected


# ---------------------------------------------------------------- exec_query


def test_exec_query_select(ro_store: CimStore) -> None:
    rows = ro_store.exec_query(NS, "SELECT Name, State FROM Win32_Service WHERE StartMode = 'Disabled'")
    assert [r["Name"] for r in rows] == ["RemoteRegistry"]
    assert set(rows[0].properties) == {"Name", "State"}
    assert rows[0].path == CIMInstanceName("Win32_Service", keybindings={"Name": "RemoteRegistry"})


def test_exec_query_projection_keeps_keys(ro_store: CimStore) -> None:
    rows = ro_store.exec_query(NS, "SELECT VariableValue FROM Win32_Environment WHERE Name = 'os'")
    assert len(rows) == 1 and set(rows[0].properties) == {"Name", "UserName", "VariableValue"}


def test_exec_query_deep_and_isa(ro_store: CimStore) -> None:
    all_elements = ro_store.exec_query(NS, "SELECT * FROM CIM_LogicalElement WHERE __THIS ISA 'Win32_LogicalDisk'")
    assert sorted(r["DeviceID"] for r in all_elements) == ["C:", "D:"]
    big = ro_store.exec_query(NS, "select * from win32_logicaldisk where FreeSpace > 60000000000")
    assert [r["DeviceID"] for r in big] == ["C:"]


def test_exec_query_errors(ro_store: CimStore) -> None:
    with pytest.raises(CimError) as exc:
        ro_store.exec_query(NS, "SELECT * FROM Win32_Service", language="CQL")
    assert exc.value.status == CimStatus.QUERY_LANGUAGE_NOT_SUPPORTED
    with pytest.raises(CimError) as exc:
        ro_store.exec_query(NS, "SELECT * FROM Win32_Nothing")
    assert exc.value.status == CimStatus.INVALID_CLASS
    for bad in ("SELECT Bogus FROM Win32_Service", "SELECT * FROM Win32_Service WHERE Bogus = 1", "SELECT"):
        with pytest.raises(CimError) as exc:
            ro_store.exec_query(NS, bad)
        assert exc.value.status == CimStatus.INVALID_QUERY


def test_exec_query_associators_and_references(ro_store: CimStore) -> None:
    deps = ro_store.exec_query(
        NS, 'ASSOCIATORS OF {Win32_Service.Name="RpcSs"} WHERE AssocClass=Win32_DependentService Role=Antecedent'
    )
    names = {d["Name"] for d in deps}
    assert {"WinRM", "Winmgmt", "Spooler", "BITS"} <= names and "RpcEptMapper" not in names
    needs = ro_store.exec_query(NS, "ASSOCIATORS OF {Win32_Service='RpcSs'} WHERE ResultRole = Antecedent")
    assert {d["Name"] for d in needs} == {"RpcEptMapper", "DcomLaunch"}
    keys = ro_store.exec_query(NS, "ASSOCIATORS OF {Win32_Service='RpcSs'} WHERE ResultRole = Antecedent KeysOnly")
    assert all(set(k.properties) == {"Name"} for k in keys)
    refs = ro_store.exec_query(NS, "REFERENCES OF {Win32_Service.Name='Dhcp'}")
    assert {r.classname for r in refs} == {"Win32_DependentService"} and len(refs) == 2
    refs = ro_store.exec_query(NS, "REFERENCES OF {Win32_Service.Name='Dhcp'} WHERE Role = Dependent")
    assert len(refs) == 1 and refs[0]["Antecedent"].keybindings["Name"] == "nsi"
    req = ro_store.exec_query(
        NS, "ASSOCIATORS OF {Win32_Service.Name='Dhcp'} WHERE RequiredAssocQualifier = Association"
    )
    assert {d["Name"] for d in req} == {"nsi", "WinHttpAutoProxySvc"}
    assert (
        ro_store.exec_query(NS, "ASSOCIATORS OF {Win32_Service.Name='Dhcp'} WHERE RequiredQualifier = Abstract") == []
    )
    with pytest.raises(CimError) as exc:
        ro_store.exec_query(NS, "ASSOCIATORS OF {Win32_Service.Name='Dhcp'} WHERE ClassDefsOnly")
    assert exc.value.status == CimStatus.NOT_SUPPORTED
    with pytest.raises(CimError) as exc:
        ro_store.exec_query(NS, "REFERENCES OF {Win32_Service.Name='NoSuch'}")
    assert exc.value.status == CimStatus.NOT_FOUND
    with pytest.raises(CimError) as exc:
        ro_store.exec_query(NS, "REFERENCES OF {Win32_Nothing.Name='x'}")
    assert exc.value.status == CimStatus.INVALID_CLASS

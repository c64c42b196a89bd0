"""Every problem of a row, and the plan's counts: a row under each of its reasons, each row once in
the totals (no I/O)."""

from __future__ import annotations

from pathlib import Path

from marketo_provider.api import ObjectType
from marketo_provider.api.fields import Field, Verdict
from marketo_provider.sources import Source, source_parts
from marketo_provider.sources.checks import RowProblems, RowRules, empty_key
from marketo_provider.sources.chunks import CHUNK_BYTES, Columns, record_chunks
from marketo_provider.sources.report import CheckReport

FIELDS = (
    Field("email", "email", 255, "Email Address"),
    Field("leadScore", "integer", None, "Lead Score"),
    Field("lastSeen", "datetime", None, "Last Seen"),
    Field("numberOfEmployees", "integer", None, "Num Employees"),
)


def rules() -> RowRules:
    return RowRules(FIELDS, (0,), ("email",), empty_key(ObjectType.LEADS, ["email"]), ",")


def test_every_problem_of_a_row_in_marketos_order() -> None:
    rows = [
        ["not-an-email", "n/a", "2026-03-14", "10"],  # fails, and would be warned
        ["b@example.com", "1", "2026-03-14", "12"],  # good: a W3C date-only datetime
        ["", "1", "2026-02-30", "9999999999"],  # an empty key, an impossible date, past 32 bits
        ["also-bad", "2", "2026", ""],  # warned only
        [],  # a blank line: no row
        ["d@example.com", "3"],  # another width
    ]
    found = rules().problems(rows)
    assert sorted(found) == [0, 2, 3, 5]
    assert [p.reason for p in found[0].problems] == [
        "Invalid email address",
        "Invalid data type in field Lead Score",
    ]
    assert (found[0].verdict, found[0].reason, found[0].certain) == (
        Verdict.FAILS,
        "Invalid data type in field Lead Score",
        True,
    )
    assert [p.reason for p in found[2].problems] == [
        "Lookup field 'email' is required and has no value",
        "Invalid data type in field Last Seen",
        "Invalid data type in field Num Employees (past 32 bits)",
    ]
    assert found[2].reason == "Lookup field 'email' is required and has no value"
    assert (found[3].verdict, found[3].certain) == (Verdict.WARNS, False)
    assert [p.reason for p in found[5].problems] == ["Invalid row: 2 values for 4 columns"]


def test_a_row_counts_under_every_reason_and_once_in_the_totals() -> None:
    rows = [
        ["not-an-email", "n/a", "2026-03-14", "10"],
        ["b@example.com", "1", "2026-03-14", "12"],
        ["", "1", "2026-02-30", "9999999999"],
        ["also-bad", "2", "2026", ""],
        ["c@example.com", "x", "2026-03-14 10:00", ""],
    ]
    report = CheckReport()
    for _, problems in sorted(rules().problems(rows).items()):
        report.add(problems, None)
    assert dict(report.failures) == {
        "Invalid data type in field Lead Score": 2,
        "Lookup field 'email' is required and has no value": 1,
        "Invalid data type in field Last Seen": 2,
        "Invalid data type in field Num Employees (past 32 bits)": 1,
    }
    assert dict(report.warnings) == {"Invalid email address": 2}  # one of the two rows also fails
    assert (report.rows_failing, report.rows_certain_to_fail, report.rows_warned) == (3, 3, 1)
    plan = report.to_json()
    assert (plan["rows_predicted_to_fail"], plan["rows_certain_to_fail"], plan["rows_predicted_warned"]) == (
        3,
        3,
        1,
    )
    assert plan["failures"]["Invalid data type in field Lead Score"]["verdict"] == "fails"
    assert (
        plan["failures"]["Invalid data type in field Num Employees (past 32 bits)"]["verdict"] == "may_fail"
    )
    assert plan["warnings"]["Invalid email address"]["rows"] == 2
    assert report.lines()[0].startswith("2 rows fail: Invalid data type in field Lead Score")


def test_a_reason_keeps_one_verdict_whichever_row_comes_first() -> None:
    # Two fields of one display name, of types whose bad values have different verdicts.
    twins = (Field("email", "email"), Field("a", "integer", None, "Size"), Field("b", "float", None, "Size"))
    twin_rules = RowRules(twins, (0,), ("email",), empty_key(ObjectType.LEADS, ["email"]), ",")
    reason = "Invalid data type in field Size"
    float_first = [["a@x.io", "1", "big"], ["b@x.io", "big", "1"]]
    integer_first = [["b@x.io", "big", "1"], ["a@x.io", "1", "big"]]
    for rows, first, then in ((float_first, "may_fail", "fails"), (integer_first, "fails", "may_fail")):
        report = CheckReport()
        for _, problems in sorted(twin_rules.problems(rows).items()):
            report.add(problems, None)
        later = f"{reason} ({then.replace('_', ' ')})"
        assert dict(report.failures) == {reason: 1, later: 1}
        assert {r: v.value for r, v in report.verdicts.items()} == {reason: first, later: then}
        assert report.rows_failing == 2


def test_a_single_problem_is_still_counted() -> None:
    report = CheckReport()
    problem = rules().problems([["not-an-email", "1", "", ""]])[0].problems[0]
    report.add(problem, None)
    report.add(RowProblems((problem,)), None)
    assert (report.rows_warned, report.warnings["Invalid email address"]) == (2, 2)


def test_a_plain_chunk_is_split_into_columns_with_its_longest_line() -> None:
    from marketo_provider.sources.chunks import _columns_of_plain

    split = _columns_of_plain("a@x.io,1,2026,\r\nb@x.io,22,2026-03-14,7\r\n", ",", 4)
    assert split is not None
    columns, n = split
    assert n == 2 and isinstance(columns, Columns) and columns.longest == len("b@x.io,22,2026-03-14,7")
    assert list(columns) == [("a@x.io", "b@x.io"), ("1", "22"), ("2026", "2026-03-14"), ("", "7")]
    assert _columns_of_plain("a,b\nc\n", ",", 2) is None  # a record of another width
    # Lines of uneven widths whose values add up to whole records are no columns either.
    assert _columns_of_plain("a,b\nc,d,e,f\n", ",", 3) is None
    assert _columns_of_plain("a,b,c,d\ne,f\n", ",", 3) is None
    lengths = (Field("email", "email"), Field("code", "string", 3, "Code"), Field("notes", "text"))
    rules = RowRules(lengths, (0,), ("email",), empty_key(ObjectType.LEADS, ["email"]), ",")
    for text, bad in (("a@x.io,abc,n\nb@x.io,ab,note\n", []), ("a@x.io,abcd,n\nb@x.io,ab,note\n", [0])):
        split = _columns_of_plain(text, ",", 3)
        assert split is not None
        assert sorted(rules.column_problems(split[0], {}, [])) == bad


def test_chunks_of_a_part_read_every_record_plain_or_quoted(tmp_path: Path) -> None:
    """Chunks of about a MiB: plain ones split in C, quoted ones read by the csv module, a last
    record without a line break; every record read once, in order, with the line it starts on."""
    lines = ["email,firstName,leadScore\n"]
    expected: list[tuple[int, list[str]]] = []
    line = 1
    for i in range(100_000):
        if 20_000 <= i < 20_050:
            record = [f"q{i}@x.io", f"Line one\nline two, {i}", str(i)]
            lines.append(f'{record[0]},"Line one\nline two, {i}",{i}\n')
        else:
            record = [f"p{i}@x.io", f"Name {i}", str(i)]
            lines.append(",".join(record) + "\n")
        line += 1
        expected.append((line, record))
        line += record[1].count("\n")
    lines[-1] = lines[-1].rstrip("\n")  # the last record has no line break
    path = tmp_path / "leads.csv"
    path.write_text("".join(lines))
    assert path.stat().st_size > 2 * CHUNK_BYTES
    fields = (Field("email", "email"), Field("firstName", "string"), Field("leadScore", "integer"))
    rules = RowRules(fields, (0,), ("email",), empty_key(ObjectType.LEADS, ["email"]), ",")
    read: list[tuple[int, list[str]]] = []
    plain = chunks = 0
    with source_parts(Source.of(str(path), max_part_bytes=9_000_000)) as parts:
        for part in parts:
            for chunk in record_chunks(part, rules):
                plain += isinstance(chunk.columns, Columns)
                chunks += 1
                assert chunk.n == len(chunk.columns[0]) and not chunk.found and not chunk.blank
                read += [
                    (s + 2, list(r))
                    for s, r in zip(chunk.starts, zip(*chunk.columns, strict=True), strict=True)
                ]
    assert read == expected
    assert 2 <= plain < chunks  # the chunks without quotes were split in C, the other read by csv


def test_lines_of_uneven_widths_are_each_found_though_their_values_add_up(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("email,leadScore,lastSeen\na@x.io,1\nb@x.io,2,2026-03-14,extra\nc@x.io,3,2026-03-14\n")
    three = FIELDS[:3]
    rules = RowRules(three, (0,), ("email",), empty_key(ObjectType.LEADS, ["email"]), ",")
    with source_parts(Source.of(str(path))) as parts:
        (chunk,) = [chunk for part in parts for chunk in record_chunks(part, rules)]
    assert sorted(chunk.found) == [0, 1]  # both lines of another width, the third one good
    assert [p.reason for p in chunk.found.values()] == [
        "Invalid row: 2 values for 3 columns",
        "Invalid row: 4 values for 3 columns",
    ]

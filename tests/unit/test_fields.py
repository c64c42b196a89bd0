"""Marketo's field types and the values each takes (Adobe's Field Types page), without I/O."""

from __future__ import annotations

import pytest

from marketo_provider.api.fields import (
    Field,
    Verdict,
    canonical_names,
    column_problems,
    fields_of_describe,
    value_problem,
)

CASES = [
    # dataType, good values, bad values, verdict of a bad one
    ("integer", ["10", "-3", "+7", "2147483647"], ["n/a", "1.5", "2147483648", "1e3"], Verdict.FAILS),
    ("score", ["0", "99"], ["high", "9.5"], Verdict.MAY_FAIL),
    ("percent", ["15"], ["15%", "12.5"], Verdict.MAY_FAIL),
    ("float", ["10.4", "-0.5", ".5", "3"], ["heavy", "1,5", "1e5"], Verdict.MAY_FAIL),
    ("currency", ["1200.00", "99"], ["1,200", "$5"], Verdict.MAY_FAIL),
    ("boolean", ["true", "FALSE"], ["yes", "1", "t"], Verdict.MAY_FAIL),
    (
        "date",
        ["2010-05-07", "1990-12-31"],
        ["31/12/1990", "2010-5-7", "2010-13-01", "20100507"],
        Verdict.MAY_FAIL,
    ),
    (
        "datetime",
        ["2010-05-07T15:41:32-05:00", "2010-05-07T15:41:32Z", "2010-05-07 15:41"],
        ["yesterday", "2010-05-07T25"],
        Verdict.MAY_FAIL,
    ),
    (
        "url",
        ["http://example.com/", "https://x.io/a?b=c"],
        ["example.com", "www.example.com"],
        Verdict.MAY_FAIL,
    ),
    ("email", ["ann@example.com"], ["not-an-email", "a@b"], Verdict.WARNS),
]


@pytest.mark.parametrize(("data_type", "good", "bad", "verdict"), CASES, ids=[c[0] for c in CASES])
def test_values_of_each_type(data_type: str, good: list[str], bad: list[str], verdict: Verdict) -> None:
    field = Field("f", data_type, display_name="The Field")
    assert [value_problem(field, v) for v in [*good, ""]] == [None] * (len(good) + 1)
    problems = [value_problem(field, v) for v in bad]
    assert all(
        p is not None and p.verdict is (Verdict.MAY_FAIL if v == "2147483648" else verdict)
        for p, v in zip(problems, bad, strict=True)
    ), problems
    if verdict is not Verdict.WARNS:
        assert all(p is not None and p.reason == "Invalid data type in field The Field" for p in problems)
    # A column at a time finds the same values, in order, with good ones around them.
    values = [*good, *bad, "", *good]
    found = [(i, p.reason) for i, p in column_problems(field, values)]
    expected = [(i, p.reason) for i, v in enumerate(values) if (p := value_problem(field, v)) is not None]
    assert sorted(found) == expected


def test_lengths() -> None:
    short = Field("code", "string", 5, "Code")
    assert value_problem(short, "ABCDE") is None
    problem = value_problem(short, "ABCDEF")
    assert problem is not None and (problem.verdict, problem.reason) == (
        Verdict.MAY_FAIL,
        "Value too long for field Code",
    )
    assert value_problem(Field("n", "string"), "x" * 255) is None and value_problem(
        Field("n", "string"), "x" * 256
    )
    text = Field("notes", "text")
    assert value_problem(text, "é" * 15_000) is None  # 30,000 bytes
    assert value_problem(text, "é" * 15_001) is not None
    assert [i for i, _ in column_problems(short, ["ok", "TOO-LONG", "fine"])] == [1]


def test_values_with_line_breaks_are_checked_one_by_one() -> None:
    field = Field("leadScore", "integer")
    assert [i for i, _ in column_problems(field, ["1", "two\nlines", "3"])] == [1]


def test_describe_answers_and_names_in_any_case() -> None:
    fields = fields_of_describe(
        [
            {
                "fields": [
                    {"name": "email", "dataType": "email", "length": 255, "displayName": "Email Address"},
                    {"x": 1},
                ]
            }
        ]
    )
    assert fields == {"email": Field("email", "email", 255, "Email Address")}
    known = ["firstName", "lastName", "email", "company", "Company"]
    assert canonical_names(["FirstName", "LASTNAME", "email", "COMPANY", "Nope"], known) == {
        "FirstName": "firstName",
        "LASTNAME": "lastName",
    }

"""Marketo's field types and the values each takes (Adobe's Field Types page), without I/O."""

from __future__ import annotations

import datetime

import pytest

from marketo_provider.api.columns import GoodValues, column_problems
from marketo_provider.api.fields import (
    Field,
    Verdict,
    canonical_names,
    fields_of_describe,
    value_problem,
)
from marketo_provider.testing.catalog import FieldSpec, value_error, value_warning

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
        ["2010-05-07T15:41:32-05:00", "2010-05-07T15:41:32Z", "2010-05-07", "2010"],
        ["yesterday", "2010-05-07T25", "2010-05-07 15:41"],
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
        assert all(
            p is not None
            and p.reason
            == (
                "Invalid data type in field The Field (past 32 bits)"
                if v == "2147483648"
                else "Invalid data type in field The Field"
            )
            for p, v in zip(problems, bad, strict=True)
        )
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


# Dates and times: the six levels of the W3C date-time profile Adobe's Field Types page names, with
# calendar-valid parts; and the forms Adobe is silent on that W3C does not allow.
W3C_LEVELS = [
    "2026",  # YYYY
    "2026-03",  # YYYY-MM
    "2026-03-14",  # YYYY-MM-DD: what a CRM exports for a midnight value
    "2026-03-14T10:07+01:00",  # YYYY-MM-DDThh:mmTZD
    "2026-03-14T10:07:59Z",  # YYYY-MM-DDThh:mm:ssTZD
    "2026-03-14T10:07:59.123456-05:00",  # YYYY-MM-DDThh:mm:ss.sTZD
    "2010-05-07T15:41:32-05:00",  # Adobe's example
]
GOOD_DATETIMES = [
    *W3C_LEVELS,
    "2026-03-14T10:07",  # no offset: Adobe calls it best practice, ISO 8601 has local times
    "2026-03-14T10:07:59.5",
    "2026-03-14T00:00:00Z",
    "2026-03-14T23:59:59Z",
    "2026-12-31T23:59:59.9+14:00",
    "2026-01-01T00:00-12:00",
    "2026-03-14T10:07+05:45",
    "2024-02-29T12:00:00Z",
    "2000-02-29",
    " 2026-03-14 ",
]
IMPOSSIBLE_DATETIMES = [
    "2026-02-29",  # 2026 is no leap year
    "2026-02-30",
    "2026-04-31",
    "1900-02-29T00:00:00Z",  # divisible by 100, not by 400
    "2026-00",
    "2026-13",
    "2026-03-00",
    "2026-03-32",
    "2026-03-14T24:00:00Z",
    "2026-03-14T25:00Z",
    "2026-03-14T10:61Z",
    "2026-03-14T10:07:60Z",
    "2026-03-14T10:07+15:00",
    "2026-03-14T10:07-12:30",
    "2026-03-14T10:07+05:60",
]
SILENT_DATETIMES = [
    "2026-03-14 10:07:59",  # a space for the T
    "2026-03-14T10:07:59,5Z",  # a comma before the fraction
    "2026-03-14T10:07+0100",  # an offset without its colon
    "2026-03-14T10:07+01",  # an offset without its minutes
    "2026-03-14T10Z",  # hours alone
    "2026-03-14t10:07z",
    "2026-03-14T10:07:59.Z",
    "20260314",
    "2026-3-14",
    "26-03-14",
    "14/03/2026",
    "\uff12\uff10\uff12\uff16-03-14",  # not ASCII digits
]


def test_datetime_takes_every_w3c_level_with_calendar_parts() -> None:
    field = Field("lastSeen", "datetime", display_name="Last Seen")
    assert [v for v in GOOD_DATETIMES if value_problem(field, v) is not None] == []
    for value in [*IMPOSSIBLE_DATETIMES, *SILENT_DATETIMES]:
        problem = value_problem(field, value)
        assert problem is not None, value
        assert (problem.verdict, problem.reason) == (Verdict.MAY_FAIL, "Invalid data type in field Last Seen")


def test_date_takes_only_real_calendar_dates() -> None:
    field = Field("dateOfBirth", "date", display_name="Date of Birth")
    good = ["2026-03-14", "2024-02-29", "2000-02-29", "1600-02-29", "0000-02-29", "2026-04-30", "9999-12-31"]
    bad = [
        "2026-02-29", "1900-02-29", "2100-02-29", "2026-02-30", "2026-04-31", "2026-06-31", "2026-09-31",
        "2026-11-31", "2026-00-10", "2026-13-01", "2026-01-00", "2026-01-32",
        "2026", "2026-03", "2026-03-14T00:00:00Z", "2026-03-14 00:00", "20260314",
    ]  # fmt: skip
    assert [v for v in good if value_problem(field, v) is not None] == []
    assert [v for v in bad if value_problem(field, v) is None] == []


def test_leap_days_of_every_year_and_every_day_of_sample_years() -> None:
    date_field = Field("d", "date")
    datetime_field = Field("t", "datetime")
    for year in range(10_000):
        value = f"{year:04d}-02-29"
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        assert (value_problem(date_field, value) is None) is leap, value
        assert (value_problem(datetime_field, value + "T00:00Z") is None) is leap, value
    for year in (1, 1900, 1999, 2000, 2024, 2026, 2100, 2400, 9999):
        for month in range(0, 14):
            for day in range(0, 33):
                value = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    datetime.date(year, month, day)
                    real = True
                except ValueError:
                    real = False
                assert (value_problem(date_field, value) is None) is real, value


def test_times_and_offsets_within_their_ranges() -> None:
    field = Field("t", "datetime")
    for hour in range(0, 30):
        for minute in (0, 59, 60, 99):
            value = f"2026-03-14T{hour:02d}:{minute:02d}:00Z"
            assert (value_problem(field, value) is None) is (hour <= 23 and minute <= 59), value
    for second in range(0, 70):
        assert (value_problem(field, f"2026-03-14T10:00:{second:02d}.5Z") is None) is (second <= 59)
    for hours in range(0, 24):
        for minutes in (0, 30, 45, 59, 60):
            for sign in "+-":
                offset = (hours * 60 + minutes) * (1 if sign == "+" else -1)
                value = f"2026-03-14T10:00{sign}{hours:02d}:{minutes:02d}"
                fits = minutes <= 59 and -12 * 60 <= offset <= 14 * 60
                assert (value_problem(field, value) is None) is fits, value


def test_a_reason_has_one_verdict_whatever_comes_first() -> None:
    field = Field("numberOfEmployees", "integer", display_name="Num Employees")
    text = value_problem(field, "many")
    large = value_problem(field, "9999999999")
    assert text is not None and large is not None
    assert (text.verdict, text.reason) == (Verdict.FAILS, "Invalid data type in field Num Employees")
    assert (large.verdict, large.reason) == (
        Verdict.MAY_FAIL,
        "Invalid data type in field Num Employees (past 32 bits)",
    )
    for values in (["9999999999", "many", "12"], ["many", "9999999999", "12"]):
        found = {values[i]: p for i, p in column_problems(field, values)}
        assert found == {"many": text, "9999999999": large}


VALUES_OF_TYPE = {
    "integer": ["0", "-2147483648", "2147483647", "2147483648", "-2147483649", "0002147483647", "+5", " 7 ",
                "1.0", "1e3", "n/a", "\u0663", "1_000", "--1", "+"],
    "score": ["12", "99999999999999", "1.5", "x"],
    "percent": ["30", "30%", "-4"],
    "float": ["10.4", "-.5", "5.", "3", ".", "1,5", "1e5", "+-1", "\u0661.\u0665"],
    "currency": ["10.40", "1200", "1,200.00", "$5", "-0.01", "-.5", "+.25", ".", "-"],
    "boolean": ["true", "False", "TRUE", "tRuE", "yes", "1", "t", "truth"],
    "date": ["2026-03-14", "2024-02-29", "2026-02-29", "2026-04-31", "2026", "2026-03-14T00:00Z", "14.03.2026"],
    "datetime": [*GOOD_DATETIMES, *IMPOSSIBLE_DATETIMES, *SILENT_DATETIMES],
    "url": ["http://example.com/", "HTTPS://X.IO", "ftp://a", "example.com", "http://", "http:// x"],
    "email": ["ann@example.com", "a@b", "ann@example", "a b@example.com", "a@@example.com", "ann@example.c0m",
              "o'brien@example.ie", "j\u00fcrgen@b\u00fccher.de", "a@b_c.com", "x!y@ex-ample.co.uk", "a@b.c"],
}  # fmt: skip


@pytest.mark.parametrize("data_type", list(VALUES_OF_TYPE))
def test_a_column_at_a_time_finds_what_each_value_alone_does(data_type: str) -> None:
    field = Field("f", data_type, display_name="F")
    values = VALUES_OF_TYPE[data_type]
    column = [*values, "", *reversed(values), *values, "a\nb"]  # repeats, an empty value, a line break
    expected = [(i, p) for i, v in enumerate(column) if (p := value_problem(field, v)) is not None]
    assert expected  # each type has bad values here
    good = GoodValues()
    for _ in range(3):  # values learnt good are not matched again, and bad ones never learnt
        assert list(column_problems(field, column, good)) == expected
    assert good.size > 0 and not good.of(data_type) & {column[i] for i, _ in expected}


def test_values_learnt_good_are_bounded() -> None:
    good = GoodValues(limit=100)
    field = Field("n", "integer")
    for start in range(0, 1000, 50):
        column = [str(start + i % 50) for i in range(200)]
        assert list(column_problems(field, column, good)) == []
    assert good.size == len(good.of("integer")) == 100


@pytest.mark.parametrize("data_type", list(VALUES_OF_TYPE))
def test_predictions_are_what_the_sandbox_refuses(data_type: str) -> None:
    """The sandbox states the same rules in its own code: what pre-flight predicts fails or may fail
    is what it refuses, and an invalid email address what it warns about."""
    field = Field("f", data_type, display_name="F")
    spec = FieldSpec("f", "F", data_type)
    for value in VALUES_OF_TYPE[data_type]:
        problem = value_problem(field, value)
        predicted = problem is not None and problem.verdict.predicted_failure
        assert predicted is (value_error(spec, value) is not None), value
        warned = problem is not None and problem.verdict is Verdict.WARNS
        assert warned is (value_warning(spec, value) is not None), value


@pytest.mark.parametrize("data_type", list(VALUES_OF_TYPE))
def test_a_column_of_values_that_do_not_repeat_is_matched_whole(data_type: str) -> None:
    field = Field("f", data_type, display_name="F")
    values = VALUES_OF_TYPE[data_type]
    column = [*values, "", *(f"{v} {i}" for i, v in enumerate(values)), *(str(i) for i in range(50))]
    expected = [(i, p) for i, v in enumerate(column) if (p := value_problem(field, v)) is not None]
    good = GoodValues()
    assert list(column_problems(field, column, good)) == expected
    assert "f" in good.unique and good.size == 0  # values that do not repeat are not learnt
    assert list(column_problems(field, column, good)) == expected  # matched whole, empty values among them


def test_lengths_cleared_by_the_longest_line_of_a_chunk() -> None:
    short = Field("code", "string", 5, "Code")
    assert list(column_problems(short, ["ABCDEF"], longest=5)) == []  # the caller's bound is trusted
    assert [i for i, _ in column_problems(short, ["ok", "ABCDEF"], longest=6)] == [1]
    assert [i for i, _ in column_problems(Field("n", "text"), ["x" * 30_001], longest=30_001)] == [0]


def test_the_patterns_a_column_is_matched_with_take_only_good_values() -> None:
    """The cheap patterns of a column scan clear only values the rule takes (others are looked at
    alone): checked over random values of the characters that matter to each type whose pattern is
    not the rule's own."""
    import random
    import re

    from marketo_provider.api.columns import _FAST
    from marketo_provider.api.fields import _SHAPES

    rnd = random.Random(26)

    def text(chars: str, most: int) -> str:
        return "".join(rnd.choice(chars) for _ in range(rnd.randint(0, most)))

    values = {
        "integer": lambda: text("+-0123456789", 12) + text("0123456789. a", 2),
        "float": lambda: text("+-.0123456789", 8) + text("0123456789.,e", 2),
        "currency": lambda: text("+-.0123456789", 8) + text("0123456789.,$", 2),
        "email": lambda: text("ab.-_+'%, ", 5) + "@" + text("ab.-_c", 6) + text(".ab1", 4),
    }
    assert {kind for kind, pattern in _FAST.items() if pattern != _SHAPES[kind][0]} == set(values)
    for data_type, make in values.items():
        fast = re.compile(_FAST[data_type])
        field = Field("f", data_type)
        cleared = 0
        for _ in range(30_000):
            value = make()
            if fast.fullmatch(value):
                cleared += 1
                assert value_problem(field, value) is None, (data_type, value)
        assert cleared > 100, data_type


@pytest.mark.parametrize("data_type", ["email", "url", "phone"])
def test_a_typed_value_longer_than_its_describe_length_may_fail_as_the_sandbox_refuses_it(
    data_type: str,
) -> None:
    """Describe gives emails, URLs and phone numbers a length: a value of the right shape but longer
    may fail (Adobe documents lengths for strings and text areas only) and the sandbox refuses it;
    checked a value at a time and a column at a time, with and without the chunk's longest line."""
    good = {"email": "ann@example.com", "url": "http://example.com/", "phone": "111-111-1111"}[data_type]
    longer = {"email": "ann.lee@example.com", "url": "http://example.com/a/b", "phone": "111-111-1111 x 99"}[
        data_type
    ]
    field = Field("f", data_type, len(good), "F")
    spec = FieldSpec("f", "F", data_type, len(good))
    assert value_problem(field, good) is None and value_error(spec, good) is None
    problem = value_problem(field, longer)
    assert problem is not None and problem.verdict is Verdict.MAY_FAIL
    assert problem.reason == "Value too long for field F" == value_error(spec, longer)
    column = [good, longer, "", good]
    for longest in (None, len(longer)):
        assert [(i, p.reason) for i, p in column_problems(field, column, GoodValues(), longest)] == [
            (1, "Value too long for field F")
        ]
    assert list(column_problems(field, column, GoodValues(), len(good))) == []  # the caller's bound

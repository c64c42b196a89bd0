"""Sources as users have them: compressed files, folders and globs of files, files without a
header, renamed columns, and files that are not delimited text at all."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from marketo_provider import api
from marketo_provider.api import FileFormat, MarketoValueError
from marketo_provider.api.targets import header_name_problems, importable_field_objects, why_required
from marketo_provider.sources import Preflight, Source, SourceError, preflight, resolve_source, source_parts
from marketo_provider.sources.header import header_problem

HEADER = b"email,firstName,notes\n"
COLUMNS = ("email", "firstName", "notes")
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def body(first: int, count: int) -> bytes:
    """Records with a quoted, multi-line, quote-holding field every third row."""
    out = []
    for i in range(first, first + count):
        notes = f'"line one\nline ""{i}"""' if i % 3 == 0 else f"note {i}"
        out.append(f"lead{i}@example.com,Name{i},{notes}\n")
    return "".join(out).encode()


def check(source: Source) -> Preflight:
    return preflight(source, object_type="leads", check_columns=False)


def cut(source: Source, resume_at: tuple[int, int] | None = None) -> list[tuple[int, int, int, bytes, str]]:
    with source_parts(source, resume_at=resume_at) as parts:
        return [(p.index, p.source_start, p.source_end, bytes(p.data), p.origin) for p in parts]


def records(
    parts: list[tuple[int, int, int, bytes, str]], header: tuple[str, ...] = COLUMNS
) -> list[list[str]]:
    rows: list[list[str]] = []
    for part in parts:
        parsed = list(csv.reader(io.StringIO(part[3].decode(), newline=""), strict=True))
        assert tuple(parsed[0]) == header
        rows += parsed[1:]
    return rows


def expected(first: int, count: int) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(first, count).decode(), newline="")))


# ---- compressed files ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_compressed_file_gives_the_parts_of_the_plain_file(tmp_path: Path, kind: str) -> None:
    plain = HEADER + body(0, 2000)
    (tmp_path / "leads.csv").write_bytes(plain)
    # named .csv on purpose: the content says it is compressed, not the name
    (tmp_path / "packed.csv").write_bytes(COMPRESS[kind](plain))
    from_plain = cut(Source.of(tmp_path / "leads.csv", max_part_bytes=10_000))
    from_packed = cut(Source.of(tmp_path / "packed.csv", max_part_bytes=10_000))
    assert len(from_packed) >= 3
    assert [p[:4] for p in from_packed] == [p[:4] for p in from_plain]
    assert from_packed[1][
        4
    ] == f"packed.csv decompressed {kind} bytes {from_packed[1][1] + len(HEADER):,}-" + (
        f"{from_packed[1][2] + len(HEADER):,}"
    )
    checked = check(Source.of(tmp_path / "packed.csv", max_part_bytes=10_000))
    assert (checked.parts, checked.records, checked.body_bytes) == (
        len(from_plain),
        2000,
        len(plain) - len(HEADER),
    )
    assert checked.lines == 2000 + 667  # one more line break in every third record


def test_concatenated_gzip_members_are_one_file(tmp_path: Path) -> None:
    (tmp_path / "leads.csv.gz").write_bytes(gzip.compress(HEADER + body(0, 10)) + gzip.compress(body(10, 10)))
    assert records(cut(Source.of(tmp_path / "leads.csv.gz"))) == expected(0, 20)


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    packed = gzip.compress(HEADER + body(0, 5000))
    (tmp_path / "leads.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(SourceError, match=r"leads\.csv\.gz is not a valid gzip file: it ends in the middle"):
        check(Source.of(tmp_path / "leads.csv.gz"))


def test_data_after_the_gzip_stream_is_refused(tmp_path: Path) -> None:
    (tmp_path / "leads.csv.gz").write_bytes(gzip.compress(HEADER + body(0, 5)) + b"not gzip")
    with pytest.raises(SourceError, match="other data after the end of its gzip stream"):
        check(Source.of(tmp_path / "leads.csv.gz"))


NOT_TEXT = [
    ("book.xlsx", b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "looks like an Excel .xlsx workbook"),
    (
        "leads.zip",
        b"PK\x03\x04\x14\x00\x00\x00leads.csv",
        "looks like a zip archive, not delimited text; unzip it",
    ),
    ("book.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 50, "looks like an Excel .xls workbook"),
    ("leads.txt", "email\tname\n".encode("utf-16"), "is UTF-16 text"),
    ("leads.bin", b"email\x00\x01\x02,name\n", "holds NUL bytes"),
    ("leads.csv.zst", b"\x28\xb5\x2f\xfd\x00", "zstd-compressed"),
]


@pytest.mark.parametrize(("filename", "data", "message"), NOT_TEXT, ids=[c[0] for c in NOT_TEXT])
def test_files_that_are_not_text_say_what_they_look_like(
    tmp_path: Path, filename: str, data: bytes, message: str
) -> None:
    (tmp_path / filename).write_bytes(data)
    with pytest.raises(SourceError, match=message) as caught:
        check(Source.of(tmp_path / filename))
    assert "is not UTF-8" not in str(caught.value)


def test_excel_workbook_inside_gzip_is_named_too(tmp_path: Path) -> None:
    (tmp_path / "book.gz").write_bytes(gzip.compress(b"PK\x03\x04xl/workbook.xml"))
    with pytest.raises(SourceError, match=r"looks like an Excel \.xlsx workbook"):
        check(Source.of(tmp_path / "book.gz"))


def test_crlf_right_after_the_first_bytes_is_fine(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(b"email,a\r\nx@example.com,1\r\n")
    assert check(Source.of(tmp_path / "leads.csv")).records == 1


def test_old_mac_line_endings_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(b"email,firstName\ra@example.com,A\rb@example.com,B\r")
    with pytest.raises(SourceError, match=r"old Mac line endings \(CR only\); convert .* to LF or CR LF"):
        check(Source.of(tmp_path / "leads.csv"))
    (tmp_path / "headerless.csv").write_bytes(b"a@example.com,A\rb@example.com,B\r")
    with pytest.raises(SourceError, match="old Mac line endings"):
        check(Source.of(tmp_path / "headerless.csv", columns=["email", "firstName"]))


# ---- quotes ----------------------------------------------------------------------------------


def test_stray_quote_in_an_unquoted_field_is_reported_on_its_line(tmp_path: Path) -> None:
    data = HEADER + body(0, 40) + b'x@example.com,X,a 5" screen\n' + body(40, 40)
    (tmp_path / "leads.csv").write_bytes(data)
    with pytest.raises(
        SourceError, match=re.escape("stray quote in a field on line 56: 'x@example.com,X,a 5\" screen'")
    ):
        check(Source.of(tmp_path / "leads.csv"))


def test_a_carriage_return_alone_outside_quotes_is_refused_on_its_line(tmp_path: Path) -> None:
    # CSV readers (Python's, the sandbox's) end a row at it, the cut does not: the rows would not
    # line up with what pre-flight decided about them
    data = HEADER + body(0, 40) + b"x@example.com,X,half\rway\n" + body(40, 40)
    (tmp_path / "leads.csv").write_bytes(data)
    with pytest.raises(
        SourceError,
        match=re.escape("carriage return without a line feed outside quotes on line 56: ")
        + r".*quote the value that holds it",
    ):
        check(Source.of(tmp_path / "leads.csv"))


def test_a_carriage_return_alone_inside_quotes_is_a_value_and_lines_count_line_feeds(
    tmp_path: Path,
) -> None:
    from marketo_provider.api.fields import Field

    def describe(kind: object, **_: object) -> dict[str, object]:
        types = {n: Field(n, "string") for n in COLUMNS}
        return {
            "fields": list(types),
            "dedupe_fields": [],
            "types": {**types, "email": Field("email", "email")},
        }

    data = HEADER + b'x@example.com,X,"half\rway"\nbad-email,Y,note\r\n' + body(0, 2)
    (tmp_path / "leads.csv").write_bytes(data)
    checked = preflight(Source.of(tmp_path / "leads.csv"), object_type="leads", describe=describe)
    assert checked.records == 4 and checked.checks is not None
    warned = checked.checks.to_json()["warnings"]["Invalid email address"]
    assert warned["first"] == [f"{tmp_path / 'leads.csv'}, line 3"]  # the line the cut counts


def test_stray_quote_in_a_large_file_is_reported_on_its_line(tmp_path: Path) -> None:
    # the quote leaves the rest of the file "inside quotes": the part finds no record boundary
    data = HEADER + body(0, 30) + b'x@example.com,X"Y,note\n' + body(30, 3000)
    (tmp_path / "leads.csv").write_bytes(data)
    with pytest.raises(SourceError, match=r"stray quote in a field on line 42"):
        check(Source.of(tmp_path / "leads.csv", max_part_bytes=20_000))


def test_unterminated_quote_in_a_middle_file_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(HEADER + body(0, 10))
    (tmp_path / "b.csv").write_bytes(HEADER + body(10, 5) + b'y@example.com,Y,"never closed\n' + body(15, 3))
    (tmp_path / "c.csv").write_bytes(HEADER + body(100, 10))
    (tmp_path / "d.csv").write_bytes(HEADER + b'z@example.com,Z,"open\n' + b"a@example.com,A,plain\n")
    with pytest.raises(
        SourceError, match=r"d\.csv has an unterminated quote in the record starting on line 2"
    ):
        check(Source.of(f"{tmp_path}/d.csv"[:-5] + "[cd].csv"))
    with pytest.raises(
        SourceError,
        match=r"b\.csv has a stray quote in a field on line 9 \(in the record starting on line 8\)",
    ):
        check(Source.of(f"{tmp_path}/"))


# ---- many files ------------------------------------------------------------------------------


def test_folder_of_files_with_headers_is_one_source(tmp_path: Path) -> None:
    (tmp_path / "part-2.csv").write_bytes(HEADER + body(200, 300))
    (tmp_path / "part-0.csv").write_bytes(HEADER + body(0, 100)[:-1])  # no final line break
    (tmp_path / "part-1.csv").write_bytes(b"")  # empty files are fine
    (tmp_path / "part-1b.csv").write_bytes(HEADER)  # so are header-only ones
    (tmp_path / "_SUCCESS").write_bytes(b"")  # markers are left out
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part-3.csv").write_bytes(HEADER.replace(b"\n", b"\r\n") + body(500, 50))
    source = Source.of(f"{tmp_path}/", max_part_bytes=5_000)
    parts = cut(source)
    assert records(parts) == expected(0, 100) + expected(200, 300) + expected(500, 50)
    spanning = [p for p in parts if "; " in p[4]]
    assert spanning and spanning[0][4].startswith("part-0.csv bytes ")
    assert "part-2.csv bytes 22-" in spanning[0][4]
    checked = check(source)
    assert (checked.parts, checked.records) == (len(parts), 450)


def test_glob_reads_matching_files_in_sorted_order(tmp_path: Path) -> None:
    for k in (2, 0, 1):
        (tmp_path / f"data_0_0_{k}.csv.gz").write_bytes(gzip.compress(HEADER + body(k * 10, 10)))
    (tmp_path / "other.csv").write_bytes(b"unrelated\n")
    assert records(cut(Source.of(f"{tmp_path}/data_*.csv.gz"))) == expected(0, 30)


def test_a_file_with_another_header_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(HEADER + body(0, 3))
    (tmp_path / "b.csv").write_bytes(b"email,lastName,notes\n" + body(3, 3))
    with pytest.raises(
        SourceError, match=r"the header of .*b\.csv differs from the first file's: .*'lastName'"
    ):
        check(Source.of(f"{tmp_path}/"))


def test_no_matching_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no files match the import source .*/data_\*\.csv\.gz"):
        check(Source.of(f"{tmp_path}/data_*.csv.gz"))
    with pytest.raises(SourceError, match=r"import source folder .* has no files"):
        check(Source.of(f"{tmp_path}/"))
    with pytest.raises(SourceError, match=r"import source folder .*/nope/ does not exist"):
        check(Source.of(f"{tmp_path}/nope/"))
    with pytest.raises(SourceError, match="is a folder; name a file, or end the location with '/'"):
        check(Source.of(tmp_path))


def test_every_file_empty_needs_a_header(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"")
    (tmp_path / "b.csv").write_bytes(b"")
    with pytest.raises(SourceError, match=r"every file of import source .* is empty"):
        check(Source.of(f"{tmp_path}/"))
    assert check(Source.of(f"{tmp_path}/", columns=COLUMNS)).empty


# ---- files without a header ------------------------------------------------------------------


def test_headerless_gzip_files_with_columns(tmp_path: Path) -> None:
    for k in range(4):
        (tmp_path / f"data_0_0_{k}.csv.gz").write_bytes(gzip.compress(body(k * 50, 50)))
    source = Source.of(f"{tmp_path}/", columns=COLUMNS, max_part_bytes=3_000)
    parts = cut(source)
    assert all(p[3].startswith(HEADER) for p in parts)
    assert records(parts) == expected(0, 200)
    assert check(source).records == 200


def test_columns_given_for_files_that_have_a_header(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(HEADER + body(0, 3))
    with pytest.raises(
        SourceError, match=r"starts with a header line \(email, firstName, notes\) although columns="
    ):
        check(Source.of(tmp_path / "leads.csv", columns=COLUMNS))


# ---- column mapping --------------------------------------------------------------------------


def test_mapping_renames_only_the_header(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_bytes(b"Email Address,First Name,notes\r\n" + body(0, 20))
    source = Source.of(
        tmp_path / "crm.csv", column_mapping={"Email Address": "email", "First Name": "firstName"}
    )
    parts = cut(source)
    assert parts[0][3].startswith(b"email,firstName,notes\r\n")
    assert records(parts) == expected(0, 20)
    checked = check(source)
    assert checked.header.names == COLUMNS
    assert checked.header.source_names == ("Email Address", "First Name", "notes")


def test_required_columns_apply_to_mapped_names(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_bytes(b"Email Address,First Name\n")
    source = Source.of(tmp_path / "crm.csv", column_mapping={"First Name": "firstName"})
    with pytest.raises(SourceError, match=r"no 'email' column \(after column_mapping\), the lookup field"):
        check(source)


MAPPING_ERRORS = [
    (
        {"E-mail": "email"},
        "column_mapping names columns that .* does not have: 'E-mail' \\(is 'Email' meant\\?\\)",
    ),
    ({"Email": "firstName"}, "gives .* the column 'firstName' twice: from 'Email' and 'firstName'"),
]


@pytest.mark.parametrize(("mapping", "message"), MAPPING_ERRORS)
def test_mapping_that_does_not_fit_the_header(tmp_path: Path, mapping: dict[str, str], message: str) -> None:
    (tmp_path / "crm.csv").write_bytes(b"Email,firstName\n")
    with pytest.raises(SourceError, match=message):
        check(Source.of(tmp_path / "crm.csv", column_mapping=mapping))


SOURCE_ERRORS = [
    ({"columns": []}, "columns is empty"),
    ({"columns": "email,firstName"}, "columns must be a list of column names"),
    ({"columns": ["email", "email"]}, "columns names these columns more than once: email"),
    ({"columns": ["email", " name"]}, "columns has column names with leading or trailing spaces"),
    ({"column_mapping": {"A": "email", "B": "email"}}, "maps both 'A' and 'B' to 'email'"),
    ({"column_mapping": {"A": " email"}}, "without surrounding spaces"),
    ({"column_mapping": ["A"]}, "column_mapping must be a mapping"),
    ({"max_part_bytes": 10_000_001}, "under 10,000,000 bytes"),
    ({"max_part_bytes": 0}, "max_part_bytes must be a positive whole number"),
    ({"file_format": "xlsx"}, "file_format 'xlsx' is not one of"),
]


@pytest.mark.parametrize(("kwargs", "message"), SOURCE_ERRORS, ids=[m for _, m in SOURCE_ERRORS])
def test_source_is_checked_when_built(kwargs: dict, message: str) -> None:
    with pytest.raises(MarketoValueError, match=message):
        Source.of("leads.csv", **kwargs)


def test_settings_beside_a_source_fill_in_or_must_agree(tmp_path: Path) -> None:
    (tmp_path / "leads.tsv").write_bytes(HEADER.replace(b",", b"\t") + body(0, 3).replace(b",", b"\t"))
    source = Source.of(tmp_path / "leads.tsv", file_format="tsv")
    # Left out beside it (the operator's defaults): the source's own setting holds.
    assert resolve_source(source).file_format is FileFormat.TSV
    assert preflight(resolve_source(source), object_type="leads", check_columns=False).records == 3
    # Given in both places and the same: fine.
    assert resolve_source(source, file_format="TSV").file_format is FileFormat.TSV
    # Given beside only: taken.
    resolved = resolve_source(source, columns=None, max_part_bytes=5_000, conn_id="fs_default")
    assert resolved.max_part_bytes == 5_000 and resolved.conn_id == "fs_default"
    # Given in both places and different: an error naming both.
    with pytest.raises(
        SourceError, match="file_format is given both on the source \\('tsv'\\) and beside it \\('csv'\\)"
    ):
        resolve_source(source, file_format="csv")
    plain = Source.of(tmp_path / "leads.tsv")
    assert resolve_source(plain, file_format="tsv").file_format is FileFormat.TSV


def test_columns_and_mapping_beside_a_source_are_used(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(body(0, 3))  # no header line
    resolved = resolve_source(
        Source.of(f"{tmp_path}/"), columns=list(COLUMNS), column_mapping={"firstName": "firstName"}
    )
    assert isinstance(resolved, Source) and resolved.columns == COLUMNS
    assert preflight(resolved, object_type="leads", check_columns=False).records == 3
    with pytest.raises(SourceError, match="columns is given both on the source"):
        resolve_source(Source.of(f"{tmp_path}/", columns=COLUMNS), columns=["email"])


# ---- resuming --------------------------------------------------------------------------------


def test_resume_mid_way_through_compressed_files_sends_no_part_twice(tmp_path: Path) -> None:
    (tmp_path / "data_0.csv.gz").write_bytes(gzip.compress(body(0, 300)))
    (tmp_path / "data_1.csv.bz2").write_bytes(bz2.compress(body(300, 300)[:-1]))
    (tmp_path / "data_2.csv").write_bytes(b"")
    (tmp_path / "data_3.csv").write_bytes(body(600, 300))  # plain: skipped by its size
    (tmp_path / "data_4.csv.xz").write_bytes(lzma.compress(body(900, 300)))
    source = Source.of(f"{tmp_path}/", columns=COLUMNS, max_part_bytes=4_000)
    full = cut(source)
    assert len(full) > 10
    for k in range(1, len(full)):
        resumed = cut(source, resume_at=(k, full[k][1]))
        assert resumed == full[k:]
        assert b"".join(p[3] for p in full[:k] + resumed) == b"".join(p[3] for p in full)
    assert records(full) == expected(0, 1200)


def test_resume_of_a_single_plain_file_seeks(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_bytes(HEADER + body(0, 500))
    source = Source.of(tmp_path / "leads.csv", max_part_bytes=4_000)
    full = cut(source)
    assert full[0][1] == 0  # offsets count body bytes only
    assert cut(source, resume_at=(3, full[3][1])) == full[3:]


def test_resume_notices_a_changed_source(tmp_path: Path) -> None:
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(HEADER + body(0, 300)))
    source = Source.of(f"{tmp_path}/", max_part_bytes=4_000)
    full = cut(source)
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(HEADER + b"x@example.com,X,shifted\n" + body(0, 300)))
    with pytest.raises(SourceError, match="changed since earlier parts were submitted"):
        cut(source, resume_at=(2, full[2][1]))
    with (
        pytest.raises(SourceError, match="its header differs"),
        source_parts(source, expected_header=["email"]),
    ):
        pass


def test_header_rules_live_in_api() -> None:
    assert header_name_problems(["email", "email"], "csv") == ["names these columns more than once: email"]
    problem = header_problem(["email", ""], FileFormat.CSV, "leads.csv")
    assert problem is not None and str(problem).startswith("the header of leads.csv has empty column names")
    assert importable_field_objects("program_members") == (
        api.ObjectType.PROGRAM_MEMBERS,
        api.ObjectType.LEADS,
    )
    assert "dedupe field" in why_required("custom_objects")


def test_bytes_that_are_not_utf8_are_placed_in_their_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(HEADER + body(0, 50)))
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(HEADER + body(50, 7) + b"z@example.com,Jos\xe9,x\n"))
    with pytest.raises(
        SourceError,
        match=r"is not UTF-8: b\.csv\.gz, line 11, decompressed gzip byte 307 \(b'56\\nz@example\.com,Jos\\xe9,x\\n'\)",
    ):
        check(Source.of(f"{tmp_path}/"))


# ---- records longer than a part, links and loops --------------------------------------------------


def test_a_closed_quoted_field_longer_than_a_part_runs_past_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(
        b'email,notes\nann@example.com,"' + b"x" * (20 * 1024 * 1024) + b'"\nbob@example.com,hi\n'
    )
    with pytest.raises(SourceError, match=r"the record starting on line 2 runs past 9,500,000 bytes"):
        check(Source.of(path))


def test_a_link_loop_under_a_glob_is_named(tmp_path: Path) -> None:
    (tmp_path / "loop" / "sub").mkdir(parents=True)
    (tmp_path / "loop" / "a.csv").write_bytes(HEADER + body(0, 1))
    (tmp_path / "loop" / "sub" / "back").symlink_to(tmp_path / "loop")
    message = rf"import source .* has a link loop: {tmp_path}/loop/sub/back leads back to {tmp_path}/loop, a folder it is in"
    with pytest.raises(SourceError, match=message):
        check(Source.of(f"{tmp_path}/loop/**/*.csv"))
    with pytest.raises(SourceError, match=message):
        check(Source.of(f"{tmp_path}/loop/"))
    (tmp_path / "loop" / "sub" / "back").unlink()
    (tmp_path / "loop" / "self").symlink_to(tmp_path / "loop" / "self")
    with pytest.raises(
        SourceError, match=r"link loop: .*/loop/self cannot be resolved \(too many levels of links\)"
    ):
        check(Source.of(f"{tmp_path}/loop/"))


def test_a_file_reached_through_links_is_read_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "2024-01").mkdir(parents=True)
    (data / "2024-01" / "leads.csv").write_bytes(HEADER + body(0, 5))
    (data / "latest").symlink_to(data / "2024-01")  # a folder beside the real one
    (data / "current.csv").symlink_to(data / "2024-01" / "leads.csv")  # a file beside the real one
    for location in (f"{data}/", f"{data}/**/*.csv", f"{data}/*/*.csv", f"{data}/**"):
        assert records(cut(Source.of(location))) == expected(0, 5), location


def test_glob_pieces_match_as_glob_does(tmp_path: Path) -> None:
    for name in ("a.csv", "x/b.csv", "x/y/c.csv", "x/y/d.txt", "_tmp/e.csv", ".hidden/f.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(HEADER + body(0, 1))

    def listed(pattern: str) -> list[str]:
        from marketo_provider.sources.listing import list_files

        return [f.label for f in list_files(Source.of(f"{tmp_path}/{pattern}"))]

    assert listed("**/*.csv") == ["a.csv", "x/b.csv", "x/y/c.csv"]
    assert listed("x/**/*.csv") == ["b.csv", "y/c.csv"]
    assert listed("*/*.csv") == ["x/b.csv"]
    assert listed("x/y/[cd].*") == ["c.csv", "d.txt"]
    assert listed("x/?/*") == ["y/c.csv", "y/d.txt"]


def test_resume_right_after_a_file_without_a_final_line_break(tmp_path: Path) -> None:
    """A part that ends with the line break owed after a headerless file without one: resuming
    there skips that file by its size and the owed line break without reading a byte."""
    (tmp_path / "a.csv").write_bytes(b"x@example.com,A,n")  # no line break at the end
    (tmp_path / "b.csv").write_bytes(b"y@example.com,B,n\nz@example.com,C,n\n")
    source = Source.of(f"{tmp_path}/", columns=COLUMNS, max_part_bytes=len(HEADER) + 18)
    full = cut(source)
    assert len(full) == 3
    for k in range(1, len(full)):
        assert cut(source, resume_at=(k, full[k][1])) == full[k:]

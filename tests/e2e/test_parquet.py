"""A warehouse's Parquet unload on S3 (moto's server, reached through the Amazon provider) imported by
the operator in a real DAG: every row arrives once, its values in the forms Marketo documents, and
a retried task goes on mid-Parquet without sending a part again."""

from __future__ import annotations

import datetime
import decimal
import io
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from marketo_provider.operators.bulk_import import MarketoBulkImportOperator  # noqa: E402
from marketo_provider.sources import Source, source_parts  # noqa: E402
from marketo_provider.testing import CustomObjectType, FieldSpec, MarketoSandbox  # noqa: E402
from tests.e2e.conftest import task_states, task_xcom  # noqa: E402
from tests.e2e.test_operator import HAS_TASK_STATE_STORE, new_dag  # noqa: E402
from tests.s3 import S3Server  # noqa: E402

ORDERS = CustomObjectType(
    api_name="order_c",
    display_name="Order",
    fields=(
        FieldSpec("marketoGUID", "Marketo GUID", "string", 36, updateable=False),
        FieldSpec("orderId", "Order Id", "string", 255),
        FieldSpec("customerEmail", "Customer Email", "email", 255),
        FieldSpec("orderedOn", "Ordered On", "date"),
        FieldSpec("orderedAt", "Ordered At", "datetime"),
        FieldSpec("shippedAt", "Shipped At", "datetime"),
        FieldSpec("giftWrap", "Gift Wrap", "boolean"),
        FieldSpec("amount", "Amount", "currency"),
        FieldSpec("weight", "Weight", "float"),
        FieldSpec("quantity", "Quantity", "integer"),
        FieldSpec("note", "Note", "string", 255),
    ),
    dedupe_fields=("orderId",),
)
PARIS = ZoneInfo("Europe/Paris")
START = datetime.datetime(2026, 3, 28, 22, 0, 0, 250_000, tzinfo=datetime.timezone.utc)  # across a DST change


def order(i: int) -> dict[str, Any]:
    """Row ``i`` as the warehouse holds it (None is NULL)."""
    at = START + datetime.timedelta(minutes=17 * i, microseconds=i)
    return {
        "order_id": f"ord-{i:05d}",
        "email": f"buyer{i}@example.com",
        "ordered_on": None if i % 11 == 3 else datetime.date(2026, 1, 1) + datetime.timedelta(days=i),
        "ordered_at": None if i % 13 == 5 else at,
        "shipped_at": None if i % 3 else (at + datetime.timedelta(days=2)).replace(tzinfo=None),
        "gift_wrap": None if i % 7 == 0 else i % 2 == 0,
        "amount": None if i % 9 == 4 else decimal.Decimal(i * 137) / 100,
        "weight": None if i % 5 == 1 else (i * 1e-7 if i % 4 == 0 else i * 0.25),
        "quantity": None if i % 10 == 9 else i % 5,
        "note": [None, "", "fragile, handle with care", 'the "blue" box', "line one\nline two", "ok"][i % 6],
    }


SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("email", pa.string()),
        ("ordered_on", pa.date32()),
        ("ordered_at", pa.timestamp("us", tz="Europe/Paris")),
        ("shipped_at", pa.timestamp("ms")),  # without a time zone: taken as UTC
        ("gift_wrap", pa.bool_()),
        ("amount", pa.decimal128(12, 2)),
        ("weight", pa.float64()),
        ("quantity", pa.int32()),
        ("note", pa.dictionary(pa.int32(), pa.string())),
    ]
)
MAPPING = {
    "order_id": "orderId",
    "email": "customerEmail",
    "ordered_on": "orderedOn",
    "ordered_at": "orderedAt",
    "shipped_at": "shippedAt",
    "gift_wrap": "giftWrap",
    "weight": "weight",
}


def expected(i: int) -> dict[str, str]:
    """Row ``i`` as Marketo must receive it: the documented forms, NULL as an empty field."""
    row = order(i)
    weight = row["weight"]
    return {
        "orderId": row["order_id"],
        "customerEmail": row["email"],
        "orderedOn": row["ordered_on"].isoformat() if row["ordered_on"] else "",
        "orderedAt": row["ordered_at"].astimezone(PARIS).replace(microsecond=0).isoformat()
        if row["ordered_at"]
        else "",
        "shippedAt": row["shipped_at"].replace(microsecond=0).isoformat() + "+00:00"
        if row["shipped_at"]
        else "",
        "giftWrap": "" if row["gift_wrap"] is None else str(row["gift_wrap"]).lower(),
        "amount": "" if row["amount"] is None else f"{row['amount']:.2f}",
        "weight": "" if weight is None else format(decimal.Decimal(repr(weight)), "f").removesuffix(".0"),
        "quantity": "" if row["quantity"] is None else str(row["quantity"]),
        "note": row["note"] or "",
    }


def unload(s3: S3Server, files: int, rows_per_file: int) -> str:
    """Write Parquet files as a warehouse unload does (several row groups each, a _SUCCESS marker)."""
    bucket = s3.bucket("unload")
    for k in range(files):
        rows = [order(k * rows_per_file + j) for j in range(rows_per_file)]
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        out = io.BytesIO()
        pq.write_table(table, out, row_group_size=45, compression="snappy")
        s3.put(f"s3://{bucket}/orders/2026-03-29/part-{k:05d}.snappy.parquet", out.getvalue())
    s3.put(f"s3://{bucket}/orders/2026-03-29/_SUCCESS", b"")
    return f"s3://{bucket}/orders/2026-03-29/"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def orders(marketo_env: MarketoSandbox, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> MarketoSandbox:
    monkeypatch.setenv(*s3.env_item())
    marketo_env.register_custom_object(ORDERS)
    return marketo_env


def import_task(s3: S3Server, source: str, **kwargs: Any) -> MarketoBulkImportOperator:
    return MarketoBulkImportOperator(
        task_id="import",
        source=source,
        source_conn_id=s3.conn_id,
        column_mapping=MAPPING,
        object_type="custom_objects",
        custom_object_name="order_c",
        poll_interval=0.05,
        max_part_bytes=6000,
        **kwargs,
    )


def test_parquet_prefix_on_s3_imports_every_row_in_marketo_forms(
    run_dag: Any, orders: MarketoSandbox, s3: S3Server
) -> None:
    source = unload(s3, files=3, rows_per_file=130)
    with new_dag("parquet") as dag:
        import_task(s3, source)
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    summary = task_xcom(dr, "import")
    assert summary["rows_failed"] == 0 and summary["rows_with_warning"] == 0
    assert summary["rows_processed"] == 390 and len(summary["batch_ids"]) >= 4
    imported = orders.imported_rows("custom_objects", "order_c")
    assert sorted(imported, key=lambda r: r["orderId"]) == [expected(i) for i in range(390)]
    # spot checks of the forms, as Marketo documents them
    by_id = {r["orderId"]: r for r in imported}
    assert by_id["ord-00000"]["orderedAt"] == "2026-03-28T23:00:00+01:00"  # Paris, before the change
    assert by_id["ord-00020"]["orderedAt"] == "2026-03-29T05:40:00+02:00"  # after it
    assert by_id["ord-00000"]["shippedAt"] == "2026-03-30T22:00:00+00:00"
    assert by_id["ord-00004"]["weight"] == "0.0000004"  # never with an exponent
    assert {r["giftWrap"] for r in imported} == {"true", "false", ""}
    assert by_id["ord-00004"]["note"] == "line one\nline two"


def test_retried_task_goes_on_mid_parquet_without_sending_a_part_again(
    run_dag: Any, orders: MarketoSandbox, s3: S3Server
) -> None:
    source = unload(s3, files=2, rows_per_file=150)
    # three parts go through, then an upload is refused with an error that stops the task
    orders.inject_fault("/bulk/v1/customobjects/order_c/import.json", method="POST", http_status=500, skip=3)
    with new_dag("parquet_retry") as dag:
        import_task(s3, source, retries=1, retry_delay=pendulum.duration(seconds=0))
    dr = run_dag(dag)
    assert dr.state == "success", task_states(dr)
    posts = orders.calls_to("/bulk/v1/customobjects/order_c/import.json", "POST")
    assert [c.status for c in posts][:5] == [200, 200, 200, 500, 200]
    accepted = [c.batch_id for c in posts if c.batch_id]
    summary = task_xcom(dr, "import")
    imported = orders.imported_rows("custom_objects", "order_c")
    if not HAS_TASK_STATE_STORE:
        # Airflow < 3.3 (documented): the retry starts over and submits every part again
        assert accepted[3:] == summary["batch_ids"]
        return
    assert accepted == summary["batch_ids"] and len(accepted) == len(set(accepted)) >= 5
    assert [b["part"] for b in summary["batches"]] == list(range(len(accepted)))
    assert sorted(imported, key=lambda r: r["orderId"]) == [expected(i) for i in range(300)]
    # the pre-flight ran once: the retry went on from the fourth part, which starts mid-file
    assert len(orders.calls_to("/rest/v1/customobjects/order_c/describe.json")) == 1
    with source_parts(Source.of(source, conn_id=s3.conn_id, max_part_bytes=6000)) as parts:
        fourth = [p.origin for p in parts][3]
    assert re.match(r"part-0000\d\.snappy\.parquet rows [1-9]", fourth), fourth

"""The ledger under load: SQLite and PostgreSQL holding 1,000,000 requests.

    uv run python bench/bench_ledger.py [--quick] [--rows 1000000] [--samples 500]

Needs PostgreSQL ($X402_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test).
Prints, side by side, ledger latency with `--rows` requests already stored
(bulk-loaded with executemany / COPY): issuing a request, and redeeming a paid
one (get, claim, consume, as the gate does), median and p99 in milliseconds.

Calls per second over streamable HTTP with 1, 2 and 4 replicas sharing one
ledger are measured by bench/bench_replicas.py.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.replicas.cluster import fresh_schema
from x402_mcp.core.states import Event, State
from x402_mcp.ledger import Ledger, PostgresLedger, SQLiteLedger
from x402_mcp.ledger._changes import COLUMNS, request_values
from x402_mcp.ledger.base import PaymentRequest, SettlementRecord

POSTGRES_URL = os.environ.get("X402_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
TEMPLATE = PaymentRequest(
    id="",
    tool="answer",
    price=50_000,
    asset=USDC,
    network="eip155:31337",
    pay_to=USDC,
    caller=None,
    created_at=0.0,
    expires_at=0.0,
    max_timeout_seconds=600,
)


def _rows(count: int) -> list[list[object]]:
    """`count` requests as column values: mostly expired-unpaid and consumed, like a real ledger."""
    now = time.time()
    rows = []
    for index in range(count):
        created = now - 86_400 + index * (86_000 / count)
        row = request_values(
            replace(TEMPLATE, id=f"pr_bulk{index:09d}", caller=f"session:{index % 5000}", created_at=created),
            amount=str,
        )
        rows.append(row)
    state_at = COLUMNS.index("state")
    expires_at = COLUMNS.index("expires_at")
    for index, row in enumerate(rows):
        row[expires_at] = float(row[COLUMNS.index("created_at")]) + 600  # type: ignore[arg-type]
        row[state_at] = (State.CONSUMED if index % 3 == 0 else State.EXPIRED).value
    return rows


def _load_sqlite(path: Path, rows: list[list[object]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO payment_requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            rows,
        )


async def _load_postgres(schema: str, rows: list[list[object]]) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
        async with conn.cursor() as cursor:
            copy_sql = f'COPY "{schema}".payment_requests ({", ".join(COLUMNS)}) FROM STDIN'
            async with cursor.copy(copy_sql) as copy:
                for row in rows:
                    await copy.write_row(row)
        await conn.execute(f'ANALYZE "{schema}".payment_requests')
        await conn.commit()


async def _latencies(ledger: Ledger, samples: int) -> tuple[list[float], list[float]]:
    issue: list[float] = []
    redeem: list[float] = []
    for _ in range(samples):
        now = time.time()
        request = replace(
            TEMPLATE,
            id="pr_" + secrets.token_urlsafe(18),
            caller="session:bench",
            created_at=now,
            expires_at=now + 600,
        )
        start = time.perf_counter()
        await ledger.issue(request)
        issue.append((time.perf_counter() - start) * 1000)
        await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=now, payload="{}")
        record = SettlementRecord("0x" + secrets.token_hex(32), USDC, 50_000, USDC, "eip155:31337", now)
        await ledger.transition(request.id, Event.SETTLED, now=now, settlement=record)
        start = time.perf_counter()
        paid = await ledger.get(request.id)
        assert paid is not None
        claim = secrets.token_hex(8)
        await ledger.transition(paid.id, Event.CLAIM, now=now, lease_until=now + 300, claim_id=claim)
        await ledger.transition(paid.id, Event.CONSUME, now=now, result="{}", claim_id=claim)
        redeem.append((time.perf_counter() - start) * 1000)
    return issue, redeem


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return f"{statistics.median(ordered):>7.2f} {p99:>7.2f}"


async def run(args: argparse.Namespace, folder: Path) -> None:
    print(f"building {args.rows:,} ledger rows ...", flush=True)
    rows = _rows(args.rows)
    results: dict[str, dict[str, Any]] = {}
    sqlite_path = folder / "ledger.sqlite"
    with fresh_schema(POSTGRES_URL) as schema:
        backends: list[tuple[str, Ledger, str | None]] = [
            ("SQLite", SQLiteLedger(sqlite_path), None),
            ("PostgreSQL", PostgresLedger(POSTGRES_URL, schema=schema), schema),
        ]
        for name, ledger, pg_schema in backends:
            await ledger.open()
            start = time.perf_counter()
            if pg_schema is None:
                await anyio.to_thread.run_sync(_load_sqlite, sqlite_path, rows)
            else:
                await _load_postgres(pg_schema, rows)
            loaded = time.perf_counter() - start
            print(f"{name}: loaded {args.rows:,} rows in {loaded:.1f} s", flush=True)
            issue, redeem = await _latencies(ledger, args.samples)
            await ledger.close()
            results[name] = {"issue": issue, "redeem": redeem, "load": loaded}

    names = list(results)
    print(f"\nx402-mcp ledger benchmark: {args.rows:,} requests stored, {args.samples} samples\n")
    print(f"{'measure':<40}" + "".join(f"{n:>20}" for n in names))
    print(f"{'bulk load (s)':<40}" + "".join(f"{results[n]['load']:>20.1f}" for n in names))
    print(
        f"{'issue latency ms (median p99)':<40}" + "".join(f"{_ms(results[n]['issue']):>20}" for n in names)
    )
    print(
        f"{'redeem latency ms (median p99)':<40}" + "".join(f"{_ms(results[n]['redeem']):>20}" for n in names)
    )
    figures: dict[str, float] = {}
    for name in names:
        key = name.lower()
        figures[f"{key}_load_s"] = round(results[name]["load"], 3)
        for measure in ("issue", "redeem"):
            ordered = sorted(results[name][measure])
            figures[f"{key}_{measure}_median_ms"] = round(statistics.median(ordered), 3)
            figures[f"{key}_{measure}_p99_ms"] = round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3)
    print("BENCH-RESULT " + json.dumps(figures, separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 100 samples")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.samples = min(args.rows, 20_000), min(args.samples, 100)
    with tempfile.TemporaryDirectory() as folder:
        anyio.run(run, args, Path(folder))


if __name__ == "__main__":
    main()

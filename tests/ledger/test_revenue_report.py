"""`x402-mcp ledger report`: revenue by day, tool and payer, from ledgers with known payments.

The figures are checked on both ledgers (SQLite and PostgreSQL, through the `Ledger`
API the report reads), and the command end to end on a real SQLite file.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from pathlib import Path

import anyio
import pytest

from tests.ledger.conftest import Store
from x402_mcp.cli.main import main
from x402_mcp.cli.report import as_csv, as_json, as_table
from x402_mcp.core.states import Event
from x402_mcp.ledger import Ledger, SQLiteLedger
from x402_mcp.ledger.base import PaymentRequest, SettlementRecord
from x402_mcp.telemetry.revenue import revenue_report

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYEE = "0x" + "99" * 20
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20


def _at(day: int, hour: int) -> float:
    return datetime.datetime(2026, 12, day, hour, tzinfo=datetime.UTC).timestamp()


# (request id, tool, amount, payer, settled at): three days, two tools, two payers.
PAYMENTS = [
    ("pr_before", "search", 70_000, ALICE, _at(1, 23)),
    ("pr_one", "search", 50_000, ALICE, _at(2, 0)),
    ("pr_two", "summarize", 1_230_000, BOB, _at(2, 13)),
    ("pr_three", "search", 10_001, BOB, _at(3, 9)),
    ("pr_four", "summarize", 50_000, ALICE, _at(4, 23)),
    ("pr_after", "search", 50_000, ALICE, _at(5, 0)),
]


async def _fill(ledger: Ledger) -> None:
    for index, (request_id, tool, amount, payer, settled_at) in enumerate(PAYMENTS):
        created = settled_at - 60
        request = PaymentRequest(
            id=request_id,
            tool=tool,
            price=amount,
            asset=USDC,
            network="eip155:84532",
            pay_to=PAYEE,
            caller=None,
            created_at=created,
            expires_at=created + 600,
            max_timeout_seconds=600,
        )
        await ledger.issue(request)
        await ledger.transition(request_id, Event.BEGIN_SETTLEMENT, now=created + 1, payload="{}")
        tx = "0x" + f"{index:02x}" * 32
        record = SettlementRecord(tx, payer, amount, USDC, "eip155:84532", settled_at)
        await ledger.transition(request_id, Event.SETTLED, now=settled_at, settlement=record)
        if index % 2:
            await ledger.transition(request_id, Event.CLAIM, now=settled_at, lease_until=settled_at + 60)
    unpaid = PaymentRequest(
        id="pr_unpaid",
        tool="search",
        price=90_000,
        asset=USDC,
        network="eip155:84532",
        pay_to=PAYEE,
        caller=None,
        created_at=_at(3, 1),
        expires_at=_at(3, 1) + 600,
        max_timeout_seconds=600,
    )
    await ledger.issue(unpaid)


@pytest.mark.anyio
async def test_revenue_by_day_tool_and_payer_on_both_ledgers(store: Store) -> None:
    ledger = store.ledger()
    await ledger.open()
    try:
        await _fill(ledger)
        report = await revenue_report(ledger, since=_at(2, 0), until=_at(5, 0))
    finally:
        await ledger.close()

    assert [payment.request_id for payment in report.payments] == ["pr_one", "pr_two", "pr_three", "pr_four"]
    data = as_json(report)
    assert data["total"] == {
        "key": "total",
        "payments": 4,
        "revenue": "1.340001",
        "revenue_atomic": "1340001",
    }
    assert [(g["key"], g["payments"], g["revenue"]) for g in data["by_day"]] == [
        ("2026-12-02", 2, "1.280000"),
        ("2026-12-03", 1, "0.010001"),
        ("2026-12-04", 1, "0.050000"),
    ]
    assert [(g["key"], g["revenue_atomic"]) for g in data["by_tool"]] == [
        ("search", "60001"),
        ("summarize", "1280000"),
    ]
    assert {g["key"]: g["revenue"] for g in data["by_payer"]} == {ALICE: "0.100000", BOB: "1.240001"}
    assert data["payments"][1]["tool"] == "summarize"
    assert data["payments"][1]["settled_at"] == "2026-12-02T13:00:00Z"


async def _filled_file(path: Path) -> None:
    ledger = SQLiteLedger(path)
    await ledger.open()
    await _fill(ledger)
    await ledger.close()


def test_the_command_prints_a_table_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.sqlite"
    anyio.run(_filled_file, path)
    url = f"sqlite://{path}"

    def run(*argv: str) -> str:
        with pytest.raises(SystemExit) as exited:
            main(["ledger", "--url", url, "report", *argv])
        captured = capsys.readouterr()
        assert exited.value.code in (0, None), captured.err
        return captured.out

    table = run("--since", "2026-12-02", "--until", "2026-12-04")
    assert "4 payment(s), 1.340001 USDC" in table
    assert re.search(r"^2026-12-03\s+1\s+0\.010001$", table, re.MULTILINE), table
    assert re.search(r"^summarize\s+2\s+1\.280000$", table, re.MULTILINE), table

    rows = list(csv.DictReader(io.StringIO(run("--since", "2026-12-02", "--until", "2026-12-02", "--csv"))))
    assert rows[0] == {
        "group": "total",
        "key": "total",
        "payments": "2",
        "revenue": "1.280000",
        "revenue_atomic": "1280000",
    }
    assert [(row["group"], row["key"]) for row in rows[1:3]] == [("day", "2026-12-02"), ("tool", "search")]

    everything = json.loads(run("--json"))
    assert everything["total"]["revenue_atomic"] == "1460001"
    assert everything["since"] is None and len(everything["payments"]) == 6
    noon = json.loads(run("--json", "--since", "2026-12-02T12:00:00+00:00", "--until", "2026-12-03"))
    assert [p["request_id"] for p in noon["payments"]] == ["pr_two", "pr_three"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--since", "yesterday"], "is not a date (2026-12-07) or an ISO time"),
        (["--until", "2026-12-07T12:00:00"], "has no time zone"),
        (["--since", "2026-12-05", "--until", "2026-12-01"], "--until must come after --since"),
        (["--csv", "--json"], "not allowed with argument"),
    ],
)
def test_a_bad_period_is_refused_with_what_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    anyio.run(_filled_file, tmp_path / "ledger.sqlite")  # `ledger` reads a ledger, never makes one
    with pytest.raises(SystemExit) as exited:
        main(["ledger", "--url", f"sqlite://{tmp_path / 'ledger.sqlite'}", "report", *argv])
    assert exited.value.code not in (0, None)
    assert words in capsys.readouterr().err


def test_an_empty_report_says_so() -> None:
    from x402_mcp.telemetry.revenue import Report

    empty = Report(None, None)
    assert "0 payment(s), 0.000000 USDC" in as_table(empty)
    assert as_csv(empty).splitlines()[1] == "total,total,0,0.000000,0"

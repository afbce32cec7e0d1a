"""`x402-mcp ledger`: requests, payments, and what awaits reconciliation, from a real ledger file."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from x402_mcp.cli.main import main
from x402_mcp.core.states import Event
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger.base import PaymentRequest, SettlementRecord

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
TX = "0x" + "ab" * 32


def _request(request_id: str, created_at: float) -> PaymentRequest:
    return PaymentRequest(
        id=request_id,
        tool="research_query",
        price=50_000,
        asset=USDC,
        network="eip155:84532",
        pay_to=USDC,
        caller="session:abc",
        created_at=created_at,
        expires_at=created_at + 600,
        max_timeout_seconds=600,
    )


async def _fill(path: Path) -> None:
    ledger = SQLiteLedger(path)
    await ledger.open()
    now = time.time()
    paid, stuck, open_ = (
        _request("pr_paid", now - 30),
        _request("pr_stuck", now - 20),
        _request("pr_open", now),
    )
    for request in (paid, stuck, open_):
        await ledger.issue(request)
    await ledger.transition(paid.id, Event.BEGIN_SETTLEMENT, now=now - 29, payload="{}")
    record = SettlementRecord(TX, "0x" + "11" * 20, 50_000, USDC, "eip155:84532", now - 28)
    await ledger.transition(paid.id, Event.SETTLED, now=now - 28, settlement=record)
    await ledger.transition(stuck.id, Event.BEGIN_SETTLEMENT, now=now - 1000, payload="{}")
    await ledger.audit(stuck.id, "awaiting_reconciliation", "no transaction found", now=now)
    await ledger.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit status, and stdout followed by stderr."""
    with pytest.raises(SystemExit) as exited:
        main(["ledger", *argv])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_list_payments_and_pending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.sqlite"
    anyio.run(_fill, path)
    url = f"sqlite://{path}"

    status, out = _run(capsys, "--url", url)
    assert status == 0
    assert "3 payment request(s)" in out
    assert out.index("pr_open") < out.index("pr_stuck") < out.index("pr_paid")  # newest first
    assert "$0.05" in out

    status, out = _run(capsys, "list", "--url", url, "--state", "paid")
    assert "1 payment request(s)" in out and "pr_paid" in out and "pr_open" not in out

    status, out = _run(capsys, "payments", "--url", url)
    assert "1 settlement(s)" in out and TX in out and "$0.05 in total" in out

    status, out = _run(capsys, "pending", "--url", url)
    assert "1 settlement(s) in progress, 1 of them awaiting reconciliation" in out
    assert "pr_stuck" in out and "no transaction found" in out


def test_an_unknown_state_or_url_scheme_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _run(capsys, "--url", f"sqlite://{tmp_path / 'l.sqlite'}", "--state", "lost")
    assert status == 2
    assert "unknown state 'lost'" in err
    status, err = _run(capsys, "--url", "mysql://user:secret@host/db")
    assert status == 2  # a configuration error (see `x402-mcp --help`)
    assert "unsupported ledger URL scheme" in err and "secret" not in err

"""`ledger report --rpc-url`: the ledger's settlements against the payee's Transfer logs on anvil."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from eth_account import Account

from tests.chains import AnvilChain, pay, requirements_for
from x402_mcp.cli.main import main
from x402_mcp.core.states import Event
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger.base import PaymentRequest, SettlementRecord

pytestmark = pytest.mark.anvil
FAKE_TX = "0x" + "ee" * 32


async def _settle_and_record(anvil: AnvilChain, path: Path, payee: str) -> list[str]:
    """Two real settlements to `payee`, recorded in a ledger with a third, fictitious one."""
    ledger = SQLiteLedger(path)
    await ledger.open()
    settlement = anvil.settlement()
    payer = anvil.new_account(usdc="5")
    hashes: list[str] = []
    for index, amount in enumerate((50_000, 1_230_001, 70_000)):
        now = time.time()
        request = PaymentRequest(
            id=f"pr_chain_{index}",
            tool="search",
            price=amount,
            asset=anvil.usdc,
            network=anvil.network,
            pay_to=payee,
            caller=None,
            created_at=now,
            expires_at=now + 600,
            max_timeout_seconds=600,
        )
        await ledger.issue(request)
        await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=now, payload="{}")
        if index < 2:
            requirements = requirements_for(anvil, payee, amount=str(amount))
            receipt = await settlement.settle(pay(payer, requirements), requirements)
            assert receipt.success, receipt
            tx = receipt.transaction
        else:
            tx = FAKE_TX  # the ledger claims a settlement the chain never saw
        record = SettlementRecord(tx, payer.address, amount, anvil.usdc, anvil.network, time.time())
        await ledger.transition(request.id, Event.SETTLED, now=time.time(), settlement=record)
        hashes.append(tx)
    await ledger.close()
    return hashes


def test_the_report_compares_the_ledger_with_the_payees_transfers(
    anvil: AnvilChain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payee = Account.create().address
    path = tmp_path / "ledger.sqlite"
    real_one, real_two, fake = anyio.run(_settle_and_record, anvil, path, payee)
    anvil.mint(payee, "2")  # money that arrived without any paid request

    with pytest.raises(SystemExit) as exited:
        main(["ledger", "--url", f"sqlite://{path}", "report", "--json", "--rpc-url", anvil.rpc_url])
    captured = capsys.readouterr()
    assert exited.value.code in (0, None), captured.err
    [check] = json.loads(captured.out)["chain"]

    assert check["network"] == anvil.network
    assert check["payee"].lower() == payee.lower()
    assert check["ledger_atomic"] == str(50_000 + 1_230_001 + 70_000)
    assert check["received_atomic"] == str(50_000 + 1_230_001 + 2_000_000)
    assert check["difference"] == "1.930000"
    assert check["unconfirmed"] == [fake]
    [unrecorded] = check["unrecorded"]
    assert unrecorded["amount"] == "2.000000"
    assert unrecorded["transaction"] not in (real_one.lower(), real_two.lower())

    with pytest.raises(SystemExit):
        main(["ledger", "--url", f"sqlite://{path}", "report", "--rpc-url", anvil.rpc_url])
    table = capsys.readouterr().out
    assert "ledger and chain DIFFER" in table
    assert f"not found on chain: {fake}" in table


def test_an_unreachable_rpc_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.sqlite"
    anyio.run(_empty_file, path)  # `ledger` reads a ledger, never makes one
    with pytest.raises(SystemExit) as exited:
        main(["ledger", "--url", f"sqlite://{path}", "report", "--rpc-url", "http://127.0.0.1:9"])
    assert exited.value.code == 2  # a setting to correct: exit 2, as every configuration error
    assert "the RPC at --rpc-url could not be asked for its chain" in capsys.readouterr().err


async def _empty_file(path: Path) -> None:
    ledger = SQLiteLedger(path)
    await ledger.open()
    await ledger.close()

"""`x402-mcp call` pays for a tool on a real streamable-HTTP server; `x402-mcp spend` shows it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from tests.client.conftest import PRICE, Shop
from tests.client.serving import serving
from x402_mcp.cli.call import parse_arguments
from x402_mcp.cli.main import main

pytestmark = pytest.mark.anyio


def _exit_status(argv: Sequence[str]) -> int:
    try:
        main(argv)
    except SystemExit as done:
        return int(done.code or 0)
    raise AssertionError("the command did not exit")


async def _run(argv: Sequence[str]) -> int:
    # The command runs its own event loop, so it gets a thread; the server stays on ours.
    with anyio.fail_after(60):
        return await anyio.to_thread.run_sync(_exit_status, list(argv))


async def test_call_pays_and_prints_the_receipt_then_spend_shows_it(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("X402_PAYER_KEY", shop.payer.key.hex())
    budget_file = str(tmp_path / "cli-budget.sqlite")
    before = shop.balances()
    async with serving(shop.server.streamable_http_app()) as base:
        status = await _run(
            ["call", f"{base}/mcp", "answer", "--arg", "question=from the shell",
             "--max", "0.10", "--per-day", "1", "--asset", shop.chain.usdc, "--budget-file", budget_file]
        )  # fmt: skip
    out = capsys.readouterr().out

    assert status == 0, out
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    assert "answer to from the shell" in out
    assert f"paid $0.05 to {shop.payee} on {shop.chain.network}" in out
    assert "receipt: transaction 0x" in out
    assert "$0.05 in the last 24 hours" in out

    assert await _run(["spend", "--budget-file", budget_file]) == 0
    shown = capsys.readouterr().out
    assert "budget 'default': 1 payments" in shown
    assert "total         $0.05" in shown
    assert "last 24 hours $0.05 of $1.00" in shown
    assert "per call      at most $0.10" in shown
    assert "spent" in shown and "answer -> " + shop.payee in shown


async def test_call_over_the_max_pays_nothing(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("X402_PAYER_KEY", shop.payer.key.hex())
    before = shop.balances()
    async with serving(shop.server.streamable_http_app()) as base:
        status = await _run(
            ["call", f"{base}/mcp", "answer", "--arg", "question=q", "--max", "0.01",
             "--asset", shop.chain.usdc, "--budget-file", str(tmp_path / "b.sqlite")]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert "not paid: the price $0.05 is above the budget's per_call limit of $0.01" in err
    assert shop.balances() == before


async def test_call_needs_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("X402_PAYER_KEY", raising=False)
    assert await _run(["call", "http://127.0.0.1:9/mcp", "tool"]) == 2
    assert "set X402_PAYER_KEY" in capsys.readouterr().err
    monkeypatch.setenv("X402_PAYER_KEY", "0xnot-a-key")
    assert await _run(["call", "http://127.0.0.1:9/mcp", "tool"]) == 2
    err = capsys.readouterr().err
    assert "X402_PAYER_KEY is not a valid private key" in err
    assert "not-a-key" not in err


async def test_spend_without_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _run(["spend", "--budget-file", str(tmp_path / "none.sqlite")]) == 0
    assert "nothing has been spent" in capsys.readouterr().out


def test_arguments_are_json_when_they_parse() -> None:
    assert parse_arguments(["n=5", "flag=true", "text=hello world", "list=[1,2]", "empty="]) == {
        "n": 5,
        "flag": True,
        "text": "hello world",
        "list": [1, 2],
        "empty": "",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_arguments(["novalue"])

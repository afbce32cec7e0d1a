"""`x402-mcp call` as a person runs it, in a real process against a real paid HTTP server:
without a limit it pays a little on its own, asks on a terminal above that (a pty here), refuses
without one, and the limits it is given hold for later calls until changed."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.client.conftest import PRICE, Shop
from tests.client.serving import serving

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
DEAR = 10 * PRICE  # the `dear` tool's $0.50


@pytest.fixture
async def url(shop: Shop) -> AsyncIterator[str]:
    async with serving(shop.server.streamable_http_app()) as base:
        yield f"{base}/mcp"


def _argv(shop: Shop, url: str, tool: str, budget_file: Path, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "x402_mcp.cli.main", "call", url, tool, "--arg", "question=q",
        "--asset", shop.chain.usdc, "--budget-file", str(budget_file), *flags,
    ]  # fmt: skip


def _env(shop: Shop) -> dict[str, str]:
    return {**os.environ, "X402_PAYER_KEY": shop.payer.key.hex()}


async def _run(shop: Shop, argv: list[str]) -> tuple[int, str, str]:
    """Without a terminal: stdin is /dev/null, output goes to pipes."""
    with anyio.fail_after(90):
        done = await anyio.run_process(argv, env=_env(shop), cwd=ROOT, check=False, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _on_a_terminal(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Runs `argv` on a pseudo-terminal, answers its question with `answer`; (status, everything shown)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    shown, answered, deadline = b"", False, time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if not answered and b"[y/N]" in shown:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"the command did not finish: {shown.decode(errors='replace')}")
        return process.wait(timeout=30), shown.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


async def _interact(shop: Shop, argv: list[str], answer: str) -> tuple[int, str]:
    return await anyio.to_thread.run_sync(_on_a_terminal, argv, _env(shop), answer)


async def test_without_a_terminal_a_price_above_the_default_is_refused(
    shop: Shop, url: str, tmp_path: Path
) -> None:
    before = shop.balances()
    status, out, err = await _run(shop, _argv(shop, url, "dear", tmp_path / "b.sqlite"))
    assert status == 1, (out, err)
    assert (
        "x402-mcp call: not paid: dear costs $0.50, above the $0.10 a call pays without asking, and there "
        "is no terminal to ask on; pass --max 0.5 (or --yes) to pay it"
    ) in err
    assert "Traceback" not in err
    assert shop.balances() == before
    assert shop.reshape.paid_attempts == 0


async def test_without_a_terminal_a_small_price_is_paid(shop: Shop, url: str, tmp_path: Path) -> None:
    before = shop.balances()
    status, out, err = await _run(shop, _argv(shop, url, "answer", tmp_path / "b.sqlite"))
    assert status == 0, err
    assert f"paid $0.05 to {shop.payee}" in out
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)


async def test_yes_pays_above_the_default_without_asking(shop: Shop, url: str, tmp_path: Path) -> None:
    before = shop.balances()
    status, out, err = await _run(shop, _argv(shop, url, "dear", tmp_path / "b.sqlite", "--yes"))
    assert status == 0, err
    assert "paid $0.50" in out
    assert shop.balances() == (before[0] - DEAR, before[1] + DEAR)


@pytest.mark.parametrize("answer", ["n", ""])
async def test_on_a_terminal_declining_pays_nothing_and_exits_cleanly(
    shop: Shop, url: str, tmp_path: Path, answer: str
) -> None:
    before = shop.balances()
    status, shown = await _interact(shop, _argv(shop, url, "dear", tmp_path / "b.sqlite"), answer)
    assert status == 1, shown
    assert f"Pay $0.50 USDC to {shop.payee} on {shop.chain.network} for tool dear? [y/N]" in shown
    assert "x402-mcp call: not paid: you declined to pay $0.50 for dear; nothing was paid" in shown
    assert "Traceback" not in shown
    assert shop.balances() == before
    assert shop.reshape.paid_attempts == 0


async def test_on_a_terminal_accepting_pays(shop: Shop, url: str, tmp_path: Path) -> None:
    before = shop.balances()
    status, shown = await _interact(shop, _argv(shop, url, "dear", tmp_path / "b.sqlite"), "y")
    assert status == 0, shown
    assert "[y/N]" in shown and "paid $0.50" in shown
    assert shop.balances() == (before[0] - DEAR, before[1] + DEAR)


async def test_a_small_price_is_not_asked_about_on_a_terminal(shop: Shop, url: str, tmp_path: Path) -> None:
    status, shown = await _interact(shop, _argv(shop, url, "answer", tmp_path / "b.sqlite"), "n")
    assert status == 0, shown
    assert "[y/N]" not in shown
    assert shop.chain.balance_of(shop.payee) == PRICE


async def test_limits_persist_until_changed_and_none_clears_them(
    shop: Shop, url: str, tmp_path: Path
) -> None:
    budget_file = tmp_path / "b.sqlite"
    shop.chain.mint(shop.payer.address, "5")
    # A --max of 0.60 pays the dear tool, and stays: the next call, without --max, pays it too.
    for flags in (["--max", "0.60", "--total", "1.60"], []):
        status, out, err = await _run(shop, _argv(shop, url, "dear", budget_file, *flags))
        assert status == 0, err
    assert shop.chain.balance_of(shop.payee) == 2 * DEAR
    status, out, _ = await _run(
        shop, [sys.executable, "-m", "x402_mcp.cli.main", "spend", "--budget-file", str(budget_file)]
    )
    assert "per call      at most $0.60" in out and "total         $1.00 of $1.60" in out

    # A lower --max stays too, and refuses.
    status, _, err = await _run(shop, _argv(shop, url, "dear", budget_file, "--max", "0.01"))
    assert status == 1 and "above the budget's per_call limit of $0.01" in err
    status, _, err = await _run(shop, _argv(shop, url, "dear", budget_file))
    assert status == 1 and "above the budget's per_call limit of $0.01" in err

    # `none` removes it: back to the default, which asks, and without a terminal refuses.
    status, _, err = await _run(shop, _argv(shop, url, "dear", budget_file, "--max", "none"))
    assert status == 1 and "no terminal to ask on" in err
    # --yes pays above the default; the total, not given since the first call, still holds.
    status, _, err = await _run(shop, _argv(shop, url, "dear", budget_file, "--yes"))
    assert status == 0, err
    status, _, err = await _run(shop, _argv(shop, url, "dear", budget_file, "--yes"))
    assert status == 1 and "above the budget's total limit of $1.60" in err
    assert shop.chain.balance_of(shop.payee) == 3 * DEAR


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max", "lots"], "not a decimal number"),
        (["--max-validity", "5"], "max_validity 5 s is outside"),
        (["--rpc-url", "gopher://node"], "http(s) JSON-RPC URL"),
    ],
)
async def test_bad_settings_are_usage_errors(
    shop: Shop, url: str, tmp_path: Path, flags: list[str], message: str
) -> None:
    status, _, err = await _run(shop, _argv(shop, url, "answer", tmp_path / "b.sqlite", *flags))
    assert status == 2 and message in err, err
    assert "Traceback" not in err
    assert shop.reshape.paid_attempts == 0


async def test_merged_limits_keep_what_is_not_given_and_none_clears(tmp_path: Path) -> None:
    from eth_utils.address import to_checksum_address

    from x402_mcp.client import Budget, SpendStore
    from x402_mcp.client.consent import Limits, merge_limits

    payee = "0x" + "ab" * 20
    store = SpendStore(tmp_path / "b.sqlite")
    await store.open()
    try:
        assert (
            await merge_limits(store, "b", per_call=None, total=None, per_day=None, payees=None) == Limits()
        )
        stored = Budget(per_call="0.60", total="5", per_day="1", payees=[payee], name="b", file=store.path)
        await store.remember_limits(stored, now=1.0)
        kept = await merge_limits(store, "b", per_call=None, total=None, per_day=None, payees=None)
        changed = await merge_limits(store, "b", per_call="0.20", total="NONE", per_day=None, payees=["none"])
    finally:
        await store.close()
    assert kept == Limits("0.60", "5", "1", (to_checksum_address(payee),))
    assert changed == Limits("0.20", None, "1", None)

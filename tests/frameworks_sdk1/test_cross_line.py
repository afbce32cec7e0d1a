"""Clients this project did not write (and ours) pay servers on the older MCP line.

The server runs as a user runs it, from `.venv-mcp1` (MCP SDK 1.x, FastMCP 3; tools/mcp1-env.sh):
`x402-mcp serve mathlab --devnet --framework F`, settling on anvil. From this environment:
the official x402 MCP client (`x402MCPClient`, itself on SDK 1.x, in .venv-official) pays
through `_meta["x402/payment"]`, and our `PayingClient` pays. Skipped (failed under
X402_REQUIRE_MCP1=1, as in CI) when `.venv-mcp1` is missing.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account

from tests.commands.processes import running, token_at
from tests.interop_official_mcp.official import official_client
from tests.npm import missing
from x402_mcp.client import Budget, PayingClient
from x402_mcp.core.networks import Asset

from ..chains import anvil_or_skip

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
MCP1_PYTHON = ROOT / ".venv-mcp1" / "bin" / "python"
PRICE = 20_000  # mathlab's factorize: $0.02


def mcp1_cli() -> list[str]:
    if not MCP1_PYTHON.exists():
        missing(f"{MCP1_PYTHON} is missing; build it with tools/mcp1-env.sh", required_by="X402_REQUIRE_MCP1")
    return [str(MCP1_PYTHON), "-m", "x402_mcp.cli.main"]


@pytest.mark.parametrize("framework", ["sdk1", "fastmcp"])
def test_the_official_client_and_paying_client_pay_a_server_on_the_older_line(
    tmp_path: Path, official: Path, framework: str
) -> None:
    anvil_or_skip()
    cli = mcp1_cli()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("X402_", "VIRTUAL_ENV"))}
    arguments = ["serve", "mathlab", "--devnet", "--json", "--port", "0", "--chain-port", "0"]
    arguments += ["--accounts", "2", "--usdc", "1", "--framework", framework]
    with running(arguments, env, cli=cli) as command:
        info = command.json(timeout=120)
        official_payer, our_payer = info["accounts"]
        token = token_at(info)
        url = info["mcp_url"]

        outcome = anyio.run(_official_pays, official, url, official_payer["private_key"])
        assert outcome["is_error"] is False, outcome
        assert outcome["payment_made"] is True
        assert outcome["payment_response"]["success"] is True
        assert outcome["payment_response"]["network"] == info["network"]

        asset = Asset(
            **{key: info["token"][key] for key in ("address", "name", "version", "decimals", "symbol")}
        )
        answer = anyio.run(_we_pay, url, our_payer["private_key"], asset, tmp_path / "budget.sqlite")
        assert not answer.is_error, answer.text
        assert answer.receipt is not None and answer.receipt.success

        assert token.balance_of(info["pay_to"]) == 2 * PRICE
        for payer in (official_payer, our_payer):
            assert token.balance_of(payer["address"]) == 1_000_000 - PRICE
        assert command.stop(signal.SIGTERM) == 0


async def _official_pays(official: Path, url: str, key: str) -> dict[str, Any]:
    return await official_client(official, url, "factorize", json.dumps({"n": 360}), payer_key=key)


async def _we_pay(url: str, key: str, asset: Asset, budget_file: Path) -> Any:
    budget = Budget(per_call="0.05", file=budget_file)
    async with PayingClient(
        url, account=Account.from_key(key), budget=budget, assets=[asset], mode="legacy"
    ) as client:
        return await client.call_tool("factorize", {"n": 360})

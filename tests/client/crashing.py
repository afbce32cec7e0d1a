"""A paying client that dies (SIGKILL, no cleanup) at one point of a paid call.

    python -m tests.client.crashing BUDGET_FILE POINT

POINT is where the process is killed: `signing` (while the key signs),
`sent` (the server has just received the signed payment), `settled` (the
server settled it and runs the tool; the receipt never comes back),
`sent-again` (as `sent`, on the second paid call of the same tool, whose
reservation was made while the unpaid call was out). Server and
client share this process (in-memory MCP, embedded chain), so one kill takes
both down mid-call, as a crash or a power cut would.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from eth_account import Account
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Extension
from mcp.types import CallToolRequestParams

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client import Budget, PayingClient
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.ledger.sqlite import SQLiteLedger


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DieOnPayment(Extension):
    """Kills the process when the `payment`-th signed payment arrives."""

    identifier = "test.x402-mcp/die-on-payment"

    def __init__(self, payment: int) -> None:
        self.left = payment

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if META_PAYMENT in (params.meta or {}):
            self.left -= 1
            if self.left == 0:
                _die()
        return await call_next(ctx)


class DyingSigner:
    """Signs like the payer's key would, but the process dies while it does."""

    def __init__(self, address: str) -> None:
        self.address = address

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        _die()
        raise AssertionError("unreachable")


async def main(budget_file: Path, point: str) -> None:
    chain = DevChain()
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=SQLiteLedger(Path(tempfile.mkdtemp()) / "ledger.sqlite"),
        public_url="http://pay.test",
    )
    # Outermost, so it sees the paid retry before the gate verifies or settles anything.
    dies = {"sent": [DieOnPayment(1)], "sent-again": [DieOnPayment(2)]}.get(point, [])
    server = MCPServer("crash", extensions=[*dies, payments])

    @server.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        if point == "settled":
            _die()
        return f"answer to {question}"

    payer = chain.new_account(usdc="1")
    account: Any = DyingSigner(payer.address) if point == "signing" else payer
    budget = Budget(per_call="0.10", total="0.10" if point == "sent-again" else "0.05", file=budget_file)
    async with PayingClient(server, account=account, budget=budget, assets=[chain.asset]) as client:
        await client.call_tool("answer", {"question": "q"})
        # The second call of a tool reserves its last price while the unpaid call is out.
        await client.call_tool("answer", {"question": "q2"})
    raise AssertionError(f"the process should have died at {point}")


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2])

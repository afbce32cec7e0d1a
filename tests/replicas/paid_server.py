"""One replica: a streamable-HTTP paid MCP server on loopback, run as its own process.

Everything comes from the environment, so tests (and bench/bench_replicas.py) can
start several on one PostgreSQL ledger and one anvil chain:

    REPLICA_PORT, REPLICA_LEDGER_URL, REPLICA_LEDGER_SCHEMA (optional),
    REPLICA_RPC_URL, REPLICA_GAS_KEY, REPLICA_TOKEN, REPLICA_CHAIN_ID,
    REPLICA_PAY_TO, REPLICA_RUNS (a file the tool appends one line per run to),
    REPLICA_GRACE / REPLICA_LEASE (seconds), REPLICA_CRASH (a crash point).

REPLICA_STATS (optional, a file path) turns on a probe for benchmarks: every
10 ms it samples how many of the settlement backend's worker tokens are held
and how many calls wait for one,
and how late the event loop wakes up; cumulative counts go to that file.

REPLICA_CRASH makes the process SIGKILL itself at one step of a payment, the
way a power cut or the OOM killer would: `after_authorization` (payload stored,
nothing sent), `after_send` (transaction mined, not yet recorded),
`after_record` (paid in the ledger, tool not started), `during_tool`.
Nothing is mocked: the crash hooks wrap the real settlement backend and ledger.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server import MCPServer

from x402_mcp import Payments, paid
from x402_mcp.core.networks import Asset, Network
from x402_mcp.core.states import Event
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.frameworks._sdk import wrap_lifespan
from x402_mcp.ledger import PostgresLedger, open_ledger
from x402_mcp.ledger.base import Ledger, PaymentRequest
from x402_mcp.settlement.base import OnChain
from x402_mcp.settlement.local import LocalSettlement

CRASH = os.environ.get("REPLICA_CRASH", "")


def crash_here(point: str) -> None:
    if point == CRASH:
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingSettlement:
    """The real `LocalSettlement`, with the process dying at the chosen step."""

    def __init__(self, inner: LocalSettlement) -> None:
        self.inner = inner
        self.network = inner.network

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        crash_here("after_authorization")
        return await self.inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        receipt = await self.inner.settle(payload, requirements)
        if receipt.success:
            crash_here("after_send")
        return receipt

    async def supported(self) -> SupportedResponse:
        return await self.inner.supported()

    async def lookup(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        return await self.inner.lookup(payload, requirements)


def crashing_ledger(ledger: Ledger) -> Ledger:
    """The real ledger, with the process dying right after a settlement is recorded."""
    original = ledger.transition

    async def transition(request_id: str, event: Event, **changes: Any) -> PaymentRequest:
        moved = await original(request_id, event, **changes)
        if event is Event.SETTLED:
            crash_here("after_record")
        return moved

    ledger.transition = transition  # type: ignore[method-assign]
    return ledger


def build() -> tuple[MCPServer[Any], int]:
    env = os.environ
    chain_id = int(env["REPLICA_CHAIN_ID"])
    asset = Asset(env["REPLICA_TOKEN"], "USD Coin", "2")
    network = Network(caip2=f"eip155:{chain_id}", chain_id=chain_id, label="anvil", usdc=asset, testnet=True)
    inner = LocalSettlement.from_rpc(env["REPLICA_RPC_URL"], env["REPLICA_GAS_KEY"], network=network)
    schema = env.get("REPLICA_LEDGER_SCHEMA")
    url = env["REPLICA_LEDGER_URL"]
    ledger: Ledger = PostgresLedger(url, schema=schema) if schema else open_ledger(url)
    port = int(env["REPLICA_PORT"])
    payments = Payments(
        pay_to=env["REPLICA_PAY_TO"],
        network=network,
        asset=asset,
        settlement=CrashingSettlement(inner),
        ledger=crashing_ledger(ledger),
        public_url=f"http://127.0.0.1:{port}",
        settlement_grace_seconds=float(env.get("REPLICA_GRACE", "300")),
        redemption_lease_seconds=int(env.get("REPLICA_LEASE", "300")),
        max_open_requests_per_caller=None,
    )
    server = MCPServer("replica", extensions=[payments], log_level="WARNING")
    limiter = inner._limiter
    stats = env.get("REPLICA_STATS")
    if stats:
        wrap_lifespan(server, lambda: _probe(Path(stats), limiter))
    runs = env.get("REPLICA_RUNS")

    async def note(line: str) -> None:
        if runs:
            # One O_APPEND write per line: lines from concurrent processes never interleave.
            async with await anyio.open_file(runs, "a") as out:
                await out.write(line + "\n")

    @server.tool()
    def ping() -> str:
        return "pong"

    @server.tool()
    @paid(price="0.05", description="one answer")
    async def answer(question: str) -> str:
        await note(f"start {port} {question}")
        crash_here("during_tool")
        await note(f"end {port} {question}")
        return f"answer to {question} from {port}"

    return server, port


@asynccontextmanager
async def _probe(path: Path, limiter: anyio.CapacityLimiter) -> AsyncIterator[None]:
    """Sample the settlement limiter and the event loop's lateness until the server stops."""
    counts = {"samples": 0, "limiter_held": 0, "limiter_waiting": 0, "loop_late_s": 0.0, "cpu_s": 0.0}

    async def sample() -> None:
        written = time.monotonic()
        while True:
            asked = time.monotonic()
            await anyio.sleep(0.01)
            counts["loop_late_s"] += max(0.0, time.monotonic() - asked - 0.01)
            counts["samples"] += 1
            counts["limiter_held"] += limiter.borrowed_tokens
            counts["limiter_waiting"] += limiter.statistics().tasks_waiting
            if time.monotonic() - written > 0.25:
                written = time.monotonic()
                counts["cpu_s"] = time.process_time()
                counts["at"] = written
                path.with_suffix(".tmp").write_text(json.dumps(counts))
                path.with_suffix(".tmp").replace(path)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sample)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()


if __name__ == "__main__":
    server, port = build()
    server.run("streamable-http", host="127.0.0.1", port=port, stateless_http=True, json_response=True)

"""Where to settle, side by side on anvil in one run: a paid MCP tool call end to end, three ways.

    uv run python bench/bench_settlement.py [--calls 30] [--warmup 5]

1. our facilitator server (`x402-mcp facilitator`'s app) over loopback HTTP;
2. the official x402 facilitator library (`x402FacilitatorSync`) over loopback HTTP;
3. local settlement in process (`LocalSettlement`, no HTTP).

Each variant gets a fresh anvil (its block time grows with chain history, see
reference/official-sdk.md) and goes through `Payments` with an in-memory MCP
client: unpaid call -> challenge -> sign -> paid call -> settled result.
Prints medians and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.facilitator.official import official_facilitator_app
from tests.facilitator.serving import serving
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.chains.devnet import Devnet
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.facilitator import facilitator_app
from x402_mcp.settlement import FacilitatorSettlement, Settlement

Backend = Callable[[Devnet], AbstractAsyncContextManager[Settlement]]


@asynccontextmanager
async def ours(net: Devnet) -> AsyncIterator[Settlement]:
    async with serving(facilitator_app(net.chain.settlement())) as url:
        remote = FacilitatorSettlement(url, network=net.chain.network)
        yield remote
        await remote.aclose()


@asynccontextmanager
async def official(net: Devnet) -> AsyncIterator[Settlement]:
    gas = Account.create()
    net.chain.fund_eth(gas.address, 10**18)
    app = official_facilitator_app(gas.key.to_0x_hex(), net.rpc_url, net.chain.network)
    async with serving(app) as url:
        remote = FacilitatorSettlement(url, network=net.chain.network)
        yield remote
        await remote.aclose()


@asynccontextmanager
async def local(net: Devnet) -> AsyncIterator[Settlement]:
    yield net.chain.settlement()


def _server(chain: TokenChain, settlement: Settlement, ledger: Path) -> tuple[MCPServer[Any], Payments]:
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        asset=chain.asset,
        settlement=settlement,
        ledger=str(ledger),
    )
    server = MCPServer("bench", extensions=[payments])

    @server.tool()
    @paid(price="0.01")
    def answer(question: str) -> str:
        return f"answer to {question}"

    return server, payments


async def measure(backend: Backend, calls: int, warmup: int, workdir: Path) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"end to end": [], "paid tools/call": []}
    with Devnet(port=0, accounts=0) as net:
        payer = net.chain.new_account("100")
        async with backend(net) as settlement:
            server, payments = _server(net.chain, settlement, workdir / f"{id(backend)}.sqlite")
            async with Client(server) as client:
                for index in range(warmup + calls):
                    start = time.perf_counter()
                    challenge = await client.call_tool("answer", {"question": "bench"})
                    payment = sign_payment(payer, read_challenge(challenge))
                    paid_start = time.perf_counter()
                    result = await client.call_tool(
                        "answer", {"question": "bench"}, meta=payment_meta(payment)
                    )
                    end = time.perf_counter()
                    if result.is_error:
                        raise SystemExit(f"a paid call failed: {result.content}")
                    if index >= warmup:
                        samples["end to end"].append((end - start) * 1000)
                        samples["paid tools/call"].append((end - paid_start) * 1000)
        received = net.chain.balance_of(payments.pay_to)
        if received != (warmup + calls) * 10_000:
            raise SystemExit(f"expected {(warmup + calls) * 10_000} atomic units settled, got {received}")
    return samples


def _stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.9) - 1)]


async def main(calls: int, warmup: int) -> None:
    variants: list[tuple[str, Backend]] = [
        ("our facilitator server (HTTP)", ours),
        ("official facilitator library (HTTP)", official),
        ("local, in process", local),
    ]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name, backend in variants:
            results[name] = await measure(backend, calls, warmup, Path(workdir))
    print(f"paid MCP tool call on anvil, N={calls} after {warmup} warm-up calls (ms)")
    print(f"{'settlement':<40} {'e2e med':>9} {'e2e p90':>9} {'paid med':>9} {'paid p90':>9}")
    for name, samples in results.items():
        e2e, paid_call = _stats(samples["end to end"]), _stats(samples["paid tools/call"])
        print(f"{name:<40} {e2e[0]:>9.2f} {e2e[1]:>9.2f} {paid_call[0]:>9.2f} {paid_call[1]:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    arguments = parser.parse_args()
    logging.getLogger("x402_mcp").setLevel(logging.WARNING)  # one log line per settlement skews timings
    anyio.run(main, arguments.calls, arguments.warmup)

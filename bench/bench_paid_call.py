"""Free call vs paid call vs verification alone, side by side in one run (embedded chain).

    uv run python bench/bench_paid_call.py [--calls 200]

Prints medians and p90 in milliseconds, and payments verified per second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from eth_account import Account
from eth_keys.backends import get_backend
from mcp import Client

from x402_mcp import Payments
from x402_mcp.demo import build_server
from x402_mcp.devchain import DevChain
from x402_mcp.matching import match_payment
from x402_mcp.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.wire import PaymentPayload, PaymentRequirements


async def _timed(samples: list[float], action: Callable[[], Awaitable[Any]]) -> Any:
    start = time.perf_counter()
    value = await action()
    samples.append((time.perf_counter() - start) * 1000)
    return value


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    median = statistics.median(ordered)
    return f"{name:<44} {median:>9.3f} {p90:>9.3f} {1000 / median:>11.0f}"


async def run(calls: int, ledger_path: Path) -> None:
    chain = DevChain()
    payer = chain.new_account(usdc="1000")
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=str(ledger_path),
    )
    server = build_server(payments)
    free: list[float] = []
    challenge: list[float] = []
    paid: list[float] = []
    verify_pure: list[float] = []
    verify_backend: list[float] = []
    question = {"question": "bench"}

    async with Client(server) as client:
        for _ in range(10):  # warm-up
            await client.call_tool("ping", {})
        for _ in range(calls):
            await _timed(free, lambda: client.call_tool("ping", {}))
            unpaid = await _timed(challenge, lambda: client.call_tool("research_query", question))
            required = read_challenge(unpaid)
            payment = sign_payment(payer, required)
            option = required.accepts[0]

            async def pure_check(
                payment: PaymentPayload = payment, option: PaymentRequirements = option
            ) -> None:
                match_payment(payment, option, payments.network, now=time.time())

            async def backend_check(
                payment: PaymentPayload = payment, option: PaymentRequirements = option
            ) -> Any:
                return await payments.settlement.verify(payment, option)

            async def paid_call(payment: PaymentPayload = payment) -> Any:
                return await client.call_tool("research_query", question, meta=payment_meta(payment))

            await _timed(verify_pure, pure_check)
            await _timed(verify_backend, backend_check)
            result = await _timed(paid, paid_call)
            assert not result.is_error, result

    print(f"x402-mcp benchmark: {calls} calls each, embedded py-evm chain, SQLite ledger (WAL)")
    print(f"ECC backend: {type(get_backend()).__name__}\n")
    print(f"{'measure':<44} {'median ms':>9} {'p90 ms':>9} {'per second':>11}")
    print(_row("free tool call", free))
    print(_row("unpaid call -> challenge (ledger insert)", challenge))
    print(_row("paid call: verify + settle on chain + run", paid))
    print(_row("local verification, pure (match + ecrecover)", verify_pure))
    print(_row("local verification, backend (+ chain reads)", verify_backend))
    print(f"\npaid / free (median): {statistics.median(paid) / statistics.median(free):.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        anyio.run(run, args.calls, Path(folder) / "ledger.sqlite")


if __name__ == "__main__":
    main()

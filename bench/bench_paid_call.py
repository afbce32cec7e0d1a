"""Free call vs paid call vs redemption vs verification, side by side in one run (embedded chain).

    uv run python bench/bench_paid_call.py [--calls 200] [--tool-ms 50] [--quick]

Everything runs in memory (`mcp.Client(server)`), on the embedded py-evm chain,
with an SQLite ledger (WAL) in a temporary directory and the default
configuration. Prints medians and p90 in milliseconds, interleaved rows measured
in the same loop, and their ratios:

- free tool call: the demo's `ping` (a sync tool: the SDK runs it in a worker
  thread) and `free_query`, an unpaid async twin of the paid tool (same body);
- redemption of an already settled request (paid beforehand through the payment
  page's path, `Collector.collect`): by `payment_request_id`, and as the plain
  retry of the caller it was issued to;
- `settle="after"` with a tool that sleeps `--tool-ms`: the strict order (run,
  then settle) against `overlap=True` (settle while it runs), and the settlement
  alone, so the sum and the max can be read off.

Ends with one `BENCH-RESULT {json}` line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.backends import get_backend
from mcp import Client

from x402_mcp import Payments, paid
from x402_mcp.demo import build_server
from x402_mcp.devchain import DevChain
from x402_mcp.matching import match_payment
from x402_mcp.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.wire import PaymentPayload, PaymentRequired, PaymentRequirements

QUESTION = {"question": "bench"}


async def _timed(samples: list[float], action: Callable[[], Awaitable[Any]]) -> Any:
    start = time.perf_counter()
    value = await action()
    samples.append((time.perf_counter() - start) * 1000)
    return value


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(int(len(ordered) * 0.9) - 1, 0)]
    median = statistics.median(ordered)
    return f"{name:<52} {median:>9.3f} {p90:>9.3f} {1000 / median:>11.0f}"


class Bench:
    def __init__(self, calls: int, tool_ms: float, ledger_path: Path) -> None:
        self.calls = calls
        self.tool_seconds = tool_ms / 1000
        self.chain = DevChain()
        self.payer: LocalAccount = self.chain.new_account(usdc="100000")
        self.payments = Payments(
            pay_to=Account.create().address,
            network=self.chain.network,
            settlement=self.chain.settlement(),
            ledger=str(ledger_path),
            # The redemption rows hold many paid requests of one caller at once.
            max_open_requests_per_caller=None,
        )
        self.server = build_server(self.payments)
        self.samples: dict[str, list[float]] = {}
        seconds = self.tool_seconds

        @self.server.tool()
        async def free_query(question: str) -> str:
            """The paid tool's body, unpaid."""
            return f"Research answer to {question!r}: the literature agrees it depends."

        @self.server.tool()
        @paid(price="0.05", settle="after")
        async def slow_strict(question: str) -> str:
            await anyio.sleep(seconds)
            return f"slow answer to {question!r}"

        @self.server.tool()
        @paid(price="0.05", settle="after", overlap=True)
        async def slow_overlap(question: str) -> str:
            await anyio.sleep(seconds)
            return f"slow answer to {question!r}"

    def s(self, name: str) -> list[float]:
        return self.samples.setdefault(name, [])

    async def run(self) -> None:
        async with Client(self.server) as client:
            for _ in range(10):  # warm-up
                await client.call_tool("ping", {})
                await client.call_tool("free_query", QUESTION)
            start = self.chain.snapshot()
            for phase in (
                self._paid_calls,
                partial(self._redemptions, by_id=True),
                partial(self._redemptions, by_id=False),
                self._settle_after,
            ):
                # The embedded chain's clock runs a second per block when blocks come faster:
                # each phase starts from the same state, so its quotes stay valid by the chain.
                self.chain.revert(start)
                start = self.chain.snapshot()
                await phase(client)

    async def _paid_calls(self, client: Client) -> None:
        for _ in range(self.calls):
            await _timed(self.s("free"), lambda: client.call_tool("ping", {}))
            unpaid = await _timed(self.s("challenge"), lambda: client.call_tool("research_query", QUESTION))
            required = read_challenge(unpaid)
            payment = sign_payment(self.payer, required)
            option = required.accepts[0]

            async def pure_check(
                payment: PaymentPayload = payment, option: PaymentRequirements = option
            ) -> None:
                match_payment(payment, option, self.payments.network, now=time.time())

            async def backend_check(
                payment: PaymentPayload = payment, option: PaymentRequirements = option
            ) -> Any:
                return await self.payments.settlement.verify(payment, option)

            async def paid_call(payment: PaymentPayload = payment) -> Any:
                return await client.call_tool("research_query", QUESTION, meta=payment_meta(payment))

            await _timed(self.s("verify_pure"), pure_check)
            await _timed(self.s("verify_backend"), backend_check)
            result = await _timed(self.s("paid"), paid_call)
            assert not result.is_error, result

    async def _settled_requests(self, client: Client, count: int) -> list[str]:
        """`count` requests of this caller, paid the way the payment page pays them."""
        # All quoted first: once one is paid, the caller's next plain call would redeem it.
        quotes = [read_challenge(await client.call_tool("research_query", QUESTION)) for _ in range(count)]
        ids = []
        collector = self.payments.collector
        for required in quotes:
            request_id = str(required.accepts[0].extra["paymentRequestId"])
            request = await self.payments.ledger.get(request_id)
            assert request is not None
            payload = sign_payment(self.payer, required)
            requirements = await collector.requirements(request, payload)
            await collector.collect(request, payload, requirements, decimals=self.payments.asset.decimals)
            ids.append(request_id)
        return ids

    async def _redemptions(self, client: Client, *, by_id: bool) -> None:
        name = "redeem_id" if by_id else "redeem_retry"
        for request_id in await self._settled_requests(client, self.calls):
            arguments = {**QUESTION, "payment_request_id": request_id} if by_id else QUESTION
            await _timed(self.s(f"free_{name}"), lambda: client.call_tool("ping", {}))
            await _timed(self.s(f"free_async_{name}"), lambda: client.call_tool("free_query", QUESTION))
            result = await _timed(self.s(name), lambda a=arguments: client.call_tool("research_query", a))  # type: ignore[misc]
            assert not result.is_error, result

    async def _settle_after(self, client: Client) -> None:
        async def pay(tool: str, samples: list[float]) -> None:
            required: PaymentRequired = read_challenge(await client.call_tool(tool, QUESTION))
            meta = payment_meta(sign_payment(self.payer, required))
            result = await _timed(samples, lambda: client.call_tool(tool, QUESTION, meta=meta))
            assert not result.is_error, result

        for _ in range(max(self.calls // 4, 5)):
            await pay("slow_strict", self.s("after_strict"))
            await pay("slow_overlap", self.s("after_overlap"))
            # The settlement alone, of a fresh payment (its request stays quoted).
            required = read_challenge(await client.call_tool("slow_strict", QUESTION))
            payment = sign_payment(self.payer, required)

            async def settle_alone(
                payment: PaymentPayload = payment, required: PaymentRequired = required
            ) -> None:
                receipt = await self.payments.settlement.settle(payment, required.accepts[0])
                assert receipt.success, receipt

            await _timed(self.s("settle"), settle_alone)
            await _timed(self.s("tool"), lambda: anyio.sleep(self.tool_seconds))

    def report(self) -> None:
        m = {name: _median(samples) for name, samples in self.samples.items()}
        print(f"x402-mcp benchmark: {self.calls} calls each, embedded py-evm chain, SQLite ledger (WAL)")
        print(f"ECC backend: {type(get_backend()).__name__}\n")
        print(f"{'measure':<52} {'median ms':>9} {'p90 ms':>9} {'per second':>11}")
        rows = [
            ("free tool call (ping, sync)", "free"),
            ("unpaid call -> challenge (ledger insert)", "challenge"),
            ("paid call: verify + settle on chain + run", "paid"),
            ("local verification, pure (match + ecrecover)", "verify_pure"),
            ("local verification, backend (+ chain reads)", "verify_backend"),
            ("free call (ping), beside redeem by id", "free_redeem_id"),
            ("free call (async twin), beside redeem by id", "free_async_redeem_id"),
            ("redeem a settled request by payment_request_id", "redeem_id"),
            ("free call (ping), beside plain retry", "free_redeem_retry"),
            ("free call (async twin), beside plain retry", "free_async_redeem_retry"),
            ("redeem a settled request by the caller's retry", "redeem_retry"),
            (f"tool alone (sleeps {self.tool_seconds * 1000:g} ms)", "tool"),
            ("settlement alone (backend.settle)", "settle"),
            ('settle="after", strict: run, then settle', "after_strict"),
            ('settle="after", overlap=True: settle while it runs', "after_overlap"),
        ]
        for label, key in rows:
            print(_row(label, self.samples[key]))
        redeem_over_free = m["redeem_id"] / m["free_redeem_id"]
        redeem_over_async = m["redeem_id"] / m["free_async_redeem_id"]
        retry_over_free = m["redeem_retry"] / m["free_redeem_retry"]
        retry_over_async = m["redeem_retry"] / m["free_async_redeem_retry"]
        print(f"\npaid / free (median): {m['paid'] / m['free']:.0f}x")
        print(
            f"redeem by id / free call (ping): {redeem_over_free:.2f}x,"
            f" / async twin: {redeem_over_async:.2f}x"
        )
        print(
            f"plain retry / free call (ping): {retry_over_free:.2f}x, / async twin: {retry_over_async:.2f}x"
        )
        total = m["tool"] + m["settle"]
        print(
            f'settle="after": strict {m["after_strict"]:.3f} ms, overlap {m["after_overlap"]:.3f} ms;'
            f" tool {m['tool']:.3f} + settle {m['settle']:.3f} = {total:.3f} ms (sum),"
            f" max {max(m['tool'], m['settle']):.3f} ms"
        )
        result = {
            "free_ms": m["free_redeem_id"],
            "free_async_ms": m["free_async_redeem_id"],
            "redeem_ms": m["redeem_id"],
            "redeem_over_free": redeem_over_free,
            "redeem_over_free_async": redeem_over_async,
            "retry_redeem_ms": m["redeem_retry"],
            "retry_over_free": retry_over_free,
            "paid_ms": m["paid"],
            "challenge_ms": m["challenge"],
            "after_strict_ms": m["after_strict"],
            "after_overlap_ms": m["after_overlap"],
            "tool_ms": m["tool"],
            "settle_ms": m["settle"],
            "overlap_over_strict": m["after_overlap"] / m["after_strict"],
            "calls": self.calls,
        }
        flat = {key: value if isinstance(value, int) else round(value, 3) for key, value in result.items()}
        print("BENCH-RESULT " + json.dumps(flat))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tool-ms", type=float, default=50.0, help="how long the settle='after' tools sleep")
    parser.add_argument("--quick", action="store_true", help="few calls (well under a minute)")
    args = parser.parse_args()
    calls = 40 if args.quick else args.calls
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(calls, args.tool_ms, Path(folder) / "ledger.sqlite")
        anyio.run(bench.run)
    bench.report()


if __name__ == "__main__":
    main()

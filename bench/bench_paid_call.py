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
- the floor of a redemption: the two write transactions it needs (claim, then
  consume, each with its audit line), the same SQL on the same file, run bare on
  a connection of its own (no MCP, no gate), beside the async free call; the
  ratio it implies, (free + floor) / free, is the best a redemption can reach;
- the same comparison over streamable HTTP on loopback (uvicorn on a free port,
  in this process): a free async call against a redemption by id, as a client
  redeems a request paid elsewhere (on the hosted page);
- `settle="after"` with a tool that sleeps `--tool-ms`: the strict order (run,
  then settle) against `overlap=True` (settle while it runs), and the settlement
  alone, so the sum and the max can be read off.

Ends with one `BENCH-RESULT {json}` line.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.backends import get_backend
from mcp import Client

from x402_mcp import Payments, paid
from x402_mcp.chains.demo import build_server
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.states import Event
from x402_mcp.core.wire import PaymentPayload, PaymentRequired, PaymentRequirements
from x402_mcp.ledger._changes import claim_of, plan_transition
from x402_mcp.ledger._dialect import run_script
from x402_mcp.ledger.sqlite import SQLiteLedger, execute_on, immediate
from x402_mcp.schemes.exact.matching import match_payment

# The SQLite ledger's statements, run by `_claim_and_consume` (never opened: it holds no connection).
_STATEMENTS = SQLiteLedger(":memory:")

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
        self.ledger_path = ledger_path
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
                self._floor,
                self._settle_after,
            ):
                # The embedded chain's clock runs a second per block when blocks come faster:
                # each phase starts from the same state, so its quotes stay valid by the chain.
                self.chain.revert(start)
                start = self.chain.snapshot()
                await phase(client)
        self.chain.revert(start)
        await self._over_http()

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

    async def _floor(self, client: Client) -> None:
        """The two bare write transactions of a redemption, beside the async free call."""
        ids = await self._settled_requests(client, self.calls)
        quoted = await self.payments.ledger.get(ids[0])
        assert quoted is not None
        price = quoted.price  # the gate claims at the call's price, which is the quote's here
        # The stored result of a redemption: what the gate dumps of the tool's answer.
        answer = await client.call_tool("free_query", QUESTION)
        result = answer.model_dump_json(by_alias=True, exclude_none=True)
        conn = sqlite3.connect(self.ledger_path, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # as the ledger's writer: checkpoints run elsewhere
        try:
            for request_id in ids:
                await _timed(self.s("free_async_floor"), lambda: client.call_tool("free_query", QUESTION))
                start = time.perf_counter()
                _claim_and_consume(conn, request_id, price, result)
                self.s("floor").append((time.perf_counter() - start) * 1000)
        finally:
            conn.close()

    async def _over_http(self) -> None:
        """Free async call vs redemption by id, over streamable HTTP on loopback."""
        # IPPROTO_TCP explicitly: with proto 0 asyncio leaves Nagle on (~40 ms per request).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.payments.public_url = f"http://127.0.0.1:{port}"  # where its payment links point
        web = uvicorn.Server(
            uvicorn.Config(
                self.server.streamable_http_app(), log_config=None, access_log=False, lifespan="on"
            )
        )
        async with anyio.create_task_group() as group:
            group.start_soon(partial(web.serve, sockets=[listener]))
            with anyio.fail_after(10):
                while not web.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
                    await anyio.sleep(0.01)
            try:
                async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
                    for _ in range(10):  # warm-up
                        await client.call_tool("free_query", QUESTION)
                    for request_id in await self._settled_requests(client, self.calls):
                        arguments = {**QUESTION, "payment_request_id": request_id}
                        await _timed(self.s("http_free"), lambda: client.call_tool("free_query", QUESTION))
                        result = await _timed(
                            self.s("http_redeem"),
                            lambda a=arguments: client.call_tool("research_query", a),  # type: ignore[misc]
                        )
                        assert not result.is_error, result
            finally:
                web.should_exit = True

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
            ("free call (async twin), beside the floor", "free_async_floor"),
            ("floor: claim + consume transactions, bare SQL", "floor"),
            ("HTTP: free call (async twin)", "http_free"),
            ("HTTP: redeem a settled request by payment_request_id", "http_redeem"),
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
        floor_ratio = (m["free_async_floor"] + m["floor"]) / m["free_async_floor"]
        print(
            f"floor: {m['floor']:.3f} ms of SQL, so at best (free + floor) / free ="
            f" {floor_ratio:.2f}x the async twin ({m['free_async_floor']:.3f} ms)"
        )
        http_ratio = m["http_redeem"] / m["http_free"]
        print(
            f"over streamable HTTP: redeem by id {m['http_redeem']:.3f} ms / free {m['http_free']:.3f} ms"
            f" = {http_ratio:.2f}x; floor implies {(m['http_free'] + m['floor']) / m['http_free']:.2f}x"
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
            "redeem_floor_ms": m["floor"],
            "redeem_floor_ratio": floor_ratio,
            "http_free_ms": m["http_free"],
            "http_redeem_ms": m["http_redeem"],
            "http_redeem_over_free": http_ratio,
            "calls": self.calls,
        }
        flat = {key: value if isinstance(value, int) else round(value, 3) for key, value in result.items()}
        print("BENCH-RESULT " + json.dumps(flat))


def _claim_and_consume(conn: sqlite3.Connection, request_id: str, price: int, result: str) -> None:
    """What a redemption writes, as the SQLite ledger writes it: claim (the guarded UPDATE,
    RETURNING the row and settled network, and its audit line), then consume (the fenced
    UPDATE, RETURNING the row, and its audit line); each one `BEGIN IMMEDIATE` transaction.
    The ledger's own statements, run straight on the connection (no limiter, no loop)."""
    now = time.time()
    claim_id = "floor"
    execute = partial(execute_on, conn)
    claim = claim_of(
        {"tool": "research_query", "price": price, "lease_until": now + 300, "claim_id": claim_id, "now": now}
    )
    with immediate(conn):
        taken = run_script(_STATEMENTS._take(request_id, None, claim, "research_query", price), execute)
    assert taken is not None, f"{request_id} was not claimable"
    consume = plan_transition(Event.CONSUME, now=now, result=result, claim_id=claim_id)
    with immediate(conn):
        consumed = run_script(_STATEMENTS._compare_and_set(request_id, consume), execute)
    assert consumed is not None, f"{request_id} was not consumed"


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

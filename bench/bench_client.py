"""Client side of a paid call: `PayingClient` against the official `x402MCPClient`, same server, one run.

    uv run python bench/bench_client.py [--calls 60] [--batch 5] [--warmup 5] [--quick] [--profile]

Both clients pay the same tool of the same server (ours: `Payments` with
`FacilitatorSettlement` to our facilitator, each in its own process, on one
anvil), over streamable HTTP on loopback, in alternating batches, so load and
chain growth fall on both alike. The figure is the whole paid call as the
caller sees it: unpaid probe, challenge parsing, budget check and durable
spending record (ours only: the official client keeps no budget), signing,
paid retry with settlement, receipt. Nothing is subtracted.

The official client (mcp 1.x, in `.venv-official/`) runs in a long-lived
subprocess that this file drives over stdin/stdout (`--official-driver`), with
the adapter of tests/interop_official_mcp/official_client.py (the receipt must
sit in `_meta`, official-sdk.md pitfall 5).

Prints medians and p90 per client, the ratio ours / official, where our
client's time goes (timed in separate batches, since timing each step costs a
little), and a `BENCH-RESULT` line. `--profile` adds a cProfile of our calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOL, ARGUMENTS = "answer", {"question": "bench"}


# -- the official client, run by .venv-official's python (stdlib at module level) -------------------


def official_driver(url: str) -> None:
    """`--official-driver URL`: read a count per stdin line, make that many paid calls,
    answer one JSON line with their durations (ms)."""
    import anyio

    sys.path.insert(0, str(ROOT / "tests" / "interop_official_mcp"))
    from eth_account import Account
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client  # type: ignore[attr-defined]  # mcp 1.x
    from official_client import SessionAdapter  # type: ignore[import-not-found]
    from x402 import x402Client
    from x402.mcp import x402MCPClient
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    async def drive() -> None:
        payments = x402Client()
        payments.register(
            "eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(os.environ["PAYER_KEY"])))
        )
        payments.set_spend_controls(False)  # the test token is not in the official table of assets
        async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            client = x402MCPClient(SessionAdapter(session), payments)
            print(json.dumps({"ready": True}), flush=True)
            for line in sys.stdin:
                if not line.strip():
                    break
                what, count = line.split()
                samples: list[float] = []
                failures: list[str] = []
                cpu_start = time.process_time()
                for _ in range(int(count)):
                    start = time.perf_counter()
                    if what == "ping":
                        # The same free tool through the same session: the MCP round trip alone.
                        free = await session.call_tool("ping", {})
                        samples.append((time.perf_counter() - start) * 1000)
                        if free.isError:  # type: ignore[attr-defined]  # mcp 1.x
                            failures.append(repr(free.content)[:300])
                        continue
                    result = await client.call_tool(TOOL, ARGUMENTS)
                    samples.append((time.perf_counter() - start) * 1000)
                    response = result.payment_response
                    if result.is_error or response is None or not getattr(response, "success", False):
                        failures.append(repr(result.content)[:300])
                cpu_ms = (time.process_time() - cpu_start) * 1000
                print(json.dumps({"samples_ms": samples, "failures": failures, "cpu_ms": cpu_ms}), flush=True)

    anyio.run(drive)


# -- our side -------------------------------------------------------------------------------------


class Official:
    """The long-lived official client process; `await batch(n)` makes n paid calls there."""

    def __init__(self, process: Any) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)
        self.cpu_ms = 0.0  # the process's CPU time (all threads) over the timed paid batches

    async def _line(self) -> dict[str, Any]:
        import anyio

        with anyio.fail_after(120):
            raw = await self._lines.receive_until(b"\n", 1 << 22)
        answer: dict[str, Any] = json.loads(raw)
        return answer

    async def batch(self, calls: int, what: str = "paid") -> list[float]:
        await self.process.stdin.send(f"{what} {calls}\n".encode())
        answer = await self._line()
        if answer["failures"]:
            raise RuntimeError(f"official paid calls failed: {answer['failures'][:2]}")
        samples: list[float] = answer["samples_ms"]
        if what == "paid":
            self.cpu_ms += answer["cpu_ms"]
        return samples


async def _start_official(python: Path, url: str, payer_key: str, folder: Path) -> Official:
    import subprocess

    import anyio

    from tests.interop_official_mcp.official import _base_env

    process = await anyio.open_process(
        [str(python), __file__, "--official-driver", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(folder / "official-client.log").open("wb"),
        env={**_base_env(), "PAYER_KEY": payer_key},
    )
    official = Official(process)
    try:
        ready = await official._line()
    except (anyio.EndOfStream, anyio.IncompleteRead) as exc:
        log = (folder / "official-client.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the official client did not start: {log}") from exc
    assert ready.get("ready")
    return official


STEPS = ("probe", "parse", "budget", "sign", "retry", "receipt")


class StepTimer:
    """Times the steps of `PayingClient.call_tool` by wrapping the very functions it calls
    (instance attributes and the names `paying` looks up), so the path measured is the real one."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}

    def wrap_async(self, step: str, function: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.current[step] = self.current.get(step, 0.0) + (time.perf_counter() - start) * 1000

        return timed

    def wrap(self, step: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[step] = self.current.get(step, 0.0) + (time.perf_counter() - start) * 1000

        return timed

    def install(self, client: Any) -> Any:
        """Wrap `client`'s steps; returns a function that undoes it."""
        from x402_mcp.client import paying

        mcp_client = client.client
        original_call = mcp_client.call_tool

        async def call_tool(name: str, arguments: Any = None, **kwargs: Any) -> Any:
            step = "retry" if kwargs.get("meta") else "probe"
            return await self.wrap_async(step, original_call)(name, arguments, **kwargs)

        saved = {name: getattr(paying, name) for name in ("find_payment_required", "choose", "receipt_of")}
        mcp_client.call_tool = call_tool
        paying.find_payment_required = self.wrap("parse", saved["find_payment_required"])  # type: ignore[attr-defined]
        paying.choose = self.wrap("parse", saved["choose"])  # type: ignore[attr-defined]
        paying.receipt_of = self.wrap("receipt", saved["receipt_of"])  # type: ignore[attr-defined]
        store = client.store
        for method in ("committed", "reserve", "discard"):
            if hasattr(store, method):
                setattr(store, method, self.wrap_async("budget", getattr(store, method)))
        store.mark_spent = self.wrap_async("receipt", store.mark_spent)
        client._sign = self.wrap("sign", client._sign)

        def undo() -> None:
            del mcp_client.call_tool
            for name, value in saved.items():
                setattr(paying, name, value)
            for method in ("committed", "reserve", "discard", "mark_spent"):
                store.__dict__.pop(method, None) if hasattr(store, "__dict__") else None
            del client._sign

        return undo


OUR_CPU = [0.0]  # this process's CPU time (all threads) over the timed paid batches


async def _ours_batch(client: Any, calls: int, *, timed: bool = False) -> list[float]:
    cpu_start = time.process_time()
    try:
        return await _ours_calls(client, calls)
    finally:
        if timed:
            OUR_CPU[0] += (time.process_time() - cpu_start) * 1000


async def _ours_calls(client: Any, calls: int) -> list[float]:
    samples: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        answer = await client.call_tool(TOOL, ARGUMENTS)
        samples.append((time.perf_counter() - start) * 1000)
        if answer.receipt is None or not answer.receipt.success:
            raise RuntimeError(f"a paid call failed: {answer.text}")
    return samples


async def _ours_pings(client: Any, calls: int) -> list[float]:
    samples: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        free = await client.client.call_tool("ping", {})
        samples.append((time.perf_counter() - start) * 1000)
        if free.is_error:
            raise RuntimeError(f"a free call failed: {free}")
    return samples


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.9) - 1)]


async def run(args: argparse.Namespace, folder: Path) -> None:
    import cProfile
    import pstats

    from eth_account import Account

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_agent import _our_facilitator, _our_server

    from tests.chains import ANVIL_BINARY, running_anvil
    from tests.interop_official_mcp.official import official_python
    from x402_mcp.client import Budget, PayingClient

    python = official_python()
    ours: list[float] = []
    theirs: list[float] = []
    ours_free: list[float] = []
    theirs_free: list[float] = []
    steps: dict[str, list[float]] = {step: [] for step in (*STEPS, "total")}
    profile_text = ""
    with running_anvil(ANVIL_BINARY, folder / "anvil.log") as chain:
        gas = Account.create()
        chain.fund_eth(gas.address, 10**18)
        token = os.urandom(32).hex()
        payee = Account.create().address
        facilitator, facilitator_url = await _our_facilitator(
            chain, gas.key.to_0x_hex(), token, [payee], folder
        )
        env = {"FACILITATOR_URL": facilitator_url, "FACILITATOR_TOKEN": token, "TOKEN": chain.usdc,
               "TOKEN_NAME": chain.asset.name, "NETWORK": chain.network, "PAY_TO": payee,
               "LEDGER": str(folder / "ledger.sqlite")}  # fmt: skip
        server, url = await _our_server(env, folder)
        official = None
        try:
            official = await _start_official(python, url, chain.new_account(usdc="100").key.hex(), folder)
            budget = Budget(per_call="0.05", total="100", per_day="100", file=folder / "budget.sqlite")
            payer = chain.new_account(usdc="100")
            options = {} if args.mode == "auto" else {"mode": args.mode}
            async with PayingClient(url, account=payer, budget=budget, assets=[chain.asset], **options) as c:
                await _ours_batch(c, args.warmup)
                await official.batch(args.warmup)
                await _ours_pings(c, args.warmup)
                await official.batch(args.warmup, "ping")
                done = 0
                while done < args.calls:
                    size = min(args.batch, args.calls - done)
                    # Alternate who goes first, so neither always follows the other's chain growth.
                    if (done // args.batch) % 2 == 0:
                        ours += await _ours_batch(c, size, timed=True)
                        theirs += await official.batch(size)
                        ours_free += await _ours_pings(c, size)
                        theirs_free += await official.batch(size, "ping")
                    else:
                        theirs += await official.batch(size)
                        ours += await _ours_batch(c, size, timed=True)
                        theirs_free += await official.batch(size, "ping")
                        ours_free += await _ours_pings(c, size)
                    done += size
                timer = StepTimer()
                undo = timer.install(c)
                try:
                    for _ in range(args.breakdown):
                        timer.current = {}
                        start = time.perf_counter()
                        await _ours_batch(c, 1)
                        total = (time.perf_counter() - start) * 1000
                        for step in STEPS:
                            steps[step].append(timer.current.get(step, 0.0))
                        steps["total"].append(total)
                finally:
                    undo()
                if args.profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await _ours_batch(c, args.breakdown)
                    profiler.disable()
                    import io

                    out = io.StringIO()
                    stats = pstats.Stats(profiler, stream=out)
                    stats.sort_stats("tottime").print_stats(30)
                    stats.sort_stats("cumulative").print_stats(45)
                    profile_text = out.getvalue()
        finally:
            official_cpu = official.cpu_ms if official is not None else 0.0
            if official is not None:
                await official.process.stdin.send(b"\n")
                await official.process.wait()
            server.terminate()
            await server.wait()
            facilitator.terminate()
            await facilitator.wait()

    print("client side of a paid call, over streamable HTTP on loopback, both clients against OUR server")
    print(
        f"(FacilitatorSettlement to our facilitator, separate processes, one anvil), {len(ours)} calls each"
    )
    print(f"after {args.warmup} warm-up, interleaved in batches of {args.batch}; machine shared (noisy)\n")
    print(f"{'client':<32} {'median ms':>9} {'p90 ms':>9}")
    print(f"{'PayingClient (ours)':<32} {_median(ours):>9.3f} {_p90(ours):>9.3f}")
    print(f"{'x402MCPClient (official)':<32} {_median(theirs):>9.3f} {_p90(theirs):>9.3f}")
    ratio = _median(ours) / _median(theirs)
    print(f"\nours / official (median): {ratio:.3f}  (target <= 1.0)")
    ours_cpu, theirs_cpu = OUR_CPU[0] / len(ours), official_cpu / len(theirs)
    print("\nCPU time of the client process per paid call (all its threads; servers, facilitator and")
    print(f"chain run elsewhere), less sensitive to the load: ours {ours_cpu:.3f} ms, official")
    print(f"{theirs_cpu:.3f} ms, ours / official {ours_cpu / theirs_cpu:.3f}")
    free_ratio = _median(ours_free) / _median(theirs_free)
    print(f"\nfor scale, a free call (the MCP round trip alone, mcp 2.x mode={args.mode} vs mcp 1.x):")
    print(f"{'mcp.Client (ours)':<32} {_median(ours_free):>9.3f} {_p90(ours_free):>9.3f}")
    print(f"{'ClientSession (official)':<32} {_median(theirs_free):>9.3f} {_p90(theirs_free):>9.3f}")
    print(f"free ours / official: {free_ratio:.3f}")
    print(f"\nwhere PayingClient's time goes ({args.breakdown} separately timed calls, median ms):")
    for step in (*STEPS, "total"):
        print(f"  {step:<8} {_median(steps[step]):>8.3f}")
    rest = [t - sum(steps[s][i] for s in STEPS) for i, t in enumerate(steps["total"])]
    print(f"  {'other':<8} {_median(rest):>8.3f}   (the glue between the steps)")
    print("  (budget: the reservation, synced to disk; for a tool paid before it runs while the")
    print("  probe is out, so budget and probe overlap and 'other' goes negative by as much)")
    if profile_text:
        print("\ncProfile of our calls:\n" + profile_text)
    result = {
        "ours_ms": round(_median(ours), 3),
        "official_ms": round(_median(theirs), 3),
        "ratio": round(ratio, 3),
        "ours_p90_ms": round(_p90(ours), 3),
        "official_p90_ms": round(_p90(theirs), 3),
        **{f"ours_{step}_ms": round(_median(steps[step]), 3) for step in STEPS},
        "ours_cpu_ms": round(ours_cpu, 3),
        "official_cpu_ms": round(theirs_cpu, 3),
        "cpu_ratio": round(ours_cpu / theirs_cpu, 3),
        "ours_free_ms": round(_median(ours_free), 3),
        "official_free_ms": round(_median(theirs_free), 3),
        "free_ratio": round(free_ratio, 3),
        "calls": len(ours),
    }
    print("BENCH-RESULT " + json.dumps(result))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--official-driver":
        official_driver(sys.argv[2])
        return
    import anyio

    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100, help="timed calls per client")
    parser.add_argument("--batch", type=int, default=5, help="calls per client before switching")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--breakdown", type=int, default=20, help="separately timed calls of ours")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of our calls")
    parser.add_argument(
        "--mode", default="auto", help="PayingClient's MCP connect mode: auto (its default) or legacy"
    )
    parser.add_argument("--quick", action="store_true", help="few calls (< 60 s)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.warmup, args.breakdown = 20, 3, 10
    with tempfile.TemporaryDirectory(prefix="x402-bench-client-") as folder:
        anyio.run(run, args, Path(folder))


if __name__ == "__main__":
    main()

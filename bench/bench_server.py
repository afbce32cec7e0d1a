"""Server side of a paid call, ours against the official SDK's, on one anvil, interleaved.

    uv run python bench/bench_server.py [--quick] [--rounds 10] [--batch 10] [--warmup 5]

What is timed, for both stacks alike: one paid `tools/call` carrying an already
signed payment, from the request until its (settled) result, over the in-memory
MCP transport. Untimed before each call: asking for the challenge and signing it.

* ours: `MCPServer` + `Payments` (SQLite ledger) + `LocalSettlement.from_rpc`, a
  `@paid` tool, driven by `mcp.Client(server)` in this process;
* official: FastMCP (MCP SDK 1.x) + x402's `create_payment_wrapper` + an in-process
  `x402Facilitator` with its `FacilitatorWeb3Signer`, driven through MCP 1.x's
  in-memory session, in a subprocess of `.venv-official` (bench/_official_server_side.py)
  that takes one batch at a time over stdin/stdout.

Batches of the two stacks alternate (and so does who goes first in a round), on
one anvil, so both meet the same machine load and chain history. The anvil gets
fewer than ~300 transactions in a default run: its time per block grows with
history (reference/official-sdk.md, pitfall 7).

JSON-RPC calls are counted on the wire by a recording HTTP proxy in front of
anvil (tests/settlement/rpc_proxy.py), for a few paid calls of each stack after warm-up,
through a second server of each stack whose RPC URL is the proxy. The timed
calls go straight to anvil, for both: a proxy hop per round trip would weigh on
the stack making more round trips and flatter our ratio.

Settlement is checked in the end: each stack's payee must hold exactly the price
times the number of its paid calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.server import MCPServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chains import ANVIL_BINARY, AnvilChain, running_anvil  # noqa: E402
from tests.settlement.rpc_proxy import RecordingProxy  # noqa: E402
from x402_mcp import Payments, paid  # noqa: E402
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment  # noqa: E402
from x402_mcp.settlement.local import LocalSettlement  # noqa: E402

OFFICIAL_PYTHON = ROOT / ".venv-official" / "bin" / "python"
OFFICIAL_SCRIPT = Path(__file__).resolve().parent / "_official_server_side.py"
PRICE = "0.01"
AMOUNT = 10_000  # PRICE in atomic units of the 6-decimal token
ARGUMENTS = {"question": "bench"}


class Ours:
    """Our paid server, one per RPC URL; `call` times one presigned paid call."""

    def __init__(self, chain: AnvilChain, rpc_url: str, gas: LocalAccount, pay_to: str, ledger: Path) -> None:
        settlement = LocalSettlement.from_rpc(rpc_url, gas.key.to_0x_hex(), network=chain.network_info)
        payments = Payments(
            pay_to=pay_to, network=chain.network, asset=chain.asset, settlement=settlement, ledger=str(ledger)
        )
        self.server = MCPServer("bench", extensions=[payments])

        @self.server.tool()
        @paid(price=PRICE)
        def answer(question: str) -> str:
            return f"answer to {question}"

    async def call(self, client: Client, payer: LocalAccount, proxy: RecordingProxy | None = None) -> float:
        challenge = await client.call_tool("answer", ARGUMENTS)
        payment = sign_payment(payer, read_challenge(challenge))
        if proxy is not None and proxy.take():
            raise SystemExit("our challenge made JSON-RPC calls")
        start = time.perf_counter()
        result = await client.call_tool("answer", ARGUMENTS, meta=payment_meta(payment))
        elapsed = (time.perf_counter() - start) * 1000
        if result.is_error:
            raise SystemExit(f"our paid call failed: {result.content}")
        return elapsed


class Official:
    """The official server side in its own interpreter, one batch per command."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        ready = self._read()
        if "ready" not in ready:
            raise SystemExit(f"the official side did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise SystemExit("the official side exited; see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def run(self, server: str, calls: int) -> list[float]:
        def exchange() -> list[float]:
            stdin = self._process.stdin
            assert stdin is not None
            stdin.write(json.dumps({"op": "run", "server": server, "calls": calls}) + "\n")
            stdin.flush()
            samples: list[float] = self._read()["samples_ms"]
            return samples

        return await anyio.to_thread.run_sync(exchange)

    def close(self) -> None:
        stdin = self._process.stdin
        if stdin is not None:
            stdin.write(json.dumps({"op": "quit"}) + "\n")
            stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.9) - 1)]


def _start_official(env: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [str(OFFICIAL_PYTHON), str(OFFICIAL_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )


def _funded_gas(chain: AnvilChain) -> LocalAccount:
    gas: LocalAccount = Account.create()
    chain.fund_eth(gas.address, 10**18)
    return gas


async def run(rounds: int, batch: int, warmup: int, counted: int) -> dict[str, Any]:
    if not OFFICIAL_PYTHON.exists():
        raise SystemExit(f"{OFFICIAL_PYTHON} is missing: run the interop tests once to build .venv-official")
    with (
        tempfile.TemporaryDirectory() as scratch,
        running_anvil(ANVIL_BINARY, Path(scratch) / "anvil.log") as chain,
    ):
        work = Path(scratch)
        our_payer, official_payer = chain.new_account("1000"), chain.new_account("1000")
        our_payee, official_payee = Account.create().address, Account.create().address
        with RecordingProxy(chain.rpc_url) as proxy:
            ours = {
                name: Ours(chain, url, _funded_gas(chain), our_payee, work / f"{name}.sqlite")
                for name, url in (("direct", chain.rpc_url), ("proxied", proxy.url))
            }
            official_gas = {name: _funded_gas(chain) for name in ("direct", "proxied")}
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", ""),
                "SERVERS": "direct,proxied",
                "RPC_DIRECT": chain.rpc_url,
                "RPC_PROXIED": proxy.url,
                "GAS_KEY_DIRECT": official_gas["direct"].key.to_0x_hex(),
                "GAS_KEY_PROXIED": official_gas["proxied"].key.to_0x_hex(),
                "PAYER_KEY": official_payer.key.to_0x_hex(),
                "NETWORK": chain.network,
                "TOKEN": chain.usdc,
                "TOKEN_NAME": chain.asset.name,
                "TOKEN_VERSION": chain.asset.version,
                "PAY_TO": official_payee,
                "AMOUNT": str(AMOUNT),
            }
            process = _start_official(env, work / "official.log")
            try:
                official = Official(process)
            except BaseException:
                process.kill()
                print((work / "official.log").read_text()[-3000:], file=sys.stderr)
                raise
            paid_calls = {"ours": 0, "official": 0}
            try:
                async with Client(ours["direct"].server) as direct, Client(ours["proxied"].server) as proxied:
                    # Warm-up: caches (chain id, nonce, fees, code), imports, the ledger's first writes.
                    for _ in range(warmup):
                        await ours["direct"].call(direct, our_payer)
                    await official.run("direct", warmup)
                    await ours["proxied"].call(proxied, our_payer)
                    await official.run("proxied", 1)
                    paid_calls["ours"] += warmup + 1
                    paid_calls["official"] += warmup + 1

                    # RPC count: each paid call through the recording proxy, one at a time.
                    proxy.take()
                    rpc: dict[str, list[list[str]]] = {"ours": [], "official": []}
                    for _ in range(counted):
                        await ours["proxied"].call(proxied, our_payer, proxy)
                        rpc["ours"].append(proxy.take())
                        await official.run("proxied", 1)  # its challenge costs no RPC either (checked below)
                        rpc["official"].append(proxy.take())
                    paid_calls["ours"] += counted
                    paid_calls["official"] += counted

                    samples: dict[str, list[float]] = {"ours": [], "official": []}
                    for index in range(rounds):
                        order = ("ours", "official") if index % 2 == 0 else ("official", "ours")
                        for stack in order:
                            if stack == "ours":
                                samples["ours"] += [
                                    await ours["direct"].call(direct, our_payer) for _ in range(batch)
                                ]
                            else:
                                samples["official"] += await official.run("direct", batch)
                    paid_calls["ours"] += rounds * batch
                    paid_calls["official"] += rounds * batch
            finally:
                official.close()
        settled = {"ours": chain.balance_of(our_payee), "official": chain.balance_of(official_payee)}
    for stack, received in settled.items():
        if received != paid_calls[stack] * AMOUNT:
            raise SystemExit(
                f"{stack}: expected {paid_calls[stack] * AMOUNT} atomic units settled, got {received}"
            )
    return {"samples": samples, "rpc": rpc, "paid_calls": paid_calls, "settled": settled}


def report(result: dict[str, Any], rounds: int, batch: int, warmup: int) -> None:
    samples, rpc = result["samples"], result["rpc"]
    ours, official = _stats(samples["ours"]), _stats(samples["official"])
    print(
        "server side of a paid call (presigned payload -> result), in-memory MCP, "
        "local settlement on anvil;\n"
        f"{rounds} interleaved rounds of {batch} calls per stack after {warmup} warm-up calls, "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (ms)"
    )
    print(f"{'stack':<10} {'median':>8} {'p90':>8} {'min':>8} {'>=100ms':>8}")
    for stack, (median, p90) in (("ours", ours), ("official", official)):
        slow = sum(1 for sample in samples[stack] if sample >= 100)
        print(f"{stack:<10} {median:>8.2f} {p90:>8.2f} {min(samples[stack]):>8.2f} {slow:>8}")
    lowest = min(samples["ours"]) / min(samples["official"])
    print(
        f"ratio ours/official: median {ours[0] / official[0]:.3f}, p90 {ours[1] / official[1]:.3f}, "
        f"min {lowest:.3f}"
    )
    unmissed = [sample for sample in samples["official"] if sample < 100] or samples["official"]
    conservative = ours[0] / statistics.median(unmissed)
    print(
        "  (>=100ms: calls slower than the official receipt poll interval of 0.1 s; the official side\n"
        "   waits that long whenever its first receipt poll comes before anvil has mined)\n"
        f"ratio ours/official, the official's calls under 100 ms only (no receipt-poll miss): "
        f"median {conservative:.3f}"
    )
    print("JSON-RPC calls per paid call, counted on the wire (each counted call):")
    for stack in ("ours", "official"):
        for index, methods in enumerate(rpc[stack], 1):
            by_method = ", ".join(f"{name} x{count}" for name, count in Counter(methods).items())
            print(f"  {stack:<9} call {index}: {len(methods):>2}  ({by_method})")
    print(
        f"settled on chain: ours {result['settled']['ours']} units in {result['paid_calls']['ours']} calls, "
        f"official {result['settled']['official']} units in {result['paid_calls']['official']} calls"
    )
    headline = {
        "bench": "server_side_paid_call",
        "ours_median_ms": round(ours[0], 3),
        "ours_p90_ms": round(ours[1], 3),
        "official_median_ms": round(official[0], 3),
        "official_p90_ms": round(official[1], 3),
        "ratio_median": round(ours[0] / official[0], 3),
        "ratio_p90": round(ours[1] / official[1], 3),
        "ratio_min": round(lowest, 3),
        "ratio_median_official_unmissed": round(conservative, 3),
        "ours_rpc_per_call_max": max(len(methods) for methods in rpc["ours"]),
        "official_rpc_per_call_max": max(len(methods) for methods in rpc["official"]),
        "calls_per_stack": len(samples["ours"]),
    }
    print("BENCH-RESULT " + json.dumps(headline))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a few calls, to check it runs (< 60 s)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--counted", type=int, default=3, help="paid calls counted through the proxy")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.rounds, arguments.batch, arguments.warmup, arguments.counted = 4, 3, 2, 2
    logging.getLogger("x402_mcp").setLevel(logging.WARNING)  # a log line per settlement skews timings
    result = anyio.run(run, arguments.rounds, arguments.batch, arguments.warmup, arguments.counted)
    report(result, arguments.rounds, arguments.batch, arguments.warmup)


if __name__ == "__main__":
    main()

"""An agent's paid call: ours against the official x402 MCP package, in one run, on one anvil.

    uv run python bench/bench_agent.py [--calls 30] [--warmup 5] [--mode auto|legacy] [--quick]

Four pairings, each a complete paid call as an agent makes it (unpaid probe,
challenge, signature, paid retry, settlement on chain, receipt), over
streamable HTTP on loopback, every server in its own process:

- `PayingClient` (budget checks and durable spending records included) against
  our server (`Payments`, `FacilitatorSettlement`);
- the official `x402MCPClient` against the official server (`create_payment_wrapper`,
  official `HTTPFacilitatorClient`);
- and the two crossings, which separate client cost from server cost.

Both servers settle through one facilitator, ours (`x402-mcp facilitator`, in its
own process, one gas key), on the same anvil and token; each row gets a fresh payer. The
official side runs in `.venv-official/` (see tests/interop_official_mcp/).
Prints medians and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The anvil harness and the official environment live with the tests; share them, don't copy.
sys.path.insert(0, str(ROOT))

PRICE = 10_000  # $0.01


def serve_ours(port_file: str) -> None:
    """`--serve-ours`: our paid server, configured from the environment, on a free loopback port."""
    from mcp.server import MCPServer

    from tests.interop_official_mcp.loopback import serve_announcing_port
    from x402_mcp import Payments, paid
    from x402_mcp.core.networks import Asset
    from x402_mcp.settlement import FacilitatorSettlement

    network = os.environ["NETWORK"]
    settlement = FacilitatorSettlement(
        os.environ["FACILITATOR_URL"], network=network, token=os.environ["FACILITATOR_TOKEN"]
    )
    payments = Payments(
        pay_to=os.environ["PAY_TO"],
        network=network,
        asset=Asset(os.environ["TOKEN"], name=os.environ["TOKEN_NAME"]),
        settlement=settlement,
        ledger=os.environ["LEDGER"],
        public_url="http://127.0.0.1:9/unused",
    )
    server = MCPServer("ours", extensions=[payments], log_level="WARNING")

    @server.tool()
    def ping() -> str:
        return "pong"

    @server.tool()
    @paid(price="0.01")
    async def answer(question: str) -> str:
        return f"our answer to {question}"

    serve_announcing_port(server.streamable_http_app(), port_file)


async def _our_facilitator(chain: Any, gas_key: str, token: str, payees: list[str], folder: Path) -> Any:
    """Start `x402-mcp facilitator` on anvil in a subprocess, behind `token`, settling for `payees`;
    returns (process, url)."""
    import subprocess

    import anyio
    import httpx2

    from tests.facilitator.serving import loopback_socket

    sock = loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    log = (folder / "facilitator.log").open("wb")
    process = await anyio.open_process(
        [sys.executable, "-m", "x402_mcp.cli.main", "facilitator", "--rpc-url", chain.rpc_url,
         "--network", chain.network, "--asset", chain.usdc, "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "X402_FACILITATOR_KEY": gas_key, "X402_FACILITATOR_TOKEN": token,
             "X402_FACILITATOR_PAY_TO": ",".join(payees)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with httpx2.AsyncClient(timeout=2) as http:
        with anyio.fail_after(30):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"our facilitator exited; see {folder / 'facilitator.log'}")
                try:
                    (
                        await http.get(f"{url}/supported", headers={"Authorization": f"Bearer {token}"})
                    ).raise_for_status()
                    return process, url
                except httpx2.TransportError:
                    await anyio.sleep(0.02)


async def _our_server(env: dict[str, str], folder: Path) -> Any:
    """Start `--serve-ours` in a subprocess; returns (process, url)."""
    import subprocess

    import anyio

    port_file = folder / "ours.port"
    log = (folder / "ours.log").open("wb")
    process = await anyio.open_process(
        [sys.executable, __file__, "--serve-ours", str(port_file)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    with anyio.fail_after(30):
        while not await anyio.Path(port_file).exists():
            if process.returncode is not None:
                raise RuntimeError(f"our server exited; see {folder / 'ours.log'}")
            await anyio.sleep(0.02)
    port = int(await anyio.Path(port_file).read_text())
    return process, f"http://127.0.0.1:{port}/mcp"


async def _paying_client(
    url: str, chain: Any, folder: Path, calls: int, warmup: int, mode: str = "auto"
) -> list[float]:
    from x402_mcp.client import Budget, PayingClient

    payer = chain.new_account(usdc="100")
    budget = Budget(per_call="0.05", file=folder / f"budget-{time.monotonic_ns()}.sqlite")
    samples: list[float] = []
    options = {} if mode == "auto" else {"mode": mode}
    async with PayingClient(url, account=payer, budget=budget, assets=[chain.asset], **options) as client:
        for index in range(warmup + calls):
            start = time.perf_counter()
            answer = await client.call_tool("answer", {"question": "bench"})
            elapsed = (time.perf_counter() - start) * 1000
            if answer.receipt is None or not answer.receipt.success:
                raise RuntimeError(f"a paid call failed: {answer.text}")
            if index >= warmup:
                samples.append(elapsed)
    return samples


async def _official_client(python: Path, url: str, chain: Any, calls: int, warmup: int) -> list[float]:
    from tests.interop_official_mcp.official import official_client

    payer = chain.new_account(usdc="100")
    outcome = await official_client(
        python, url, "answer", json.dumps({"question": "bench"}), payer_key=payer.key.hex(),
        calls=calls, warmup=warmup,
    )  # fmt: skip
    if outcome["is_error"] or not (outcome["payment_response"] or {}).get("success"):
        raise RuntimeError(f"an official paid call failed: {outcome}")
    samples: list[float] = outcome["samples_ms"]
    return samples


async def run(calls: int, warmup: int, folder: Path, mode: str = "auto") -> None:
    from eth_account import Account

    from tests.chains import ANVIL_BINARY, running_anvil
    from tests.interop_official_mcp.official import official_python, official_server

    python = official_python()
    with running_anvil(ANVIL_BINARY, folder / "anvil.log") as chain:
        gas = Account.create()
        chain.fund_eth(gas.address, 10**18)
        token = secrets.token_hex(32)
        our_payee, their_payee = Account.create().address, Account.create().address
        facilitator, facilitator_url = await _our_facilitator(
            chain, gas.key.to_0x_hex(), token, [our_payee, their_payee], folder
        )
        common = {"FACILITATOR_URL": facilitator_url, "FACILITATOR_TOKEN": token, "TOKEN": chain.usdc,
                  "TOKEN_NAME": chain.asset.name, "NETWORK": chain.network}  # fmt: skip
        ours_env = {**common, "PAY_TO": our_payee, "LEDGER": str(folder / "ledger.sqlite")}
        theirs_env = {**common, "AMOUNT": str(PRICE), "PAY_TO": their_payee}
        rows: list[tuple[str, list[float]]] = []
        try:
            process, ours = await _our_server(ours_env, folder)
            try:
                async with official_server(python, theirs_env, folder) as theirs:
                    rows.append(("PayingClient -> our server",
                                 await _paying_client(ours, chain, folder, calls, warmup, mode)))  # fmt: skip
                    rows.append(("x402MCPClient -> official server",
                                 await _official_client(python, theirs, chain, calls, warmup)))  # fmt: skip
                    crossed = await _paying_client(theirs, chain, folder, calls, warmup, mode)
                    rows.append(("PayingClient -> official server", crossed))
                    rows.append(("x402MCPClient -> our server",
                                 await _official_client(python, ours, chain, calls, warmup)))  # fmt: skip
            finally:
                process.terminate()
                await process.wait()
        finally:
            facilitator.terminate()
            await facilitator.wait()

    print(f"agent paid call over streamable HTTP on loopback: {calls} calls each after {warmup} warm-up,")
    print("one anvil (automine), our EIP-3009 token, both servers settling through our one facilitator,")
    print("every server (and the facilitator) in its own process\n")
    print(f"{'client -> server':<36} {'median ms':>9} {'p90 ms':>9}")
    for name, samples in rows:
        ordered = sorted(samples)
        p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
        print(f"{name:<36} {statistics.median(ordered):>9.2f} {p90:>9.2f}")
    medians = [statistics.median(samples) for _, samples in rows]
    print(f"\nofficial / ours (median, each against its own server): {medians[1] / medians[0]:.2f}x")
    print("(for the client alone, both against one server, interleaved: bench/bench_client.py)")
    keys = ("ours_ours_ms", "official_official_ms", "ours_official_ms", "official_ours_ms")
    result = {key: round(median, 3) for key, median in zip(keys, medians, strict=True)}
    result["official_over_ours"] = round(medians[1] / medians[0], 3)
    print("BENCH-RESULT " + json.dumps(result))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-ours":
        serve_ours(sys.argv[2])
        return
    import anyio

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--mode", default="auto", help="PayingClient's MCP connect mode (auto or legacy)")
    parser.add_argument("--quick", action="store_true", help="few calls (< 60 s)")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.warmup = 10, 2
    with tempfile.TemporaryDirectory(prefix="x402-bench-agent-") as folder:
        anyio.run(run, args.calls, args.warmup, Path(folder), args.mode)


if __name__ == "__main__":
    main()

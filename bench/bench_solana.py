"""A paid MCP tool call settled on Solana against the same call settled on EVM, in one run.

    uv run python bench/bench_solana.py [--calls 30] [--warmup 5]

One paid server (`tests/solana/conftest.py` `build_shop`: `@paid(price="0.05")`, SQLite
ledger, an in-memory MCP `Client`) offers both networks in every challenge; the calls of
the two variants alternate, so both see the same server, ledger and machine state:

1. EVM: the embedded `DevChain` with `DevChain().settlement()`, in process (the baseline);
   the payer signs an EIP-3009 authorization with `sign_payment`.
2. Solana: the official x402 SVM client signs a USDC transfer (in a worker thread; it asks
   the RPC for a blockhash), our server hands it to the official x402 SVM facilitator
   library on loopback (/verify, then /settle), which simulates it and sends it to LiteSVM
   through the JSON-RPC server in `tests/solana/rpc.py`.

Per variant: median and p90 of the paid `tools/call` (the call carrying
`_meta["x402/payment"]`, signing excluded) and of the payer's signing. Every call must
succeed with a receipt on its own network, and each payee must gain exactly N x price
over the measured calls. For Solana, small ASGI wrappers around the facilitator and the
RPC server time each request, which splits the paid call into /verify, /settle and the rest.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.to_thread import run_sync
from mcp import Client
from mcp.types import CallToolResult, TextContent
from solders.keypair import Keypair

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.facilitator.serving import serving
from tests.solana.conftest import LocalSolanaNode, SolanaShop, build_shop
from tests.solana.localsvm import SOLANA_DEVNET, LocalSolana
from tests.solana.official import ignore_solana_py_deprecations, official_svm_facilitator_app
from tests.solana.rpc import solana_rpc_app
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE

PRICE = 50_000  # "0.05" USDC in atomic units, on both networks
EVM = "EVM, DevChain, local settlement"
SOLANA = "Solana, official facilitator, LiteSVM"


class Timed:
    """ASGI wrapper: appends (label, milliseconds) for each HTTP request to `events`.

    `label(path, body)` names a request once its body has been read; the time runs from
    the request's arrival until the app returns (its answer sent).
    """

    def __init__(self, app: Any, events: list[tuple[str, float]], label: Callable[[str, bytes], str]) -> None:
        self.app = app
        self.events = events
        self.label = label

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def peek() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        start = time.perf_counter()
        await self.app(scope, peek, send)
        elapsed = (time.perf_counter() - start) * 1000
        self.events.append((self.label(scope["path"], b"".join(chunks)), elapsed))


def _rpc_method(path: str, body: bytes) -> str:
    try:
        return f"rpc {json.loads(body).get('method')}"
    except (ValueError, AttributeError):
        return "rpc ?"


class SolanaPayer:
    """The official x402 sync client with the exact SVM scheme, built once (as a wallet would be).

    Mirrors `tests/solana/official.py official_svm_payment`, which builds a client per payment;
    keeping one caches the mint's metadata, so a steady-state payment asks the RPC only for a
    blockhash.
    """

    def __init__(self, payer: Keypair, rpc_url: str) -> None:
        from x402 import x402ClientSync
        from x402.mechanisms.svm import KeypairSigner
        from x402.mechanisms.svm.exact import register_exact_svm_client

        self.client = register_exact_svm_client(
            x402ClientSync(), KeypairSigner(payer), networks=SOLANA_DEVNET, rpc_url=rpc_url
        )

    def sign(self, payment_required: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The payment payload (JSON-ready) and the milliseconds it took; blocking, for a worker thread."""
        from x402.schemas import PaymentRequired

        start = time.perf_counter()
        payload = self.client.create_payment_payload(PaymentRequired.model_validate(payment_required))
        dumped: dict[str, Any] = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dumped, (time.perf_counter() - start) * 1000


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _check(result: CallToolResult, question: str, network: str) -> None:
    if result.is_error:
        raise SystemExit(f"a paid call on {network} failed: {_text(result)}")
    receipt = (result.meta or {}).get(META_PAYMENT_RESPONSE) or {}
    if _text(result) != f"answer to {question}" or not receipt.get("success"):
        raise SystemExit(f"a paid call on {network} returned {_text(result)!r} with receipt {receipt}")
    if receipt.get("network") != network:
        raise SystemExit(f"a paid call meant for {network} settled on {receipt.get('network')}")


def _stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.9) - 1)]


@dataclass
class Samples:
    paid: list[float] = field(default_factory=list)
    signing: list[float] = field(default_factory=list)


async def paid_call(
    client: Client, shop: SolanaShop, variant: str, question: str, payer: Any, events: list[tuple[str, float]]
) -> tuple[float, float, list[tuple[str, float]], list[tuple[str, float]]]:
    """One paid call on `variant`'s network.

    Returns: the paid call's and the signing's milliseconds, and the requests timed during each.
    """
    challenge = await client.call_tool("answer", {"question": question})
    if not challenge.is_error:
        raise SystemExit(f"no payment challenge: {_text(challenge)}")
    mark = len(events)
    if variant == EVM:
        start = time.perf_counter()
        meta: Any = payment_meta(sign_payment(payer, read_challenge(challenge)))
        signed_ms = (time.perf_counter() - start) * 1000
        network = shop.chain.network
    else:
        payload, signed_ms = await run_sync(payer.sign, read_challenge(challenge).dump())
        meta = {META_PAYMENT: payload}
        network = SOLANA_DEVNET
    while_signing = events[mark:]
    mark = len(events)
    start = time.perf_counter()
    result = await client.call_tool("answer", {"question": question}, meta=meta)
    paid_ms = (time.perf_counter() - start) * 1000
    _check(result, question, network)
    return paid_ms, signed_ms, while_signing, events[mark:]


async def run(calls: int, warmup: int, folder: Path) -> None:
    chain = DevChain()
    svm = LocalSolana()
    events: list[tuple[str, float]] = []  # (label, ms) of every request to the facilitator and the RPC
    samples = {EVM: Samples(), SOLANA: Samples()}
    breakdown: list[dict[str, dict[str, list[float]]]] = []  # per measured Solana call, see _phases

    async with serving(Timed(solana_rpc_app(svm), events, _rpc_method)) as rpc_url:
        facilitator = Timed(
            official_svm_facilitator_app(svm.fee_payer, rpc_url), events, lambda path, _: path
        )
        async with serving(facilitator) as facilitator_url:
            shop = build_shop(chain, LocalSolanaNode(svm, rpc_url), facilitator_url, folder / "ledger.sqlite")
            evm_payer = chain.new_account(usdc="100")
            sol_keys = svm.new_payer(usdc="100")
            payers = {EVM: evm_payer, SOLANA: SolanaPayer(sol_keys, rpc_url)}
            try:
                async with Client(shop.server) as client:
                    for index in range(warmup + calls):
                        if index == warmup:
                            before = _balances(shop, evm_payer.address, str(sol_keys.pubkey()))
                        # Alternate which network goes first, so neither always follows the other.
                        for variant in (EVM, SOLANA) if index % 2 == 0 else (SOLANA, EVM):
                            question = f"{variant} {index}"
                            paid_ms, signed_ms, while_signing, while_paying = await paid_call(
                                client, shop, variant, question, payers[variant], events
                            )
                            if index >= warmup:
                                samples[variant].paid.append(paid_ms)
                                samples[variant].signing.append(signed_ms)
                                if variant == SOLANA:
                                    breakdown.append(_phases(while_signing, while_paying))
                    after = _balances(shop, evm_payer.address, str(sol_keys.pubkey()))
            finally:
                await shop.ledger.close()

    if len(shop.runs) != 2 * (warmup + calls):
        raise SystemExit(f"the tool ran {len(shop.runs)} times for {2 * (warmup + calls)} paid calls")
    expected = calls * PRICE
    for who, gained in (
        (f"EVM payee {shop.payments.pay_to}", after["evm payee"] - before["evm payee"]),
        (f"Solana payee {shop.payee}", after["sol payee"] - before["sol payee"]),
        ("EVM payer", before["evm payer"] - after["evm payer"]),
        ("Solana payer", before["sol payer"] - after["sol payer"]),
    ):
        if gained != expected:
            raise SystemExit(f"{who} moved {gained} atomic units over {calls} calls, expected {expected}")

    print(f"paid MCP tool call ($0.05), N={calls} per variant after {warmup} warm-up calls each,")
    print("alternating on one server (in-memory MCP client, SQLite ledger); milliseconds")
    print(f"{'variant':<40} {'paid med':>9} {'paid p90':>9} {'sign med':>9} {'sign p90':>9}")
    for variant in (EVM, SOLANA):
        paid_stats, sign_stats = _stats(samples[variant].paid), _stats(samples[variant].signing)
        print(
            f"{variant:<40} {paid_stats[0]:>9.2f} {paid_stats[1]:>9.2f}"
            f" {sign_stats[0]:>9.2f} {sign_stats[1]:>9.2f}"
        )
    print(f"every call succeeded; each payee gained exactly {calls} x 0.05 = {expected / 1e6:.2f} USDC")
    _print_breakdown(breakdown, samples[SOLANA].paid, samples[SOLANA].signing)


def _balances(shop: SolanaShop, evm_payer: str, sol_payer: str) -> dict[str, int]:
    return {
        "evm payee": shop.chain.balance_of(shop.payments.pay_to),
        "evm payer": shop.chain.balance_of(evm_payer),
        "sol payee": shop.node.svm.usdc_balance(shop.payee),
        "sol payer": shop.node.svm.usdc_balance(sol_payer),
    }


def _phases(
    sign_events: list[tuple[str, float]], paid_events: list[tuple[str, float]]
) -> dict[str, dict[str, list[float]]]:
    """Group one Solana call's timed requests; RPC requests belong to the facilitator request after them."""
    phases: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for label, ms in sign_events:
        phases["payer signing"][label].append(ms)
    pending: list[tuple[str, float]] = []
    for label, ms in paid_events:
        if label.startswith("rpc "):
            pending.append((label, ms))
            continue
        phases[f"facilitator {label}"][label].append(ms)
        for rpc_label, rpc_ms in pending:
            phases[f"facilitator {label}"][rpc_label].append(rpc_ms)
        pending = []
    for rpc_label, rpc_ms in pending:
        phases["other"][rpc_label].append(rpc_ms)
    return phases


def _print_breakdown(
    breakdown: list[dict[str, dict[str, list[float]]]], paid_ms: list[float], signing_ms: list[float]
) -> None:
    print("\nSolana, where the time goes: median per call (ms); rpc = the JSON-RPC server over LiteSVM")
    phases = sorted({phase for call in breakdown for phase in call}, key=_phase_order)
    in_facilitator = [0.0] * len(breakdown)
    for phase in phases:
        labels = sorted({label for call in breakdown for label in call.get(phase, {})})
        own = next((label for label in labels if not label.startswith("rpc ")), None)
        if own is not None:
            totals = [sum(call.get(phase, {}).get(own, [])) for call in breakdown]
            in_facilitator = [a + b for a, b in zip(in_facilitator, totals, strict=True)]
        else:
            totals = signing_ms if phase == "payer signing" else []
        print(f"  {phase:<42} {statistics.median(totals) if totals else float('nan'):>9.2f}")
        for label in labels:
            if label == own:
                continue
            times = [call.get(phase, {}).get(label, []) for call in breakdown]
            counts = sorted({len(t) for t in times})
            count = f"x{counts[0]}" if len(counts) == 1 else f"x{counts[0]}-{counts[-1]}"
            print(f"    {label + ' ' + count:<40} {statistics.median(sum(t) for t in times):>9.2f}")
    rest = [p - f for p, f in zip(paid_ms, in_facilitator, strict=True)]
    print(f"  {'rest (our server, ledger, MCP)':<42} {statistics.median(rest):>9.2f}")


def _phase_order(phase: str) -> tuple[int, str]:
    order = {"payer signing": 0, "facilitator /verify": 1, "facilitator /settle": 2}
    return order.get(phase, 3), phase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be at least 1 and --warmup at least 0")
    # MCPServer sets the root logger to INFO: keep settlement and per-request HTTP lines out of the timings.
    for name in ("x402_mcp", "httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ignore_solana_py_deprecations()  # solana-py's sync Client and TxOpts, used by the official x402 code
    with tempfile.TemporaryDirectory(prefix="x402-bench-solana-") as folder:
        anyio.run(run, args.calls, args.warmup, Path(folder))


if __name__ == "__main__":
    main()

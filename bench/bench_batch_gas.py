"""Gas per paid call: batch settlement on one channel against one `exact` transfer per call.

    uv run python bench/bench_batch_gas.py [--chain anvil|devchain] [--claims 1,10,50]

Measured on our contract doubles at the canonical addresses (gas is deterministic: the
figures are the receipts' `gasUsed`, one run suffices):

- exact: one EIP-3009 `transferWithAuthorization` of our USDC, sent as settlement sends it,
  to a fresh payee and to one that already holds USDC (the steady state, and the cheaper);
- batch: a deposit through the ERC-3009 collector, `claimWithSignature` of one voucher and of
  N vouchers (N channels, one receiver) in one transaction, and the `settle` sweep.

A channel with k paid calls costs one deposit, one claim of its latest voucher and one sweep,
whatever k is; the table divides that by k and sets it beside the steady-state exact transfer.
(Shared claims and sweeps across channels make batch cheaper still; the table leaves that out.)
Ends with one `BENCH-RESULT {json}` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chains import anvil_or_skip, requirements_for, running_anvil
from tests.contracts.batch import BatchContracts, Channel
from x402_mcp.chains.devchain import DevChain, TokenChain
from x402_mcp.core.evm import sign_authorization, split_signature

CALLS_PER_CHANNEL = (10, 100, 1_000)
_TWA_VRS = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"


def exact_transfer_gas(contracts: BatchContracts, payer: Any, payee: str) -> int:
    """Gas of one exact payment of 0.01 USDC, settled with the `(v, r, s)` form."""
    signed = sign_authorization(payer, requirements_for(contracts.chain, payee))
    auth = signed.authorization
    v, r, s = split_signature(signed.signature)
    call = contracts.chain.token.contract.get_function_by_signature(_TWA_VRS)(
        auth.from_,
        auth.to,
        int(auth.value),
        int(auth.valid_after),
        int(auth.valid_before),
        bytes.fromhex(auth.nonce[2:]),
        v,
        r,
        s,
    )
    return int(contracts.send(call)["gasUsed"])


def measure(chain: TokenChain, claim_sizes: list[int]) -> dict[str, Any]:
    contracts = BatchContracts(chain)
    figures: dict[str, Any] = {}

    payer = chain.new_account(usdc="10")
    payee = Account.create().address
    figures["exact_fresh_payee"] = exact_transfer_gas(contracts, payer, payee)
    figures["exact"] = exact_transfer_gas(contracts, payer, payee)

    channel = contracts.open_channel(usdc="10")
    figures["deposit"] = int(contracts.deposit(channel, 1_000_000)["gasUsed"])
    entry = contracts.claim_entry(channel, 100_000, 100_000)
    claim = contracts.claim_with_signature_call([entry], channel.receiver_authorizer)
    figures["claim_1"] = int(contracts.send(claim)["gasUsed"])
    settle = contracts.settlement.functions.settle(channel.receiver, channel.token)
    figures["settle"] = int(contracts.send(settle)["gasUsed"])

    for size in claim_sizes:
        authorizer = Account.create()
        receiver = Account.create().address
        channels = [
            Channel(
                **{
                    **contracts.open_channel(usdc="1").__dict__,
                    "receiver": receiver,
                    "receiver_authorizer": authorizer,
                }
            )
            for _ in range(size)
        ]
        for each in channels:
            contracts.deposit(each, 100_000)
        entries = [contracts.claim_entry(each, 50_000, 50_000) for each in channels]
        receipt = contracts.send(contracts.claim_with_signature_call(entries, authorizer))
        figures[f"claim_{size}"] = int(receipt["gasUsed"])

    per_channel = figures["deposit"] + figures["claim_1"] + figures["settle"]
    figures["per_call"] = {str(k): per_channel / k for k in CALLS_PER_CHANNEL}
    figures["exact_over_batch"] = {str(k): figures["exact"] * k / per_channel for k in CALLS_PER_CHANNEL}
    # The target, at the top level where bench/perf.py reads its figures.
    figures["exact_over_batch_at_1000"] = figures["exact_over_batch"]["1000"]
    return figures


def report(label: str, figures: dict[str, Any], claim_sizes: list[int]) -> None:
    print(f"Gas on {label} (receipts' gasUsed; our contract doubles at the canonical addresses)\n")
    rows = [
        ("exact: transferWithAuthorization, fresh payee", figures["exact_fresh_payee"], ""),
        ("exact: transferWithAuthorization, payee holds USDC", figures["exact"], ""),
        ("batch: deposit through the ERC-3009 collector", figures["deposit"], ""),
        *(
            (
                f"batch: claimWithSignature, {size} voucher{'s' if size > 1 else ''}",
                figures[f"claim_{size}"],
                f"{figures[f'claim_{size}'] / size:,.0f} per voucher",
            )
            for size in sorted({1, *claim_sizes})
        ),
        ("batch: settle (one transfer to the receiver)", figures["settle"], ""),
    ]
    for what, gas, note in rows:
        print(f"  {what:<52} {gas:>9,}  {note}")
    per_channel = figures["deposit"] + figures["claim_1"] + figures["settle"]
    print(f"\nOne channel = deposit + claim of its latest voucher + settle = {per_channel:,} gas\n")
    headings = ("calls per channel", "batch gas per call", "exact gas per call", "exact / batch")
    print("  " + "  ".join(f"{heading:>18}" for heading in headings))
    for k in CALLS_PER_CHANNEL:
        print(
            f"  {k:>18,}  {figures['per_call'][str(k)]:>18,.0f}  {figures['exact']:>18,}"
            f"  {figures['exact_over_batch'][str(k)]:>17,.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", choices=["anvil", "devchain"], default="anvil")
    parser.add_argument(
        "--claims", default="10,50", help="batch sizes of the N-voucher claims (comma-separated)"
    )
    parser.add_argument("--quick", action="store_true", help="claims of 10 only (bench/perf.py)")
    args = parser.parse_args()
    if args.quick:
        args.claims = "10"
    claim_sizes = [int(size) for size in args.claims.split(",") if size]
    if args.chain == "devchain":
        figures = measure(DevChain(), claim_sizes)
        label = "the embedded DevChain (py-evm)"
    else:
        with (
            tempfile.TemporaryDirectory() as workdir,
            running_anvil(anvil_or_skip(), Path(workdir) / "anvil.log") as anvil,
        ):
            figures = measure(anvil, claim_sizes)
        label = "anvil"
    report(label, figures, claim_sizes)
    print("BENCH-RESULT " + json.dumps({"bench": "batch_gas", "chain": args.chain, **figures}))


if __name__ == "__main__":
    main()

"""Voucher verification on one core, no I/O: ours beside the official x402 server scheme, one run.

    uv run python bench/bench_voucher_verify.py [--quick] [--vouchers 2000] [--rounds 7] [--cpu N]

What is timed, per voucher, for both stacks, on a channel the server already holds (a record
with a fresh mirror of the contract's balance and claimed total):

- ours: `rules.decide` on a parsed payment: the channel id (EIP-712 hash of the config), the
  cumulative base, the channel config against our requirements, the voucher's EIP-712
  digest and ECDSA recovery to the payerAuthorizer, the balance and the claimed floor; and
  the same preceded by `parse_batch_payment` on the JSON object as `_meta` carries it.
  Each batch starts with an empty recovery cache, so every signature is recovered for real.
- official: `BatchSettlementEvmScheme.before_verify` of `x402.mechanisms.evm.batch_settlement.server`,
  its local path (EOA payerAuthorizer, fresh on-chain mirror: no facilitator, no RPC): channel
  id binding, storage read, cumulative base, `validate_channel_config`, EIP-712 recovery, the
  balance and the claimed floor; on a parsed `PaymentPayload`, and from the JSON object
  (`PaymentPayload.model_validate`).

Every voucher is distinct (its own channel), signed by the official client. Both stacks run
in this process, pinned to one core; batches alternate which goes first. Prints vouchers per
second (median over rounds, and the best round), the ratios, and a `BENCH-RESULT` line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

NETWORK = "eip155:84532"
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PRICE = 10_000
CHARGED = 30_000
BALANCE = 1_000_000
TARGET_PER_S = 1000


def _cases(count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Our requirements and `count` voucher payments the official client signed, each on a channel
    of its own whose client state says `CHARGED` of `BALANCE`."""
    from eth_account import Account
    from x402.mechanisms.evm.batch_settlement import compute_channel_id
    from x402.mechanisms.evm.batch_settlement.client import (
        BatchSettlementEvmScheme,
        BatchSettlementEvmSchemeOptions,
        InMemoryClientChannelStorage,
    )
    from x402.mechanisms.evm.batch_settlement.client.storage import BatchSettlementClientContext
    from x402.schemas import PaymentRequirements

    payer, receiver, authorizer = Account.create(), Account.create(), Account.create()
    requirements = {
        "scheme": "batch-settlement",
        "network": NETWORK,
        "asset": TOKEN,
        "amount": str(PRICE),
        "payTo": receiver.address,
        "maxTimeoutSeconds": 300,
        "extra": {
            "name": "USDC",
            "version": "2",
            "receiverAuthorizer": authorizer.address,
            "withdrawDelay": 900,
        },
    }
    official = PaymentRequirements.model_validate(requirements)
    payments = []
    for _ in range(count):
        storage = InMemoryClientChannelStorage()
        salt = "0x" + os.urandom(32).hex()
        client = BatchSettlementEvmScheme(payer, BatchSettlementEvmSchemeOptions(storage=storage, salt=salt))
        key = compute_channel_id(client.build_channel_config(official), NETWORK).lower()
        state = BatchSettlementClientContext(charged_cumulative_amount=str(CHARGED), balance=str(BALANCE))
        storage.set(key, state)
        payload = client.create_payment_payload(official)
        assert payload["type"] == "voucher"
        payments.append({"x402Version": 2, "accepted": requirements, "payload": payload})
    return requirements, payments


def _ours(
    requirements: dict[str, Any], payments: list[dict[str, Any]]
) -> tuple[Callable[[], float], Callable[[], float]]:
    from x402_mcp.core import evm
    from x402_mcp.core.wire import PaymentRequirements
    from x402_mcp.schemes.batch.digests import channel_id
    from x402_mcp.schemes.batch.records import ChainSnapshot, ChannelRecord
    from x402_mcp.schemes.batch.rules import Accept, decide
    from x402_mcp.schemes.batch.wire import parse_batch_extra, parse_batch_payment

    ours = PaymentRequirements.model_validate(requirements)
    extra = parse_batch_extra(ours.extra)  # our own requirements: read once, at start-up
    parsed = [parse_batch_payment(payment) for payment in payments]
    records = {
        payment.payload.voucher.channel_id.lower(): ChannelRecord(
            channel_id=channel_id(payment.payload.channel_config, 84532),
            network=NETWORK,
            config=payment.payload.channel_config,
            chain=ChainSnapshot(balance=BALANCE, total_claimed=0),
            charged=CHARGED,
        )
        for payment in parsed
    }

    def check(payment: Any) -> bool:
        record = records[payment.payload.voucher.channel_id.lower()]
        decision = decide(payment, ours, record=record, now=time.time(), extra=extra)
        return isinstance(decision, Accept)

    def timed(work: Callable[[], list[bool]]) -> float:
        evm._ecrecover.cache_clear()  # every voucher recovered for real
        started = time.perf_counter()
        results = work()
        elapsed = time.perf_counter() - started
        assert all(results), f"ours refused {results.count(False)} good vouchers"
        return elapsed

    def on_parsed() -> float:
        return timed(lambda: [check(payment) for payment in parsed])

    def from_json() -> float:
        return timed(lambda: [check(parse_batch_payment(payment)) for payment in payments])

    return on_parsed, from_json


def _official(
    requirements: dict[str, Any], payments: list[dict[str, Any]]
) -> tuple[Callable[[], float], Callable[[], float]]:
    from x402.mechanisms.evm.batch_settlement import ChannelConfig, compute_channel_id
    from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme
    from x402.mechanisms.evm.batch_settlement.server.storage import Channel
    from x402.schemas import PaymentPayload, PaymentRequirements
    from x402.schemas.hooks import SkipVerifyResult, VerifyContext

    official = PaymentRequirements.model_validate(requirements)
    server = BatchSettlementEvmScheme(official.pay_to)
    for payment in payments:
        config = ChannelConfig.from_dict(payment["payload"]["channelConfig"])
        cid = compute_channel_id(config, NETWORK).lower()
        record = Channel(
            channel_id=cid,
            channel_config=config,
            charged_cumulative_amount=str(CHARGED),
            balance=str(BALANCE),
            total_claimed="0",
            onchain_synced_at=int(time.time() * 1000),  # fresh: the local path, no facilitator
        )
        server.get_storage().update_channel(cid, lambda _current, record=record: record)
    parsed = [PaymentPayload.model_validate(payment) for payment in payments]

    def check(payload: Any) -> bool:
        outcome = server.before_verify(VerifyContext(payment_payload=payload, requirements=official))
        return isinstance(outcome, SkipVerifyResult) and outcome.result.is_valid

    def timed(work: Callable[[], list[bool]]) -> float:
        started = time.perf_counter()
        results = work()
        elapsed = time.perf_counter() - started
        assert all(results), f"the official scheme refused {results.count(False)} good vouchers"
        return elapsed

    def on_parsed() -> float:
        return timed(lambda: [check(payload) for payload in parsed])

    def from_json() -> float:
        return timed(lambda: [check(PaymentPayload.model_validate(payment)) for payment in payments])

    return on_parsed, from_json


def run(count: int, rounds: int, cpu: int) -> dict[str, Any]:
    print(f"signing {count} vouchers with the official client ...", flush=True)
    requirements, payments = _cases(count)
    ours_parsed, ours_json = _ours(requirements, payments)
    official_parsed, official_json = _official(requirements, payments)
    steps = {
        "ours_parsed": ours_parsed,
        "official_parsed": official_parsed,
        "ours_json": ours_json,
        "official_json": official_json,
    }
    for step in steps.values():  # warm-up
        step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for round_number in range(rounds):
        order = list(steps.items())
        if round_number % 2:  # alternate who goes first, so neither always meets the other's leftovers
            order = [order[1], order[0], order[3], order[2]]
        for name, step in order:
            samples[name].append(step())

    rates = {name: count / statistics.median(seconds) for name, seconds in samples.items()}
    best = {name: count / min(seconds) for name, seconds in samples.items()}
    print(
        f"\nvoucher verification, {count} distinct vouchers per batch, {rounds} rounds, pinned to CPU {cpu}"
    )
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"\n{'measure':<60} {'vouchers/s':>11} {'µs each':>8} {'best/s':>8}")
    rows = [
        ("ours: rules.decide, parsed payment (cold recovery)", "ours_parsed"),
        ("official: server scheme before_verify (local), parsed", "official_parsed"),
        ("ours: parse_batch_payment(JSON object) + rules.decide", "ours_json"),
        ("official: PaymentPayload.model_validate + before_verify", "official_json"),
    ]
    for label, name in rows:
        print(f"{label:<60} {rates[name]:>11.0f} {1e6 / rates[name]:>8.1f} {best[name]:>8.0f}")
    parsed_ratio = rates["ours_parsed"] / rates["official_parsed"]
    json_ratio = rates["ours_json"] / rates["official_json"]
    print(f"\nours / official, parsed: {parsed_ratio:.2f}x; from the JSON object: {json_ratio:.2f}x")
    met = rates["ours_parsed"] >= TARGET_PER_S
    verdict = "met" if met else "NOT met"
    print(f"target >= {TARGET_PER_S}/s on one core: {verdict} ({rates['ours_parsed']:.0f}/s)")
    return {
        "voucher_ours_per_s": round(rates["ours_parsed"]),
        "voucher_official_per_s": round(rates["official_parsed"]),
        "voucher_ours_json_per_s": round(rates["ours_json"]),
        "voucher_official_json_per_s": round(rates["official_json"]),
        "voucher_ours_best_per_s": round(best["ours_parsed"]),
        "voucher_ratio_ours_over_official": round(parsed_ratio, 2),
        "voucher_json_ratio_ours_over_official": round(json_ratio, 2),
        "voucher_target_per_s": TARGET_PER_S,
        "voucher_target_met": met,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 vouchers, 3 rounds (seconds)")
    parser.add_argument("--vouchers", type=int, default=2000, help="distinct vouchers per batch")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=None, help="the core to pin to")
    args = parser.parse_args()
    cpu = min(os.sched_getaffinity(0)) if args.cpu is None else args.cpu
    os.sched_setaffinity(0, {cpu})
    count, rounds = (300, 3) if args.quick else (args.vouchers, args.rounds)
    print("BENCH-RESULT " + json.dumps(run(count, rounds, cpu)))


if __name__ == "__main__":
    main()

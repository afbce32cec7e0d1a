"""Local verification (no RPC): our `match_payment` vs the official x402 SDK's, one core, one run.

    uv run python bench/bench_verify.py [--quick] [--payments 2000] [--rounds 7] [--cpu N]

What is timed, per payment, for both stacks:

- ours: `match_payment` (scheme, network, asset, payee, amount, validity window, signature
  form, EIP-712 digest and ECDSA recovery) on a parsed payload, and the same preceded by
  `parse_evm_payment` on the JSON text as it arrives. Each batch starts with an empty
  recovery cache, so every payment is recovered for real ("cold"); a last row times the
  check again on payments already recovered, as the backend's verify and settle do.
- official: the steps of the exact-EVM facilitator's `verify` that need no chain, with the
  package's own helpers (`ExactEIP3009Payload.from_dict`, `get_evm_chain_id`,
  `normalize_address`, `hash_eip3009_authorization`, `parse_erc6492_signature`,
  `verify_eoa_signature`), on a parsed `PaymentPayload` and from the JSON bytes
  (`parse_payment_payload`). The only step left out is its `eth_getCode`, an RPC.

The official stack runs in a subprocess of `.venv-official/bin/python` (it needs mcp 1.x),
pinned to the same core as this process; batches alternate between the two stacks, so both
see the same machine load. Prints payments per second (median over rounds, and the best
round), the ratios (of medians), and a `BENCH-RESULT` line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_PYTHON = ROOT / ".venv-official" / "bin" / "python"
NETWORK = "eip155:84532"
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


# --- the official stack (runs under .venv-official; imports nothing of ours) ------------------


def _official_worker(cases_path: str, cpu: int) -> None:
    """Answer `parsed`/`json` commands on stdin with the seconds one batch took."""
    os.sched_setaffinity(0, {cpu})
    from eth_hash.auto import keccak
    from eth_keys.backends import get_backend
    from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
    from x402.mechanisms.evm.erc6492 import parse_erc6492_signature
    from x402.mechanisms.evm.types import ExactEIP3009Payload
    from x402.mechanisms.evm.utils import get_evm_chain_id, hex_to_bytes, normalize_address
    from x402.mechanisms.evm.verify import verify_eoa_signature
    from x402.schemas import PaymentPayload, PaymentRequirements
    from x402.schemas.helpers import parse_payment_payload

    cases = json.loads(Path(cases_path).read_text())
    requirements = PaymentRequirements.model_validate(cases["requirements"])
    texts = [json.dumps(payload).encode() for payload in cases["payloads"]]
    parsed = [PaymentPayload.model_validate(payload) for payload in cases["payloads"]]

    def verify(payload: Any) -> bool:
        # The exact-EVM facilitator's `_verify`, in its order, up to (not including) eth_getCode.
        evm_payload = ExactEIP3009Payload.from_dict(payload.payload)
        authorization = evm_payload.authorization
        if payload.accepted.scheme != "exact" or payload.accepted.network != requirements.network:
            return False
        chain_id = get_evm_chain_id(str(requirements.network))
        token = normalize_address(requirements.asset)
        extra = requirements.extra or {}
        if "name" not in extra or "version" not in extra:
            return False
        if authorization.to.lower() != requirements.pay_to.lower():
            return False
        if int(authorization.value) != int(requirements.amount):
            return False
        now = int(time.time())
        if int(authorization.valid_before) < now + 6 or int(authorization.valid_after) > now:
            return False
        if not evm_payload.signature:
            return False
        signature = parse_erc6492_signature(hex_to_bytes(evm_payload.signature))
        digest = hash_eip3009_authorization(authorization, chain_id, token, extra["name"], extra["version"])
        return bool(verify_eoa_signature(digest, signature.inner_signature, authorization.from_address))

    keccak(b"")  # let eth-hash pick its backend before anything is timed
    print(json.dumps({"ecc": type(get_backend()).__name__}), flush=True)
    for command in sys.stdin:
        started = time.perf_counter()
        if command.strip() == "parsed":
            accepted = sum(verify(payload) for payload in parsed)
        else:
            accepted = sum(verify(parse_payment_payload(text)) for text in texts)
        elapsed = time.perf_counter() - started
        print(json.dumps({"seconds": elapsed, "accepted": accepted}), flush=True)


# --- ours ----------------------------------------------------------------------------------


def _make_cases(count: int) -> tuple[Any, list[Any], list[str], Any]:
    from eth_account import Account

    from x402_mcp.core.evm import sign_authorization
    from x402_mcp.core.wire import PaymentPayload, PaymentRequirements

    requirements = PaymentRequirements(
        scheme="exact",
        network=NETWORK,
        amount="10000",
        asset=TOKEN,
        pay_to=Account.create().address,
        max_timeout_seconds=300,
        extra={"name": "USDC", "version": "2"},
    )
    payers = [Account.create() for _ in range(8)]
    payloads = [
        PaymentPayload(accepted=requirements, payload=sign_authorization(payers[index % 8], requirements))
        for index in range(count)
    ]
    return requirements, payloads, [payload.to_json() for payload in payloads], payers


def _check_refusals_unchanged(requirements: Any, payload: Any, network: Any) -> None:
    """A tampered payment is still refused, with the same message as before the fast path."""
    from x402_mcp.errors import PaymentMismatch
    from x402_mcp.schemes.exact.matching import match_payment

    tampered = payload.model_copy(
        update={
            "payload": payload.payload.model_copy(
                update={"authorization": payload.payload.authorization.model_copy(update={"value": "10001"})}
            )
        }
    )
    refusal = ""
    try:
        match_payment(tampered, requirements, network, now=time.time())
    except PaymentMismatch as exc:
        refusal = str(exc)
    if "the price is" not in refusal:
        raise AssertionError(f"a payment for the wrong amount was not refused as before: {refusal!r}")
    earlier = payload.payload.authorization.model_copy(update={"valid_after": "1"})
    forged = payload.model_copy(
        update={"payload": payload.payload.model_copy(update={"authorization": earlier})}
    )
    assert not match_payment(forged, requirements, network, now=time.time()).signature_checked


def _rate(seconds: list[float], count: int) -> float:
    return count / statistics.median(seconds)


def run(count: int, rounds: int, cpu: int) -> dict[str, Any]:
    from eth_keys.backends import get_backend

    from x402_mcp.core import evm
    from x402_mcp.core.networks import resolve_network
    from x402_mcp.core.wire import parse_evm_payment
    from x402_mcp.schemes.exact.matching import match_payment
    from x402_mcp.settlement.checks import CheckedPayment, check_exact_payment

    if count > evm._RECOVERY_CACHE_SIZE:
        print("note: more payments than the recovery cache holds; the 'again' row recovers some anew")
    print(f"signing {count} payments ...", flush=True)
    requirements, payloads, texts, _ = _make_cases(count)
    network = resolve_network(NETWORK)
    _check_refusals_unchanged(requirements, payloads[0], network)

    with tempfile.TemporaryDirectory() as folder:
        cases_path = Path(folder) / "cases.json"
        cases = {"requirements": requirements.dump(), "payloads": [payload.dump() for payload in payloads]}
        cases_path.write_text(json.dumps(cases))
        worker = subprocess.Popen(
            [str(OFFICIAL_PYTHON), __file__, "--official-worker", str(cases_path), "--cpu", str(cpu)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdin is not None and worker.stdout is not None
        official_ecc = json.loads(worker.stdout.readline())["ecc"]

        def official(command: str) -> float:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(command + "\n")
            worker.stdin.flush()
            answer = json.loads(worker.stdout.readline())
            assert answer["accepted"] == count, f"the official stack refused {count - answer['accepted']}"
            return float(answer["seconds"])

        def ours_parsed() -> float:
            evm._ecrecover.cache_clear()  # every payment recovered for real
            started = time.perf_counter()
            matches = [match_payment(payload, requirements, network, now=time.time()) for payload in payloads]
            elapsed = time.perf_counter() - started
            assert all(match.signature_checked for match in matches)
            return elapsed

        def ours_json() -> float:
            evm._ecrecover.cache_clear()
            started = time.perf_counter()
            matches = [
                match_payment(parse_evm_payment(text), requirements, network, now=time.time())
                for text in texts
            ]
            elapsed = time.perf_counter() - started
            assert all(match.signature_checked for match in matches)
            return elapsed

        def ours_again() -> float:
            # What the backend's verify and settle do after the match: the same checks, recovery remembered.
            for payload in payloads:
                match_payment(payload, requirements, network, now=time.time())
            started = time.perf_counter()
            now = int(time.time())
            checked = [check_exact_payment(payload, requirements, now=now) for payload in payloads]
            elapsed = time.perf_counter() - started
            assert all(isinstance(item, CheckedPayment) and item.signer_verified for item in checked)
            return elapsed

        samples: dict[str, list[float]] = {
            "ours_parsed": [],
            "official_parsed": [],
            "ours_json": [],
            "official_json": [],
            "ours_again": [],
        }
        ours_parsed(), official("parsed"), ours_json(), official("json")  # warm-up
        for round_number in range(rounds):
            # Alternate which stack goes first, so neither always meets the other's leftovers.
            steps = [
                ("ours_parsed", ours_parsed),
                ("official_parsed", lambda: official("parsed")),
                ("ours_json", ours_json),
                ("official_json", lambda: official("json")),
            ]
            if round_number % 2:
                steps = [steps[1], steps[0], steps[3], steps[2]]
            for name, step in steps:
                samples[name].append(step())
            samples["ours_again"].append(ours_again())
        worker.stdin.close()
        worker.wait(timeout=30)

    rates = {name: _rate(seconds, count) for name, seconds in samples.items()}
    # The least-loaded round: other work on the machine only ever slows a batch down.
    best = {name: count / min(seconds) for name, seconds in samples.items()}
    print(f"\nlocal verification, {count} distinct payments per batch, {rounds} rounds, pinned to CPU {cpu}")
    load = os.getloadavg()[0]
    print(f"ECC backend: ours coincurve (direct), official eth-keys {official_ecc}; load average {load:.2f}")
    print(f"\n{'measure':<58} {'payments/s':>11} {'ms each':>8} {'best/s':>8}")
    rows = [
        ("ours: match_payment, parsed payload (cold recovery)", "ours_parsed"),
        ("official: facilitator verify minus eth_getCode, parsed", "official_parsed"),
        ("ours: parse_evm_payment(JSON) + match_payment", "ours_json"),
        ("official: parse_payment_payload(JSON) + verify", "official_json"),
        ("ours: check_exact_payment again (recovery remembered)", "ours_again"),
    ]
    for label, name in rows:
        print(f"{label:<58} {rates[name]:>11.0f} {1000 / rates[name]:>8.3f} {best[name]:>8.0f}")
    parsed_ratio = rates["ours_parsed"] / rates["official_parsed"]
    json_ratio = rates["ours_json"] / rates["official_json"]
    target = 3000
    print(f"\nours / official, parsed: {parsed_ratio:.2f}x faster; from JSON: {json_ratio:.2f}x faster")
    print(
        f"target >= {target}/s on one core: {'met' if rates['ours_parsed'] >= target else 'NOT met'} "
        f"({rates['ours_parsed']:.0f}/s)"
    )
    return {
        "verify_ours_per_s": round(rates["ours_parsed"]),
        "verify_official_per_s": round(rates["official_parsed"]),
        "verify_ours_best_per_s": round(best["ours_parsed"]),
        "verify_official_best_per_s": round(best["official_parsed"]),
        "verify_ours_json_per_s": round(rates["ours_json"]),
        "verify_official_json_per_s": round(rates["official_json"]),
        "verify_ours_again_per_s": round(rates["ours_again"]),
        "verify_ours_ms": round(1000 / rates["ours_parsed"], 3),
        "verify_official_ms": round(1000 / rates["official_parsed"], 3),
        "verify_ratio_ours_over_official": round(parsed_ratio, 2),
        "verify_json_ratio_ours_over_official": round(json_ratio, 2),
        "verify_target_per_s": target,
        "verify_target_met": rates["ours_parsed"] >= target,
        "ecc_backend_ours": type(get_backend()).__name__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 payments, 3 rounds (well under a minute)")
    parser.add_argument("--payments", type=int, default=2000, help="distinct payments per batch")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=None, help="the core both stacks are pinned to")
    parser.add_argument("--official-worker", metavar="CASES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cpu = min(os.sched_getaffinity(0)) if args.cpu is None else args.cpu
    if args.official_worker:
        _official_worker(args.official_worker, cpu)
        return
    os.sched_setaffinity(0, {cpu})
    count, rounds = (300, 3) if args.quick else (args.payments, args.rounds)
    result = run(count, rounds, cpu)
    print("BENCH-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

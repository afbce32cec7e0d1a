"""Every figure of the performance section, in one run: ours beside the official x402 SDK.

    uv run python bench/perf.py [--quick]

Runs each benchmark below in turn (each in its own process, each starting its own
anvil, PostgreSQL schema and official-SDK subprocess as it needs), gathers the
`BENCH-RESULT` line each one prints at its end, and prints one table of the targets
with what was measured and whether it was met. A benchmark that fails is reported
as failed and makes the run exit non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "BENCH-RESULT "


@dataclass(frozen=True)
class Target:
    """One line of the table: `figure` of bench `bench`, against `limit` (`at_most` or not)."""

    what: str
    bench: str
    figure: str
    limit: float
    at_most: bool = True


BENCHES = {
    "server": "bench_server.py",
    "verify": "bench_verify.py",
    "paid_call": "bench_paid_call.py",
    "client": "bench_client.py",
    "replicas": "bench_replicas.py",
    "voucher": "bench_voucher_verify.py",
    "batch_gas": "bench_batch_gas.py",
}

TARGETS = [
    Target("1. server side, ours / official (median)", "server", "ratio_median", 0.5),
    Target("1. JSON-RPC calls per paid call, ours (most seen)", "server", "ours_rpc_per_call_max", 3),
    Target("2. local verifications per second, one core", "verify", "verify_ours_per_s", 3000, at_most=False),
    Target("3. redeem a settled request by id / free call (ping)", "paid_call", "redeem_over_free", 1.10),
    Target("3. the same / free call of an async tool", "paid_call", "redeem_over_free_async", 1.10),
    Target(
        "3. its floor: two bare write transactions, (free + floor) / free",
        "paid_call",
        "redeem_floor_ratio",
        1.10,
    ),
    Target("3. over streamable HTTP: redeem by id / free call", "paid_call", "http_redeem_over_free", 1.10),
    Target("4. client's whole paid call, PayingClient / x402MCPClient", "client", "ratio", 1.0),
    Target('5. settle="after" with overlap / strict order', "paid_call", "overlap_over_strict", 1.0),
    Target("6. paid calls/s, 2 replicas / 1", "replicas", "paid_scaling_2_vs_1", 1.5, at_most=False),
    Target("6. paid calls/s, 4 replicas / 1", "replicas", "paid_scaling_4_vs_1", 2.5, at_most=False),
    Target("7. voucher verifications/s, one core", "voucher", "voucher_ours_per_s", 1000, at_most=False),
    Target(
        "7. gas per paid call, exact / batch-settlement at 1,000 calls a channel",
        "batch_gas",
        "exact_over_batch_at_1000",
        100,
        at_most=False,
    ),
]


def run_bench(name: str, quick: bool) -> tuple[dict[str, object] | None, float]:
    script = HERE / BENCHES[name]
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"\n=== {script.name} {' '.join(command[2:])}", flush=True)
    start = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.monotonic() - start
    print(done.stdout, end="", flush=True)
    found = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not found:
        print(f"!!! {script.name} failed (exit {done.returncode})", flush=True)
        return None, seconds
    return json.loads(found[-1][len(MARKER) :]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few calls each (a smoke run)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    names = args.only or list(BENCHES)
    results: dict[str, dict[str, object] | None] = {}
    for name in names:
        results[name], _ = run_bench(name, args.quick)

    print("\n=== targets")
    print(f"{'target':<66} {'measured':>10} {'limit':>8}  met")
    failed = False
    for target in TARGETS:
        result = results.get(target.bench)
        if target.bench not in results:
            continue
        value = None if result is None else result.get(target.figure)
        if not isinstance(value, (int, float)):
            print(f"{target.what:<66} {'-':>10} {target.limit:>8g}  no figure")
            failed = True
            continue
        met = value <= target.limit if target.at_most else value >= target.limit
        sign = "<=" if target.at_most else ">="
        print(f"{target.what:<66} {value:>10.3f} {sign}{target.limit:<6g}  {'yes' if met else 'NO'}")
    print("\nraw:", json.dumps(results))
    if failed or any(result is None for result in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

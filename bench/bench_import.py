"""How much `import x402_mcp` costs: time and modules beyond what `import mcp.server` loads.

Each figure is the median of N fresh interpreters. Rows: `import x402_mcp` (the target:
under 0.8 s, at most 300 modules beyond mcp.server, none of the forbidden ones), and what a
server's first line, `from x402_mcp import Payments, paid`, loads.

    uv run python bench/bench_import.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

FORBIDDEN = ("uvicorn", "eth_tester", "web3", "x402_mcp.chains")
TARGET_SECONDS = 0.8
TARGET_MODULES = 300

# Runs in a fresh interpreter: the time of `statement` alone, and what it loads beyond mcp.server.
PROBE = """
import json, sys, time
started = time.perf_counter()
import mcp.server
baseline = set(sys.modules)
mcp_seconds = time.perf_counter() - started
started = time.perf_counter()
exec({statement!r})
seconds = time.perf_counter() - started
added = sorted(set(sys.modules) - baseline)
print(json.dumps({{"seconds": seconds, "total": mcp_seconds + seconds, "added": added}}))
"""

STATEMENTS = ("import x402_mcp", "from x402_mcp import Payments, paid")


def measure(statement: str) -> dict[str, object]:
    """One fresh interpreter's figures for `statement`."""
    code = PROBE.format(statement=statement)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out)
    return result


def forbidden_in(added: list[str]) -> list[str]:
    """The forbidden modules (or their submodules) among `added`."""
    return sorted(
        {name for name in FORBIDDEN for module in added if module == name or module.startswith(f"{name}.")}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per row (median)")
    args = parser.parse_args()
    print(f"{'statement':40} {'seconds':>8} {'with mcp':>9} {'modules':>8}  forbidden loaded")
    for statement in STATEMENTS:
        runs = [measure(statement) for _ in range(args.runs)]
        seconds = statistics.median(float(run["seconds"]) for run in runs)  # type: ignore[arg-type]
        total = statistics.median(float(run["total"]) for run in runs)  # type: ignore[arg-type]
        added: list[str] = runs[0]["added"]  # type: ignore[assignment]
        bad = forbidden_in(added)
        print(f"{statement:40} {seconds:8.3f} {total:9.3f} {len(added):8d}  {', '.join(bad) or 'none'}")
    target = f"under {TARGET_SECONDS} s, at most {TARGET_MODULES} modules, none forbidden"
    print(f"target for `import x402_mcp`: {target}")


if __name__ == "__main__":
    main()

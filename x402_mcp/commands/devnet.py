"""`x402-mcp devnet`: anvil with our USDC and funded accounts, until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "devnet", help="run a local chain (anvil) with USDC and funded accounts, for wallets and servers"
    )
    parser.add_argument("--port", type=int, default=8545, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--chain-id", type=int, default=31337)
    parser.add_argument("--accounts", type=int, default=3, help="how many funded accounts to create")
    parser.add_argument("--usdc", default="1000", help="USDC per account (a decimal string)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..devnet import Devnet
    from ..errors import X402MCPError

    # Block the signals first, so one arriving during start-up still stops anvil cleanly.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with Devnet(port=args.port, chain_id=args.chain_id, accounts=args.accounts, usdc=args.usdc) as net:
            info = net.describe()
            print(json.dumps(info) if args.json else _human(info), flush=True)
            signal.sigwait(stop_signals)
    except X402MCPError as exc:
        print(f"x402-mcp devnet: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    if not args.json:
        print("devnet stopped", file=sys.stderr)
    return 0


def _human(info: dict[str, Any]) -> str:
    lines = [
        f"RPC URL   {info['rpc_url']}",
        f"Chain id  {info['chain_id']}  (network {info['network']})",
        f"USDC      {info['usdc']}  (name 'USD Coin', version '2', 6 decimals)",
        "Accounts (funded with ETH and USDC; development keys, never use them elsewhere):",
    ]
    lines += [f"  {a['address']}  {a['private_key']}" for a in info["accounts"]]
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)

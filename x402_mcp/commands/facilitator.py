"""`x402-mcp facilitator`: our x402 facilitator over an RPC node, with the gas key from the environment."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

KEY_VARIABLE = "X402_FACILITATOR_KEY"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "facilitator", help=f"serve the x402 facilitator API (gas key from ${KEY_VARIABLE})"
    )
    parser.add_argument("--rpc-url", required=True, help="JSON-RPC URL of the chain to settle on")
    parser.add_argument("--network", required=True, help="base, base-sepolia or a CAIP-2 id (eip155:N)")
    parser.add_argument("--port", type=int, default=8403)
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (put TLS in front before exposing it)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..errors import ConfigurationError
    from ..facilitator import facilitator_app
    from ..settlement.local import LocalSettlement

    key = os.environ.get(KEY_VARIABLE)
    if not key:
        print(f"x402-mcp facilitator: set {KEY_VARIABLE} to the gas account's private key", file=sys.stderr)
        return 2
    try:
        settlement = LocalSettlement.from_rpc(args.rpc_url, key, network=args.network)
    except (ConfigurationError, ValueError) as exc:
        # ValueError comes from a malformed key; its text never contains the key.
        print(
            f"x402-mcp facilitator: {exc if isinstance(exc, ConfigurationError) else 'invalid key'}",
            file=sys.stderr,
        )
        return 2
    print(
        f"x402 facilitator for {settlement.network.caip2} on http://{args.host}:{args.port} "
        f"(gas account {settlement.signer})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(facilitator_app(settlement), host=args.host, port=args.port, log_level="warning")
    return 0

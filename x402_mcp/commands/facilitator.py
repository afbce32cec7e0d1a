"""`x402-mcp facilitator`: our x402 facilitator over an RPC node, with the gas key from the environment."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

KEY_VARIABLE = "X402_FACILITATOR_KEY"
RECEIPT_POLL_LIMIT = 60.0  # the receipt timeout: a longer first wait would never poll


def receipt_poll_seconds(text: str) -> float:
    """`--receipt-poll`: a positive number of seconds, at most the receipt timeout."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(seconds) and 0 < seconds <= RECEIPT_POLL_LIMIT):
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {RECEIPT_POLL_LIMIT:g} seconds, got {text!r}"
        )
    return seconds


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
    parser.add_argument(
        "--receipt-poll",
        type=receipt_poll_seconds,
        default=None,
        metavar="SECONDS",
        help="wait before the first poll for a settlement's receipt (default 0.02); later waits "
        "double, up to 1 s or SECONDS if longer",
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
        options = {} if args.receipt_poll is None else {"poll_latency": args.receipt_poll}
        settlement = LocalSettlement.from_rpc(args.rpc_url, key, network=args.network, **options)
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

"""`x402-mcp facilitator`: our x402 facilitator over an RPC node, with the gas key from the environment."""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
from typing import Any

from ._options import address_list_option, url_option
from .devnet import whole_number

KEY_VARIABLE = "X402_FACILITATOR_KEY"
PAY_TO_VARIABLE = "X402_FACILITATOR_PAY_TO"
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


def atomic_amount(text: str) -> int:
    """`--min-amount`: a whole number of atomic units, at least 1."""
    from ..core.wire import parse_uint

    try:
        amount = parse_uint(text, "the minimum")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, got {text!r}") from None
    if amount < 1:
        raise argparse.ArgumentTypeError(
            "must be at least 1 atomic unit: a zero-value transfer still costs gas"
        )
    return amount


def register(commands: Any) -> None:
    from ..facilitator import DEFAULT_MIN_AMOUNT, TOKEN_VARIABLE

    parser = commands.add_parser(
        "facilitator",
        help=f"serve the x402 facilitator API (gas key from ${KEY_VARIABLE}, token from ${TOKEN_VARIABLE})",
    )
    parser.add_argument(
        "--rpc-url",
        required=True,
        type=url_option("--rpc-url"),
        help="JSON-RPC URL of the chain to settle on",
    )
    parser.add_argument("--network", required=True, help="base, base-sepolia or a CAIP-2 id (eip155:N)")
    parser.add_argument("--port", type=whole_number(1, 65535), default=8403, help="the port to listen on")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help=f"interface to listen on; anything beyond loopback needs ${TOKEN_VARIABLE} "
        "(and TLS in front before exposing it)",
    )
    parser.add_argument(
        "--pay-to",
        action="append",
        default=[],
        type=address_list_option("--pay-to"),
        metavar="ADDRESS",
        help=f"a payee it settles for (repeat, or comma-separate; also ${PAY_TO_VARIABLE}); "
        "required unless --any-payee",
    )
    parser.add_argument(
        "--any-payee",
        action="store_true",
        help="settle payments to any payee (anyone holding the token can then spend your gas on theirs)",
    )
    parser.add_argument(
        "--asset",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a token contract it settles for (repeat); default: the network's USDC",
    )
    parser.add_argument(
        "--min-amount",
        type=atomic_amount,
        default=DEFAULT_MIN_AMOUNT,
        metavar="UNITS",
        help=f"smallest payment settled, in the token's atomic units (default {DEFAULT_MIN_AMOUNT}, "
        "$0.001 of USDC)",
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


def _fail(message: str) -> int:
    print(f"x402-mcp facilitator: {message}", file=sys.stderr)
    return 2


def _payees(args: argparse.Namespace) -> list[str] | None:
    """The payee allowlist from --pay-to and the environment; None for any payee.

    Raises:
        ConfigurationError: neither a list nor --any-payee, or both.
    """
    from ..core.addresses import parse_address
    from ..errors import ConfigurationError

    listed = [(entry, "--pay-to") for entry in args.pay_to]
    listed.append((os.environ.get(PAY_TO_VARIABLE, ""), PAY_TO_VARIABLE))
    payees = [
        parse_address(payee, what=source)
        for entry, source in listed
        for payee in entry.split(",")
        if payee.strip()
    ]
    if args.any_payee:
        if payees:
            raise ConfigurationError(
                f"--any-payee and a payee list ({PAY_TO_VARIABLE} or --pay-to) contradict each other"
            )
        return None
    if not payees:
        raise ConfigurationError(
            f"name the payees it settles for with --pay-to or {PAY_TO_VARIABLE} (comma-separated), "
            "or pass --any-payee"
        )
    return payees


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..errors import ConfigurationError
    from ..facilitator import TOKEN_VARIABLE, facilitator_app
    from ..facilitator.access import is_loopback_host
    from ..settlement.local import LocalSettlement

    key = os.environ.get(KEY_VARIABLE)
    if not key:
        return _fail(f"set {KEY_VARIABLE} to the gas account's private key")
    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is None and not is_loopback_host(args.host):
        return _fail(
            f"refusing to listen on {args.host} without a token: anyone who reaches it could spend the "
            f"gas key. Set {TOKEN_VARIABLE} (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1"
        )
    try:
        payees = _payees(args)
        options = {} if args.receipt_poll is None else {"poll_latency": args.receipt_poll}
        settlement = LocalSettlement.from_rpc(args.rpc_url, key, network=args.network, **options)
        assets = [asset.strip() for asset in args.asset] or None
        app = facilitator_app(
            settlement, token=token, payees=payees, assets=assets, min_amount=args.min_amount
        )
    except ConfigurationError as exc:
        return _fail(str(exc))
    except ValueError:
        # From a malformed key; its text would contain the key, so only the variable is named.
        return _fail(f"{KEY_VARIABLE} is not a valid private key (0x followed by 64 hex digits)")
    problem = _unlistenable(args.host, args.port)
    if problem is not None:
        return _fail(problem)
    access = "bearer token required" if token else "no token: loopback clients only"
    print(
        f"x402 facilitator for {settlement.network.caip2} on http://{args.host}:{args.port} "
        f"(gas account {settlement.signer}; {access}; "
        f"{'any payee' if payees is None else f'{len(payees)} payee(s)'}; "
        f"at least {args.min_amount} units)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _unlistenable(host: str, port: int) -> str | None:
    """Why the facilitator could not listen on `host:port`, said before it announces anything
    (uvicorn alone would log a bare errno and exit), or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        why = exc.strerror or exc
        return f"cannot listen on {host}:{port} ({why}); stop what uses that port or pass another --port"
    return None

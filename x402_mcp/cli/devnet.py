"""`x402-mcp devnet`: anvil with our USDC and funded accounts, until interrupted."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "devnet", help="run a local chain (anvil) with USDC and funded accounts, for wallets and servers"
    )
    add_chain_options(parser, port_option="--port")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def add_chain_options(parser: Any, *, port_option: str) -> None:
    """The options of the chain itself, shared with `serve --devnet`."""
    parser.add_argument(
        port_option,
        dest="chain_port",
        type=whole_number(0, 65535),
        default=8545,
        metavar="PORT",
        help="anvil's port on 127.0.0.1 (0: any free port)",
    )
    parser.add_argument(
        "--chain-id", type=whole_number(1, MAX_CHAIN_ID), default=31337, help="the chain id anvil reports"
    )
    parser.add_argument(
        "--accounts", type=whole_number(0, MAX_ACCOUNTS), default=3, help="how many funded test accounts"
    )
    parser.add_argument("--usdc", type=_dollars, default="1000", help="USDC per test account (e.g. 1000)")


MAX_ACCOUNTS = 100  # each costs two transactions at start-up
MAX_CHAIN_ID = 2**53 - 1  # the largest chain id wallets (JavaScript numbers) handle exactly


def whole_number(least: int, most: int) -> Any:
    """An argparse type: a whole number from `least` to `most`."""

    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not least <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"expected a whole number from {least} to {most}, got {text!r}")
        return int(text)

    return parse


def _dollars(text: str) -> str:
    from ..core.money import USDC_DECIMALS, to_atomic
    from ..errors import ConfigurationError

    try:
        if to_atomic(text, USDC_DECIMALS) > 0:
            return text
    except ConfigurationError:
        pass
    raise argparse.ArgumentTypeError(f"expected dollars such as 1000 or 2.5 (up to 6 decimals), got {text!r}")


def run(args: argparse.Namespace) -> int:
    from ..chains.devnet import Devnet
    from ..errors import ConfigurationError, X402MCPError

    # Block the signals first, so one arriving during start-up still stops anvil cleanly.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        with Devnet(
            port=args.chain_port, chain_id=args.chain_id, accounts=args.accounts, usdc=args.usdc
        ) as net:
            gas = net.gas_account
            info = {
                **net.describe(),
                # A separate account for the server or facilitator that settles here.
                "gas_account": {"address": gas.address, "private_key": gas.private_key},
                "server_env": net.server_env(),
            }
            print(json.dumps(info) if args.json else _human(info), flush=True)
            signal.sigwait(stop_signals)
    except ConfigurationError as exc:  # exit 2: usage or configuration (a taken port, no anvil)
        print(f"x402-mcp devnet: {exc}", file=sys.stderr)
        return 2
    except X402MCPError as exc:
        print(f"x402-mcp devnet: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    if not args.json:
        print("devnet stopped", file=sys.stderr)
    return 0


def chain_lines(info: dict[str, Any]) -> list[str]:
    """The chain, the token and the test accounts of a devnet description, for people."""
    token = info["token"]
    lines = [
        f"RPC URL   {info['rpc_url']}",
        f"Chain id  {info['chain_id']}  (network {info['network']})",
        f"Token     {token['address']}  ({token['symbol']}, EIP-712 name {token['name']!r}, "
        f"version {token['version']!r}, {token['decimals']} decimals)",
        *(f"Contract  {address}  ({name})" for name, address in info["contracts"].items()),
    ]
    accounts = info["accounts"]
    if not accounts:
        return [*lines, "", "No test accounts (--accounts 0)."]
    lines += [
        "",
        f"TEST-ONLY accounts, each funded with 10 ETH and {accounts[0]['usdc']} USDC",
        f"({info['test_keys_only']}):",
    ]
    lines += [f"  {a['address']}  private key {a['private_key']}" for a in accounts]
    return lines


def _human(info: dict[str, Any]) -> str:
    gas = info["gas_account"]
    variables = " ".join(f"{name}={shlex.quote(value)}" for name, value in info["server_env"].items())
    lines = [
        *chain_lines(info),
        "",
        "TEST-ONLY gas account for a server or facilitator (10 ETH, no USDC):",
        f"  {gas['address']}  private key {gas['private_key']}",
        "",
        "Serve a sample that settles here:",
        f"  {variables} X402_SETTLEMENT_KEY=<the gas account's key> X402_PAY_TO=<your payee> \\",
        "  x402-mcp serve textkit --transport streamable-http",
        "",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)

"""`x402-mcp claude-config <server>`: the `claude_desktop_config.json` entry for a sample server."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._options import address_option
from .samples import sample_names


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "claude-config", help="print the claude_desktop_config.json entry for a sample server"
    )
    parser.add_argument("server", help=f"a sample ({', '.join(sample_names())}) or a path to a server .py")
    parser.add_argument(
        "--pay-to", type=address_option("--pay-to"), help="the address that receives payments (X402_PAY_TO)"
    )
    parser.add_argument(
        "--network", default=None, help="e.g. base-sepolia; omit to use the embedded DevChain (offline)"
    )
    parser.add_argument(
        "--asset",
        type=address_option("--asset"),
        help="the token's address (X402_ASSET), on a network without a known USDC (a devnet)",
    )
    parser.add_argument("--asset-name", help="the token's EIP-712 name (X402_ASSET_NAME), e.g. 'USD Coin'")
    parser.add_argument("--asset-version", help="the token's EIP-712 version (X402_ASSET_VERSION; default 2)")
    parser.add_argument("--ledger", help="ledger URL (X402_LEDGER_URL); default: the user's data directory")
    parser.add_argument(
        "--page-port", type=int, default=8402, help="port of the payment page (X402_PAGE_PORT)"
    )
    parser.set_defaults(run=run)


def config_entry(
    server: str,
    *,
    pay_to: str | None = None,
    network: str | None = None,
    ledger: str | None = None,
    page_port: int = 8402,
    python: str | None = None,
    asset: str | None = None,
    asset_name: str | None = None,
    asset_version: str | None = None,
) -> dict[str, Any]:
    """`{"mcpServers": {name: {command, args, env}}}` with absolute paths.

    Raises:
        ConfigurationError: for a token given without a network (the devchain has its own).
    """
    from ..errors import ConfigurationError
    from .samples import sample_path

    token = {"X402_ASSET": asset, "X402_ASSET_NAME": asset_name, "X402_ASSET_VERSION": asset_version}
    if network is None and any(token.values()):
        raise ConfigurationError("--asset and its name and version need --network (e.g. eip155:31337)")
    path = sample_path(server)
    env: dict[str, str] = {"X402_PAGE_PORT": str(page_port)}
    if network is None:
        env["X402_SETTLEMENT"] = "devchain"
    else:
        # Local settlement also needs X402_RPC_URL and X402_SETTLEMENT_KEY: add them by hand,
        # so that a secret never passes through this command's output or shell history.
        env.update({"X402_SETTLEMENT": "local", "X402_NETWORK": network})
    env.update({name: value for name, value in token.items() if value})
    if pay_to:
        env["X402_PAY_TO"] = pay_to
    if ledger:
        env["X402_LEDGER_URL"] = ledger
    return {"mcpServers": {path.stem: {"command": python or sys.executable, "args": [str(path)], "env": env}}}


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from .samples import check_gated

    try:
        entry = config_entry(
            args.server,
            pay_to=args.pay_to,
            network=args.network,
            ledger=args.ledger,
            page_port=args.page_port,
            asset=args.asset,
            asset_name=args.asset_name,
            asset_version=args.asset_version,
        )
        check_gated(args.server)  # refuses a server whose paid tools would have no gate
    except ConfigurationError as exc:
        print(f"x402-mcp claude-config: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(entry, indent=2))
    return 0

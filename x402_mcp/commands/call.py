"""`x402-mcp call URL TOOL --arg key=value … --max 0.10`: pay for and call one tool.

The wallet key comes from `X402_PAYER_KEY` (never from the command line, where
it would land in the shell history and the process list).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

PAYER_KEY_VARIABLE = "X402_PAYER_KEY"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "call",
        help="call a tool on a streamable-HTTP MCP server, paying for it within a budget",
        description=f"Call TOOL on the MCP server at URL; if it asks for payment, pay from the wallet "
        f"whose private key is in ${PAYER_KEY_VARIABLE}, within the limits given.",
    )
    parser.add_argument("url", help="the server's streamable-HTTP endpoint, e.g. http://127.0.0.1:8000/mcp")
    parser.add_argument("tool", help="the tool to call")
    parser.add_argument(
        "--arg",
        dest="arguments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tool argument; VALUE is read as JSON when it parses (5, true, [1]), else as text",
    )
    parser.add_argument("--max", dest="per_call", metavar="DOLLARS", help="the most this call may cost")
    parser.add_argument("--per-day", metavar="DOLLARS", help="the budget's limit over any 24 hours")
    parser.add_argument("--total", metavar="DOLLARS", help="the budget's lifetime limit")
    parser.add_argument("--payee", action="append", help="an address that may be paid (repeatable)")
    parser.add_argument(
        "--asset",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a token to treat as dollars besides USDC on Base and Base Sepolia (repeatable)",
    )
    parser.add_argument("--network", action="append", metavar="CAIP2", help="a network that may be paid on")
    parser.add_argument("--budget", default="default", help="the budget's name (default: default)")
    parser.add_argument(
        "--budget-file", help="the budget's SQLite file (default: $X402_BUDGET_FILE or ~/.local/share)"
    )
    parser.set_defaults(run=run)


def parse_arguments(pairs: list[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--arg {pair!r} is not KEY=VALUE")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    return arguments


def run(args: argparse.Namespace) -> int:
    import anyio
    from eth_account import Account

    from ..client import Budget, PaymentDeclined, PaymentFailed
    from ..errors import ConfigurationError, X402MCPError
    from ..networks import Asset, resolve_network

    key = os.environ.get(PAYER_KEY_VARIABLE)
    if not key:
        print(f"x402-mcp call: set {PAYER_KEY_VARIABLE} to the paying wallet's private key", file=sys.stderr)
        return 2
    try:
        account = Account.from_key(key)
    except ValueError:
        # The message of eth-account may quote the key: say only what is wrong.
        print(f"x402-mcp call: {PAYER_KEY_VARIABLE} is not a valid private key", file=sys.stderr)
        return 2
    try:
        arguments = parse_arguments(args.arguments)
        budget = Budget(
            per_call=args.per_call,
            per_day=args.per_day,
            total=args.total,
            payees=args.payee,
            name=args.budget,
            file=args.budget_file,
        )
        assets = [Asset(address, name="") for address in args.asset]
        networks = None if args.network is None else [resolve_network(n).caip2 for n in args.network]
    except (ValueError, ConfigurationError) as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 2
    try:
        return anyio.run(_call, args.url, args.tool, arguments, account, budget, assets, networks)
    except (PaymentDeclined, PaymentFailed) as exc:
        print(f"x402-mcp call: not paid: {exc}", file=sys.stderr)
        return 1
    except X402MCPError as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 1


async def _call(
    url: str,
    tool: str,
    arguments: dict[str, Any],
    account: Any,
    budget: Any,
    extra_assets: list[Any],
    networks: list[str] | None,
) -> int:
    from ..client import PayingClient
    from ..client.offers import known_usdc
    from ..money import format_dollars

    assets = [*known_usdc(), *extra_assets]
    async with PayingClient(url, account=account, budget=budget, assets=assets, networks=networks) as client:
        answer = await client.call_tool(tool, arguments)
        spending = await client.spending()
    if answer.result.structured_content is not None and not answer.text:
        print(json.dumps(answer.result.structured_content, indent=2))
    else:
        print(answer.text)
    if answer.paid and answer.requirement is not None:
        receipt = answer.receipt
        print(
            f"\npaid {format_dollars(answer.cost)} to {answer.requirement.pay_to} "
            f"on {answer.requirement.network}"
        )
        if receipt is not None:
            print(f"receipt: transaction {receipt.transaction} (payer {receipt.payer})")
        else:
            print("receipt: none returned; the payment is counted as spent")
        print(
            f"budget {budget.name!r}: {format_dollars(spending.last_day)} in the last 24 hours, "
            f"{format_dollars(spending.total)} in total"
        )
    return 1 if answer.is_error else 0

"""`x402-mcp call URL TOOL --arg key=value … --max 0.10`: pay for and call one tool.

The wallet key comes from `X402_PAYER_KEY` (never from the command line, where
it would land in the shell history and the process list). Limits given here are
kept in the budget file for later calls until changed (`none` clears one); with
no per-call limit, a price above $0.10 is asked about on a terminal and refused
without one (see `x402_mcp.client.consent`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ._options import address_option

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
    kept = "; kept for later calls of the budget until changed, 'none' removes it"
    parser.add_argument(
        "--max",
        dest="per_call",
        metavar="DOLLARS",
        help="the most one call may cost" + kept + " (without one, a price above $0.10 is asked about "
        "on a terminal, and refused without one)",
    )
    parser.add_argument("--per-day", metavar="DOLLARS", help="the budget's limit over any 24 hours" + kept)
    parser.add_argument("--total", metavar="DOLLARS", help="the budget's lifetime limit" + kept)
    parser.add_argument(
        "--payee",
        action="append",
        type=address_option("--payee"),
        help="an address that may be paid (repeatable)" + kept.replace("it", "them"),
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="pay a price above $0.10 without asking when no --max is set (still within the limits)",
    )
    parser.add_argument(
        "--rpc-url",
        metavar="URL",
        help="a JSON-RPC node of the paying chain: payments a server did not take are freed from the "
        "budget once it shows their authorization expired unused",
    )
    parser.add_argument(
        "--max-validity",
        type=int,
        default=600,
        metavar="SECONDS",
        help="the longest a signed payment stays valid (10 to 86400; default 600)",
    )
    parser.add_argument(
        "--asset",
        action="append",
        default=[],
        type=address_option("--asset"),
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

    from ..client import PaymentDeclined, PaymentFailed
    from ..client.window import validity_seconds
    from ..core.networks import Asset, resolve_network
    from ..errors import ConfigurationError, X402MCPError

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
        assets = [Asset(address, name="") for address in args.asset]
        networks = None if args.network is None else [resolve_network(n).caip2 for n in args.network]
        validity_seconds(args.max_validity)
    except (ValueError, ConfigurationError) as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 2
    try:
        return anyio.run(_call, args, arguments, account, assets, networks)
    except ConfigurationError as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 2
    except PaymentFailed as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 1
    except PaymentDeclined as exc:
        print(f"x402-mcp call: not paid: {exc}", file=sys.stderr)
        return 1
    except X402MCPError as exc:
        print(f"x402-mcp call: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nx402-mcp call: interrupted", file=sys.stderr)
        return 130


async def _call(
    args: argparse.Namespace,
    arguments: dict[str, Any],
    account: Any,
    extra_assets: list[Any],
    networks: list[str] | None,
) -> int:
    from ..client import Budget, PayingClient, SpendStore, default_budget_file
    from ..client.consent import confirm_above_default, merge_limits
    from ..client.offers import known_usdc
    from ..core.money import format_dollars
    from ..core.text import shown

    assets = [*known_usdc(), *extra_assets]
    file = args.budget_file or default_budget_file()
    store = SpendStore(file)
    await store.open()
    try:
        limits = await merge_limits(
            store,
            args.budget,
            per_call=args.per_call,
            total=args.total,
            per_day=args.per_day,
            payees=args.payee,
        )
    finally:
        await store.close()
    budget = Budget(
        per_call=limits.per_call,
        per_day=limits.per_day,
        total=limits.total,
        payees=limits.payees,
        name=args.budget,
        file=file,
        confirm=confirm_above_default(
            args.tool, assets, per_call_set=limits.per_call is not None, yes=args.yes
        ),
    )
    async with PayingClient(
        args.url,
        account=account,
        budget=budget,
        assets=assets,
        networks=networks,
        max_validity=args.max_validity,
        chain=args.rpc_url,
    ) as client:
        answer = await client.call_tool(args.tool, arguments)
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
            print(f"receipt: transaction {receipt.transaction} (payer {shown(receipt.payer)})")
        else:
            print("receipt: none returned; the payment is counted as spent")
        print(
            f"budget {budget.name!r}: {format_dollars(spending.last_day)} in the last 24 hours, "
            f"{format_dollars(spending.total)} in total"
        )
    return 1 if answer.is_error else 0

"""`x402-mcp spend`: what a paying client's budget has spent."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser("spend", help="show what a paying client's budget has spent")
    parser.add_argument(
        "--budget-file", help="the budget's SQLite file (default: $X402_BUDGET_FILE or ~/.local/share)"
    )
    parser.add_argument("--budget", help="show only this budget (default: every budget in the file)")
    parser.add_argument("--payments", type=int, default=10, metavar="N", help="list the N latest payments")
    parser.add_argument(
        "--rpc-url",
        metavar="URL",
        help="first read this JSON-RPC node of the paying chain for payments still counted without a "
        "receipt: each is freed once its authorization expired unused, or marked spent when it was used",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from ..client import default_budget_file
    from ..client.onchain import AuthorizationChain
    from ..errors import ConfigurationError, LedgerError

    path = Path(args.budget_file) if args.budget_file else default_budget_file()
    if not path.exists():
        print(f"No budget file at {path}: nothing has been spent.")
        return 0
    try:
        chain = None if args.rpc_url is None else AuthorizationChain(args.rpc_url)
    except ConfigurationError as exc:
        print(f"x402-mcp spend: {exc}", file=sys.stderr)
        return 2
    try:
        return anyio.run(_show, path, args.budget, args.payments, chain)
    except LedgerError as exc:
        print(f"x402-mcp spend: {exc}", file=sys.stderr)
        return 1


async def _show(path: Path, only: str | None, latest: int, chain: Any) -> int:
    import time

    from ..client import SpendStore
    from ..client.onchain import reconcile
    from ..core.money import format_dollars

    store = SpendStore(path)
    await store.open()
    try:
        names = [only] if only else await store.budgets()
        print(f"Budget file {path}")
        for name in names:
            if chain is not None:
                done = await reconcile(store, name, chain, now=time.time())
                print(
                    f"\nbudget {name!r} on chain: {done.released} freed (expired unused), {done.used} used, "
                    f"{done.still_open} still open"
                )
            spending = await store.spending(name, now=time.time())
            print(f"\nbudget {name!r}: {spending.payments} payments")
            print(f"  total         {format_dollars(spending.total)}{_of(spending.total_limit)}")
            print(f"  last 24 hours {format_dollars(spending.last_day)}{_of(spending.per_day)}")
            if spending.per_call is not None:
                print(f"  per call      at most {format_dollars(spending.per_call)}")
            if spending.pending:
                print(
                    f"  {spending.pending} payments not confirmed (counted as spent until the chain shows "
                    "them expired unused: --rpc-url)"
                )
            for payment in await store.payments(name, limit=latest):
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(payment.created_at))
                amount, state = format_dollars(payment.usd), payment.state.value
                print(
                    f"  {stamp}  {amount:<9} {state:<9} {payment.tool} -> {payment.payee}"
                    f"  {payment.tx_hash or payment.detail}"
                )
    finally:
        await store.close()
    return 0


def _of(limit: Any) -> str:
    from ..core.money import format_dollars

    return "" if limit is None else f" of {format_dollars(limit)}"

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
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from ..client import default_budget_file
    from ..errors import LedgerError

    path = Path(args.budget_file) if args.budget_file else default_budget_file()
    if not path.exists():
        print(f"No budget file at {path}: nothing has been spent.")
        return 0
    try:
        return anyio.run(_show, path, args.budget, args.payments)
    except LedgerError as exc:
        print(f"x402-mcp spend: {exc}", file=sys.stderr)
        return 1


async def _show(path: Path, only: str | None, latest: int) -> int:
    import time

    from ..client import SpendStore
    from ..money import format_dollars

    store = SpendStore(path)
    await store.open()
    try:
        names = [only] if only else await store.budgets()
        print(f"Budget file {path}")
        for name in names:
            spending = await store.spending(name, now=time.time())
            print(f"\nbudget {name!r}: {spending.payments} payments")
            print(f"  total         {format_dollars(spending.total)}{_of(spending.total_limit)}")
            print(f"  last 24 hours {format_dollars(spending.last_day)}{_of(spending.per_day)}")
            if spending.per_call is not None:
                print(f"  per call      at most {format_dollars(spending.per_call)}")
            if spending.pending:
                print(f"  {spending.pending} payments not yet confirmed (counted as spent)")
            for payment in await store.payments(name, limit=latest):
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(payment.created_at))
                print(
                    f"  {stamp}  {format_dollars(payment.usd):<9} {payment.state.value:<9} "
                    f"{payment.tool} -> {payment.payee}"
                    f"  {payment.tx_hash or payment.detail}"
                )
    finally:
        await store.close()
    return 0


def _of(limit: Any) -> str:
    from ..money import format_dollars

    return "" if limit is None else f" of {format_dollars(limit)}"

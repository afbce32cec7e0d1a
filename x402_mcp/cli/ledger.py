"""`x402-mcp ledger`: what the seller's ledger holds, and what needs attention.

    x402-mcp ledger [--url URL | --server NAME] [list|payments|pending|files] [--state STATE] [--limit N]

`list` shows payment requests (newest first), `payments` the settlements
recorded on chain, and `pending` what awaits reconciliation (settlements cut
short by a crash or a timeout) or a human (payments the toolkit could not
match to a request); `files` lists the default ledger files on this machine.

The ledger is `--url`, else `$X402_LEDGER_URL`, else a server's default file:
each server keeps its own (`ledgers/<name>-<digest>.sqlite` in the data
directory), so `--server NAME` picks it by the server's name, and with no
choice the one file there is is used; when there are several, they are listed
and none is guessed. A password in a URL is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

VIEWS = ("list", "payments", "pending", "files", "report")
ATTENTION_EVENTS = ("awaiting_reconciliation", "awaiting_refund")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "ledger", help="list payment requests, payments, and anything awaiting reconciliation or refund"
    )
    parser.add_argument(
        "view",
        nargs="?",
        choices=VIEWS,
        default="list",
        help="what to show: payment requests, settlements, or what awaits reconciliation",
    )
    parser.add_argument(
        "--url",
        help="the ledger to read, an SQLite path or URL or a PostgreSQL URL; it must exist "
        "(default: $X402_LEDGER_URL, else a server's default file)",
    )
    parser.add_argument(
        "--server", metavar="NAME", help="the default ledger file of the server called NAME (see `files`)"
    )
    parser.add_argument(
        "--state", help="list: only requests in this state (issued, paid, consumed, ...; default: all)"
    )
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="show at most N rows")
    parser.add_argument(
        "--grace",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="pending: a settlement older than this is presumed cut short",
    )
    from . import report

    report.add_arguments(parser)  # `ledger report`: revenue by day, tool and payer
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from ..core.states import State
    from ..errors import ConfigurationError, LedgerError
    from ..ledger import open_ledger

    states = None
    if args.state:
        try:
            states = [State(args.state)]
        except ValueError:
            choices = ", ".join(state.value for state in State)
            print(f"x402-mcp ledger: unknown state {args.state!r}; choose one of {choices}", file=sys.stderr)
            return 2
    if args.view == "files":
        _files()
        return 0
    url = args.url or os.environ.get("X402_LEDGER_URL") or _default_file(args.server)
    if url is None:
        return 2
    try:
        ledger = open_ledger(url)
        _require_existing(ledger, given=args.url is not None)
        from .report import show as _report

        show = {"list": _requests, "payments": _payments, "pending": _pending, "report": _report}[args.view]
        anyio.run(_opened, show, ledger, args, states)
    except ConfigurationError as exc:
        print(f"x402-mcp ledger: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"x402-mcp ledger: {exc}", file=sys.stderr)
        return 1
    return 0


def _require_existing(ledger: Any, *, given: bool) -> None:
    """Refuse an SQLite ledger file that does not exist: opening it would create an empty one,
    and a mistyped path would then look like a ledger with nothing in it.

    Raises:
        ConfigurationError: naming the path, where it came from, and what to do.
    """
    from pathlib import Path

    from ..errors import ConfigurationError
    from ..ledger.sqlite import SQLiteLedger

    if not isinstance(ledger, SQLiteLedger) or ledger.path == ":memory:" or Path(ledger.path).is_file():
        return
    source = "--url" if given else "X402_LEDGER_URL" if os.environ.get("X402_LEDGER_URL") else "the default"
    raise ConfigurationError(
        f"there is no ledger file at {ledger.path} ({source}); this command only reads a ledger and "
        "never creates one. Check the path, or point --url at the ledger a server wrote "
        "(its X402_LEDGER_URL)"
    )


async def _opened(show: Any, ledger: Any, args: argparse.Namespace, states: Any) -> None:
    await ledger.open()
    try:
        await show(ledger, args, states)
    finally:
        await ledger.close()


async def _requests(ledger: Any, args: argparse.Namespace, states: Any) -> None:
    rows = await ledger.requests(states=states, limit=args.limit)
    print(f"{len(rows)} payment request(s), newest first")
    print(f"{'id':<30} {'state':<10} {'tool':<20} {'price':>12} {'created (UTC)':<20} caller")
    for request in rows:
        print(
            f"{request.id:<30} {request.state.value:<10} {request.tool[:20]:<20} {_usd(request.price):>12}"
            f" {_when(request.created_at):<20} {request.caller or '-'}"
        )


async def _payments(ledger: Any, args: argparse.Namespace, states: Any) -> None:
    rows = (await ledger.settlements())[-args.limit :]
    total = sum(record.amount for record in rows)
    print(f"{len(rows)} settlement(s), oldest first; {_usd(total)} in total")
    print(f"{'settled (UTC)':<20} {'amount':>12} {'payer':<42} {'network':<14} transaction")
    for record in rows:
        print(
            f"{_when(record.settled_at):<20} {_usd(record.amount):>12} {record.payer:<42}"
            f" {record.network:<14} {record.tx_hash}"
        )


async def _pending(ledger: Any, args: argparse.Namespace, states: Any) -> None:
    import time

    from ..core.states import State
    from ..gate.reconcile import awaiting_reconciliation

    now = time.time()
    settling = await ledger.requests(states=[State.SETTLING], limit=args.limit)
    stale = {r.id for r in await awaiting_reconciliation(ledger, now=now, grace_seconds=args.grace)}
    notes = [line for line in await ledger.audit_trail() if line[2] in ATTENTION_EVENTS]
    print(f"{len(settling)} settlement(s) in progress, {len(stale)} of them awaiting reconciliation")
    for request in settling:
        status = "awaiting reconciliation" if request.id in stale else "settling"
        print(f"  {request.id:<30} {status:<24} {request.tool[:20]:<20} {_usd(request.price):>12}")
    print(f"{len(notes)} note(s) needing attention (reconciliation or refund)")
    for at, request_id, event, detail in notes[-args.limit :]:
        print(f"  {_when(at):<20} {request_id or '-':<30} {event}: {detail}")


def _files() -> None:
    from ..ledger.location import ledger_directory, legacy_ledger, server_ledgers

    found = server_ledgers()
    print(f"{len(found)} server ledger file(s) in {ledger_directory()}")
    for path in found:
        print(f"  {path.name.rsplit('-', 1)[0]:<30} {path}")
    legacy = legacy_ledger()
    if legacy is not None:
        print(f"the ledger servers shared by default before ledgers were per server: {legacy}")


def _default_file(server: str | None) -> str | None:
    """The URL of the one default ledger file `server` (None: any server) names, or None
    after saying on stderr why there is no one file to read."""
    from ..ledger.location import ledger_directory, legacy_ledger, server_ledgers

    found: list[Path] = server_ledgers(server=server)
    if server is None and not found and (legacy := legacy_ledger()) is not None:
        found = [legacy]
    if len(found) == 1:
        return f"sqlite://{found[0]}"
    whose = "no server" if server is None else f"no server called {server!r}"
    if not found:
        print(
            f"x402-mcp ledger: {whose} has a default ledger in {ledger_directory()}; pass --url"
            " (or set X402_LEDGER_URL) for a ledger kept elsewhere",
            file=sys.stderr,
        )
        return None
    print("x402-mcp ledger: several default ledger files match; pass --url with one of:", file=sys.stderr)
    for path in found:
        print(f"  sqlite://{path}", file=sys.stderr)
    return None


def _usd(amount: int) -> str:
    from ..core.money import format_usd

    return format_usd(amount)


def _when(at: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")

"""`x402-mcp ledger report`: revenue by day, tool and payer for a period.

    x402-mcp ledger report [--since DATE] [--until DATE] [--csv | --json]

`--since` is the first moment counted and `--until` the last day counted (a date,
`2026-12-07`, counts that whole UTC day) or the moment counting stops (an ISO time
with its zone, `2026-12-07T12:00:00+00:00`, not counted itself). Amounts are exact
plain decimals of USDC (six places) beside their atomic units in CSV and JSON.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
from functools import partial
from typing import Any

import anyio.to_thread

from ..errors import ConfigurationError
from ..telemetry.chain_revenue import ChainCheck, check_chain
from ..telemetry.revenue import Group, Report, revenue_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `ledger report` adds to `x402-mcp ledger`."""
    parser.add_argument(
        "--since", type=since_moment, metavar="DATE", help="report: count from this UTC day or ISO time"
    )
    parser.add_argument(
        "--until", type=until_moment, metavar="DATE", help="report: count up to this UTC day (inclusive)"
    )
    parser.add_argument(
        "--rpc-url",
        metavar="URL",
        help="report: also compare with the payee's Transfer logs on this EVM node (same network)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="report: CSV (group,key,payments,revenue,...)")
    output.add_argument("--json", action="store_true", help="report: JSON")


def since_moment(text: str) -> float:
    return _moment(text, end_of_day=False)


def until_moment(text: str) -> float:
    return _moment(text, end_of_day=True)


def _moment(text: str, *, end_of_day: bool) -> float:
    """A UTC date (`2026-12-07`) or an ISO time with a zone, as Unix seconds.

    A bare date for `--until` means the end of that day, so the day itself is counted.
    """
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
        return (start + datetime.timedelta(days=1 if end_of_day else 0)).timestamp()
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-12-07) or an ISO time (2026-12-07T12:00:00+00:00)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one (for example +00:00 for UTC) or give a bare date"
        )
    return moment.timestamp()


async def show(ledger: Any, args: argparse.Namespace, states: Any) -> None:
    """Print the report of `ledger` for the period in `args` (table, CSV or JSON)."""
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise ConfigurationError("--until must come after --since: the period is empty")
    report = await revenue_report(ledger, since=args.since, until=args.until)
    checks: list[ChainCheck] | None = None
    if args.rpc_url:
        checks = await anyio.to_thread.run_sync(
            partial(
                check_chain,
                args.rpc_url,
                report.payments,
                report.recorded,
                since=args.since,
                until=args.until,
            )
        )
    if args.json:
        print(json.dumps(as_json(report, checks), indent=2))
    elif args.csv:
        print(as_csv(report, checks), end="")
    else:
        print(as_table(report, checks), end="")


def _when(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat().replace("+00:00", "Z")


def _group_json(report: Report, group: Group) -> dict[str, Any]:
    return {
        "key": group.key,
        "payments": group.payments,
        "revenue": str(report.amount(group.revenue)),
        "revenue_atomic": str(group.revenue),
    }


def _check_json(report: Report, check: ChainCheck) -> dict[str, Any]:
    return {
        "network": check.network,
        "payee": check.payee,
        "asset": check.asset,
        "from_block": check.from_block,
        "to_block": check.to_block,
        "ledger": str(report.amount(check.ledger_total)),
        "ledger_atomic": str(check.ledger_total),
        "received": str(report.amount(check.chain_total)),
        "received_atomic": str(check.chain_total),
        "difference": str(report.amount(check.difference)),
        "unconfirmed": check.unconfirmed,
        "unrecorded": [
            {"transaction": tx, "amount": str(report.amount(amount)), "amount_atomic": str(amount)}
            for tx, amount in check.unrecorded
        ],
    }


def as_json(report: Report, checks: list[ChainCheck] | None = None) -> dict[str, Any]:
    """The report as JSON-ready data: amounts as decimal strings, never floats."""
    data = {
        "since": _when(report.since),
        "until": _when(report.until),
        "currency": "USDC",
        "decimals": report.decimals,
        "total": _group_json(report, report.total),
        "by_day": [_group_json(report, group) for group in report.by_day()],
        "by_tool": [_group_json(report, group) for group in report.by_tool()],
        "by_payer": [_group_json(report, group) for group in report.by_payer()],
        "payments": [
            {
                "settled_at": _when(payment.settled_at),
                "request_id": payment.request_id,
                "tool": payment.tool,
                "payer": payment.payer,
                "amount": str(report.amount(payment.amount)),
                "amount_atomic": str(payment.amount),
                "asset": payment.asset,
                "network": payment.network,
                "transaction": payment.tx_hash,
            }
            for payment in report.payments
        ],
    }
    if checks is not None:
        data["chain"] = [_check_json(report, check) for check in checks]
    return data


def as_csv(report: Report, checks: list[ChainCheck] | None = None) -> str:
    """One row per group: `group` is total, day, tool or payer; with `--rpc-url` also
    `chain_ledger` and `chain_received` per `network/payee/asset`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "key", "payments", "revenue", "revenue_atomic"])
    sections = [("total", [report.total]), ("day", report.by_day())]
    sections += [("tool", report.by_tool()), ("payer", report.by_payer())]
    for name, groups in sections:
        for group in groups:
            writer.writerow([name, group.key, group.payments, report.amount(group.revenue), group.revenue])
    for check in checks or []:
        key = f"{check.network}/{check.payee}/{check.asset}"
        settled = sum(1 for p in report.payments if p.payee.lower() == check.payee.lower())
        for name, count, total in (
            ("chain_ledger", settled, check.ledger_total),
            ("chain_received", check.transfers, check.chain_total),
        ):
            writer.writerow([name, key, count, report.amount(total), total])
    return out.getvalue()


def as_table(report: Report, checks: list[ChainCheck] | None = None) -> str:
    since = _when(report.since) or "the start"
    until = _when(report.until) or "now"
    total = report.total
    lines = [
        f"Revenue from {since} until {until}: {total.payments} payment(s), "
        f"{report.amount(total.revenue)} USDC"
    ]
    for title, groups, width in (
        ("day", report.by_day(), 10),
        ("tool", report.by_tool(), 24),
        ("payer", report.by_payer(), 42),
    ):
        lines.append("")
        lines.append(f"{'by ' + title:<{width}}  {'payments':>8}  {'revenue (USDC)':>18}")
        for group in groups:
            lines.append(f"{group.key:<{width}}  {group.payments:>8}  {report.amount(group.revenue)!s:>18}")
    for check in checks or []:
        agree = "agree" if check.difference == 0 and not check.unconfirmed else "DIFFER"
        lines += [
            "",
            f"on chain {check.network}, blocks {check.from_block}-{check.to_block}: payee {check.payee}, "
            f"asset {check.asset}: ledger and chain {agree}",
            f"  settled in the ledger  {report.amount(check.ledger_total)!s:>18}",
            f"  received on chain      {report.amount(check.chain_total)!s:>18}",
            f"  difference             {report.amount(check.difference)!s:>18}",
        ]
        lines += [f"  not found on chain: {tx}" for tx in check.unconfirmed]
        lines += [
            f"  received, in no settlement: {tx} {report.amount(amount)}" for tx, amount in check.unrecorded
        ]
    return "\n".join(lines) + "\n"

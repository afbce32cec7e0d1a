"""The operator page's HTML: revenue by day as an SVG bar chart (and its table), recent
payments with their transactions, and what awaits reconciliation or a human.

Server-rendered, no script, every value escaped; the only other request is the
page's own stylesheet.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from html import escape

from ..telemetry.revenue import Group, Report

CHART_WIDTH = 720
CHART_HEIGHT = 200


@dataclass(frozen=True, slots=True)
class Attention:
    """One thing awaiting reconciliation or a human."""

    at: float
    request_id: str
    what: str


def _when(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _days(report: Report, days: int, today: datetime.date) -> list[Group]:
    """One group per day of the last `days` (today last), empty days included."""
    known = {group.key: group for group in report.by_day()}
    first = today - datetime.timedelta(days=days - 1)
    keys = [(first + datetime.timedelta(days=offset)).isoformat() for offset in range(days)]
    return [known.get(key, Group(key)) for key in keys]


def chart(report: Report, days: list[Group]) -> str:
    """Revenue per day as bars; the table after it carries the same figures for everyone."""
    top = max((group.revenue for group in days), default=0) or 1
    slot = CHART_WIDTH / len(days)
    bars = []
    for index, group in enumerate(days):
        height = round(group.revenue / top * (CHART_HEIGHT - 20))
        x = round(index * slot + slot * 0.15, 1)
        bars.append(
            f'<rect class="bar" x="{x}" y="{CHART_HEIGHT - height}" width="{round(slot * 0.7, 1)}" '
            f'height="{height}"><title>{escape(group.key)}: {report.amount(group.revenue)} USDC'
            "</title></rect>"
        )
    first, last = escape(days[0].key), escape(days[-1].key)
    # The words sit in HTML around the drawing, not in it: an SVG scaled to a phone's width
    # would shrink its text with it.
    return (
        '<div class="chart-box">'
        f'<p class="chart-note">highest day: {report.amount(top if top > 1 else 0)} USDC</p>'
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-labelledby="chart-title">'
        f'<title id="chart-title">Revenue per day from {first} to {last}, in USDC</title>'
        f'<line class="axis" x1="0" y1="{CHART_HEIGHT}" x2="{CHART_WIDTH}" y2="{CHART_HEIGHT}"/>'
        + "".join(bars)
        + "</svg>"
        f'<p class="chart-dates"><span>{first}</span><span>{last}</span></p>'
        "</div>"
    )


def dashboard(
    report: Report,
    attention: list[Attention],
    *,
    server_name: str,
    days: int,
    today: datetime.date,
    recent: int = 20,
) -> str:
    """The whole page."""
    per_day = _days(report, days, today)
    total = report.total
    day_rows = (
        "".join(
            f"<tr><td>{escape(group.key)}</td><td class=num>{group.payments}</td>"
            f"<td class=num>{report.amount(group.revenue)}</td></tr>"
            for group in reversed(per_day)
            if group.payments
        )
        or '<tr><td colspan="3">No payments in this period.</td></tr>'
    )
    payment_rows = (
        "".join(
            f"<tr><td>{escape(_when(payment.settled_at))}</td><td>{escape(payment.tool)}</td>"
            f"<td class=num>{report.amount(payment.amount)}</td><td class=mono>{escape(payment.payer)}</td>"
            f"<td class=mono>{escape(payment.network)}<br>{escape(payment.tx_hash)}</td></tr>"
            for payment in list(reversed(report.payments))[:recent]
        )
        or '<tr><td colspan="5">No payments yet.</td></tr>'
    )
    attention_rows = (
        "".join(
            f"<tr><td>{escape(_when(item.at))}</td><td class=mono>{escape(item.request_id)}</td>"
            f"<td>{escape(item.what)}</td></tr>"
            for item in attention
        )
        or '<tr><td colspan="3">Nothing awaits reconciliation, a refund or a claim.</td></tr>'
    )
    return (
        _page(f"Revenue of {server_name}")
        + f"""<main>
<h1>Revenue of {escape(server_name)}</h1>
<p class="summary">Last {days} days: <strong>{total.payments}</strong> payment(s),
<strong>{report.amount(total.revenue)} USDC</strong>. Read-only; figures from the payment ledger.</p>
<section aria-labelledby="by-day">
<h2 id="by-day">Revenue per day</h2>
{chart(report, per_day)}
<table>
<caption>Days with payments, newest first</caption>
<thead><tr><th scope="col">Day (UTC)</th><th scope="col" class=num>Payments</th>
<th scope="col" class=num>Revenue (USDC)</th></tr></thead>
<tbody>{day_rows}</tbody>
</table>
</section>
<section aria-labelledby="recent">
<h2 id="recent">Recent payments</h2>
<div class="scroll" tabindex="0" role="region" aria-label="Table of recent payments (scrolls sideways)">
<table>
<thead><tr><th scope="col">Settled</th><th scope="col">Tool</th><th scope="col" class=num>Amount (USDC)</th>
<th scope="col">Payer</th><th scope="col">Network and transaction</th></tr></thead>
<tbody>{payment_rows}</tbody>
</table>
</div>
</section>
<section aria-labelledby="attention">
<h2 id="attention">Awaiting reconciliation, refunds or claims</h2>
<table>
<thead><tr><th scope="col">Since</th><th scope="col">Payment request</th>
<th scope="col">What</th></tr></thead>
<tbody>{attention_rows}</tbody>
</table>
</section>
</main>
</body>
</html>
"""
    )


def login(server_name: str, *, refused: bool) -> str:
    """The form that asks for the operator token (kept in an HttpOnly cookie once given)."""
    error = (
        '<p class="error" role="alert">That is not the operator token. '
        "It is the value of operator_token (or X402_OPERATOR_TOKEN) this server runs with.</p>"
        if refused
        else ""
    )
    return (
        _page(f"Operator sign-in: {server_name}")
        + f"""<main>
<h1>Revenue of {escape(server_name)}</h1>
{error}
<form method="post" action="/operator/login">
<label for="token">Operator token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Show revenue</button>
</form>
</main>
</body>
</html>
"""
    )


def _page(title: str) -> str:
    """The start of an operator page, up to its <body>: one stylesheet, never indexed."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="stylesheet" href="/operator/operator.css">\n</head>\n<body>\n'
    )

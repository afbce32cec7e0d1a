"""Revenue from the ledger: each recorded settlement with its tool, summed by day, tool and payer.

Read through the `Ledger` protocol only (both SQLite and PostgreSQL): the settled
requests (`paid`, `redeeming`, `consumed`) give each settlement its tool, and the
settlements give what moved. Amounts stay integers of atomic units; `from_atomic`
turns them into exact decimals for display. USDC on every network is counted as
USD at par, as prices are.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from ..core.money import USDC_DECIMALS, from_atomic
from ..core.states import State
from ..ledger.base import Ledger, Owner, PaymentRequest

SETTLED_STATES = (State.PAID, State.REDEEMING, State.CONSUMED)
MAX_REQUESTS = 10_000_000
"""More settled requests than any one report reads (the ledger API asks for a limit)."""
UNMATCHED = "(no request)"


@dataclass(frozen=True, slots=True)
class Payment:
    """One settlement recorded in the ledger, with the request it paid."""

    settled_at: float
    request_id: str
    tool: str
    payer: str
    amount: int
    asset: str
    network: str
    tx_hash: str
    payee: str = ""
    """The request's `pay_to` (empty for a settlement no request names)."""

    @property
    def day(self) -> str:
        return datetime.datetime.fromtimestamp(self.settled_at, datetime.UTC).date().isoformat()


@dataclass
class Group:
    """Payments and revenue (atomic units) of one day, tool or payer."""

    key: str
    payments: int = 0
    revenue: int = 0

    def add(self, payment: Payment) -> None:
        self.payments += 1
        self.revenue += payment.amount


@dataclass
class Report:
    """Revenue for the period `[since, until)` (Unix seconds; None: open-ended)."""

    since: float | None
    until: float | None
    payments: list[Payment] = field(default_factory=list)
    decimals: int = USDC_DECIMALS
    recorded: set[str] = field(default_factory=set)
    """The transaction of every settlement in the ledger (any period), lower-case."""

    @property
    def total(self) -> Group:
        return _grouped(self.payments, lambda payment: "total")[0] if self.payments else Group("total")

    def by_day(self) -> list[Group]:
        return _grouped(self.payments, lambda payment: payment.day)

    def by_tool(self) -> list[Group]:
        return _grouped(self.payments, lambda payment: payment.tool)

    def by_payer(self) -> list[Group]:
        return _grouped(self.payments, lambda payment: payment.payer)

    def amount(self, atomic: int) -> Decimal:
        """`atomic` as an exact decimal with all the asset's places (`0.050000`)."""
        return from_atomic(atomic, self.decimals).quantize(Decimal(1).scaleb(-self.decimals))


def _grouped(payments: Iterable[Payment], key: Callable[[Payment], str]) -> list[Group]:
    groups: dict[str, Group] = {}
    for payment in payments:
        name = key(payment)
        groups.setdefault(name, Group(name)).add(payment)
    return sorted(groups.values(), key=lambda group: group.key)


async def revenue_report(
    ledger: Ledger,
    *,
    since: float | None,
    until: float | None,
    decimals: int = USDC_DECIMALS,
    owner: Owner | None = None,
) -> Report:
    """The settlements recorded in `[since, until)`, oldest first, each with its request's tool.

    A settlement is matched to its request by transaction (a settled request keeps the
    hash of what paid it); one no settled request names (which the toolkit does not
    write) is still counted, under tool `UNMATCHED`, so the revenue is never short.
    With `owner`, only the settlements of that server's requests are counted.
    """
    requests = await ledger.requests(states=SETTLED_STATES, limit=MAX_REQUESTS, owner=owner)
    by_transaction: dict[str, PaymentRequest] = {
        request.tx_hash.lower(): request for request in requests if request.tx_hash
    }
    report = Report(since, until, decimals=decimals)
    for record in await ledger.settlements():
        report.recorded.add(record.tx_hash.lower())
        if (since is not None and record.settled_at < since) or (
            until is not None and record.settled_at >= until
        ):
            continue
        request = by_transaction.get(record.tx_hash.lower())
        if request is None and owner is not None:
            continue  # another server's settlement, in a shared ledger
        report.payments.append(
            Payment(
                settled_at=record.settled_at,
                request_id=request.id if request else "",
                tool=request.tool if request else UNMATCHED,
                payer=record.payer,
                amount=record.amount,
                asset=record.asset,
                network=record.network,
                tx_hash=record.tx_hash,
                payee=request.pay_to if request else "",
            )
        )
    report.payments.sort(key=lambda payment: (payment.settled_at, payment.tx_hash))
    return report

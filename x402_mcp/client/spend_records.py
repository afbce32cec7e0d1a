"""The spending records of `SpendStore`: what a payment and a budget's totals look like, the
states a payment moves through, and the SQLite tables that hold them (with their migrations).

Kept apart from the store so that readers of a record (`onchain`, the CLI) and the schema can be
read without the transaction code. Amounts are TEXT (SQLite's INTEGER stops at 2**63 - 1 and REAL
rounds) and become `int` atomic units or `Decimal` dollars here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ..ledger._migrations import Migration


class SpendState(StrEnum):
    RESERVED = "reserved"
    SPENT = "spent"
    RELEASED = "released"
    UNCERTAIN = "uncertain"


_STATES = ", ".join(f"'{state.value}'" for state in SpendState)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "payments, budget limits",
        (
            f"""CREATE TABLE payments (
                id TEXT PRIMARY KEY,
                budget TEXT NOT NULL,
                tool TEXT NOT NULL,
                payee TEXT NOT NULL,
                network TEXT NOT NULL,
                asset TEXT NOT NULL,
                amount TEXT NOT NULL,
                usd TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ({_STATES})),
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                tx_hash TEXT,
                detail TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX payments_budget ON payments (budget, created_at)",
            """CREATE TABLE budgets (
                name TEXT PRIMARY KEY,
                committed TEXT NOT NULL,
                per_call TEXT,
                total TEXT,
                per_day TEXT,
                payees TEXT,
                updated_at REAL NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "the signed authorization of each payment",
        (
            # Which EIP-3009 authorization a payment signs, so it can be looked up on chain,
            # and when it expires (a unix time, as text: validBefore is a uint256).
            "ALTER TABLE payments ADD COLUMN payer TEXT",
            "ALTER TABLE payments ADD COLUMN nonce TEXT",
            "ALTER TABLE payments ADD COLUMN valid_before TEXT",
        ),
    ),
)

PAYMENT_COLUMNS = (
    "id, budget, tool, payee, network, asset, amount, usd, state, created_at, updated_at, tx_hash, detail,"
    " payer, nonce, valid_before"
)


@dataclass(frozen=True, slots=True)
class Spend:
    """One payment of a budget, as recorded."""

    id: str
    budget: str
    tool: str
    payee: str
    network: str
    asset: str
    amount: int
    usd: Decimal
    state: SpendState
    created_at: float
    updated_at: float
    tx_hash: str | None
    detail: str
    payer: str | None = None
    nonce: str | None = None
    valid_before: int | None = None
    """The signed (or to be signed) authorization: `from`, `nonce`, `validBefore`."""


@dataclass(frozen=True, slots=True)
class Spending:
    """What one budget has committed: `total` ever, `last_day` in the last 24 hours.

    Both include payments still `reserved` or `uncertain` (`pending` counts those).
    The limits are the ones the budget was last opened with.
    """

    budget: str
    total: Decimal
    last_day: Decimal
    payments: int
    pending: int
    per_call: Decimal | None
    total_limit: Decimal | None
    per_day: Decimal | None


def spend_from_row(row: tuple[object, ...]) -> Spend:
    """A `payments` row, selected as `PAYMENT_COLUMNS`, as a `Spend`."""
    (id_, budget, tool, payee, network, asset, amount, usd, state, created, updated, tx, detail) = row[:13]
    payer, nonce, valid_before = row[13:]
    return Spend(
        str(id_), str(budget), str(tool), str(payee), str(network), str(asset), int(str(amount)),
        Decimal(str(usd)), SpendState(str(state)), float(str(created)), float(str(updated)),
        None if tx is None else str(tx), str(detail), None if payer is None else str(payer),
        None if nonce is None else str(nonce), None if valid_before is None else int(str(valid_before)),
    )  # fmt: skip


def decimal_or_none(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))

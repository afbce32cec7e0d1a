"""`Budget`: what an agent may spend, in dollars, and the pure check against it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from eth_utils.address import is_address, to_checksum_address

from ..core.money import parse_usd
from ..core.wire import PaymentRequirements
from ..errors import ConfigurationError
from .errors import BudgetExceeded, PayeeNotAllowed

Confirm = Callable[[PaymentRequirements], Awaitable[bool]]
"""Asked before each payment, once it is within the limits; `False` declines it."""

DAY_SECONDS = 24 * 60 * 60


def default_budget_file() -> Path:
    """`$X402_BUDGET_FILE`, else `budget.sqlite` in the user's x402-mcp data directory."""
    configured = os.environ.get("X402_BUDGET_FILE")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "x402-mcp" / "budget.sqlite"


def _dollars(name: str, value: str | Decimal | int | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_usd(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"Budget {name}: {exc}") from None


@dataclass(frozen=True, slots=True, init=False)
class Budget:
    """Limits on what a `PayingClient` pays, kept in an SQLite file across restarts.

    Amounts are dollars as decimal strings (`"0.10"`), never floats; a limit
    left as None does not apply.

    Args:
        per_call: the most one payment may cost.
        total: the most all payments of this budget may cost, ever.
        per_day: the most the payments of the last 24 hours (rolling) may cost.
        payees: if given, the only addresses that may be paid.
        name: budgets sharing one file are told apart by name.
        file: the SQLite file (default: `default_budget_file()`).
        confirm: an async callback asked before each payment that is within
            the limits, for example to ask a person; `False` declines it.

    Raises:
        ConfigurationError: for a float, negative or non-numeric amount, or a
            payee that is not an EVM address.
    """

    per_call: Decimal | None = None
    total: Decimal | None = None
    per_day: Decimal | None = None
    payees: frozenset[str] | None = None
    name: str = "default"
    file: Path = field(default_factory=default_budget_file)
    confirm: Confirm | None = None

    def __init__(
        self,
        *,
        per_call: str | Decimal | int | None = None,
        total: str | Decimal | int | None = None,
        per_day: str | Decimal | int | None = None,
        payees: Collection[str] | None = None,
        name: str = "default",
        file: str | os.PathLike[str] | None = None,
        confirm: Confirm | None = None,
    ) -> None:
        if isinstance(payees, str):
            raise ConfigurationError("Budget payees must be a collection of addresses, not one string")
        for payee in payees or ():
            if not is_address(payee):
                raise ConfigurationError(f"Budget payee {payee!r} is not an EVM address")
        if not name:
            raise ConfigurationError("Budget name must not be empty")
        # frozen: assign through object, as dataclasses do in their own __init__.
        set_ = object.__setattr__
        set_(self, "per_call", _dollars("per_call", per_call))
        set_(self, "total", _dollars("total", total))
        set_(self, "per_day", _dollars("per_day", per_day))
        set_(self, "payees", None if payees is None else frozenset(to_checksum_address(p) for p in payees))
        set_(self, "name", name)
        set_(self, "file", Path(file) if file is not None else default_budget_file())
        set_(self, "confirm", confirm)

    def check(self, price: Decimal, payee: str, *, spent_total: Decimal, spent_day: Decimal) -> None:
        """Refuse a payment of `price` dollars to `payee`, given what is already committed.

        Raises:
            PayeeNotAllowed: `payee` is not on the allowlist.
            BudgetExceeded: naming the first limit the payment would break.
        """
        if self.payees is not None and to_checksum_address(payee) not in self.payees:
            raise PayeeNotAllowed(f"the payee {to_checksum_address(payee)} is not on the budget's allowlist")
        if self.per_call is not None and price > self.per_call:
            raise BudgetExceeded("per_call", price=price, allowed=self.per_call, would_be=price)
        if self.total is not None and spent_total + price > self.total:
            raise BudgetExceeded("total", price=price, allowed=self.total, would_be=spent_total + price)
        if self.per_day is not None and spent_day + price > self.per_day:
            raise BudgetExceeded("per_day", price=price, allowed=self.per_day, would_be=spent_day + price)

"""`PayingClient`: an MCP client that pays for paid tools on its own, within a `Budget`.

One paid call: call the tool; if it answers with an x402 challenge, choose a
requirement we may pay, check the budget and reserve the amount (durably,
before anything is signed), ask `confirm` if set, sign the EIP-3009
authorization for exactly the checked amount, retry once with
`_meta["x402/payment"]`, then mark the reservation spent (a receipt came
back), released (the server says it did not take the payment) or uncertain
(nobody can tell; it keeps counting). It never signs a second payment for one
call.

A tool paid before (with no `confirm` to ask) is reserved at its last price
while the unpaid call is out, so the reservation's disk sync overlaps that
round trip; when the challenge asks for the same payment the reservation is
used, otherwise (another price, no payment, an error) it is discarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import anyio
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.types import CallToolResult, TextContent

from ..challenge import META_PAYMENT_RESPONSE
from ..errors import ConfigurationError, X402MCPError
from ..money import format_dollars, from_atomic
from ..networks import Asset
from ..payer import PaymentSigner, payment_meta, sign_payment
from ..wire import PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse
from .budget import Budget
from .errors import NotConfirmed, PaymentFailed
from .offers import choose, find_payment_required, known_usdc
from .store import SpendStore

logger = logging.getLogger("x402_mcp.client")


@dataclass(frozen=True, slots=True)
class PaidResult:
    """A tool's result, and what was paid for it.

    `receipt` is the server's settlement response (`_meta["x402/payment-response"]`)
    and `cost` the dollars charged to the budget; for a free call both are empty.
    `spend_id` names the payment in the budget file.
    """

    result: CallToolResult
    receipt: SettleResponse | None = None
    requirement: PaymentRequirements | None = None
    cost: Decimal = Decimal(0)
    spend_id: str | None = None

    @property
    def paid(self) -> bool:
        return self.requirement is not None

    @property
    def is_error(self) -> bool:
        return bool(self.result.is_error)

    @property
    def text(self) -> str:
        return "\n".join(block.text for block in self.result.content if isinstance(block, TextContent))


class PayingClient:
    """Call MCP tools and pay the paid ones from `account`, within `budget`.

    ```python
    async with PayingClient("http://127.0.0.1:8000/mcp", account=key, budget=Budget(per_call="0.10")) as c:
        answer = await c.call_tool("research_query", {"question": "…"})
        print(answer.text, answer.receipt.transaction if answer.receipt else "free")
    ```

    Args:
        target: whatever `mcp.Client` accepts: an in-process `MCPServer`, a
            streamable-HTTP URL, `StdioServerParameters`, a transport.
        account: the wallet that signs: an eth-account `LocalAccount`, or a smart
            account (any `PaymentSigner`, such as `OwnedSmartAccount`).
        budget: the limits; spending is kept in `budget.file`.
        assets: the tokens that count as dollars (default: USDC on Base and
            Base Sepolia); a requirement in any other asset is not paid.
        networks: CAIP-2 networks that may be paid on (default: any EVM chain).
        prefer: networks to choose first when several are offered.
        clock: unix time, for the rolling day (tests inject their own).
        client_options: passed to `mcp.Client` (for example `mode="legacy"`).
    """

    def __init__(
        self,
        target: Any,
        *,
        account: LocalAccount | PaymentSigner,
        budget: Budget,
        assets: Iterable[Asset] | None = None,
        networks: Sequence[str] | None = None,
        prefer: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        **client_options: Any,
    ) -> None:
        if not isinstance(budget, Budget):
            raise ConfigurationError("budget must be a Budget(...)")
        self.account = account
        self.budget = budget
        self.assets = tuple(assets) if assets is not None else known_usdc()
        self.networks = tuple(networks) if networks is not None else None
        self.prefer = tuple(prefer)
        self.clock = clock
        self.store = SpendStore(budget.file)
        self._target = target
        self._client_options = client_options
        self._client: Client | None = None
        # Per tool, what it charged last time (the requirement we chose and its dollars).
        self._guesses: dict[str, tuple[PaymentRequirements, Decimal]] = {}
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            await self.store.open()
            stack.push_async_callback(self.store.close)
            await self.store.remember_limits(self.budget, now=self.clock())
            self._client = await stack.enter_async_context(Client(self._target, **self._client_options))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is None:
            return
        try:
            await stack.__aexit__(kind, error, tb)
        except BaseExceptionGroup as group:
            # The MCP client's task group wraps what the `async with` body raised; a
            # BudgetExceeded should reach the application as itself, not in a group.
            if error is None or any(leaf is not error for leaf in _leaves(group)):
                raise

    @property
    def client(self) -> Client:
        """The underlying `mcp.Client`, for everything but paid calls (`list_tools`, …)."""
        if self._client is None:
            raise X402MCPError("PayingClient is not open; use `async with PayingClient(...) as client:`")
        return self._client

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> PaidResult:
        """Call tool `name`; when it asks for payment, pay once within the budget and call again.

        Returns:
            the tool's result with the receipt. A tool error that is not a
            payment challenge comes back as it is (`result.is_error`).

        Raises:
            PaymentDeclined: (`BudgetExceeded`, `PayeeNotAllowed`, `NotConfirmed`,
                `NoPayableOption`) nothing was signed.
            PaymentFailed: the server did not take the signed payment; the
                budget is unspent.
        """
        # A tool paid before most likely asks the same again: reserve that while the probe is on
        # the wire, so the disk sync overlaps the round trip instead of following it.
        guess = self._guesses.get(name) if self.budget.confirm is None else None
        if guess is None:
            first, held = await self.client.call_tool(name, arguments), None
        else:
            first, held = await self._probe_holding(name, arguments, *guess)
        try:
            required = find_payment_required(first) if first.is_error else None
            if required is None:
                return PaidResult(first)
            requirement, asset = choose(
                required, assets=self.assets, networks=self.networks, prefer=self.prefer
            )
            price = from_atomic(int(requirement.amount), asset.decimals)
            self._guesses[name] = (requirement, price)
            if held is not None and guess is not None and _same_charge(guess[0], requirement):
                spend_id, held = held, None  # reserved and synced before anything is signed
            else:
                if held is not None:
                    await self.store.discard(held)  # first, so it does not count against this one
                    held = None
                spend_id = await self._reserve(name, requirement, price)
        finally:
            if held is not None:
                with anyio.CancelScope(shield=True):
                    await self.store.discard(held)
        try:
            payment = self._sign(required, requirement)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.store.release(spend_id, "signing failed", now=self.clock())
            raise
        return await self._pay(name, arguments, payment, requirement, price, spend_id)

    async def _reserve(self, name: str, requirement: PaymentRequirements, price: Decimal) -> str:
        if self.budget.confirm is not None:
            # Check before asking a person, so nobody is asked about a payment the budget forbids.
            # (Without a person to ask, `reserve` alone checks: one transaction, one disk sync.)
            total, day = await self.store.committed(self.budget.name, now=self.clock())
            self.budget.check(price, requirement.pay_to, spent_total=total, spent_day=day)
            if not await self.budget.confirm(requirement):
                raise NotConfirmed(f"the payment of {format_dollars(price)} for {name} was not confirmed")
        return await self.store.reserve(self.budget, requirement, usd=price, tool=name, now=self.clock())

    async def _probe_holding(
        self, name: str, arguments: dict[str, Any] | None, guess: PaymentRequirements, price: Decimal
    ) -> tuple[CallToolResult, str | None]:
        """The unpaid call, while `guess` is reserved beside it; returns the result and the
        reservation's id, or None when the budget (or the file) refused it: the check after the
        probe then decides, and says why, as it would have without the guess."""
        spend_id = self.store.new_id()
        reserved = False
        probe_error: Exception | None = None

        async def hold() -> None:
            nonlocal reserved
            try:
                await self.store.reserve(
                    self.budget, guess, usd=price, tool=name, now=self.clock(), spend_id=spend_id
                )
                reserved = True
            except Exception:
                logger.debug("no reservation ahead of the probe of %r", name, exc_info=True)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(hold)
                try:
                    result = await self.client.call_tool(name, arguments)
                except Exception as exc:  # raised as itself below, not inside a group
                    probe_error = exc
        except BaseException:
            # Cancelled: the reservation may have committed without `hold` hearing of it.
            with anyio.CancelScope(shield=True):
                await self.store.discard(spend_id)
            raise
        if probe_error is not None:
            if reserved:
                with anyio.CancelScope(shield=True):
                    await self.store.discard(spend_id)
            raise probe_error
        return result, spend_id if reserved else None

    def _sign(self, required: PaymentRequired, requirement: PaymentRequirements) -> PaymentPayload:
        payment = sign_payment(self.account, required, requirement)
        # The signature must spend exactly what the budget checked, to exactly that payee.
        authorization = payment.payload.authorization
        if (
            payment.accepted != requirement
            or authorization.value != requirement.amount
            or authorization.to.lower() != requirement.pay_to.lower()
        ):
            raise X402MCPError("the signed authorization differs from the checked requirement; not sent")
        return payment

    async def _pay(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        payment: PaymentPayload,
        requirement: PaymentRequirements,
        price: Decimal,
        spend_id: str,
    ) -> PaidResult:
        try:
            result = await self.client.call_tool(name, arguments, meta=payment_meta(payment))
        except BaseException as exc:
            # The payment may or may not have settled: it keeps counting against the budget.
            with anyio.CancelScope(shield=True):
                await self.store.mark_uncertain(spend_id, f"the paid call failed: {exc!r}", now=self.clock())
            raise
        receipt = _receipt_of(result)
        if receipt is not None and receipt.success:
            await self.store.mark_spent(spend_id, tx_hash=receipt.transaction or None, now=self.clock())
            return PaidResult(result, receipt, requirement, price, spend_id)
        refused = find_payment_required(result) if result.is_error else None
        if refused is not None or (receipt is not None and not receipt.success):
            reason = _failure_reason(result, receipt, refused)
            await self.store.release(spend_id, f"not taken: {reason}", now=self.clock())
            logger.info("payment for %r was not taken: %s", name, reason)
            raise PaymentFailed(
                f"the server did not take the payment for {name}: {reason}", result=result, reason=reason
            )
        # The tool ran (or failed) with no receipt: the money may have moved, so it counts.
        await self.store.mark_uncertain(spend_id, "no settlement receipt in the result", now=self.clock())
        logger.warning("paid call of %r returned no receipt; counting it as spent", name)
        return PaidResult(result, None, requirement, price, spend_id)

    async def spending(self) -> Any:
        """What this budget has committed so far (a `Spending`)."""
        return await self.store.spending(self.budget.name, now=self.clock())


def _same_charge(reserved: PaymentRequirements, asked: PaymentRequirements) -> bool:
    """Whether a reservation made for `reserved` records exactly the payment `asked` is
    (the challenge's own fields, such as a request id in `extra`, differ every time)."""
    return (
        reserved.scheme,
        reserved.network,
        reserved.asset.lower(),
        reserved.amount,
        reserved.pay_to.lower(),
    ) == (asked.scheme, asked.network, asked.asset.lower(), asked.amount, asked.pay_to.lower())


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for inner in group.exceptions:
        leaves.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return leaves


def _receipt_of(result: CallToolResult) -> SettleResponse | None:
    raw = (result.meta or {}).get(META_PAYMENT_RESPONSE)
    if raw is None and isinstance(result.structured_content, dict):
        # The official Python server reports a failed settlement inside structuredContent.
        raw = result.structured_content.get(META_PAYMENT_RESPONSE)
    if not isinstance(raw, dict):
        return None
    try:
        return SettleResponse.model_validate(raw)
    except ValueError:
        return None


def _failure_reason(
    result: CallToolResult, receipt: SettleResponse | None, refused: PaymentRequired | None
) -> str:
    if receipt is not None and not receipt.success:
        return receipt.error_reason or receipt.error_message or "settlement failed"
    if refused is not None and refused.error:
        return refused.error
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return texts[-1] if texts else "refused"

"""`PayingClient`: an MCP client that pays for paid tools on its own, within a `Budget`.

One paid call: call the tool; if it answers with an x402 challenge, choose a
requirement we may pay, fix the authorization to sign (nonce, and a validity
window capped at `max_validity`), check the budget and reserve the amount
(durably, with that authorization, before anything is signed), ask `confirm` if
set, sign exactly that authorization, retry once with `_meta["x402/payment"]`,
then mark the reservation spent (a receipt came back) or uncertain (the server
says it did not take the payment, or nobody can tell). Uncertain payments keep
counting: a server may settle a payment and still say it failed. Only the chain
frees one, once its authorization expired unused (see `onchain`). It never
signs a second payment for one call.

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
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import anyio
from eth_account.signers.local import LocalAccount
from mcp import Client
from web3 import Web3

from ..core.money import format_dollars, from_atomic
from ..core.networks import Asset
from ..core.text import shown
from ..core.wire import PaymentPayload, PaymentRequired, PaymentRequirements
from ..errors import ConfigurationError, X402MCPError
from .budget import Budget
from .errors import BudgetExceeded, NotConfirmed, PaymentFailed
from .offers import choose, find_payment_required, known_usdc
from .onchain import AuthorizationChain, Reconciled, reconcile
from .payer import PaymentSigner, payment_meta, sign_payment
from .reserve_ahead import probe_while_reserving, same_charge

# PaidResult is re-exported (`as`): it was defined here, and may be imported from here.
from .results import PaidResult as PaidResult
from .results import failure_reason, receipt_of
from .store import SpendStore
from .window import DEFAULT_VALIDITY_SECONDS, Window, check_signed, plan_window, validity_seconds

logger = logging.getLogger("x402_mcp.client")


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
        max_validity: the longest, in seconds, a signed authorization stays valid (10 to
            86,400; default 600). A server asking for longer gets this window.
        chain: a JSON-RPC URL (or `Web3`) of the chain payments are made on, read to free
            the budget a payment the server did not take holds once its authorization
            expired unused, and to count as spent one the chain shows used. Without it such
            payments keep counting (see `reconcile`).
        client_options: passed to `mcp.Client` (for example `mode="legacy"`).

    Raises:
        ConfigurationError: a `max_validity` out of range, or a `chain` that is not an
            http(s) URL or a Web3.
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
        max_validity: int = DEFAULT_VALIDITY_SECONDS,
        chain: str | Web3 | AuthorizationChain | None = None,
        **client_options: Any,
    ) -> None:
        if not isinstance(budget, Budget):
            raise ConfigurationError("budget must be a Budget(...)")
        self.max_validity = validity_seconds(max_validity)
        self.chain = chain if isinstance(chain, AuthorizationChain | None) else AuthorizationChain(chain)
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
        # The authorization window is the wall clock's, whatever `clock` says: the chain checks it.
        self._wall_clock = time.time
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            await self.store.open()
            stack.push_async_callback(self.store.close)
            await self.store.remember_limits(self.budget, now=self.clock())
            if self.chain is not None:
                await self.reconcile()
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
            PaymentFailed: the server says it did not take the signed payment; the
                payment keeps counting against the budget until the chain shows its
                authorization expired unused.
        """
        # A tool paid before most likely asks the same again: reserve that while the probe is on
        # the wire, so the disk sync overlaps the round trip instead of following it.
        guess = self._guesses.get(name) if self.budget.confirm is None else None
        if guess is None:
            first, held, held_window = await self.client.call_tool(name, arguments), None, None
        else:
            held_window = self._window(guess[0])
            first, held = await probe_while_reserving(
                lambda: self.client.call_tool(name, arguments),
                self.store,
                self.budget,
                *guess,
                tool=name,
                window=held_window,
                clock=self.clock,
            )
        try:
            required = find_payment_required(first) if first.is_error else None
            if required is None:
                return PaidResult(first)
            requirement, asset = choose(
                required, assets=self.assets, networks=self.networks, prefer=self.prefer
            )
            price = from_atomic(int(requirement.amount), asset.decimals)
            self._guesses[name] = (requirement, price)
            if (
                held is not None
                and held_window is not None
                and guess is not None
                and same_charge(guess[0], requirement)
            ):
                # Reserved and synced before anything is signed; the window was fixed then.
                spend_id, held, window = held, None, held_window
            else:
                if held is not None:
                    await self.store.discard(held)  # first, so it does not count against this one
                    held = None
                window = self._window(requirement)
                spend_id = await self._reserve(name, requirement, price, window)
        finally:
            if held is not None:
                with anyio.CancelScope(shield=True):
                    await self.store.discard(held)
        try:
            payment = self._sign(required, requirement, window)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.store.release(spend_id, "signing failed", now=self.clock())
            raise
        return await self._pay(name, arguments, payment, requirement, price, spend_id)

    def _window(self, requirement: PaymentRequirements) -> Window:
        if requirement.max_timeout_seconds > self.max_validity:
            logger.info(
                "the server asks for an authorization valid %d s; signing one valid %d s",
                requirement.max_timeout_seconds,
                self.max_validity,
            )
        return plan_window(self.account.address, requirement, cap=self.max_validity, now=self._wall_clock())

    async def reconcile(self) -> Reconciled:
        """Settle this budget's payments that count without a receipt from what the chain shows:
        release those whose authorization expired unused, mark spent those it shows used.
        Does nothing without a `chain`."""
        if self.chain is None:
            return Reconciled()
        return await reconcile(self.store, self.budget.name, self.chain, now=self.clock())

    async def _check(self, requirement: PaymentRequirements, price: Decimal) -> None:
        total, day = await self.store.committed(self.budget.name, now=self.clock())
        self.budget.check(price, requirement.pay_to, spent_total=total, spent_day=day)

    async def _reserve(
        self, name: str, requirement: PaymentRequirements, price: Decimal, window: Window
    ) -> str:
        if self.budget.confirm is not None:
            # Check before asking a person, so nobody is asked about a payment the budget forbids.
            # (Without a person to ask, `reserve` alone checks: one transaction, one disk sync.)
            try:
                await self._check(requirement, price)
            except BudgetExceeded as exc:
                if not await self._freed_by_chain(exc):
                    raise
                await self._check(requirement, price)
            if not await self.budget.confirm(requirement):
                raise NotConfirmed(
                    f"the payment of {format_dollars(price)} for {shown(name)} was not confirmed"
                )
        try:
            return await self._reserve_now(name, requirement, price, window)
        except BudgetExceeded as exc:
            if not await self._freed_by_chain(exc):
                raise
            return await self._reserve_now(name, requirement, price, window)

    async def _reserve_now(
        self, name: str, requirement: PaymentRequirements, price: Decimal, window: Window
    ) -> str:
        return await self.store.reserve(
            self.budget, requirement, usd=price, tool=name, now=self.clock(), window=window
        )

    async def _freed_by_chain(self, refused: BudgetExceeded) -> bool:
        """When the total or the day is full, whether the chain frees some of it (payments
        whose authorization expired unused), so the check is worth repeating once."""
        if self.chain is None or refused.limit == "per_call":
            return False
        return (await self.reconcile()).released > 0

    def _sign(
        self, required: PaymentRequired, requirement: PaymentRequirements, window: Window
    ) -> PaymentPayload:
        payment = sign_payment(
            self.account, required, requirement, authorization=window.authorization(requirement)
        )
        # The signature must spend exactly what the budget reserved, to exactly that payee, in the
        # reserved window (the signer may be the application's own, which could fill in another).
        if payment.accepted != requirement:
            raise X402MCPError("the signed payment is for another requirement than the checked one; not sent")
        check_signed(
            payment.payload.authorization, window, requirement, cap=self.max_validity, now=self._wall_clock()
        )
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
                await self.store.mark_uncertain(
                    spend_id, f"the paid call failed: {shown(repr(exc), 200)}", now=self.clock()
                )
            raise
        receipt = receipt_of(result)
        if receipt is not None and receipt.success:
            await self.store.mark_spent(spend_id, tx_hash=receipt.transaction or None, now=self.clock())
            return PaidResult(result, receipt, requirement, price, spend_id)
        refused = find_payment_required(result) if result.is_error else None
        if refused is not None or (receipt is not None and not receipt.success):
            reason = shown(failure_reason(result, receipt, refused), 200)
            # The server's word is not proof: it holds the signed authorization, and may have
            # settled it (or may still). The payment counts until the chain shows it expired unused.
            await self.store.mark_uncertain(
                spend_id, f"the server said not taken: {reason}", now=self.clock()
            )
            logger.info("payment for %r was not taken, the server says: %s", name, reason)
            raise PaymentFailed(
                f"the server did not take the payment for {shown(name)}: {reason} (it stays counted "
                "against the budget until its authorization is seen expired unused on chain)",
                result=result,
                reason=reason,
            )
        # The tool ran (or failed) with no receipt: the money may have moved, so it counts.
        await self.store.mark_uncertain(spend_id, "no settlement receipt in the result", now=self.clock())
        logger.warning("paid call of %r returned no receipt; counting it as spent", name)
        return PaidResult(result, None, requirement, price, spend_id)

    async def spending(self) -> Any:
        """What this budget has committed so far (a `Spending`)."""
        return await self.store.spending(self.budget.name, now=self.clock())


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for inner in group.exceptions:
        leaves.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return leaves

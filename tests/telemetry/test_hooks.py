"""Payment hooks: told after the ledger recorded each event, never in the way of the call."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from tests.telemetry.conftest import DrainedFirst
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_REQUEST_ID
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentRequired
from x402_mcp.errors import ConfigurationError
from x402_mcp.schemes.exact.evm import requirements_for
from x402_mcp.telemetry import PaymentEvent
from x402_mcp.telemetry.hooks import Hooks

pytestmark = pytest.mark.anyio


class Seen:
    """Events a hook received, each with the ledger state of its request at that moment."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.events: list[tuple[PaymentEvent, State | None]] = []
        self.arrived = anyio.Event()

    async def __call__(self, event: PaymentEvent) -> None:
        request = None if event.request_id is None else await self.shop.ledger.get(event.request_id)
        self.events.append((event, None if request is None else request.state))
        self.arrived.set()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.events) < count:
                self.arrived = anyio.Event()
                await self.arrived.wait()

    def kinds(self) -> list[str]:
        return [event.kind for event, _ in self.events]


async def test_hooks_hear_quoted_paid_and_redeemed_after_the_ledger_recorded_them(
    client: Client, shop: Shop
) -> None:
    seen = Seen(shop)
    for kind in ("quoted", "paid", "redeemed", "refused", "settlement_failed"):
        shop.payments.on(kind, seen)
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    shop.fail_next.append(True)
    payment = sign_payment(shop.payer, required)
    assert (await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment.dump()})).is_error
    result = await client.call_tool("answer", {"question": "q"}, meta={META_REQUEST_ID: request_id})
    assert not result.is_error, text_of(result)
    await seen.wait_for(3)

    assert seen.kinds() == ["quoted", "paid", "redeemed"]
    (quoted, quoted_state), (paid, paid_state), (redeemed, redeemed_state) = seen.events
    assert quoted.request_id == paid.request_id == redeemed.request_id == request_id
    assert quoted_state is not None  # stored before the hook heard of it
    assert paid_state in (State.PAID, State.REDEEMING, State.CONSUMED)
    assert redeemed_state is State.CONSUMED
    assert (paid.amount, paid.scheme, paid.network) == (PRICE, "exact", shop.chain.network)
    assert paid.payer is not None and paid.payer.lower() == shop.payer.address.lower()
    assert paid.tx_hash == (result.meta or {})["x402/payment-response"]["transaction"]
    assert shop.payments.telemetry.hooks.failures == 0


async def test_refusals_and_failed_settlements_are_told_once_each(client: Client, shop: Shop) -> None:
    seen = Seen(shop)
    shop.payments.on("refused", seen)
    shop.payments.on("settlement_failed", seen)
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    broke = sign_payment(shop.chain.new_account(usdc="0"), required)
    assert (await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: broke.dump()})).is_error
    shop.payments.collector.settlement = DrainedFirst(shop.payments.collector.settlement, shop)
    again = challenge_of(await client.call_tool("answer", {"question": "q"}))
    payment = sign_payment(shop.payer, again)
    assert (await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment.dump()})).is_error
    await seen.wait_for(2)
    await anyio.sleep(0.1)  # nothing more arrives

    assert seen.kinds() == ["refused", "settlement_failed"]
    refused, failed = (event for event, _ in seen.events)
    assert refused.reason == "invalid_exact_evm_insufficient_balance"
    assert failed.reason is not None and failed.reason != "backend_error"
    assert shop.runs == {}


async def test_a_failing_or_slow_hook_changes_nothing_and_is_counted(client: Client, shop: Shop) -> None:
    hooks = shop.payments.telemetry.hooks
    hooks.timeout_seconds = 0.2
    release = anyio.Event()

    async def broken(event: PaymentEvent) -> None:
        raise RuntimeError("the receipt mailer is down")

    async def stuck(event: PaymentEvent) -> None:
        await release.wait()

    seen = Seen(shop)
    shop.payments.on("paid", broken)
    shop.payments.on("paid", stuck)
    shop.payments.on("paid", seen)
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    payment = sign_payment(shop.payer, required)
    with anyio.fail_after(5):  # the call never waits for its hooks
        result = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment.dump()})
    assert not result.is_error, text_of(result)
    assert shop.runs == {"answer": 1}
    await seen.wait_for(1)  # the third hook still ran, after the other two failed

    assert hooks.failures == 2
    failures = shop.payments.telemetry.metrics.registry.counters["x402.hook.failures"]
    assert failures == {(("event", "paid"), ("why", "error")): 1, (("event", "paid"), ("why", "timeout")): 1}


async def test_a_full_queue_drops_the_event_and_counts_it() -> None:
    dropped: list[tuple[str, str]] = []
    hooks = Hooks(queue_size=1, on_failure=lambda kind, why: dropped.append((kind, why)))

    async def hook(event: PaymentEvent) -> None:
        return None

    hooks.on("paid", hook)
    hooks.emit(PaymentEvent("paid", "pr_1", "answer"))
    hooks.emit(PaymentEvent("paid", "pr_2", "answer"))  # the worker is not running: the queue is full
    hooks.emit(PaymentEvent("quoted", "pr_3", "answer"))  # no hook for it: not queued at all
    assert (hooks.dropped, dropped) == (1, [("paid", "dropped")])


@pytest.mark.parametrize(
    ("event", "callback", "words"),
    [
        ("payed", None, "unknown payment event 'payed'"),
        ("paid", lambda event: None, "must be an async function"),
    ],
)
async def test_a_bad_registration_is_refused(
    shop: Shop, event: str, callback: Callable[[PaymentEvent], object] | None, words: str
) -> None:
    async def fine(event: PaymentEvent) -> None:
        return None

    with pytest.raises(ConfigurationError, match=words):
        shop.payments.on(event, callback or fine)  # type: ignore[arg-type]


async def test_a_payment_on_the_page_is_told_to_the_hooks_too(client: Client, shop: Shop) -> None:
    seen = Seen(shop)
    shop.payments.on("paid", seen)
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None
    # The page's path: the shared collector settles a payment that names the request.
    requirements = requirements_for(request, shop.payments.asset)
    payload = sign_payment(shop.payer, PaymentRequired(accepts=[requirements]))
    await shop.payments.collector.collect(request, payload, requirements, decimals=6)
    await seen.wait_for(1)

    [(paid, state)] = seen.events
    assert (paid.kind, paid.request_id, paid.amount) == ("paid", request.id, PRICE)
    assert state is State.PAID
    revenue = shop.payments.telemetry.metrics.registry.counters["x402.revenue"]
    assert sum(revenue.values()) == PRICE

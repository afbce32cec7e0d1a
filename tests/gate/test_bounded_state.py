"""A flood of unpaid calls cannot grow the ledger without bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.types import CallToolResult

from tests.gate.conftest import Shop, challenge_of, text_of
from tests.ledger.conftest import fresh_schema, postgres_url  # noqa: F401 (a fixture)
from tests.page.conftest import serving
from x402_mcp import Payments, paid
from x402_mcp.core.challenge import META_REQUEST_ID
from x402_mcp.core.states import State
from x402_mcp.errors import ConfigurationError
from x402_mcp.gate.sweeper import Sweeper

pytestmark = pytest.mark.anyio


def quoted(result: CallToolResult) -> bool:
    """Whether a call was answered with a challenge (a request was minted for it)."""
    return META_REQUEST_ID in (result.meta or {})


async def test_past_the_cap_of_open_requests_a_caller_is_refused_and_nothing_is_written(
    client: Client, shop: Shop
) -> None:
    shop.payments.sweeper.max_open_per_caller = 3
    for _ in range(3):
        challenge_of(await client.call_tool("answer", {"question": "q"}))
    rows_before = len(await shop.ledger.requests())
    audit_before = len(await shop.ledger.audit_trail())

    refused = await client.call_tool("answer", {"question": "q"})

    assert refused.is_error
    assert not quoted(refused)  # no challenge: nothing was quoted
    assert "3 unpaid payment requests (the limit is 3)" in text_of(refused)
    assert len(await shop.ledger.requests()) == rows_before
    assert len(await shop.ledger.audit_trail()) == audit_before
    assert shop.runs == {}


async def test_paying_one_open_request_frees_a_place_under_the_cap(client: Client, shop: Shop) -> None:
    shop.payments.sweeper.max_open_per_caller = 2
    first = await client.call_tool("answer", {"question": "q"})
    await client.call_tool("answer", {"question": "q"})
    assert "the limit is 2" in text_of(await client.call_tool("answer", {"question": "q"}))
    meta = {"x402/payment": shop.pay(first).dump()}
    paid = await client.call_tool("answer", {"question": "q"}, meta=meta)
    assert not paid.is_error, text_of(paid)
    challenge_of(await client.call_tool("answer", {"question": "q"}))  # quoted again


async def test_the_sweep_expires_overdue_requests_and_purges_them_after_retention(
    client: Client, shop: Shop
) -> None:
    challenge_of(await client.call_tool("answer", {"question": "q"}))
    [request] = await shop.ledger.requests()
    sweeper = Sweeper(shop.ledger, retention_seconds=100)

    assert await sweeper.sweep(now=request.expires_at - 1) == type(await sweeper.sweep(now=0))(0, 0)
    swept = await sweeper.sweep(now=request.expires_at)
    assert (swept.expired, swept.purged) == (1, 0)
    expired = await shop.ledger.get(request.id)
    assert expired is not None and expired.state is State.EXPIRED
    assert (await sweeper.sweep(now=request.expires_at + 101)).purged == 1
    assert await shop.ledger.get(request.id) is None


def test_a_cap_below_one_is_a_configuration_error(shop: Shop) -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        Sweeper(shop.ledger, max_open_per_caller=0)


def test_the_ledger_url_comes_from_the_environment_when_not_given(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from x402_mcp import Payments
    from x402_mcp.ledger import SQLiteLedger

    monkeypatch.setenv("X402_LEDGER_URL", f"sqlite://{tmp_path / 'from-env.sqlite'}")
    payments = Payments(pay_to=shop.payee, network=shop.chain.network, settlement=shop.chain.settlement())
    assert isinstance(payments.ledger, SQLiteLedger)
    assert payments.ledger.path == str(tmp_path / "from-env.sqlite")


async def test_concurrent_unpaid_calls_of_one_caller_stop_exactly_at_the_cap(
    client: Client, shop: Shop
) -> None:
    shop.payments.sweeper.max_open_per_caller = 5
    results: list[CallToolResult] = []

    async def call() -> None:
        results.append(await client.call_tool("answer", {"question": "q"}))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(30):
                group.start_soon(call)

    assert len(await shop.ledger.requests(states=[State.ISSUED])) == 5
    assert sum(quoted(result) for result in results) == 5  # five challenges
    capped = [result for result in results if not quoted(result)]
    assert len(capped) == 25
    assert all("(the limit is 5)" in text_of(result) for result in capped)


async def test_callers_without_an_identity_share_one_cap_on_open_requests(shop: Shop) -> None:
    shop.payments.sweeper.max_open_anonymous = 2
    app = shop.http_app(stateless_http=True, json_response=True)
    async with serving(app) as base:
        results = []
        for _ in range(3):
            # A new client each time: with no identity, nothing tells the callers apart.
            async with Client(f"{base}/mcp", mode="legacy") as anonymous:
                results.append(await anonymous.call_tool("answer", {"question": "q"}))
    first, second, third = results
    challenge_of(first), challenge_of(second)
    assert third.is_error and not quoted(third)
    assert "callers without an identity (the limit is 2)" in text_of(third)
    issued = await shop.ledger.requests(states=[State.ISSUED])
    assert [request.caller for request in issued] == [None, None]


async def test_the_sweep_purges_unattached_audit_lines_and_old_results(client: Client, shop: Shop) -> None:
    challenge = await client.call_tool("answer", {"question": "q"})
    paid = await client.call_tool(
        "answer", {"question": "q"}, meta={"x402/payment": shop.pay(challenge).dump()}
    )
    assert not paid.is_error, text_of(paid)
    [consumed] = await shop.ledger.requests(states=[State.CONSUMED])
    assert consumed.result is not None and "answer to q" in consumed.result
    assert consumed.consumed_at is not None
    garbage = await client.call_tool("answer", {"question": "q"}, meta={"x402/payment": "not a payment"})
    assert garbage.is_error
    unattached = [line for line in await shop.ledger.audit_trail() if line[1] is None]
    assert unattached, "a refusal of an unparseable payment is audited under no request"
    sweeper = Sweeper(shop.ledger, retention_seconds=100, result_retention_seconds=1000)
    latest = max(at for at, _, _, _ in unattached)

    early = await sweeper.sweep(now=consumed.consumed_at + 99)
    assert (early.audit_purged, early.results_cleared) == (0, 0)
    late = await sweeper.sweep(now=max(latest + 101, consumed.consumed_at + 1001))

    assert late.audit_purged == len(unattached) and late.results_cleared == 1
    assert [line for line in await shop.ledger.audit_trail() if line[1] is None] == []
    kept = await shop.ledger.get(consumed.id)
    assert kept is not None and kept.result is None and kept.state is State.CONSUMED
    assert len(await shop.ledger.settlements(consumed.id)) == 1
    assert [event for _, _, event, _ in await shop.ledger.audit_trail(consumed.id)][-1] == "consume"


def test_an_anonymous_cap_below_one_and_a_negative_result_retention_are_refused(shop: Shop) -> None:
    with pytest.raises(ConfigurationError, match="max_open_anonymous_requests must be at least 1"):
        Sweeper(shop.ledger, max_open_anonymous=0)
    with pytest.raises(ConfigurationError, match="result_retention_seconds"):
        Sweeper(shop.ledger, result_retention_seconds=-1)


@pytest.mark.postgres
@pytest.mark.parametrize("bad_id", ["pr_\x00abc", "pr_" + "z" * 100_000])
async def test_an_id_no_request_can_have_is_unknown_on_postgresql_not_a_ledger_failure(
    shop: Shop,
    postgres_url: str,  # noqa: F811 (the fixture imported above)
    bad_id: str,
) -> None:
    async with fresh_schema(postgres_url) as store:
        ledger = store.ledger()
        payments = Payments(
            pay_to=shop.payee,
            network=shop.chain.network,
            settlement=shop.chain.settlement(),
            ledger=ledger,
            public_url="http://pay.test",
        )
        server: MCPServer[Any] = MCPServer("pg-shop", extensions=[payments])
        runs: list[str] = []

        @server.tool()
        @paid(price="0.05")
        def answer(question: str) -> str:
            runs.append(question)
            return "answered"

        try:
            async with Client(server) as client:
                result = await client.call_tool("answer", {"question": "q", "payment_request_id": bad_id})
            trail = await ledger.audit_trail()
        finally:
            await ledger.close()
    assert result.is_error and runs == []
    assert "payment ledger" not in text_of(result), text_of(result)
    refusals = [line for line in trail if line[2] == "refused"]
    assert refusals and all(len(detail) <= 600 for _, _, _, detail in refusals)

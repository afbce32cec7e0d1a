"""A flood of unpaid calls cannot grow the ledger without bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from tests.gate.conftest import Shop, challenge_of, text_of
from x402_mcp.errors import ConfigurationError
from x402_mcp.lifecycle import State
from x402_mcp.sweeper import Sweeper

pytestmark = pytest.mark.anyio


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
    assert refused.structured_content is None  # no challenge: nothing was quoted
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

"""A facilitator that settles but says it did not: with an `rpc_url`, the chain's word wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from mcp import Client

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.states import State
from x402_mcp.errors import SettlementError
from x402_mcp.facilitator import facilitator_app
from x402_mcp.settlement import FacilitatorSettlement

from ..chains import AnvilChain, pay, requirements_for
from ..facilitator.serving import TOKEN, LyingFacilitator, serving
from ..facilitator.test_paid_calls import _pay_and_call, paid_server

pytestmark = pytest.mark.anyio

PRICE = 50_000  # paid_server's "0.05"


class SettlesButDenies:
    """Our real facilitator, except that every `/settle` answer, once it has settled, says it failed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.denied = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/settle":
            await self.app(scope, receive, send)
            return
        messages: list[dict[str, Any]] = []

        async def keep(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        answer = json.loads(body)
        answer.update(
            success=False, errorReason="transaction_failed", errorMessage="it reverted (it did not)"
        )
        self.denied += 1
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@pytest.mark.anvil
async def test_a_settlement_the_facilitator_denies_but_the_chain_shows_is_honoured(
    anvil: AnvilChain, tmp_path: Path
) -> None:
    liar = SettlesButDenies(facilitator_app(anvil.settlement(), token=TOKEN))
    payer = anvil.new_account("1")
    async with serving(liar) as url:
        remote = FacilitatorSettlement(url, network=anvil.network_info, token=TOKEN, rpc_url=anvil.rpc_url)
        server, payments, counter = paid_server(anvil, remote, tmp_path / "l.sqlite")
        async with Client(server) as client:
            result, request_id = await _pay_and_call(client, payer)
        await remote.aclose()

    assert liar.denied == 1
    assert not result.is_error, result.content
    assert counter.runs == 1
    assert anvil.balance_of(payments.pay_to) == PRICE
    assert anvil.balance_of(payer.address) == 10**6 - PRICE
    request = await payments.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED and request.tx_hash


@pytest.mark.parametrize("claim", ["", "0xabc", "0x" + "ab" * 32 + "00", "x" * 100_000])
async def test_without_an_rpc_url_a_success_must_still_name_a_transaction_hash(
    devchain: TokenChain, claim: str
) -> None:
    liar = LyingFacilitator(facilitator_app(devchain.settlement(), token=TOKEN), lambda: claim)
    requirements = requirements_for(devchain, Account.create().address, amount=str(PRICE))
    async with serving(liar) as url:
        remote = FacilitatorSettlement(url, network=devchain.network_info, token=TOKEN)
        with pytest.raises(SettlementError, match="named no transaction hash") as raised:
            await remote.settle(pay(devchain.new_account("1"), requirements), requirements)
        await remote.aclose()
    assert len(str(raised.value)) < 600, "a reported string is never quoted whole"

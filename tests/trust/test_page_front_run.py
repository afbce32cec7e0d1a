"""The hosted URL (the page's x402 resource) honours a payment someone else submitted first."""

from __future__ import annotations

import base64
import json
import time

import pytest

from x402_mcp.client.payer import sign_payment
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentRequired

from ..chains import settlement_with_clock
from ..page.conftest import PRICE, Store, connected, http, link_of, page_chain, store, text_of

pytestmark = pytest.mark.anyio
__all__ = ["page_chain", "store"]  # the page's fixtures, used here


async def test_the_hosted_url_honours_an_authorization_someone_else_submitted_first(store: Store) -> None:
    payer_before = store.chain.balance_of(store.payer.address)
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        quoted = await web.get(url, headers={"Accept": "application/json"})
        required = PaymentRequired.model_validate(
            json.loads(base64.b64decode(quoted.headers["payment-required"]))
        )
        payment = sign_payment(store.payer, required)
        theirs = await settlement_with_clock(store.chain, time.time).settle(payment, required.accepts[0])
        assert theirs.success

        paid = await web.get(
            url, headers={"PAYMENT-SIGNATURE": base64.b64encode(payment.to_json().encode()).decode()}
        )
        assert paid.status_code == 200, paid.text
        result = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})

    assert not result.is_error, text_of(result)
    assert store.runs == {"answer": 1}
    assert store.payee_balance() == PRICE
    assert store.chain.balance_of(store.payer.address) == payer_before - PRICE, "charged once"
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED and request.tx_hash == theirs.transaction

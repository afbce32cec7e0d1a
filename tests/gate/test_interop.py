"""The official `x402` package reads our challenge, signs, and our server accepts the payment."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, text_of
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE

x402 = pytest.importorskip("x402", reason="the official x402 package is a test dependency")

pytestmark = pytest.mark.anyio


async def test_official_client_pays_our_challenge(client: Client, shop: Shop) -> None:
    from x402 import parse_payment_required, x402ClientSync
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    unpaid = await client.call_tool("answer", {"question": "interop"})
    # What the official MCP client reads when there is no structuredContent: content[0].
    required = parse_payment_required(unpaid.content[0].text.encode())  # type: ignore[union-attr]
    assert required.accepts[0].amount == str(PRICE)

    official = x402ClientSync()
    official.register("eip155:*", ExactEvmClientScheme(EthAccountSigner(shop.payer)))
    official.set_spend_controls(False)  # our dev-chain token is not in its table of known assets
    payload = official.create_payment_payload(required)
    before = shop.balances()

    result = await client.call_tool(
        "answer",
        {"question": "interop"},
        meta={META_PAYMENT: payload.model_dump(by_alias=True, exclude_none=True)},
    )

    assert not result.is_error, text_of(result)
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True

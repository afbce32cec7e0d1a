"""A node that calls our send reverted while it holds the transaction: we wait for its receipt,
never release the request while the transfer may still be mined."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from x402_mcp.core.states import State
from x402_mcp.settlement.relayer import SEND_SYNC

from ..chains import set_automine
from ..settlement.lying_node import LyingNode
from .test_lying_node import PRICE, Shop, node, shop, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]
__all__ = ["node", "shop"]  # fixtures, shared with the lying-node tests

REVERTED = {
    "error": {"code": 3, "message": "execution reverted: FiatTokenV2: authorization is used or canceled"}
}


async def test_a_send_called_reverted_that_the_node_holds_is_waited_for(shop: Shop, node: LyingNode) -> None:
    def broadcast_then_deny(method: str, params: list[Any]) -> dict[str, Any] | None:
        if method != SEND_SYNC:
            return None
        node.ask("eth_sendRawTransaction", params)  # held in the pool: blocks are not mined yet
        return REVERTED

    start = shop.balances()
    request_id, payment = await shop.quote()
    node.forge = broadcast_then_deny
    set_automine(shop.anvil, False)
    mine_later = threading.Timer(1.0, set_automine, (shop.anvil, True))
    mine_later.start()
    try:
        result = await shop.call(payment)
    finally:
        mine_later.join()
        set_automine(shop.anvil, True)

    assert not result.is_error, text_of(result)
    assert shop.runs == ["q"]
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)
    assert await shop.state(request_id) is State.CONSUMED

"""FastMCP 3 keeps FastMCP 4's guarantee about response caching: the gate runs outermost, a
cache added after `install` sits inside it, and one put in front of it is refused at start."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware

from x402_mcp import ConfigurationError
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.frameworks.choice import in_memory

from .conftest import Shop, connected

pytestmark = pytest.mark.anyio


@pytest.fixture
def framework() -> str:
    return "fastmcp"


async def test_a_cache_added_after_install_never_hands_a_paid_answer_to_an_unpaid_caller(shop: Shop) -> None:
    server: FastMCP[Any] = shop.server
    server.add_middleware(ResponseCachingMiddleware())
    async with connected(server) as client:
        challenge = await client.call_tool("shout", {"words": "hi"})
        payment = sign_payment(shop.payer, read_challenge(challenge)).model_dump(
            by_alias=True, exclude_none=True
        )
        paid = await client.call_tool("shout", {"words": "hi"}, meta={META_PAYMENT: payment})
        assert not paid.is_error and paid.structured_content == {"loud": "HI"}
        unpaid = await client.call_tool("shout", {"words": "hi"})
    assert unpaid.is_error and read_challenge(unpaid).accepts
    assert shop.runs == {"shout": 1}


async def test_a_cache_in_front_of_the_gate_is_refused_as_the_server_starts(shop: Shop) -> None:
    server: FastMCP[Any] = shop.server
    server.middleware.insert(0, ResponseCachingMiddleware())
    lowlevel = in_memory(server)
    with pytest.raises(ConfigurationError, match="runs before the x402 payments gate"):
        async with lowlevel.lifespan(lowlevel):
            pass

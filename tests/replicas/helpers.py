"""Talking to replicas as an agent would: MCP over streamable HTTP, x402 over the hosted URL."""

from __future__ import annotations

from typing import Any

import httpx2
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.types import CallToolResult, TextContent

from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.challenge import META_REQUEST_ID
from x402_mcp.core.wire import PaymentPayload, encode_header

from .cluster import Replica

PRICE = 50_000


async def call(replica: Replica, arguments: dict[str, Any], meta: Any = None) -> CallToolResult:
    async with Client(replica.url) as client:
        return await client.call_tool("answer", arguments, meta=meta)


async def challenge(replica: Replica, question: str = "q") -> tuple[str, CallToolResult]:
    result = await call(replica, {"question": question})
    assert result.is_error, text_of(result)
    request_id = (result.meta or {})[META_REQUEST_ID]
    return str(request_id), result


def signed(payer: LocalAccount, challenge_result: CallToolResult) -> PaymentPayload:
    return sign_payment(payer, read_challenge(challenge_result))


async def pay_with_meta(replica: Replica, question: str, payment: PaymentPayload) -> CallToolResult:
    return await call(replica, {"question": question}, meta=payment_meta(payment))


async def pay_on_page(replica: Replica, request_id: str, payment: PaymentPayload) -> httpx2.Response:
    """Pay as an x402 HTTP client on the hosted URL that `replica` serves."""
    async with httpx2.AsyncClient(timeout=60) as http:
        return await http.get(
            f"{replica.base}/pay/{request_id}", headers={"PAYMENT-SIGNATURE": encode_header(payment)}
        )


async def redeem(replica: Replica, request_id: str, question: str = "q") -> CallToolResult:
    return await call(replica, {"question": question, "payment_request_id": request_id})


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))

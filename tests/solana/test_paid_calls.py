"""Paid MCP tools that also accept USDC on Solana, end to end on a real SVM.

The server charges on the embedded EVM chain and lists a Solana payee beside it.
The official x402 client signs a real USDC transfer, our server hands it to the
official x402 SVM facilitator over HTTP, and LiteSVM executes it.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import httpx2
import pytest
from anyio.to_thread import run_sync
from mcp import Client
from mcp.server import MCPServer
from mcp.types import CallToolResult

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE, META_REQUEST_ID
from x402_mcp.core.states import State
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.page.serving import page_app

from ..facilitator.serving import serving
from .conftest import LocalSolanaNode, SolanaShop, build_shop, text_of
from .localsvm import SOLANA_DEVNET, USDC_DEVNET
from .official import official_svm_payment

pytestmark = pytest.mark.anyio

PRICE = 50_000  # $0.05


def solana_accept(challenge: CallToolResult) -> dict[str, Any]:
    assert challenge.is_error, text_of(challenge)
    accepts = read_challenge(challenge).dump()["accepts"]
    (entry,) = [e for e in accepts if e["network"].startswith("solana:")]
    return dict(entry)


async def test_the_challenge_offers_solana_beside_the_evm_network(shop: SolanaShop) -> None:
    async with Client(shop.server) as client:
        challenge = await client.call_tool("answer", {"question": "q"})
    evm, solana = read_challenge(challenge).dump()["accepts"]
    request_id = challenge.meta[META_REQUEST_ID] if challenge.meta else None
    assert evm["network"] == shop.chain.network
    assert solana == {
        "scheme": "exact",
        "network": SOLANA_DEVNET,
        "amount": str(PRICE),
        "asset": USDC_DEVNET,
        "payTo": shop.payee,
        "maxTimeoutSeconds": 600,
        "extra": {
            "feePayer": str(shop.node.svm.fee_payer.pubkey()),
            "memo": request_id,
            "paymentRequestId": request_id,
        },
    }
    assert "also pay on Solana Devnet" in text_of(challenge)


async def test_an_agent_pays_on_solana_and_the_tool_runs_once(shop: SolanaShop) -> None:
    payer_before, payee_before = shop.balances()
    async with Client(shop.server) as client:
        challenge = await client.call_tool("answer", {"question": "q"})
        payment = await shop.pay(challenge)
        result = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})
        replay = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})

    assert not result.is_error, text_of(result)
    assert text_of(result) == "answer to q"
    assert shop.runs == ["q"]
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    assert result.meta is not None
    receipt = result.meta[META_PAYMENT_RESPONSE]
    assert receipt["success"] is True and receipt["network"] == SOLANA_DEVNET
    assert receipt["payer"] == str(shop.payer.pubkey())
    request_id = result.meta[META_REQUEST_ID]
    (record,) = await shop.ledger.settlements(request_id)
    assert (record.network, record.asset) == (SOLANA_DEVNET, USDC_DEVNET)
    assert record.tx_hash == receipt["transaction"]
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED

    # The same transaction again buys nothing: refused by name, no money, no run.
    assert replay.is_error and "already paid and used" in text_of(replay)
    assert shop.runs == ["q"]
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)


async def test_the_spec_order_verifies_runs_then_settles_on_solana(shop: SolanaShop) -> None:
    payer_before, payee_before = shop.balances()
    async with Client(shop.server) as client:
        payment = await shop.pay(await client.call_tool("late", {"question": "q"}))
        result = await client.call_tool("late", {"question": "q"}, meta={META_PAYMENT: payment})
    assert not result.is_error, text_of(result)
    assert result.meta is not None and result.meta[META_PAYMENT_RESPONSE]["network"] == SOLANA_DEVNET
    assert shop.runs == ["late:q"]
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)


async def test_a_solana_payment_for_one_request_cannot_pay_another(shop: SolanaShop) -> None:
    """The memo binds the transaction to its request; the facilitator checks it against ours."""
    before = shop.balances()
    async with Client(shop.server) as client:
        first = await client.call_tool("answer", {"question": "first"})
        second = await client.call_tool("answer", {"question": "second"})
        payment = await shop.pay(first)
        other_id = solana_accept(second)["extra"]["paymentRequestId"]
        payment["accepted"]["extra"] = {**payment["accepted"]["extra"], "paymentRequestId": other_id}
        refused = await client.call_tool("answer", {"question": "second"}, meta={META_PAYMENT: payment})

    assert refused.is_error
    assert "memo" in text_of(refused).lower(), text_of(refused)
    assert shop.runs == []
    assert shop.balances() == before
    still_payable = await shop.ledger.get(other_id)
    assert still_payable is not None and still_payable.state is State.ISSUED


async def test_a_failed_tool_keeps_the_solana_payment_for_a_retry(shop: SolanaShop) -> None:
    payer_before, payee_before = shop.balances()
    shop.fail_next.append(True)
    async with Client(shop.server) as client:
        payment = await shop.pay(await client.call_tool("answer", {"question": "q"}))
        failed = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})
        retried = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})

    assert failed.is_error and "answer engine is down" in text_of(failed)
    assert not retried.is_error, text_of(retried)
    assert shop.runs == ["q", "q"]
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)  # paid once


async def test_an_underfunded_solana_payer_is_refused_and_the_request_stays_payable(shop: SolanaShop) -> None:
    poor = shop.node.svm.new_payer(usdc="0.01")
    async with Client(shop.server) as client:
        challenge = await client.call_tool("answer", {"question": "q"})
        payment = await shop.pay(challenge, poor)
        refused = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})
        # The same request is offered again, and a funded payer can still pay it.
        assert solana_accept(refused)["extra"]["memo"] == solana_accept(challenge)["extra"]["memo"]
        paid_call = await client.call_tool(
            "answer", {"question": "q"}, meta={META_PAYMENT: await shop.pay(refused)}
        )

    assert refused.is_error and "simulation" in text_of(refused).lower(), text_of(refused)
    assert not paid_call.is_error, text_of(paid_call)
    assert shop.runs == ["q"]
    assert shop.node.svm.usdc_balance(str(poor.pubkey())) == 10_000


async def test_solana_is_left_out_while_its_facilitator_is_down(
    evm_snapshot: DevChain,
    local_solana: LocalSolanaNode,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop = build_shop(evm_snapshot, local_solana, "http://127.0.0.1:9", tmp_path / "ledger.sqlite")
    with caplog.at_level(logging.WARNING, logger="x402_mcp"):
        async with Client(shop.server) as client:
            challenge = await client.call_tool("answer", {"question": "q"})
    networks = [entry["network"] for entry in read_challenge(challenge).dump()["accepts"]]
    assert networks == [evm_snapshot.network]
    assert "Solana is left out of payment challenges" in caplog.text


async def test_a_server_without_solana_refuses_solana_payments_by_name(
    shop: SolanaShop, evm_snapshot: DevChain, tmp_path: Path
) -> None:
    # A replica of the shop that was configured without Solana: the same ledger and payee, so it
    # knows the request (a server with another payee would not: the request is not its own).
    payments = Payments(
        pay_to=shop.payments.pay_to,
        network=evm_snapshot.network,
        settlement=evm_snapshot.settlement(),
        ledger=SQLiteLedger(shop.ledger.path),
    )
    evm_only = MCPServer("evm-only", extensions=[payments])

    @evm_only.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        return "ran"

    async with Client(shop.server) as client:
        payment = await shop.pay(await client.call_tool("answer", {"question": "q"}))
    async with Client(evm_only) as client:
        refused = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment})
    assert refused.is_error
    assert f"payments on {SOLANA_DEVNET} are not accepted here" in text_of(refused)


async def test_an_x402_http_client_pays_the_hosted_link_on_solana(shop: SolanaShop) -> None:
    payer_before, payee_before = shop.balances()
    async with Client(shop.server) as client, serving(page_app(shop.payments)) as base:
        challenge = await client.call_tool("answer", {"question": "q"})
        request_id = solana_accept(challenge)["extra"]["paymentRequestId"]
        async with httpx2.AsyncClient(timeout=10) as web:
            quoted = await web.get(f"{base}/pay/{request_id}", headers={"Accept": "application/json"})
            assert quoted.status_code == 402
            required = json.loads(base64.b64decode(quoted.headers["payment-required"]))
            assert [entry["network"] for entry in required["accepts"]][1] == SOLANA_DEVNET
            payment = await run_sync(official_svm_payment, required, shop.payer, shop.node.rpc_url)
            header = base64.b64encode(json.dumps(payment).encode()).decode()
            answered = await web.get(f"{base}/pay/{request_id}", headers={"PAYMENT-SIGNATURE": header})
        assert answered.status_code == 200, answered.text
        settled = json.loads(base64.b64decode(answered.headers["payment-response"]))
        assert settled["network"] == SOLANA_DEVNET and settled["success"] is True
        assert answered.json()["txUrl"] is None  # no EVM explorer link for a Solana transaction
        redeemed = await client.call_tool("answer", {"question": "q"})

    assert not redeemed.is_error, text_of(redeemed)
    assert shop.runs == ["q"]
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)

"""Smart-wallet payers through the MCP gate: paid in `_meta`, refused by name, never squatted.

A smart wallet's signature is verified by the backend (on chain) before the
payment's (payer, nonce) is claimed, so a forged signature cannot take an honest
payer's nonce, and every refusal leaves the request payable.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.types import CallToolResult, TextContent

from x402_mcp.client.payer import read_challenge
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload, PaymentRequired

from .conftest import SHOP_PRICE as PRICE
from .conftest import Shop
from .wallets import Behaviour, counterfactual_wallet, deploy_factory, deploy_wallet, has_code, wallet_payment

pytestmark = pytest.mark.anyio


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def _challenge(client: Client) -> PaymentRequired:
    result = await client.call_tool("answer", {"question": "why"})
    assert result.is_error
    return read_challenge(result)


async def _pay(client: Client, payment: PaymentPayload) -> CallToolResult:
    return await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})


@pytest.mark.parametrize("kind", ["deployed, 65-byte", "deployed, wrapped", "counterfactual (ERC-6492)"])
async def test_a_smart_wallet_pays_in_meta(client: Client, shop: Shop, kind: str) -> None:
    owner = Account.create()
    deployment = None
    if kind.startswith("deployed"):
        wallet = deploy_wallet(shop.chain, owner.address)
    else:
        wallet, calldata = counterfactual_wallet(shop.chain, shop.factory, owner.address)
        deployment = (shop.factory, calldata)
    shop.chain.mint(wallet, "1")
    option = (await _challenge(client)).accepts[0]
    shape = "65-byte" if kind.endswith("65-byte") else "wrapped"

    result = await _pay(client, wallet_payment(owner, wallet, option, shape=shape, deployment=deployment))

    assert not result.is_error, _text(result)
    assert shop.runs == ["why"]
    assert shop.chain.balance_of(shop.payee) == PRICE
    assert has_code(shop.chain, wallet)
    [settled] = await shop.ledger.settlements()
    assert settled.payer == wallet


async def test_a_forged_signature_cannot_squat_a_wallets_nonce(client: Client, shop: Shop) -> None:
    owner = Account.create()
    wallet = deploy_wallet(shop.chain, owner.address)
    shop.chain.mint(wallet, "1")
    option = (await _challenge(client)).accepts[0]
    honest = wallet_payment(owner, wallet, option, shape="wrapped")
    # The attacker copies the honest authorization (same payer, same nonce) with their own signature.
    forged_signature = sign_authorization(Account.create(), option, payer=wallet).signature
    forged = honest.model_copy(
        update={"payload": honest.payload.model_copy(update={"signature": forged_signature})}
    )

    refused = await _pay(client, forged)
    assert refused.is_error
    assert f"contract wallet {wallet} did not accept" in _text(refused)

    paid_result = await _pay(client, honest)
    assert not paid_result.is_error, _text(paid_result)
    assert shop.chain.balance_of(shop.payee) == PRICE


async def test_a_forged_signature_cannot_squat_an_eoas_nonce(client: Client, shop: Shop) -> None:
    victim: LocalAccount = shop.chain.new_account("1")
    option = (await _challenge(client)).accepts[0]
    honest = PaymentPayload(accepted=option, payload=sign_authorization(victim, option))
    forged_signature = sign_authorization(Account.create(), option).signature
    forged = honest.model_copy(
        update={"payload": honest.payload.model_copy(update={"signature": forged_signature})}
    )

    refused = await _pay(client, forged)
    assert refused.is_error
    assert "signature does not match" in _text(refused)
    paid_result = await _pay(client, honest)
    assert not paid_result.is_error, _text(paid_result)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong magic", "did not accept the signature"),
        ("reverts", "did not accept the signature"),
        ("burns all gas", "500000 gas"),
        ("factory off the allowlist", "does not call"),
        ("garbage ERC-6492", "is not abi.encode"),
    ],
)
async def test_a_bad_smart_wallet_payment_is_refused_by_name_and_the_request_stays_payable(
    client: Client, shop: Shop, case: str, message: str
) -> None:
    owner = Account.create()
    required = await _challenge(client)
    option = required.accepts[0]
    request_id = option.extra["paymentRequestId"]
    behaviours = {"wrong magic": Behaviour.WRONG_MAGIC, "reverts": Behaviour.REVERTS}
    if case in behaviours or case == "burns all gas":
        wallet = deploy_wallet(shop.chain, owner.address, behaviours.get(case, Behaviour.BURNS_GAS))
        payment = wallet_payment(owner, wallet, option)
    elif case == "factory off the allowlist":
        rogue = deploy_factory(shop.chain)
        wallet, calldata = counterfactual_wallet(shop.chain, rogue, owner.address)
        payment = wallet_payment(owner, wallet, option, deployment=(rogue, calldata))
    else:
        wallet = Account.create().address
        good = wallet_payment(owner, wallet, option)
        garbage = "0x" + "00" * 40 + "6492" * 16
        payment = good.model_copy(update={"payload": good.payload.model_copy(update={"signature": garbage})})
    shop.chain.mint(wallet, "1")

    result = await _pay(client, payment)

    assert result.is_error
    assert message in _text(result), _text(result)
    assert read_challenge(result).accepts[0].extra["paymentRequestId"] == request_id
    assert shop.runs == []
    assert shop.chain.balance_of(shop.payee) == 0
    assert not has_code(shop.chain, wallet) or case in behaviours or case == "burns all gas"
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED
    assert await shop.ledger.settlements() == []

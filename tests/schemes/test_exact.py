"""`exact` as the first scheme: EVM on the embedded chain, and the pure half of Solana."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from eth_account import Account

from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.challenge import Offer, challenge_result
from x402_mcp.core.networks import BASE_SEPOLIA, SOLANA_DEVNET, Asset
from x402_mcp.core.wire import AnyPaymentPayload, PaymentRequirements, SvmPaymentPayload
from x402_mcp.errors import Refusal
from x402_mcp.schemes import (
    Matched,
    PaidAlready,
    Scheme,
    SchemeRegistry,
    Settled,
    Valid,
)
from x402_mcp.schemes.exact.evm import ExactEvm, requirements_for
from x402_mcp.schemes.exact.solana import ExactSvm
from x402_mcp.settlement.facilitator import FacilitatorSettlement
from x402_mcp.settlement.solana import Solana

from ..chains import pay
from ..test_challenge import REQUEST

GOLDEN = Path(__file__).parent / "golden"
_USDC = BASE_SEPOLIA.usdc
assert _USDC is not None
USDC: Asset = _USDC
SOLANA_PAYEE = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
OFFER = Offer(
    BASE_SEPOLIA,
    USDC,
    REQUEST.pay_to,
    "https://pay.example",
    ((SOLANA_DEVNET.caip2, str(SOLANA_DEVNET.usdc_mint), SOLANA_PAYEE),),
)
NOWHERE = FacilitatorSettlement("http://127.0.0.1:9", network="solana-devnet")


def test_exact_on_evm_and_on_solana_satisfy_the_protocol() -> None:
    chain = DevChain()
    evm: Scheme[AnyPaymentPayload] = ExactEvm(chain.network_info, chain.asset, chain.settlement())
    svm: Scheme[SvmPaymentPayload] = Solana(SOLANA_PAYEE, settlement=NOWHERE)
    assert isinstance(evm, Scheme) and isinstance(svm, Scheme)
    assert (evm.scheme, evm.caip2) == ("exact", chain.network)
    assert (svm.scheme, svm.caip2) == ("exact", SOLANA_DEVNET.caip2)


@pytest.mark.anyio
async def test_the_challenge_built_from_the_registry_is_todays_byte_for_byte() -> None:
    """The golden file is what `challenge_result` wrote before the schemes (main at cdac415)."""
    registry = SchemeRegistry([ExactEvm(BASE_SEPOLIA, USDC, NOWHERE)])
    result = challenge_result(REQUEST, OFFER, now=1000.0, accepts=await registry.accepts(REQUEST))
    written = result.model_dump_json(by_alias=True, exclude_none=True)
    assert written == (GOLDEN / "challenge_evm.json").read_text().strip()


def test_a_solana_payee_offers_what_it_offered_before() -> None:
    """The Solana half of the golden challenge, with the fee payer a facilitator would name."""
    payee = Solana(SOLANA_PAYEE, settlement=NOWHERE)
    accepts = [requirements_for(REQUEST, USDC), payee.requirements(REQUEST, "FEEPAYER")]
    result = challenge_result(REQUEST, OFFER, now=1000.0, accepts=accepts)
    written = result.model_dump_json(by_alias=True, exclude_none=True)
    assert written == (GOLDEN / "challenge_evm_and_solana.json").read_text().strip()


@pytest.mark.anyio
async def test_a_paid_call_through_the_exact_evm_scheme_on_the_embedded_chain() -> None:
    chain = DevChain()
    scheme = ExactEvm(chain.network_info, chain.asset, chain.settlement())
    payee, payer = Account.create().address, chain.new_account(usdc="1")
    quote = dataclasses.replace(REQUEST, network=chain.network, asset=chain.usdc, pay_to=payee)
    offered = await scheme.accepts(quote)
    assert [entry.extra["paymentRequestId"] for entry in offered] == [quote.id]

    parsed = scheme.parse(pay(payer, offered[0]).dump())
    assert not isinstance(parsed, Refusal)
    matched = scheme.match(parsed, offered, now=time.time())
    assert isinstance(matched, Matched)
    assert (matched.payer, matched.ceiling, matched.signature_checked) == (payer.address, 12_000, True)
    nonce = parsed.payload.authorization.nonce.lower()
    assert matched.key == (chain.network, payer.address.lower(), nonce)

    verdict = await scheme.verify(matched)
    assert verdict == Valid(payer.address)
    with pytest.raises(ValueError, match="cannot charge 11999"):
        await scheme.settle(matched, verdict, charge=11_999)
    settled = await scheme.settle(matched, verdict, charge=12_000)
    assert isinstance(settled, Settled)
    assert (settled.network, settled.payer, settled.amount) == (chain.network, payer.address, 12_000)
    assert chain.balance_of(payee) == 12_000
    assert scheme.receipt(settled).dump() == {
        "success": True,
        "transaction": settled.transaction,
        "network": chain.network,
        "payer": payer.address,
        "amount": "12000",
    }

    found = await scheme.reconcile(parsed, matched.requirements)
    assert (found.status, found.tx_hash) == ("settled", settled.transaction)
    # Presented again, the used authorization is not refused: the token shows it paid us.
    assert await scheme.verify(matched) == PaidAlready(payer.address, settled.transaction)
    assert chain.balance_of(payee) == 12_000


@pytest.mark.anyio
async def test_the_exact_evm_scheme_refuses_with_reason_codes() -> None:
    chain = DevChain()
    scheme = ExactEvm(chain.network_info, chain.asset, chain.settlement())
    payer = chain.new_account(usdc="0.001")  # less than the price
    quote = dataclasses.replace(
        REQUEST, network=chain.network, asset=chain.usdc, pay_to=Account.create().address
    )
    offered = list(await scheme.accepts(quote))
    payload = pay(payer, offered[0])

    elsewhere = [offered[0].model_copy(update={"network": "eip155:8453"})]
    refused = scheme.match(payload, elsewhere, now=time.time())
    assert isinstance(refused, Refusal) and refused.reason == "network_mismatch"

    underpaid = pay(payer, offered[0], value=11_999)
    refused = scheme.match(underpaid, offered, now=time.time())
    assert isinstance(refused, Refusal)
    assert refused.reason == "invalid_exact_evm_payload_authorization_value_mismatch"

    matched = scheme.match(payload, offered, now=time.time())
    assert isinstance(matched, Matched)
    verdict = await scheme.verify(matched)
    assert isinstance(verdict, Refusal) and "insufficient" in verdict.reason

    assert scheme.parse({"x402Version": 3}) == Refusal(
        "invalid_x402_version", "unsupported x402Version 3; expected 2 (or 1)"
    )


def test_the_solana_scheme_parses_and_matches_its_own_payloads_only() -> None:
    payee = ExactSvm(SOLANA_PAYEE, settlement=NOWHERE)
    ours = payee.requirements(REQUEST, "FEEPAYER")
    evm_entry = requirements_for(REQUEST, USDC)
    raw = {"x402Version": 2, "accepted": ours.dump(), "payload": {"transaction": "AQID"}}
    parsed = payee.parse(raw)
    assert isinstance(parsed, SvmPaymentPayload)
    matched = payee.match(parsed, [evm_entry, ours], now=1000.0)
    assert isinstance(matched, Matched)
    assert (matched.requirements, matched.payer, matched.ceiling) == (ours, "", 12_000)
    assert matched.key[0] == SOLANA_DEVNET.caip2 and matched.key[2].startswith("sha256:")

    other: PaymentRequirements = ours.model_copy(update={"amount": "1"})
    cheaper = payee.parse({**raw, "accepted": other.dump()})
    assert isinstance(cheaper, SvmPaymentPayload)
    refused = payee.match(cheaper, [ours], now=1000.0)
    assert isinstance(refused, Refusal)
    assert refused.reason == "invalid_exact_svm_payload_amount_insufficient"

    not_solana = payee.parse({"x402Version": 2, "accepted": evm_entry.dump(), "payload": {}})
    assert isinstance(not_solana, Refusal)

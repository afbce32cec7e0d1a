"""The challenge offered through the scheme registry, with the Solana fee payer named by the
official SVM facilitator, is what the gate wrote before the schemes, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from x402_mcp.core.challenge import challenge_result
from x402_mcp.schemes import SchemeRegistry
from x402_mcp.schemes.exact.evm import ExactEvm
from x402_mcp.settlement.facilitator import FacilitatorSettlement
from x402_mcp.settlement.solana import Solana

from ..schemes.test_exact import OFFER, REQUEST, SOLANA_PAYEE, USDC
from .conftest import LocalSolanaNode

GOLDEN = Path(__file__).parents[1] / "schemes" / "golden" / "challenge_evm_and_solana.json"


@pytest.mark.anyio
async def test_the_registry_offers_evm_then_solana_as_the_gate_did(
    local_solana: LocalSolanaNode, svm_facilitator: str
) -> None:
    facilitator = FacilitatorSettlement(svm_facilitator, network="solana-devnet")
    registry = SchemeRegistry(
        [ExactEvm(OFFER.network, USDC, facilitator), Solana(SOLANA_PAYEE, settlement=facilitator)]
    )
    accepts = await registry.accepts(REQUEST)
    written = challenge_result(REQUEST, OFFER, now=1000.0, accepts=accepts).model_dump_json(
        by_alias=True, exclude_none=True
    )
    expected = GOLDEN.read_text().strip().replace("FEEPAYER", str(local_solana.svm.fee_payer.pubkey()))
    assert written == expected

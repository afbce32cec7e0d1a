"""The Solana harness is real: the official x402 client pays, the official facilitator verifies
by simulation and settles by sending, and USDC really moves in LiteSVM (or really does not)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from anyio.to_thread import run_sync
from solders.keypair import Keypair
from solders.signature import Signature
from solders.transaction_metadata import TransactionMetadata

from .conftest import LocalSolanaNode
from .localsvm import SOLANA_DEVNET, USDC_DEVNET, LocalSolana, usdc_atomic
from .official import official_svm_payment

pytestmark = pytest.mark.anyio

MEMO = "pr_test123"

# An EVM offer listed first, as a server offering both chains would: the client must skip it.
EVM_ACCEPT = {
    "scheme": "exact",
    "network": "eip155:84532",
    "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    "amount": "50000",
    "payTo": "0x" + "11" * 20,
    "maxTimeoutSeconds": 60,
    "extra": {"name": "USDC", "version": "2"},
}


def new_payee(svm: LocalSolana) -> str:
    payee = str(Keypair().pubkey())
    svm.open_token_account(payee)
    return payee


def requirements(svm: LocalSolana, pay_to: str, *, amount: str = "50000", memo: str = MEMO) -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": SOLANA_DEVNET,
        "asset": USDC_DEVNET,
        "amount": amount,
        "payTo": pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"feePayer": str(svm.fee_payer.pubkey()), "memo": memo},
    }


async def pay(node: LocalSolanaNode, accepted: dict[str, Any], payer: Keypair) -> dict[str, Any]:
    payment_required = {
        "x402Version": 2,
        "resource": {"url": "mcp://tool/search"},
        "accepts": [EVM_ACCEPT, accepted],
    }
    return await run_sync(official_svm_payment, payment_required, payer, node.rpc_url)


async def facilitate(url: str, path: str, payload: dict[str, Any], reqs: dict[str, Any]) -> dict[str, Any]:
    async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(path, json={"paymentPayload": payload, "paymentRequirements": reqs})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def rpc(node: LocalSolanaNode, method: str, params: list[Any]) -> dict[str, Any]:
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            node.rpc_url, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        )
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    assert answer["id"] == 7
    return answer


def balances(svm: LocalSolana, *owners: str) -> list[int]:
    return [svm.usdc_balance(owner) for owner in owners]


async def test_official_client_pays_and_official_facilitator_settles(
    local_solana: LocalSolanaNode, svm_facilitator: str
) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("1")
    payer_address = str(payer.pubkey())
    payee = new_payee(svm)
    fee_payer = str(svm.fee_payer.pubkey())
    assert balances(svm, payer_address, payee) == [1_000_000, 0]
    assert svm.sol_balance(payer_address) == 0
    fee_payer_sol = svm.sol_balance(fee_payer)
    reqs = requirements(svm, payee)

    payload = await pay(local_solana, reqs, payer)
    assert payload["x402Version"] == 2
    assert payload["accepted"] == reqs  # the Solana offer, not the EVM one listed first
    assert set(payload["payload"]) == {"transaction"}

    verified = await facilitate(svm_facilitator, "/verify", payload, reqs)
    assert verified == {"isValid": True, "payer": payer_address}
    assert balances(svm, payer_address, payee) == [1_000_000, 0]  # simulation moved nothing

    settled = await facilitate(svm_facilitator, "/settle", payload, reqs)
    assert settled["success"] is True, settled
    assert settled["network"] == SOLANA_DEVNET
    assert settled["payer"] == payer_address
    landed = svm.litesvm.get_transaction(Signature.from_string(settled["transaction"]))
    assert isinstance(landed, TransactionMetadata)
    assert any(MEMO in line for line in landed.logs())  # the memo program ran, with our memo
    assert balances(svm, payer_address, payee) == [1_000_000 - 50_000, 50_000]
    # The facilitator paid the fees; the payer needed no SOL.
    assert svm.sol_balance(payer_address) == 0
    assert svm.sol_balance(fee_payer) < fee_payer_sol


async def test_settling_the_same_payload_again_fails_and_moves_nothing(
    local_solana: LocalSolanaNode, svm_facilitator: str
) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("1")
    payee = new_payee(svm)
    reqs = requirements(svm, payee)
    payload = await pay(local_solana, reqs, payer)
    first = await facilitate(svm_facilitator, "/settle", payload, reqs)
    assert first["success"] is True, first
    after_first = balances(svm, str(payer.pubkey()), payee)
    assert after_first == [950_000, 50_000]

    again = await facilitate(svm_facilitator, "/settle", payload, reqs)
    assert again["success"] is False
    # Re-verification simulates it again, and LiteSVM knows it: AlreadyProcessed.
    assert again["errorReason"] == "transaction_simulation_failed"
    assert balances(svm, str(payer.pubkey()), payee) == after_first


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("amount", "invalid_exact_svm_payload_amount_insufficient"),
        ("payTo", "invalid_exact_svm_payload_recipient_mismatch"),
    ],
)
async def test_a_payload_for_another_amount_or_payee_is_refused(
    local_solana: LocalSolanaNode, svm_facilitator: str, change: str, reason: str
) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("1")
    payer_address = str(payer.pubkey())
    payee = new_payee(svm)
    signed_for = requirements(svm, payee)
    payload = await pay(local_solana, signed_for, payer)
    asked = dict(signed_for)
    if change == "amount":
        asked["amount"] = "60000"
    else:
        asked["payTo"] = new_payee(svm)

    verified = await facilitate(svm_facilitator, "/verify", payload, asked)
    assert verified["isValid"] is False
    assert verified["invalidReason"] == reason
    settled = await facilitate(svm_facilitator, "/settle", payload, asked)
    assert settled["success"] is False
    assert balances(svm, payer_address, payee, asked["payTo"]) == [1_000_000, 0, 0]


async def test_a_memo_other_than_the_signed_one_is_refused(
    local_solana: LocalSolanaNode, svm_facilitator: str
) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("1")
    payee = new_payee(svm)
    payload = await pay(local_solana, requirements(svm, payee), payer)
    asked = requirements(svm, payee, memo="pr_other456")

    verified = await facilitate(svm_facilitator, "/verify", payload, asked)
    assert verified["isValid"] is False
    assert verified["invalidReason"] == "invalid_exact_svm_payload_memo_mismatch"
    settled = await facilitate(svm_facilitator, "/settle", payload, asked)
    assert settled["success"] is False
    assert balances(svm, str(payer.pubkey()), payee) == [1_000_000, 0]


async def test_the_rpc_answers_like_a_node(local_solana: LocalSolanaNode) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("1")
    payee = new_payee(svm)
    payload = await pay(local_solana, requirements(svm, payee), payer)

    unknown = await rpc(local_solana, "getBalance", [str(payer.pubkey())])
    assert unknown["error"]["code"] == -32601
    assert "result" not in unknown

    # The payer's signature alone: the fee payer's is missing, so the node refuses it.
    unsigned = await rpc(
        local_solana,
        "sendTransaction",
        [payload["payload"]["transaction"], {"encoding": "base64", "skipPreflight": True}],
    )
    assert unsigned["error"]["code"] == -32002
    assert unsigned["error"]["data"]["err"] == "SignatureFailure"
    assert balances(svm, str(payer.pubkey()), payee) == [1_000_000, 0]

    mint = await rpc(local_solana, "getAccountInfo", [USDC_DEVNET, {"encoding": "base64"}])
    assert mint["result"]["value"]["owner"] == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


def test_amounts_are_decimal_strings_or_ints() -> None:
    assert usdc_atomic("0.05") == 50_000
    assert usdc_atomic(2) == 2_000_000
    with pytest.raises(TypeError):
        usdc_atomic(0.05)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decimals"):
        usdc_atomic("0.0000001")


@pytest.mark.parametrize("problem", ["too_poor", "blockhash_expired"])
async def test_verify_simulates_on_the_chain(
    local_solana: LocalSolanaNode, svm_facilitator: str, problem: str
) -> None:
    svm = local_solana.svm
    payer = svm.new_payer("0.01" if problem == "too_poor" else "1")
    payee = new_payee(svm)
    reqs = requirements(svm, payee)
    payload = await pay(local_solana, reqs, payer)
    if problem == "blockhash_expired":
        svm.litesvm.expire_blockhash()
    before = balances(svm, str(payer.pubkey()), payee)

    verified = await facilitate(svm_facilitator, "/verify", payload, reqs)
    assert verified["isValid"] is False
    assert verified["invalidReason"] == "transaction_simulation_failed"
    # SPL Token's InsufficientFunds is custom error 1, in the transfer (instruction 2).
    expected = "InstructionErrorCustom(1)" if problem == "too_poor" else "BlockhashNotFound"
    assert expected in verified["invalidMessage"]
    settled = await facilitate(svm_facilitator, "/settle", payload, reqs)
    assert settled["success"] is False
    assert balances(svm, str(payer.pubkey()), payee) == before

"""LocalSettlement on each chain under test (DevChain, anvil): what settles, what is refused, concurrency."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.evm import new_nonce, sign_authorization
from x402_mcp.core.networks import BASE, Network
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    ExactAuthorization,
    ExactPayload,
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequired,
    PaymentRequirements,
    SettleResponse,
    parse_payment_payload,
)
from x402_mcp.errors import SettlementError
from x402_mcp.settlement import Settlement
from x402_mcp.settlement.checks import (
    ASSET_NOT_DEPLOYED,
    INSUFFICIENT_BALANCE,
    INVALID_PAYLOAD,
    INVALID_PAYMENT_REQUIREMENTS,
    INVALID_SIGNATURE,
    MISSING_EIP712_DOMAIN,
    NETWORK_MISMATCH,
    NONCE_ALREADY_USED,
    RECIPIENT_MISMATCH,
    TRANSFER_EVENT_MISMATCH,
    UNSUPPORTED_SCHEME,
    VALID_AFTER,
    VALID_BEFORE,
    VALUE_MISMATCH,
)
from x402_mcp.settlement.local import LocalSettlement

from ..chains import (
    AnvilChain,
    deploy_eip1271_wallet,
    pay,
    requirements_for,
    set_automine,
    settlement_with_clock,
)
from .conftest import PRICE

pytestmark = pytest.mark.anyio

FUNDED = 10_000_000  # the payer's 10 USDC
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_CURVE_ORDER = 2 * _HALF_ORDER + 1


@pytest.fixture
def settlement(chain: TokenChain) -> LocalSettlement:
    return chain.settlement()


def _tx_of(chain: TokenChain, tx_hash: str) -> dict[str, object]:
    with chain.lock:
        return dict(chain.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the good path


async def test_a_good_payment_verifies_then_settles_and_moves_exactly_the_amount(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    assert isinstance(settlement, Settlement)
    payment = pay(payer, requirements)

    verdict = await settlement.verify(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason, verdict.payer) == (True, None, payer.address)
    assert chain.balance_of(payee) == 0, "verify must not move money"

    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert re.fullmatch(r"0x[0-9a-f]{64}", result.transaction)
    assert (result.network, result.payer, result.amount) == (chain.network, payer.address, str(PRICE))
    assert chain.balance_of(payer.address) == FUNDED - PRICE
    assert chain.balance_of(payee) == PRICE
    with chain.lock:
        assert chain.token.authorization_state(payer.address, payment.payload.authorization.nonce)
        receipt = chain.w3.eth.get_transaction_receipt(result.transaction)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert receipt["from"] == settlement.signer
    assert receipt["to"] == chain.usdc


async def test_a_payment_signed_by_the_official_x402_client_verifies_and_settles(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    from x402 import parse_payment_required, x402ClientSync
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    client = x402ClientSync()
    client.register(chain.network, ExactEvmClientScheme(EthAccountSigner(payer)))
    client.set_spend_controls(False)  # our token is not in the SDK's table of known assets
    required = parse_payment_required(PaymentRequired(accepts=[requirements]).dump())
    official = client.create_payment_payload(required)
    payment = parse_payment_payload(official.model_dump(by_alias=True, exclude_none=True))

    assert (await settlement.verify(payment, requirements)).is_valid
    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert chain.balance_of(payee) == PRICE


async def test_a_v1_payment_settles_and_is_answered_with_its_own_network_name(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    payment = PaymentPayloadV1(
        scheme="exact", network=chain.network, payload=sign_authorization(payer, requirements)
    )

    assert (await settlement.verify(payment, requirements)).is_valid
    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert result.network == payment.network
    assert chain.balance_of(payee) == PRICE


@pytest.mark.parametrize("signature_kind", ["bytes", "65-byte ECDSA by another key"])
async def test_a_contract_wallet_that_accepts_the_signature_pays_through_eip1271(
    chain: TokenChain,
    settlement: LocalSettlement,
    payee: str,
    requirements: PaymentRequirements,
    signature_kind: str,
) -> None:
    wallet = deploy_eip1271_wallet(chain, accepts=True)
    chain.mint(wallet, "1")
    now = int(time.time())
    authorization = ExactAuthorization(
        from_=wallet,
        to=payee,
        value=str(PRICE),
        valid_after="0",
        valid_before=str(now + 300),
        nonce=new_nonce(),
    )
    if signature_kind == "bytes":
        signature = "0x" + "ab" * 70  # not ECDSA at all: settled through the `bytes signature` form
    else:
        signature = sign_authorization(Account.create(), requirements).signature
    payment = PaymentPayload(
        accepted=requirements, payload=ExactPayload(signature=signature, authorization=authorization)
    )

    assert (await settlement.verify(payment, requirements)).is_valid
    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert chain.balance_of(payee) == PRICE
    assert chain.balance_of(wallet) == 1_000_000 - PRICE


async def test_a_contract_wallet_that_refuses_the_signature_cannot_pay(
    chain: TokenChain, settlement: LocalSettlement, payee: str, requirements: PaymentRequirements
) -> None:
    wallet = deploy_eip1271_wallet(chain, accepts=False)
    chain.mint(wallet, "1")
    authorization = ExactAuthorization(
        from_=wallet,
        to=payee,
        value=str(PRICE),
        valid_after="0",
        valid_before=str(int(time.time()) + 300),
        nonce=new_nonce(),
    )
    payment = PaymentPayload(
        accepted=requirements, payload=ExactPayload(signature="0x" + "ab" * 70, authorization=authorization)
    )

    verdict = await settlement.verify(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, INVALID_SIGNATURE)
    result = await settlement.settle(payment, requirements)  # goes on-chain and reverts there
    assert (result.success, result.error_reason) == (False, INVALID_SIGNATURE)
    assert chain.balance_of(payee) == 0


# --------------------------------------------------------------------------- refusals

Case = Callable[
    [TokenChain, LocalAccount, PaymentRequirements], tuple[AnyPaymentPayload, PaymentRequirements]
]


def _wrong_payee(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    elsewhere = req.model_copy(update={"pay_to": Account.create().address})
    return pay(payer, elsewhere), req


def _underpaid(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req, value=PRICE - 1), req


def _overpaid(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req, value=PRICE + 1), req


def _expired(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req, valid_before=int(time.time()) - 1), req


def _expiring_within_the_grace(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req, valid_before=int(time.time()) + 3), req


def _not_yet_valid(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req, valid_after=int(time.time()) + 600), req


def _signed_by_someone_else(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    forged = pay(Account.create(), req)
    authorization = forged.payload.authorization.model_copy(update={"from_": payer.address})
    return forged.model_copy(
        update={"payload": forged.payload.model_copy(update={"authorization": authorization})}
    ), req


def _signed_for_another_domain(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    wrong_name = req.model_copy(update={"extra": {"name": "USDC", "version": "2"}})  # Base Sepolia's name
    return pay(payer, wrong_name), req


def _high_s_signature(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    payment = pay(payer, req)
    raw = bytes.fromhex(payment.payload.signature[2:])
    s = _CURVE_ORDER - int.from_bytes(raw[32:64], "big")
    v = 55 - raw[64]  # the twin signature flips the recovery id: 27 <-> 28
    twin = "0x" + (raw[:32] + s.to_bytes(32, "big") + bytes([v])).hex()
    return payment.model_copy(update={"payload": payment.payload.model_copy(update={"signature": twin})}), req


def _broke_payer(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(chain.new_account("0.005"), req), req


def _other_network(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    payment = pay(payer, req)
    return payment.model_copy(update={"accepted": req.model_copy(update={"network": "eip155:8453"})}), req


def _other_network_v1(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return PaymentPayloadV1(scheme="exact", network="base", payload=sign_authorization(payer, req)), req


def _missing_domain(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    return pay(payer, req), req.model_copy(update={"extra": {}})


def _other_scheme(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    payment = pay(payer, req)
    return payment.model_copy(update={"accepted": req.model_copy(update={"scheme": "upto"})}), req


def _token_not_deployed(
    chain: TokenChain, payer: LocalAccount, req: PaymentRequirements
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    nowhere = req.model_copy(update={"asset": Account.create().address})
    return pay(payer, nowhere), nowhere


REFUSALS: dict[str, tuple[Case, str, str]] = {
    # name: (build the payment, verify's reason, settle's reason)
    "wrong payee": (_wrong_payee, RECIPIENT_MISMATCH, RECIPIENT_MISMATCH),
    "underpaid": (_underpaid, VALUE_MISMATCH, VALUE_MISMATCH),
    "overpaid": (_overpaid, VALUE_MISMATCH, VALUE_MISMATCH),
    "expired": (_expired, VALID_BEFORE, VALID_BEFORE),
    "expiring within 6 s": (_expiring_within_the_grace, VALID_BEFORE, VALID_BEFORE),
    "not yet valid": (_not_yet_valid, VALID_AFTER, VALID_AFTER),
    "signed by someone else": (_signed_by_someone_else, INVALID_SIGNATURE, INVALID_SIGNATURE),
    "signed for another domain": (_signed_for_another_domain, INVALID_SIGNATURE, INVALID_SIGNATURE),
    "high-s signature": (_high_s_signature, INVALID_SIGNATURE, INVALID_SIGNATURE),
    "insufficient balance": (_broke_payer, INSUFFICIENT_BALANCE, INSUFFICIENT_BALANCE),
    "wrong network": (_other_network, NETWORK_MISMATCH, NETWORK_MISMATCH),
    "wrong network (v1)": (_other_network_v1, NETWORK_MISMATCH, NETWORK_MISMATCH),
    "missing EIP-712 domain": (_missing_domain, MISSING_EIP712_DOMAIN, MISSING_EIP712_DOMAIN),
    "other scheme": (_other_scheme, UNSUPPORTED_SCHEME, UNSUPPORTED_SCHEME),
    # Sent anyway by settle (only verify looks for code), the call to an account without
    # code "succeeds" without a Transfer log, which is exactly what the log check is for.
    "token not deployed": (_token_not_deployed, ASSET_NOT_DEPLOYED, TRANSFER_EVENT_MISMATCH),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_bad_payment_is_refused_with_its_reason_and_moves_no_money(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    case: str,
) -> None:
    build, verify_reason, settle_reason = REFUSALS[case]
    payment, checked_against = build(chain, payer, requirements)
    signer = payment.payload.authorization.from_
    signer_balance = chain.balance_of(signer)

    verdict = await settlement.verify(payment, checked_against)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, verify_reason), verdict.invalid_message
    assert verdict.payer == signer
    assert verdict.invalid_message
    assert verdict.invalid_message.endswith(".")

    result = await settlement.settle(payment, checked_against)
    assert (result.success, result.error_reason) == (False, settle_reason), result.error_message
    assert result.transaction == ""
    assert result.error_message
    assert chain.balance_of(signer) == signer_balance
    assert chain.balance_of(payee) == 0


def _tampered(payment: PaymentPayload, *, signature: str | None = None, **changes: object) -> PaymentPayload:
    """`payment` changed without validation, as a caller that builds payloads in code can."""
    exact = payment.payload.model_copy(
        update={"authorization": payment.payload.authorization.model_copy(update=changes)}
    )
    if signature is not None:
        exact = exact.model_copy(update={"signature": signature})
    return payment.model_copy(update={"payload": exact})


MALFORMED: dict[str, tuple[dict[str, object], str, str]] = {
    # name: (changes to a good payment, reason, a fragment of the message)
    "from is not an address": (
        {"from_": "0xnot-an-address"},
        INVALID_PAYLOAD,
        "'from' must be an EVM address",
    ),
    "nonce with an underscore": ({"nonce": "0x" + "ab" * 31 + "a_"}, INVALID_PAYLOAD, "nonce must be 0x"),
    "validBefore beyond uint256": (
        {"valid_before": str(2**256)},
        INVALID_PAYLOAD,
        "validBefore must be below",
    ),
    "full-width value": ({"value": "１００００"}, INVALID_PAYLOAD, "value must be a string of ASCII"),
    "value with a leading zero": ({"value": "010000"}, INVALID_PAYLOAD, "value must be a string of ASCII"),
    "odd-length signature": ({"signature": "0x" + "1" * 129}, INVALID_SIGNATURE, "even, non-zero number"),
    "garbage signature": ({"signature": "0xnothex"}, INVALID_SIGNATURE, "even, non-zero number"),
    "65 bytes with v=29": ({"signature": "0x" + "11" * 64 + "1d"}, INVALID_SIGNATURE, "v=29 is invalid"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_malformed_payload_given_directly_is_refused_by_name(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    case: str,
) -> None:
    changes, reason, fragment = MALFORMED[case]
    fields = {key: value for key, value in changes.items() if key != "signature"}
    signature = changes.get("signature")
    payment = _tampered(pay(payer, requirements), signature=str(signature) if signature else None, **fields)
    verdict = await settlement.verify(payment, requirements)
    result = await settlement.settle(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, reason)
    assert (result.success, result.error_reason) == (False, reason)
    assert fragment in (verdict.invalid_message or "") and fragment in (result.error_message or "")
    assert chain.balance_of(payee) == 0
    assert chain.balance_of(payer.address) == FUNDED


async def test_requirements_that_name_no_token_address_are_refused_not_a_node_failure(
    chain: TokenChain, settlement: LocalSettlement, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    # A facilitator gets its requirements from outside; "‮" must not reach the reader intact.
    hostile = requirements.model_copy(update={"asset": "0x‮" + "1" * 500})
    verdict = await settlement.verify(pay(payer, requirements), hostile)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, INVALID_PAYMENT_REQUIREMENTS)
    assert "‮" not in (verdict.invalid_message or "")
    assert len(verdict.invalid_message or "") < 300


async def test_a_replayed_payment_is_refused_after_it_settled_once(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    payment = pay(payer, requirements)
    assert (await settlement.settle(payment, requirements)).success

    verdict = await settlement.verify(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, NONCE_ALREADY_USED)
    assert payment.payload.authorization.nonce in (verdict.invalid_message or "")
    again = await settlement.settle(payment, requirements)  # sent anyway: reverts on-chain
    assert (again.success, again.error_reason) == (False, NONCE_ALREADY_USED)
    assert chain.balance_of(payee) == PRICE
    assert chain.balance_of(payer.address) == FUNDED - PRICE


async def test_expiry_by_the_chains_clock_maps_the_revert_to_valid_before(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    # The backend's clock runs an hour late, so its own window check passes and the
    # token's check (block.timestamp) is the one that refuses.
    late = settlement_with_clock(chain, lambda: time.time() - 3600)
    payment = pay(payer, requirements, valid_after=0, valid_before=int(time.time()) - 60)

    verdict = await late.verify(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, VALID_BEFORE)
    result = await late.settle(payment, requirements)
    assert (result.success, result.error_reason) == (False, VALID_BEFORE)
    assert chain.balance_of(payee) == 0


async def test_an_authorization_not_yet_valid_by_the_chains_clock_maps_to_valid_after(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    early = settlement_with_clock(chain, lambda: time.time() + 3600)
    now = int(time.time())
    payment = pay(payer, requirements, valid_after=now + 600, valid_before=now + 7200)

    verdict = await early.verify(payment, requirements)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, VALID_AFTER)
    result = await early.settle(payment, requirements)
    assert (result.success, result.error_reason) == (False, VALID_AFTER)
    assert chain.balance_of(payee) == 0


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_settlements_of_different_payments_all_succeed(
    chain: TokenChain, settlement: LocalSettlement, payee: str, requirements: PaymentRequirements
) -> None:
    payments = [pay(chain.new_account("1"), requirements) for _ in range(8)]
    results: list[SettleResponse] = []

    async def settle(payment: PaymentPayload) -> None:
        results.append(await settlement.settle(payment, requirements))

    async with anyio.create_task_group() as group:
        for payment in payments:
            group.start_soon(settle, payment)

    assert [r.error_message for r in results if not r.success] == []
    assert len({r.transaction for r in results}) == len(payments)
    assert chain.balance_of(payee) == PRICE * len(payments)
    nonces = sorted(int(str(_tx_of(chain, r.transaction)["nonce"])) for r in results)
    assert nonces == list(range(nonces[0], nonces[0] + len(payments))), "one gas nonce each, none skipped"


async def test_the_same_payment_settled_concurrently_settles_once(
    chain: TokenChain,
    settlement: LocalSettlement,
    payer: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    payment = pay(payer, requirements)
    results: list[SettleResponse] = []

    async def settle() -> None:
        results.append(await settlement.settle(payment, requirements))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(settle)

    assert sum(r.success for r in results) == 1
    assert {r.error_reason for r in results if not r.success} == {NONCE_ALREADY_USED}
    assert chain.balance_of(payee) == PRICE
    assert chain.balance_of(payer.address) == FUNDED - PRICE


async def test_the_same_payment_through_two_backends_at_once_settles_once_on_chain(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    # Two backends share no memory, so both transactions reach the chain: the token's
    # nonce check is what stops the second, and its revert maps to the replay reason.
    backends = [settlement_with_clock(chain, time.time) for _ in range(2)]
    payment = pay(payer, requirements)
    results: list[SettleResponse] = []

    async def settle(backend: LocalSettlement) -> None:
        results.append(await backend.settle(payment, requirements))

    async with anyio.create_task_group() as group:
        for backend in backends:
            group.start_soon(settle, backend)

    assert sorted((r.success, r.error_reason) for r in results) == [(False, NONCE_ALREADY_USED), (True, None)]
    assert chain.balance_of(payee) == PRICE


# --------------------------------------------------------------------------- failures of the backend


async def test_a_transaction_that_is_not_mined_in_time_raises_and_the_backend_recovers(
    chain: TokenChain, payer: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    impatient = LocalSettlement(chain.w3, gas, chain.network_info, lock=chain.lock, receipt_timeout=0.2)
    set_automine(chain, False)
    try:
        with pytest.raises(SettlementError, match="not mined within"):
            await impatient.settle(pay(payer, requirements), requirements)
    finally:
        set_automine(chain, True)

    assert chain.balance_of(payee) == PRICE, "the slow transaction was mined once mining resumed"
    later = await impatient.settle(pay(payer, requirements), requirements)
    assert later.success, later.error_message
    assert chain.balance_of(payee) == 2 * PRICE


async def test_requirements_for_a_network_the_backend_does_not_serve_raise(
    settlement: LocalSettlement, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    elsewhere = requirements.model_copy(update={"network": "eip155:8453"})
    payment = pay(payer, elsewhere)
    with pytest.raises(SettlementError, match="serves eip155:"):
        await settlement.verify(payment, elsewhere)
    with pytest.raises(SettlementError, match="serves eip155:"):
        await settlement.settle(payment, elsewhere)


async def test_a_node_on_another_chain_than_configured_raises(
    chain: TokenChain, payer: LocalAccount, requirements: PaymentRequirements
) -> None:
    mislabelled = Network("eip155:999", 999, "Mislabelled", usdc=chain.asset)
    backend = LocalSettlement(chain.w3, Account.create(), mislabelled, lock=chain.lock)
    claimed = requirements.model_copy(update={"network": "eip155:999"})
    with pytest.raises(SettlementError, match="on chain"):
        await backend.verify(pay(payer, claimed), claimed)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_node_raises_settlement_error_with_the_cause() -> None:
    payer = Account.create()
    backend = LocalSettlement.from_rpc(
        f"http://127.0.0.1:{_closed_port()}", Account.create().key.to_0x_hex(), network="eip155:1337"
    )
    requirements = PaymentRequirements(
        scheme="exact",
        network="eip155:1337",
        amount=str(PRICE),
        asset=Account.create().address,
        pay_to=Account.create().address,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )
    payment = pay(payer, requirements)

    with pytest.raises(SettlementError) as failure:
        await backend.verify(payment, requirements)
    assert failure.value.__cause__ is not None
    with pytest.raises(SettlementError):
        await backend.settle(payment, requirements)


@pytest.mark.anvil
async def test_from_rpc_settles_over_json_rpc(anvil: AnvilChain) -> None:
    payer = anvil.new_account("1")
    payee = Account.create().address
    requirements = requirements_for(anvil, payee, amount=str(PRICE))
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    backend = LocalSettlement.from_rpc(
        anvil.rpc_url, gas.key.to_0x_hex(), network=anvil.network, poll_latency=0.01
    )

    result = await backend.settle(pay(payer, requirements), requirements)
    assert result.success, result.error_message
    assert anvil.balance_of(payee) == PRICE


# --------------------------------------------------------------------------- supported


async def test_supported_lists_exact_on_the_chain_and_the_gas_signer(settlement: LocalSettlement) -> None:
    supported = await settlement.supported()
    assert [(k.x402_version, k.scheme, k.network) for k in supported.kinds] == [
        (2, "exact", settlement.network.caip2)
    ]
    assert supported.signers == {"eip155:*": [settlement.signer]}


async def test_supported_adds_the_v1_name_where_the_network_has_one() -> None:
    backend = LocalSettlement.from_rpc("http://127.0.0.1:1", Account.create().key.to_0x_hex(), network=BASE)
    kinds = [(k.x402_version, k.network) for k in (await backend.supported()).kinds]
    assert kinds == [(2, "eip155:8453"), (1, "base")]
    assert "key" not in repr(backend).lower()

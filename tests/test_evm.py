"""EIP-712 / EIP-3009 signing and recovery (no chain)."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from x402_mcp.evm import chain_id_of, recover_payer, sign_authorization, split_signature
from x402_mcp.wire import ExactAuthorization, ExactPayload, PaymentRequirements

# The example payment of the x402 v2 specification (coinbase/x402 `specs/x402-specification-v2.md`
# §5.2.1, commit 01fd3a88): a real signature made on Base Sepolia for its USDC, whose EIP-712
# domain is name "USDC", version "2". Its time window is long past, so it serves only as a
# signature vector.
SPEC_REQUIREMENTS = PaymentRequirements(
    scheme="exact",
    network="eip155:84532",
    amount="10000",
    asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    max_timeout_seconds=60,
    extra={"name": "USDC", "version": "2"},
)
SPEC_PAYLOAD = ExactPayload.model_validate(
    {
        "signature": (
            "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173"
            "608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c"
        ),
        "authorization": {
            "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
            "to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            "value": "10000",
            "validAfter": "1740672089",
            "validBefore": "1740672154",
            "nonce": "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
        },
    }
)
SPEC_PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"


def _requirements(**changes: object) -> PaymentRequirements:
    return SPEC_REQUIREMENTS.model_copy(update=changes)


def test_the_spec_signature_recovers_to_its_payer() -> None:
    assert recover_payer(SPEC_PAYLOAD, SPEC_REQUIREMENTS) == SPEC_PAYER


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"extra": {"name": "USD Coin", "version": "2"}}, id="mainnet domain name"),
        pytest.param({"network": "eip155:8453"}, id="other chain id"),
        pytest.param({"asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}, id="other token"),
    ],
)
def test_the_spec_signature_does_not_recover_under_another_domain(changes: dict[str, object]) -> None:
    assert recover_payer(SPEC_PAYLOAD, _requirements(**changes)) != SPEC_PAYER


def test_the_spec_signature_does_not_cover_a_changed_value() -> None:
    tampered = SPEC_PAYLOAD.model_copy(
        update={"authorization": SPEC_PAYLOAD.authorization.model_copy(update={"value": "10001"})}
    )
    assert recover_payer(tampered, SPEC_REQUIREMENTS) != SPEC_PAYER


def test_sign_then_recover_round_trip() -> None:
    account = Account.create()
    requirements = _requirements(pay_to=Account.create().address)
    now = int(time.time())
    payload = sign_authorization(account, requirements, now=now)

    assert recover_payer(payload, requirements) == account.address
    auth = payload.authorization
    assert (auth.from_, auth.to, auth.value) == (account.address, requirements.pay_to, "10000")
    assert (int(auth.valid_after), int(auth.valid_before)) == (now - 600, now + 60)
    assert len(bytes.fromhex(payload.signature[2:])) == 65


def test_each_signature_gets_a_fresh_nonce() -> None:
    account = Account.create()
    nonces = {sign_authorization(account, SPEC_REQUIREMENTS).authorization.nonce for _ in range(5)}
    assert len(nonces) == 5


def test_recover_payer_returns_none_for_garbage_signatures() -> None:
    garbage = SPEC_PAYLOAD.model_copy(update={"signature": "0x" + "00" * 65})
    short = SPEC_PAYLOAD.model_copy(update={"signature": "0x1234"})
    assert recover_payer(garbage, SPEC_REQUIREMENTS) is None
    assert recover_payer(short, SPEC_REQUIREMENTS) is None


def test_split_signature_normalises_v_to_27_or_28() -> None:
    raw = "0x" + "11" * 32 + "22" * 32
    assert split_signature(raw + "00") == (27, bytes([0x11]) * 32, bytes([0x22]) * 32)
    assert split_signature(raw + "01")[0] == 28
    assert split_signature(raw + "1c")[0] == 28
    with pytest.raises(ValueError, match="65-byte"):
        split_signature("0x" + "11" * 64)


def test_chain_id_of() -> None:
    assert chain_id_of("eip155:84532") == 84532
    with pytest.raises(ValueError, match="not an EVM"):
        chain_id_of("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1")


def test_the_official_x402_client_signs_what_we_recover() -> None:
    from x402 import parse_payment_required, x402ClientSync
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    account = Account.create()
    client = x402ClientSync()
    client.register("eip155:84532", ExactEvmClientScheme(EthAccountSigner(account)))
    client.set_spend_controls(False)
    required = parse_payment_required({"x402Version": 2, "accepts": [SPEC_REQUIREMENTS.dump()]})
    official = client.create_payment_payload(required).model_dump(by_alias=True, exclude_none=True)

    exact = ExactPayload.model_validate(official["payload"])
    assert isinstance(exact.authorization, ExactAuthorization)
    assert recover_payer(exact, SPEC_REQUIREMENTS) == account.address

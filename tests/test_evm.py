"""EIP-712 / EIP-3009 signing and recovery (no chain)."""

from __future__ import annotations

import random
import time

import pytest
from eth_account import Account

from x402_mcp.evm import chain_id_of, recover_payer, sign_authorization, signature_problem, split_signature
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


def _malformed_signatures() -> list[object]:
    spec = bytes.fromhex(SPEC_PAYLOAD.signature[2:])
    rng = random.Random(402)
    signatures: list[object] = [
        "",
        "0x",
        "0x1",
        "0x" + "1" * 129,
        "zz" * 65,
        "0x" + "zz" * 65,
        "0x" + "11" * 64 + " 1",
        "0X" + spec.hex(),
        spec.hex(),
        None,
        65,
        b"\x11" * 65,
        "0x" + (spec[:64] + bytes([0x1F])).hex(),  # v beyond 27/28
        "0x" + bytes(65).hex(),  # r = s = 0
        "0x" + (b"\xff" * 64 + spec[64:]).hex(),  # r and s beyond the curve order
        "0x" + spec.hex() + "00",  # 66 bytes
    ]
    signatures += ["0x" + spec[:64].hex() + f"{v:02x}" for v in range(256)]
    signatures += ["0x" + rng.randbytes(rng.randrange(0, 200)).hex() for _ in range(200)]
    return signatures


def test_recover_payer_never_raises_on_a_malformed_signature() -> None:
    recovered = set()
    for signature in _malformed_signatures():
        payload = SPEC_PAYLOAD.model_construct(signature=signature, authorization=SPEC_PAYLOAD.authorization)
        recovered.add(recover_payer(payload, SPEC_REQUIREMENTS))
    # Only the genuine v (and its 0/1 form) recover to the payer; nothing raised.
    assert SPEC_PAYER in recovered and None in recovered


def test_recover_payer_never_raises_on_a_malformed_authorization() -> None:
    authorizations = [
        SPEC_PAYLOAD.authorization.model_copy(update=changes)
        for changes in (
            {"value": "５００００"},
            {"valid_before": str(2**256)},
            {"nonce": "0x" + "ab" * 31 + "a_"},
            {"from_": "0xnot-an-address"},
        )
    ]
    for authorization in authorizations:
        payload = SPEC_PAYLOAD.model_copy(update={"authorization": authorization})
        assert recover_payer(payload, SPEC_REQUIREMENTS) is None


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        ("0x" + "11" * 32 + "22" * 32 + "1d", "v=29"),
        ("0x" + "11" * 32 + "ff" * 32 + "1b", "high-s"),
        ("0x", "hex digits"),
        ("0x123", "hex digits"),
    ],
)
def test_signature_problems_are_named(signature: str, problem: str) -> None:
    assert problem in (signature_problem(signature) or "")


def test_a_well_formed_or_contract_wallet_signature_has_no_problem() -> None:
    assert signature_problem(SPEC_PAYLOAD.signature) is None
    assert signature_problem("0x" + "11" * 100) is None  # EIP-1271: only the chain can judge it


@pytest.mark.parametrize("network", ["eip155:８４５３", "eip155:²", "eip155:08453", "eip155:", "eip155:-1"])
def test_chain_ids_use_the_wire_integer_grammar(network: str) -> None:
    with pytest.raises(ValueError, match="not an EVM"):
        chain_id_of(network)

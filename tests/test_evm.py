"""EIP-712 / EIP-3009 signing and recovery (no chain)."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_domain, hash_type
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.address import to_checksum_address

from x402_mcp.core.evm import (
    AUTHORIZATION_TYPEHASH,
    AUTHORIZATION_TYPES,
    DOMAIN_TYPEHASH,
    _fast_digest,
    authorization_digest,
    chain_id_of,
    checksum_address,
    domain_separator,
    ecrecover,
    recover_payer,
    requirement_typed_data,
    sign_authorization,
    signature_problem,
    signed_by_payer,
    split_signature,
)
from x402_mcp.core.wire import ExactAuthorization, ExactPayload, PaymentRequirements, hex_bytes

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


# --- The fast EIP-712 digest and recovery agree with eth-account's generic path -----------------
#
# `authorization_digest` encodes TransferWithAuthorization by hand and `recover_signer` recovers with
# coincurve directly. The reference below is what `recover_payer` did before: eth-account's
# `encode_typed_data` and `Account.recover_message`. Any input on which they differ would be a
# payment accepted or refused differently, so they are compared over random and edge-case inputs.

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_UINT = 2**256 - 1
ODD_NAMES = [
    "USDC",
    "USD Coin",
    "",
    "ÜSDC",
    "美元币",
    "🪙 coin",
    "x" * 500,
    "nul\x00inside",
    "\u202eCDSU",
    " padded ",
    "2",
]


def _reference_digest(authorization: ExactAuthorization, requirements: PaymentRequirements) -> bytes | None:
    try:
        message = encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
    except Exception:
        return None
    return bytes(_hash_eip191_message(message))


def _reference_recover(payload: ExactPayload, requirements: PaymentRequirements) -> str | None:
    raw = hex_bytes(payload.signature)
    if raw is None or len(raw) != 65:
        return None
    try:
        message = encode_typed_data(full_message=requirement_typed_data(payload.authorization, requirements))
        return str(Account.recover_message(message, signature=raw))
    except Exception:
        return None


def _random_address(rng: random.Random) -> str:
    raw = rng.randbytes(20)
    form = rng.randrange(3)
    if form == 0:
        return "0x" + raw.hex()
    if form == 1:
        return "0x" + raw.hex().upper()
    return to_checksum_address(raw)


def _random_uint(rng: random.Random) -> str:
    return str(rng.choice([0, 1, MAX_UINT, 2**255, rng.randrange(2**256), rng.randrange(10**12)]))


def _random_case(rng: random.Random) -> tuple[Any, PaymentRequirements, ExactAuthorization]:
    account = Account.from_key(rng.randbytes(32))
    chain_id = rng.choice([1, 8453, 84532, 0, MAX_UINT, rng.randrange(2**64)])
    requirements = PaymentRequirements(
        scheme="exact",
        network=f"eip155:{chain_id}",
        amount=_random_uint(rng),
        asset=_random_address(rng),
        pay_to=_random_address(rng),
        max_timeout_seconds=60,
        extra={"name": rng.choice(ODD_NAMES), "version": rng.choice(ODD_NAMES)},
    )
    nonce = rng.choice(["0x" + "00" * 32, "0x" + "ff" * 32, "0x" + "AB" * 32, "0x" + rng.randbytes(32).hex()])
    authorization = ExactAuthorization(
        from_=rng.choice([account.address, account.address.lower(), _random_address(rng)]),
        to=_random_address(rng),
        value=_random_uint(rng),
        valid_after=_random_uint(rng),
        valid_before=_random_uint(rng),
        nonce=nonce,
    )
    return account, requirements, authorization


def _signature_variants(signature: bytes, rng: random.Random) -> list[str]:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin_s = (SECP256K1_ORDER - s).to_bytes(32, "big")  # the high-s twin, recovering with the other v
    variants = [signature, r + twin_s + bytes([55 - v])]
    variants += [signature[:64] + bytes([value]) for value in (0, 1, 2, 26, 27, 28, 29, 34, 35, 36, 37, 255)]
    variants += [
        bytes(32) + signature[32:],  # r = 0
        r + bytes(32) + signature[64:],  # s = 0
        SECP256K1_ORDER.to_bytes(32, "big") + signature[32:],  # r = n
        r + SECP256K1_ORDER.to_bytes(32, "big") + signature[64:],  # s = n
        (SECP256K1_ORDER - 1).to_bytes(32, "big") + signature[32:],
        r + (SECP256K1_ORDER - 1).to_bytes(32, "big") + signature[64:],
        b"\xff" * 32 + signature[32:],  # r beyond the field
        rng.randbytes(65),
    ]
    hexed = ["0x" + variant.hex() for variant in variants]
    return [
        *hexed,
        "0x" + signature.hex().upper(),
        "0x" + signature[:64].hex(),
        "0x" + signature.hex() + "00",
    ]


def test_the_type_hashes_and_domain_separator_are_eip712s() -> None:
    assert hash_type("EIP712Domain", AUTHORIZATION_TYPES) == DOMAIN_TYPEHASH
    assert hash_type("TransferWithAuthorization", AUTHORIZATION_TYPES) == AUTHORIZATION_TYPEHASH
    rng = random.Random(712)
    for name in ODD_NAMES:
        for chain_id in (0, 1, 84532, MAX_UINT):
            token = _random_address(rng)
            domain = {"name": name, "version": rng.choice(ODD_NAMES), "chainId": chain_id}
            expected = hash_domain({**domain, "verifyingContract": to_checksum_address(token)})
            assert domain_separator(domain["name"], domain["version"], chain_id, token) == expected


def test_the_fast_digest_and_recovery_equal_eth_accounts_on_random_payments() -> None:
    rng = random.Random(3009)
    recovered_payer = refused = 0
    for _ in range(120):
        account, requirements, authorization = _random_case(rng)
        expected_digest = _reference_digest(authorization, requirements)
        assert expected_digest is not None
        # Wire-form fields take the direct encoding, not eth-account's (which would agree trivially).
        assert _fast_digest(authorization, requirements) == expected_digest
        signed = bytes(
            account.sign_message(
                encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
            ).signature
        )
        for signature in _signature_variants(signed, rng):
            payload = ExactPayload.model_construct(signature=signature, authorization=authorization)
            expected = _reference_recover(payload, requirements)
            assert recover_payer(payload, requirements) == expected, (signature, requirements)
            same = expected is not None and expected.lower() == authorization.from_.lower()
            assert signed_by_payer(payload, requirements) is same
            recovered_payer += expected == account.address
            refused += expected is None
    # Both outcomes were exercised, many times.
    assert recovered_payer > 500 and refused > 500


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"asset": "036cbd53842c5426634e7929541ec2318f3dcf7e"}, id="token without 0x"),
        pytest.param({"asset": "0X036CBD53842C5426634E7929541EC2318F3DCF7E"}, id="token with 0X"),
        pytest.param({"asset": "0x036cbd53842c5426634e7929541ec2318f3dcf7"}, id="short token"),
        pytest.param({"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7E"}, id="bad checksum"),
        pytest.param({"asset": "not an address"}, id="garbage token"),
        pytest.param({"network": "eip155:" + str(2**256)}, id="chain id beyond uint256"),
        pytest.param({"network": "eip155:0"}, id="chain id 0"),
        pytest.param({"network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"}, id="not EVM"),
        pytest.param({"extra": {}}, id="no domain"),
        pytest.param({"extra": {"name": 5, "version": None}}, id="non-string domain"),
        pytest.param({"extra": {"name": "USDC\ud800", "version": "2"}}, id="lone surrogate"),
        pytest.param({"extra": {"name": "USDC", "version": "2", "salt": "0x00"}}, id="extra keys"),
    ],
)
def test_odd_requirements_get_the_same_answer_as_eth_account(changes: dict[str, object]) -> None:
    requirements = SPEC_REQUIREMENTS.model_copy(update=changes)
    assert recover_payer(SPEC_PAYLOAD, requirements) == _reference_recover(SPEC_PAYLOAD, requirements)
    expected = _reference_digest(SPEC_PAYLOAD.authorization, requirements)
    if expected is None:
        with pytest.raises(ValueError, match="EIP-712"):
            authorization_digest(SPEC_PAYLOAD.authorization, requirements)
    else:
        assert authorization_digest(SPEC_PAYLOAD.authorization, requirements) == expected


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"from_": "857b06519E91e3A54538791bDbb0E22373e36b66"}, id="from without 0x"),
        pytest.param({"from_": "0X857B06519E91E3A54538791BDBB0E22373E36B66"}, id="from with 0X"),
        pytest.param({"from_": "0x857b06519E91e3A54538791bDbb0E22373e36b6"}, id="short from"),
        pytest.param({"to": "0x209693bc6afc0c5328ba36faf03c514ef312287c"}, id="lowercase to"),
        pytest.param({"to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287c"}, id="bad checksum to"),
        pytest.param({"value": "010000"}, id="leading zero"),
        pytest.param({"value": "0x2710"}, id="hex value"),
        pytest.param({"value": 10000}, id="int value"),
        pytest.param({"valid_after": "-1"}, id="negative"),
        pytest.param({"valid_before": str(2**256)}, id="beyond uint256"),
        pytest.param({"nonce": "0x" + "f3" * 31}, id="short nonce"),
        pytest.param(
            {"nonce": "f3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"},
            id="nonce without 0x",
        ),
        pytest.param({"nonce": None}, id="no nonce"),
    ],
)
def test_hand_built_authorizations_get_the_same_answer_as_eth_account(changes: dict[str, object]) -> None:
    fields = {**dict(SPEC_PAYLOAD.authorization), **changes}
    authorization = ExactAuthorization.model_construct(**fields)
    payload = ExactPayload.model_construct(signature=SPEC_PAYLOAD.signature, authorization=authorization)
    expected = _reference_recover(payload, SPEC_REQUIREMENTS)
    assert recover_payer(payload, SPEC_REQUIREMENTS) == expected
    assert signed_by_payer(payload, SPEC_REQUIREMENTS) is (
        expected is not None
        and isinstance(authorization.from_, str)
        and expected.lower() == authorization.from_.lower()
    )


def test_the_malformed_signatures_get_the_same_answer_as_eth_account() -> None:
    for signature in _malformed_signatures():
        payload = SPEC_PAYLOAD.model_construct(signature=signature, authorization=SPEC_PAYLOAD.authorization)
        assert recover_payer(payload, SPEC_REQUIREMENTS) == _reference_recover(payload, SPEC_REQUIREMENTS)


def test_ecrecover_takes_only_a_digest_and_a_65_byte_signature() -> None:
    digest = authorization_digest(SPEC_PAYLOAD.authorization, SPEC_REQUIREMENTS)
    signature = bytes.fromhex(SPEC_PAYLOAD.signature[2:])
    assert ecrecover(digest, signature) == bytes.fromhex(SPEC_PAYER[2:])
    assert ecrecover(digest[:31], signature) is None
    assert ecrecover(digest, signature[:64]) is None
    assert ecrecover(digest, signature + b"\x00") is None


def test_a_remembered_recovery_answers_only_for_the_exact_signed_content() -> None:
    # Recover once (the answer is now cached), then change each signed input in turn:
    # none may be answered with the remembered signer.
    assert signed_by_payer(SPEC_PAYLOAD, SPEC_REQUIREMENTS)
    authorization = SPEC_PAYLOAD.authorization
    tampered_authorizations = [
        authorization.model_copy(update={"value": "10001"}),
        authorization.model_copy(update={"valid_after": "1740672088"}),
        authorization.model_copy(update={"valid_before": "1740672155"}),
        authorization.model_copy(update={"nonce": "0x" + "f3" * 32}),
        authorization.model_copy(update={"to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287D"}),
        authorization.model_copy(update={"from_": "0x857b06519E91e3A54538791bDbb0E22373e36b67"}),
    ]
    for tampered in tampered_authorizations:
        assert not signed_by_payer(
            SPEC_PAYLOAD.model_copy(update={"authorization": tampered}), SPEC_REQUIREMENTS
        )
    for changes in (
        {"extra": {"name": "USDC", "version": "1"}},
        {"extra": {"name": "USD Coin", "version": "2"}},
        {"network": "eip155:8453"},
        {"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7F"},
    ):
        assert not signed_by_payer(SPEC_PAYLOAD, SPEC_REQUIREMENTS.model_copy(update=changes))
    spec = bytes.fromhex(SPEC_PAYLOAD.signature[2:])
    for signature in (spec[:63] + bytes([spec[63] ^ 1]) + spec[64:], spec[:64] + bytes([spec[64] ^ 1])):
        payload = SPEC_PAYLOAD.model_copy(update={"signature": "0x" + signature.hex()})
        assert not signed_by_payer(payload, SPEC_REQUIREMENTS)
    assert signed_by_payer(SPEC_PAYLOAD, SPEC_REQUIREMENTS)  # and the original still is


def test_checksum_address_is_eip55() -> None:
    rng = random.Random(55)
    for _ in range(500):
        raw = rng.randbytes(20)
        assert checksum_address(raw) == to_checksum_address(raw)
    assert checksum_address(bytes(20)) == "0x" + "0" * 40


@pytest.mark.parametrize(
    ("authorization", "requirements"),
    [
        pytest.param(None, SPEC_REQUIREMENTS, id="no authorization"),
        pytest.param(ExactAuthorization.model_construct(), SPEC_REQUIREMENTS, id="empty authorization"),
        pytest.param(
            SPEC_PAYLOAD.authorization, SPEC_REQUIREMENTS.model_copy(update={"extra": None}), id="no extra"
        ),
        pytest.param(
            SPEC_PAYLOAD.authorization,
            SPEC_REQUIREMENTS.model_copy(update={"network": None}),
            id="no network",
        ),
        pytest.param(
            SPEC_PAYLOAD.authorization, PaymentRequirements.model_construct(), id="empty requirements"
        ),
    ],
)
def test_recovery_never_raises_on_hand_built_models(
    authorization: Any, requirements: PaymentRequirements
) -> None:
    payload = ExactPayload.model_construct(signature=SPEC_PAYLOAD.signature, authorization=authorization)
    assert recover_payer(payload, requirements) is None
    assert _reference_recover(payload, requirements) is None
    assert signed_by_payer(payload, requirements) is False
    with pytest.raises(ValueError, match="EIP-712"):
        authorization_digest(authorization, requirements)

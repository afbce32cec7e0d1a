"""The client's direct EIP-3009 digest and signature are eth-account's, byte for byte."""

from __future__ import annotations

import random
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from x402_mcp.client.payer import sign_digest, sign_with
from x402_mcp.core.evm import authorization_digest, new_authorization, recover_payer, requirement_typed_data
from x402_mcp.core.wire import ExactAuthorization, PaymentRequirements

NAMES = ["USD Coin", "USDC", "", "Ünïcödé ✓ 通貨", "x" * 300, "a\x00b", "Bridged USDC (Stargate)"]
VERSIONS = ["2", "1", "", "v2.0-beta", "☃"]


def _address(rng: random.Random) -> str:
    raw = "0x" + rng.randbytes(20).hex()
    return rng.choice([raw, raw.upper().replace("0X", "0x"), to_checksum_address(raw)])


def _requirements(rng: random.Random) -> PaymentRequirements:
    amount = rng.choice([0, 1, 10_000, 2**64, 2**256 - 1, rng.randrange(2**256)])
    chain = rng.choice([1, 8453, 84532, 31337, 2**53 + 1, 2**256 - 1])
    return PaymentRequirements.model_validate(
        {
            "scheme": "exact",
            "network": f"eip155:{chain}",
            "amount": str(amount),
            "asset": _address(rng),
            "payTo": _address(rng),
            "maxTimeoutSeconds": rng.choice([1, 60, 300, 86_400]),
            "extra": {"name": rng.choice(NAMES), "version": rng.choice(VERSIONS)},
        }
    )


def _authorization(rng: random.Random, payer: str, requirements: PaymentRequirements) -> ExactAuthorization:
    return new_authorization(
        payer,
        requirements,
        now=rng.randrange(2**40),
        valid_after=rng.choice([0, rng.randrange(2**64), 2**256 - 1]),
        valid_before=rng.choice([1, rng.randrange(2**64), 2**256 - 1]),
        nonce="0x" + rng.randbytes(32).hex(),
    )


def test_digest_and_signature_match_eth_accounts_typed_data_signing() -> None:
    rng = random.Random(15)
    accounts = [Account.from_key(rng.randbytes(32)) for _ in range(8)]
    for _ in range(400):
        account = rng.choice(accounts)
        requirements = _requirements(rng)
        authorization = _authorization(rng, rng.choice([account.address, _address(rng)]), requirements)
        message = encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
        digest = authorization_digest(authorization, requirements)
        assert digest == bytes(_hash_eip191_message(message))
        assert sign_digest(account, digest) == bytes(account.sign_message(message).signature)


def test_sign_with_gives_a_payment_the_verifier_recovers() -> None:
    rng = random.Random(3009)
    account = Account.create()
    for _ in range(50):
        requirements = _requirements(rng)
        payload = sign_with(account, requirements)
        assert payload.authorization.from_ == account.address
        assert payload.authorization.value == requirements.amount
        assert (recover_payer(payload, requirements) or "").lower() == account.address.lower()


def test_a_local_account_subclass_signs_its_own_way() -> None:
    """A subclass (a remote or hardware signer) gets its own `sign_message`, not the direct key path."""
    calls: list[str] = []

    class Audited(LocalAccount):
        def sign_message(self, signable_message: Any) -> Any:
            calls.append("signed")
            return super().sign_message(signable_message)

    plain = Account.create()
    audited = Audited(plain._key_obj, Account)  # type: ignore[arg-type]  # what Account.create passes
    requirements = _requirements(random.Random(2))
    payload = sign_with(audited, requirements)
    assert calls == ["signed"]
    assert (recover_payer(payload, requirements) or "").lower() == plain.address.lower()

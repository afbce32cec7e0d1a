"""The relayer's own EIP-1559 signing gives exactly the bytes eth_account's would."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_keys.datatypes import PrivateKey

from x402_mcp.settlement.eip1559 import sign_eip1559 as _sign_eip1559


@pytest.mark.parametrize(
    ("nonce", "tip", "max_fee", "gas", "data"),
    [
        (0, 0, 1, 21_000, b""),
        (1, 10**9, 2 * 875_000_000 + 10**9, 150_000, b"\x01"),
        (127, 1, 2**64, 500_000, b"\x7f"),
        (128, 2**70, 2**80 + 3, 1_000_000, b"\x80"),
        (2**32, 10**9, 10**12, 150_000, bytes(range(55))),
        (65_535, 10**9, 10**12, 150_000, bytes(range(56))),
        (7, 10**9, 10**12, 150_000, bytes(range(256)) * 3),
    ],
)
def test_a_transaction_signs_to_the_same_bytes_and_hash_as_eth_account(
    nonce: int, tip: int, max_fee: int, gas: int, data: bytes
) -> None:
    account = Account.create()
    to = Account.create().address
    for chain_id in (1, 1337, 84532, 131277322940537):
        expected = account.sign_transaction(
            {
                "type": 2,
                "chainId": chain_id,
                "nonce": nonce,
                "to": to,
                "value": 0,
                "data": data,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
        )
        ours = _sign_eip1559(
            PrivateKey(bytes(account.key)),
            chain_id=chain_id,
            nonce=nonce,
            max_priority_fee=tip,
            max_fee=max_fee,
            gas=gas,
            to=bytes.fromhex(to[2:]),
            data=data,
        )
        assert ours.raw_transaction == bytes(expected.raw_transaction)
        assert ours.hash == expected.hash

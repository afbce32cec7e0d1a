"""The settlement contract's calls a server makes, as calldata, and its views' answers decoded.

Pure: the chain driver (`x402_mcp.settlement.batch_chain`) sends or reads these. Only the calls
the server itself makes on the hot path are here: a payer's deposit (relayed), and the reads of
a channel's state.
"""

from __future__ import annotations

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from .constants import ERC3009_DEPOSIT_COLLECTOR_ADDRESS
from .records import ChainSnapshot
from .wire import ChannelConfig, Deposit

_CONFIG = "(address,address,address,address,address,uint40,bytes32)"

#: Gas a relayed deposit may use (a collector's transfer, the channel's first write).
DEPOSIT_GAS = 400_000
#: Gas a cooperative refund may use (one token transfer back to the payer).
REFUND_GAS = 200_000


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _config_tuple(config: ChannelConfig) -> tuple[object, ...]:
    return (
        config.payer,
        config.payer_authorizer,
        config.receiver,
        config.receiver_authorizer,
        config.token,
        config.withdraw_delay,
        bytes.fromhex(config.salt.removeprefix("0x")),
    )


def deposit_calldata(config: ChannelConfig, deposit: Deposit) -> bytes:
    """`deposit(config, amount, collector, collectorData)` through the ERC-3009 collector, whose
    data is the payer's `ReceiveWithAuthorization` (valid after/before, salt, signature).

    Raises:
        ValueError: the deposit is not an ERC-3009 one (Permit2 is not taken here).
    """
    authorization = deposit.authorization.erc3009_authorization
    if authorization is None:
        raise ValueError("only ERC-3009 deposits are relayed")
    data = abi_encode(
        ["uint256", "uint256", "uint256", "bytes"],
        [
            int(authorization.valid_after),
            int(authorization.valid_before),
            int(authorization.salt, 16),
            bytes.fromhex(authorization.signature.removeprefix("0x")),
        ],
    )
    arguments = abi_encode(
        [_CONFIG, "uint128", "address", "bytes"],
        [_config_tuple(config), int(deposit.amount), ERC3009_DEPOSIT_COLLECTOR_ADDRESS, data],
    )
    return _selector(f"deposit({_CONFIG},uint128,address,bytes)") + arguments


def refund_calldata(config: ChannelConfig, amount: int, nonce: int, signature: str) -> bytes:
    """`refundWithSignature(config, amount, nonce, signature)`: the receiver authorizer's
    cooperative refund of `amount` to the payer, at the channel's current refund nonce."""
    arguments = abi_encode(
        [_CONFIG, "uint128", "uint256", "bytes"],
        [_config_tuple(config), amount, nonce, bytes.fromhex(signature.removeprefix("0x"))],
    )
    return _selector(f"refundWithSignature({_CONFIG},uint128,uint256,bytes)") + arguments


def _channel_word(channel_id: str) -> bytes:
    return bytes.fromhex(channel_id.removeprefix("0x").rjust(64, "0"))


def channel_reads(channel_id: str) -> tuple[bytes, bytes, bytes]:
    """The three views a channel's state is read from: `channels`, `pendingWithdrawals`, `refundNonce`."""
    word = _channel_word(channel_id)
    return (
        _selector("channels(bytes32)") + word,
        _selector("pendingWithdrawals(bytes32)") + word,
        _selector("refundNonce(bytes32)") + word,
    )


def snapshot_from(channels: bytes, pending: bytes, refund_nonce: bytes) -> ChainSnapshot:
    """A `ChainSnapshot` from the three views' return data (see `channel_reads`)."""
    balance, claimed = abi_decode(["uint128", "uint128"], channels)
    _, initiated_at = abi_decode(["uint128", "uint40"], pending)
    (nonce,) = abi_decode(["uint256"], refund_nonce)
    return ChainSnapshot(int(balance), int(claimed), int(initiated_at), int(nonce))

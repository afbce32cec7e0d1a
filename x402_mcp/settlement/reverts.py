"""Revert reasons: getting them out of whatever the node raised, and mapping them to x402 codes.

Nodes report a revert differently: anvil (and geth-like RPCs) raise web3's
`ContractLogicError` carrying the ABI-encoded `Error(string)`; py-evm through
eth-tester raises `TransactionFailed("execution reverted: <reason>")` with no
data. The FiatTokenV2 revert strings are what make the mapping possible, which
is why our development USDC keeps Circle's wording exactly.
"""

from __future__ import annotations

from web3.exceptions import ContractLogicError, Web3RPCError

from .checks import INSUFFICIENT_BALANCE, INVALID_SIGNATURE, NONCE_ALREADY_USED, VALID_AFTER, VALID_BEFORE
from .contracts.eip3009 import revert_reason

__all__ = ["reason_for_revert", "revert_message"]

_PREFIX = "execution reverted"

# Substrings of FiatTokenV2 / ECRecover / ERC20 revert strings, most specific first.
_REASONS: tuple[tuple[str, str], ...] = (
    ("authorization is used or canceled", NONCE_ALREADY_USED),
    ("authorization is expired", VALID_BEFORE),
    ("authorization is not yet valid", VALID_AFTER),
    ("invalid signature", INVALID_SIGNATURE),  # also "ECRecover: invalid signature 's' value" etc.
    ("transfer amount exceeds balance", INSUFFICIENT_BALANCE),
)


def _strip(text: str) -> str:
    text = text.strip()
    if text.lower().startswith(_PREFIX):
        text = text[len(_PREFIX) :].lstrip(": ").strip()
    return text


def _is_eth_tester_revert(exc: BaseException) -> bool:
    # Matched by name: importing eth_tester pulls in py-evm (about 0.3 s), which a
    # server settling over plain JSON-RPC should never pay for.
    kind = type(exc)
    return kind.__name__ == "TransactionFailed" and kind.__module__.startswith("eth_tester")


def revert_message(exc: BaseException) -> str | None:
    """The revert reason carried by `exc`, "" for a revert without one, None if `exc` is no revert."""
    if isinstance(exc, ContractLogicError):
        data = exc.data if isinstance(exc.data, str) else None
        if data and data.startswith("0x"):
            try:
                decoded = revert_reason(bytes.fromhex(data[2:]))
            except ValueError:
                decoded = None
            if decoded is not None:
                return decoded
        return _strip(exc.message or str(exc))
    if _is_eth_tester_revert(exc):
        return _strip(str(exc.args[0]) if exc.args else "")
    if isinstance(exc, Web3RPCError) and _PREFIX in str(exc).lower():
        # Nodes that do not map reverts to ContractLogicError (ganache, some hosted RPCs).
        return _strip(exc.message or str(exc))
    return None


def reason_for_revert(message: str | None) -> str | None:
    """The x402 reason code for a known token revert message, or None."""
    if not message:
        return None
    lowered = message.lower()
    for needle, reason in _REASONS:
        if needle in lowered:
            return reason
    return None

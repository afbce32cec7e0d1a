"""One parser for every EVM address that enters from configuration: payees, tokens, allow-lists.

Wire payloads keep their own lenient reading (`wire.is_address`: any case, as
other implementations send); an address a person typed or pasted is held to
the rules here, because a typo in a payee sends money somewhere nobody controls.

- `0x` and 40 hex digits, nothing else (no missing `0x`, no `0X`, no spaces inside);
- all lower case or all upper case is taken as it is; mixed case is an EIP-55
  checksum and must be right, since a wrong one means a mistyped or altered address;
- the zero address is refused (it is nobody's; tokens burn what is sent there);
- a payee may not be the token contract itself (money sent to it is stuck).
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from ..errors import ConfigurationError
from .text import shown

__all__ = ["ZERO_ADDRESS", "parse_address", "parse_payee"]

ZERO_ADDRESS = "0x" + "0" * 40
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_address(value: object, *, what: str) -> str:
    """`value` as a checksummed EVM address, or a `ConfigurationError` naming `what`.

    `what` names where the value came from (`X402_PAY_TO`, `--pay-to`, `pay_to`),
    so the message tells the person which setting to fix.
    """
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{what} must be an EVM address as text (0x and 40 hex digits), not {shown(repr(value))}"
        )
    text = value.strip()
    if not text:
        raise ConfigurationError(f"{what} is empty: give an EVM address (0x and 40 hex digits)")
    if not text.startswith("0x"):
        hint = " (the prefix is a lower-case 0x)" if text[:2] == "0X" else " (it does not start with 0x)"
        raise ConfigurationError(
            f"{what}={shown(repr(text))} is not an EVM address{hint}: write 0x and 40 hex digits"
        )
    digits = text[2:]
    if len(digits) != 40 or not set(digits) <= _HEX_DIGITS:
        raise ConfigurationError(
            f"{what}={shown(repr(text))} is not an EVM address: write 0x and exactly 40 hex digits"
        )
    checksummed = to_checksum_address(text)
    if digits != digits.lower() and digits != digits.upper() and text != checksummed:
        raise ConfigurationError(
            f"{what}={text} fails its EIP-55 checksum (the mix of upper and lower case letters is wrong), "
            "so it is probably mistyped or altered: copy the address again from its source"
        )
    if checksummed == ZERO_ADDRESS:
        raise ConfigurationError(f"{what} is the zero address, which nobody controls: give a real address")
    return checksummed


def parse_payee(value: object, *, what: str, asset: str | None = None) -> str:
    """`parse_address`, and not the token contract `asset` (tokens sent to their own contract are stuck)."""
    payee = parse_address(value, what=what)
    if asset is not None and payee.lower() == asset.lower():
        raise ConfigurationError(
            f"{what}={payee} is the token contract itself, not a wallet: payments sent there are lost; "
            "give the address of the wallet that should receive them"
        )
    return payee

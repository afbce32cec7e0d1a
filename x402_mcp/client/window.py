"""How long an authorization the paying client signs stays valid, and the check of what it signed.

A signed EIP-3009 authorization can move its money until its `validBefore`, by
anyone holding it. The server names the window it wants (`maxTimeoutSeconds`,
up to 68 years on the wire); the client never signs more than its own cap
(`DEFAULT_VALIDITY_SECONDS` unless configured, never above
`MAX_VALIDITY_SECONDS`). A server asking for more gets the capped window: the
server's value is the longest it accepts, and settling takes seconds. The
window, nonce and payer are fixed before the payment is reserved, so the budget
file knows which authorization to look for on chain and when it expires.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..core.wire import ExactAuthorization, PaymentRequirements
from ..errors import ConfigurationError, X402MCPError

DEFAULT_VALIDITY_SECONDS = 600
"""Ten minutes: ample for a server to verify and settle, even after a slow tool."""

MIN_VALIDITY_SECONDS = 10
"""Below this a server could not settle in time (the x402 facilitator wants 6 s left)."""

MAX_VALIDITY_SECONDS = 24 * 60 * 60
"""The most `max_validity` may be configured to: one day."""

CLOCK_SKEW_SECONDS = 600
"""`validAfter` lies this far in the past (as x402 clients do), so a chain whose latest block is
older than our clock (an idle dev chain's can be minutes old) still accepts it. It does not
lengthen the time the authorization can be used: that ends at `validBefore`."""


def validity_seconds(value: object) -> int:
    """A configured validity cap, checked.

    Raises:
        ConfigurationError: not a whole number of seconds within
            [MIN_VALIDITY_SECONDS, MAX_VALIDITY_SECONDS].
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"max_validity must be a whole number of seconds, not {value!r}")
    if not MIN_VALIDITY_SECONDS <= value <= MAX_VALIDITY_SECONDS:
        raise ConfigurationError(
            f"max_validity {value} s is outside {MIN_VALIDITY_SECONDS} to {MAX_VALIDITY_SECONDS} s"
        )
    return value


@dataclass(frozen=True, slots=True)
class Window:
    """The authorization to sign for one payment, chosen before it is reserved."""

    payer: str
    nonce: str
    valid_after: int
    valid_before: int

    def authorization(self, requirement: PaymentRequirements) -> ExactAuthorization:
        return ExactAuthorization.model_validate(
            {
                "from": self.payer,
                "to": requirement.pay_to,
                "value": requirement.amount,
                "validAfter": str(self.valid_after),
                "validBefore": str(self.valid_before),
                "nonce": self.nonce,
            }
        )


def plan_window(payer: str, requirement: PaymentRequirements, *, cap: int, now: float) -> Window:
    """The window for `requirement`: from a little before `now` to the shorter of the server's
    `maxTimeoutSeconds` and `cap` after it, with a fresh random nonce."""
    start = int(now)
    lasts = min(requirement.max_timeout_seconds, cap)
    return Window(payer, "0x" + secrets.token_bytes(32).hex(), start - CLOCK_SKEW_SECONDS, start + lasts)


def check_signed(
    signed: ExactAuthorization, window: Window, requirement: PaymentRequirements, *, cap: int, now: float
) -> None:
    """Refuse to send an authorization that is not exactly the one the budget reserved.

    The signer is the application's (a smart account, a remote signer); whatever it
    returned must pay exactly the checked amount, to the checked payee, from the
    reserved payer, with the reserved nonce, in a window no longer than `cap`.

    Raises:
        X402MCPError: naming the field that differs; nothing is sent.
    """
    expected = window.authorization(requirement)
    for field, got, wanted in (
        ("from", signed.from_.lower(), expected.from_.lower()),
        ("to", signed.to.lower(), expected.to.lower()),
        ("value", signed.value, expected.value),
        ("nonce", signed.nonce.lower(), expected.nonce.lower()),
        ("validAfter", signed.valid_after, expected.valid_after),
        ("validBefore", signed.valid_before, expected.valid_before),
    ):
        if got != wanted:
            raise X402MCPError(
                f"the signed authorization's {field} differs from the reserved payment; not sent"
            )
    if int(signed.valid_after) > now or int(signed.valid_before) - int(now) > cap:
        raise X402MCPError("the signed authorization's validity window exceeds the client's cap; not sent")

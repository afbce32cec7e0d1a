"""Every exception x402-mcp raises, under one root.

```
X402MCPError
├── ConfigurationError          bad settings; raised at start-up, never during a call
│   └── InvalidPrice            a price (function) that yields no price: found during a call
├── PaymentError                the caller can fix it: shown to them as a tool error
│   ├── MalformedPayment        not a parseable x402 payment payload
│   ├── PaymentMismatch         wrong payee, asset, network, scheme or amount
│   ├── PaymentExpired          validBefore has passed (or the request itself expired)
│   ├── PaymentNotYetValid      validAfter lies in the future
│   ├── InvalidSignature        the signature does not recover to the payer
│   ├── InsufficientFunds       the payer's balance is below the amount
│   ├── PaymentReplayed         the authorization or the request was already used
│   ├── UnknownPaymentRequest   no such paymentRequestId (or not the caller's)
│   ├── PaymentInProgress       another call is settling or redeeming the same request
│   ├── TooManyOpenRequests     the caller holds too many unpaid payment requests
│   └── PaymentRejected         the settlement backend refused it for another reason
├── Refused                     a refused payment, carrying the PaymentError the payer is shown
├── SettlementError             the backend failed (RPC down, tx reverted): a crash
│                               (settlement's own: AnswerTooLarge and AnswerTooSlow, a node's
│                               answer past its bounds; OutcomeUnknown, a lost settle answer)
└── LedgerError                 the ledger failed or refused a state change
    ├── StateConflict           a transition was attempted from the wrong state (x402_mcp.core.states)
    └── ChannelConflict         a channel was charged or held since its voucher was checked
```

`PaymentError.reason` carries an x402 reason code (for example
`invalid_exact_evm_payload_signature`) so machines can branch on it; the
message is for people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .core.text import shown


class X402MCPError(Exception):
    """Root of every exception raised by x402-mcp."""


class ConfigurationError(X402MCPError, ValueError):
    """A setting is missing or invalid (raised when `Payments` is built)."""


class InvalidPrice(ConfigurationError):
    """A tool's price could not be computed: its price function failed, or what it gave
    is not a price. The operator's bug, found during a call: logged with its cause, and
    the caller is told the tool did not run and nothing was charged."""


class PaymentError(X402MCPError):
    """A payment problem the caller can fix.

    The gate turns it into a tool error (`isError: true`) whose text is the
    message, together with a fresh `PaymentRequired`, so the caller can retry.
    """

    reason: str = "invalid_payload"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MalformedPayment(PaymentError):
    reason = "invalid_payload"


class PaymentMismatch(PaymentError):
    reason = "invalid_payment_requirements"


class PaymentExpired(PaymentError):
    reason = "invalid_exact_evm_payload_authorization_valid_before"


class PaymentNotYetValid(PaymentError):
    reason = "invalid_exact_evm_payload_authorization_valid_after"


class InvalidSignature(PaymentError):
    reason = "invalid_exact_evm_payload_signature"


class InsufficientFunds(PaymentError):
    reason = "insufficient_funds"


class PaymentReplayed(PaymentError):
    reason = "invalid_exact_evm_nonce_already_used"


class UnknownPaymentRequest(PaymentError):
    reason = "unknown_payment_request"


class PaymentInProgress(PaymentError):
    reason = "payment_in_progress"


class TooManyOpenRequests(PaymentError):
    """The caller already holds as many unpaid requests as allowed; pay or let some expire."""

    reason = "too_many_open_requests"


class PaymentRejected(PaymentError):
    """The settlement backend said no, with a reason code we pass through as is."""


class SettlementError(X402MCPError):
    """The settlement backend failed: the caller sees a short failure, the log the cause."""


class LedgerError(X402MCPError):
    """The ledger failed: the caller sees a short failure, the log the cause."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a payment is refused, as a value: an x402 reason code and a sentence for people.

    What pure checks and payment schemes answer instead of raising; `PaymentError`
    is the same refusal once it is raised to the caller (`of` goes back).
    """

    reason: str
    message: str

    @classmethod
    def of(cls, error: PaymentError) -> Refusal:
        """The refusal a raised `PaymentError` stands for."""
        return cls(error.reason, str(error))


class Refused(X402MCPError):
    """A payment was refused: the `PaymentError` to show the caller, and the request it concerns
    when that one is still payable (None when it is unknown or no longer the caller's to pay).

    The one refusal raised between the layers (the gate's collector raises it, the page and
    the gate answer it); `error` is what the caller sees.
    """

    # `request` is the payment record (`PaymentRequest`); typed loosely because this module
    # sits below the layer that defines it.
    def __init__(self, error: PaymentError, request: Any, corrections: Sequence[Any] = ()) -> None:
        super().__init__(str(error))
        self.error = error
        self.request = request
        self.corrections = tuple(corrections)
        """A scheme's corrected requirements (`PaymentRequirements`), to challenge with in place
        of its own: a stale batch-settlement voucher's channel state."""


class ChannelConflict(LedgerError):
    """A batch-settlement channel was not as a charge or reservation expected: another call
    charged it since its voucher was checked, holds it, or it is missing. `reason` is the
    spec's code for the answer (the corrective `…_cumulative_amount_mismatch`, `…_channel_busy`,
    `…_missing_channel`, `…_charge_exceeds_signed_cumulative`)."""

    def __init__(self, channel_id: str, reason: str, message: str) -> None:
        self.channel_id = channel_id
        self.reason = reason
        super().__init__(f"channel {channel_id}: {message}")


_REASON_FRAGMENTS: tuple[tuple[str, type[PaymentError]], ...] = (
    ("signature", InvalidSignature),
    ("nonce", PaymentReplayed),
    ("insufficient", InsufficientFunds),
    ("valid_before", PaymentExpired),
    ("valid_after", PaymentNotYetValid),
    ("recipient", PaymentMismatch),
    ("value", PaymentMismatch),
    ("network", PaymentMismatch),
)


def payment_error_for(reason: str | None, message: str | None) -> PaymentError:
    """The specific `PaymentError` for a backend's reason code (passed through, made safe to show).

    A remote facilitator wrote both: they are bounded and their invisible and
    direction-changing characters escaped before anyone sees them.
    """
    code = shown(reason) if reason else "payment_rejected"
    text = shown(message, 400) if message else f"the payment was refused ({code})"
    for fragment, kind in _REASON_FRAGMENTS:
        if fragment in code:
            return kind(text, reason=code)
    return PaymentRejected(text, reason=code)

"""OpenTelemetry tracing: what happened to the payment, on the MCP call's own span.

Both SDKs open one SERVER span per `tools/call` (the MCP SDK's
`OpenTelemetryMiddleware`, FastMCP 4's seam span). The gate marks that span,
captured when the call enters it, with `x402.*` attributes, and opens its own
spans (`x402.verify`, `x402.settle`, `x402.ledger.<step>`) under it. Only the
OpenTelemetry API is used: without an SDK configured every span is a no-op.

A payment challenge is an `isError` tool result, which the MCP SDK marks
`error.type="tool_error"` and status ERROR once the gate has returned. The
gate sets the status of a challenge to OK first: OpenTelemetry makes OK final
(later `set_status` calls are ignored, by the specification and the SDK), so
error-rate views that read span status do not count unpaid first calls. The
SDK's `error.type` attribute is written after the gate returns and cannot be
removed; `x402.outcome="payment_required"` is what tells a challenge apart.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from ..errors import PaymentError
from .events import PaymentEvent

TRACER_NAME = "x402_mcp"
_tracer = trace.get_tracer(TRACER_NAME)

OUTCOME_OF: dict[str, str] = {
    "quoted": "payment_required",
    "paid": "paid",
    "redeemed": "redeemed",
    "refused": "refused",
    "settlement_failed": "settle_failed",
}
"""The `x402.outcome` each event gives the call it happens in (`reconciled` runs outside calls)."""


class CallTrace:
    """The MCP call span of one paid call, and the payment outcome recorded on it so far."""

    __slots__ = ("outcome", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.outcome: str | None = None

    def record(self, event: PaymentEvent) -> None:
        outcome = OUTCOME_OF.get(event.kind)
        if outcome is None:
            return
        if outcome == "redeemed" and self.outcome == "paid":
            return  # paid in this very call, then run: the call's outcome is that it paid
        self.outcome = outcome
        self.span.set_attributes(event_attributes(event, outcome))

    def challenged(self, event: PaymentEvent) -> None:
        """The call is answered with the challenge of an existing request (an unpaid id, a
        payment refused while its request stays payable): `payment_required`, unless the
        call already recorded what happened (a refusal keeps its reason)."""
        if self.outcome is None:
            self.outcome = "payment_required"
            self.span.set_attributes(event_attributes(event, self.outcome))

    def finish(self) -> None:
        """Called when the gate answers: a challenge is not an error (see the module doc)."""
        if self.outcome == "payment_required":
            self.span.set_status(Status(StatusCode.OK))


_current_call: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "x402_mcp_call_trace", default=None
)


def record_challenge(event: PaymentEvent) -> None:
    """A challenge restated in the call under way (see `CallTrace.challenged`)."""
    call = _current_call.get()
    if call is not None:
        call.challenged(event)


def current_outcome() -> str | None:
    """The payment outcome recorded so far in the paid call under way (None outside one)."""
    call = _current_call.get()
    return None if call is None else call.outcome


def event_attributes(event: PaymentEvent, outcome: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"x402.outcome": outcome}
    optional = {
        "x402.payment_request_id": event.request_id,
        "x402.scheme": event.scheme,
        "x402.network": event.network,
        "x402.asset": event.asset,
        # A string: a uint256 amount may not fit an OpenTelemetry int (64-bit).
        "x402.amount": None if event.amount is None else str(event.amount),
        "x402.refusal.reason": event.reason,
        "x402.transaction": event.tx_hash,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    return attributes


@contextlib.contextmanager
def traced_call() -> Iterator[CallTrace]:
    """Mark the current span (the framework's span of this `tools/call`) as this paid call's."""
    call = CallTrace(trace.get_current_span())
    token = _current_call.set(call)
    try:
        yield call
    finally:
        _current_call.reset(token)
        call.finish()


def record_on_call(event: PaymentEvent) -> None:
    """Put `event` on the span of the call it happened in (when there is one)."""
    call = _current_call.get()
    if call is not None:
        call.record(event)
    elif event.kind != "reconciled":
        # The page's or the x402 HTTP route's payments: on whatever span is current.
        outcome = OUTCOME_OF[event.kind]
        trace.get_current_span().set_attributes(event_attributes(event, outcome))


@contextlib.contextmanager
def operation_span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    """A span of ours (`x402.verify`, `x402.settle`, `x402.ledger.<step>`) under the current one.

    A payment refused on the way (`errors.Refused`, `PaymentError`) is the payer's
    mistake, not a failure of this server: its reason code is recorded and the status
    left unset. Any other exception (a backend or ledger crash) makes the span an error.
    """
    with _tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except Exception as exc:
            reason = refusal_reason(exc)
            if reason is not None:
                span.set_attribute("x402.refusal.reason", reason)
            else:
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise


def refusal_reason(exc: BaseException) -> str | None:
    """The x402 reason code of a refusal (`PaymentError`, or `errors.Refused` wrapping one)."""
    error = exc if isinstance(exc, PaymentError) else getattr(exc, "error", None)
    return error.reason if isinstance(error, PaymentError) else None

"""What operators see: traces, metrics and hooks of payment events (one `Telemetry` per `Payments`).

The money path calls one method per event (`quoted`, `paid`, `redeemed`, `refused`,
`settlement_failed`, `reconciled`) right after the ledger recorded it; each puts the
event on the call's span (`tracing`), counts it (`metrics`) and queues it for the
author's hooks (`hooks`). None of them raises or waits: telemetry never changes or
delays what happens to a payment.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry.trace import Span

from ..core.states import State, StateConflict
from ..errors import LedgerError
from .events import EVENT_KINDS, EventKind, PaymentEvent
from .hooks import Hook, Hooks
from .metrics import METRICS, PaymentMetrics
from .prometheus import MetricsEndpoint
from .tracing import (
    CallTrace,
    current_outcome,
    operation_span,
    record_challenge,
    record_on_call,
    refusal_reason,
    traced_call,
)

if TYPE_CHECKING:
    from ..ledger.base import Ledger, Owner, PaymentRequest, SettlementRecord

__all__ = ["EVENT_KINDS", "METRICS", "EventKind", "Hook", "PaymentEvent", "Telemetry"]

logger = logging.getLogger("x402_mcp.telemetry")
OPEN_COUNT_LIMIT = 10_000


class BackendCall:
    """One verify or settle under way: how it ended (`ok`, `refused`, `error`)."""

    __slots__ = ("outcome", "span")

    def __init__(self) -> None:
        self.outcome = "ok"
        self.span: Span | None = None

    def refused(self, reason: str) -> None:
        """The backend answered no, with x402 reason code `reason` (not a failure of ours)."""
        self.outcome = "refused"
        if self.span is not None:
            self.span.set_attribute("x402.refusal.reason", reason)


class Telemetry:
    """Spans, metrics and hooks for the payment events of one `Payments`."""

    def __init__(
        self,
        *,
        hook_queue_size: int = 1000,
        hook_timeout_seconds: float = 30.0,
        metrics_endpoint: bool = False,
        metrics_token: str | None = None,
    ) -> None:
        self.metrics = PaymentMetrics()
        self.endpoint = MetricsEndpoint.configure(
            self.metrics.registry, enabled=metrics_endpoint, token=metrics_token
        )
        """The Prometheus `/metrics` route, when enabled (mounted beside the page)."""
        self.hooks = Hooks(
            queue_size=hook_queue_size, timeout_seconds=hook_timeout_seconds, on_failure=self._hook_failed
        )

    # -- the call and our own spans -----------------------------------------------------------

    def call(self) -> contextlib.AbstractContextManager[CallTrace]:
        """Entered by the gate around one paid call: the current span becomes the call's."""
        return traced_call()

    @contextlib.contextmanager
    def backend(self, operation: str, request: PaymentRequest, scheme: str | None) -> Iterator[BackendCall]:
        """A verify or settle by the settlement backend: span `x402.<operation>`, its latency
        (`x402.<operation>.duration`) and, when it crashes, `x402.backend.failures`.

        The backend's "no" is an answer, not an exception: the caller reports it with
        `BackendCall.refused(reason)`.
        """
        attributes = {"x402.payment_request_id": request.id, "x402.network": request.network}
        if scheme is not None:
            attributes["x402.scheme"] = scheme
        started = time.perf_counter()
        call = BackendCall()
        try:
            with operation_span(f"x402.{operation}", attributes) as span:
                call.span = span
                yield call
        except Exception as exc:
            call.outcome = "refused" if refusal_reason(exc) is not None else "error"
            if call.outcome == "error":
                self.metrics.add(
                    "x402.backend.failures", 1, {"backend": _backend_of(exc), "operation": operation}
                )
            raise
        finally:
            self.metrics.observe(
                f"x402.{operation}.duration",
                time.perf_counter() - started,
                {"network": request.network, "outcome": call.outcome},
            )

    @contextlib.contextmanager
    def ledger_step(self, step: str, request_id: str | None) -> Iterator[None]:
        """One ledger write of the money path: span `x402.ledger.<step>`; a crash is counted."""
        attributes = {} if request_id is None else {"x402.payment_request_id": request_id}
        try:
            with operation_span(f"x402.ledger.{step}", attributes):
                yield
        except Exception as exc:
            if isinstance(exc, LedgerError) and not isinstance(exc, StateConflict):
                self.metrics.add("x402.backend.failures", 1, {"backend": "ledger", "operation": step})
            raise

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: PaymentEvent) -> None:
        """Record `event` on the call's span, in the metrics, and queue it for the hooks."""
        try:
            record_on_call(event)
            self._count(event)
        except Exception:  # telemetry must never fail a payment
            logger.exception("could not record the %s event of %s", event.kind, event.request_id)
        self.hooks.emit(event)

    def quoted(self, request: PaymentRequest) -> None:
        self.emit(_event("quoted", request, at=request.created_at))

    def challenged(self, request: PaymentRequest) -> None:
        """The call is answered with `request`'s challenge: on the span only (no event, no count;
        the quote was counted when issued)."""
        try:
            record_challenge(_event("quoted", request, at=request.created_at))
        except Exception:  # telemetry must never fail a payment
            logger.exception("could not record the challenge of %s", request.id)

    def paid(self, request: PaymentRequest, record: SettlementRecord, scheme: str | None) -> None:
        self.emit(_settled_event("paid", request, record, at=record.settled_at, scheme=scheme))

    def redeemed(self, request: PaymentRequest, at: float) -> None:
        self.emit(_event("redeemed", request, at=at))

    def refused(self, tool: str, reason: str, request: PaymentRequest | None, at: float) -> None:
        if current_outcome() == "settle_failed":
            return  # the gate answers a refused settlement as a refusal: it was told already
        if request is None:
            self.emit(PaymentEvent("refused", None, tool, reason=reason, at=at))
        else:
            self.emit(_event("refused", request, at=at, reason=reason))

    def settlement_failed(self, request: PaymentRequest, reason: str, scheme: str | None, at: float) -> None:
        self.emit(_event("settlement_failed", request, at=at, reason=reason, scheme=scheme))

    def reconciled(self, request: PaymentRequest, record: SettlementRecord | None, at: float) -> None:
        if record is None:
            self.emit(_event("reconciled", request, at=at, paid=False))
        else:
            self.emit(_settled_event("reconciled", request, record, at=at, paid=True))

    def swept(self, expired: int, network: str) -> None:
        if expired:
            self.metrics.add("x402.requests.expired", expired, {"network": network})

    async def refresh_open(self, ledger: Ledger, owner: Owner, now: float) -> None:
        """Count the issued, unexpired requests of `owner` for `x402.requests.open` (at upkeep).

        Counts at most `OPEN_COUNT_LIMIT`: past that the gauge reads the limit.
        """
        issued = await ledger.requests(states=[State.ISSUED], limit=OPEN_COUNT_LIMIT, owner=owner)
        count = sum(1 for request in issued if not request.is_expired(now))
        self.metrics.set_open(count, {"network": owner.network})

    def _count(self, event: PaymentEvent) -> None:
        where = {"tool": event.tool, "network": event.network or ""}
        if event.kind == "quoted":
            self.metrics.add("x402.requests.issued", 1, where)
        elif event.kind == "redeemed":
            self.metrics.add("x402.requests.redeemed", 1, where)
        elif event.kind == "refused":
            self.metrics.add("x402.refusals", 1, {"tool": event.tool, "reason": event.reason or ""})
        elif event.kind == "settlement_failed":
            self.metrics.add("x402.settlement.failures", 1, {**where, "reason": event.reason or ""})
        elif (event.kind == "paid" or (event.kind == "reconciled" and event.paid)) and event.amount:
            self.metrics.add("x402.requests.paid", 1, where)
            self.metrics.add("x402.revenue", event.amount, {**where, "asset": event.asset or ""})

    def _hook_failed(self, kind: str, why: str) -> None:
        self.metrics.add("x402.hook.failures", 1, {"event": kind, "why": why})


def _event(
    kind: EventKind,
    request: PaymentRequest,
    *,
    at: float,
    reason: str | None = None,
    scheme: str | None = None,
    paid: bool | None = None,
) -> PaymentEvent:
    return PaymentEvent(
        kind,
        request.id,
        request.tool,
        amount=request.price,
        asset=request.asset,
        network=request.network,
        scheme=scheme,
        payer=request.payer,
        tx_hash=request.tx_hash,
        reason=reason,
        paid=paid,
        at=at,
    )


def _settled_event(
    kind: EventKind,
    request: PaymentRequest,
    record: SettlementRecord,
    *,
    at: float,
    scheme: str | None = None,
    paid: bool | None = None,
) -> PaymentEvent:
    """An event of `request` with what its settlement says (amount, asset, network, payer and
    transaction as the chain recorded them, not as quoted)."""
    return PaymentEvent(
        kind,
        request.id,
        request.tool,
        amount=record.amount,
        asset=record.asset,
        network=record.network,
        scheme=scheme,
        payer=record.payer,
        tx_hash=record.tx_hash,
        paid=paid,
        at=at,
    )


def _backend_of(exc: BaseException) -> str:
    return "ledger" if isinstance(exc, LedgerError) else "settlement"

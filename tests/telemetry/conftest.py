"""The real OpenTelemetry SDK, installed once per session as the global providers.

OpenTelemetry lets a process set its global tracer and meter providers once, so
the session keeps one in-memory span exporter and one in-memory metric reader;
each test starts from a cleared exporter. The paid shop is the gate tests' (both
frameworks, real MCP client sessions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.gate.conftest import Shop, client, drain_payer, framework, gate_chain, shop  # noqa: F401 - fixtures
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.errors import SettlementError
from x402_mcp.settlement.base import Settlement

_exporter = InMemorySpanExporter()
_reader = InMemoryMetricReader()


@pytest.fixture(scope="session")
def otel() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))
    return _exporter, _reader


@pytest.fixture
def spans(otel: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> Iterator[InMemorySpanExporter]:
    exporter, _ = otel
    exporter.clear()
    yield exporter
    exporter.clear()


def call_spans(exporter: InMemorySpanExporter, tool: str = "answer") -> list[ReadableSpan]:
    """The SERVER spans of `tools/call` of `tool` (one per call), oldest first.

    FastMCP names the tool on its span only once the call gets past the middleware (the
    gate): a span of a challenge has no `gen_ai.tool.name`, so one without it counts.
    """
    found = [
        span
        for span in exporter.get_finished_spans()
        if span.kind is trace.SpanKind.SERVER
        and (span.attributes or {}).get("gen_ai.tool.name", tool) == tool
        and (span.attributes or {}).get("mcp.method.name") == "tools/call"
    ]
    return sorted(found, key=lambda span: span.start_time or 0)


def children_of(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    """Every span below `parent` (any depth)."""
    spans = exporter.get_finished_spans()
    ids = {parent.context.span_id}
    below: list[ReadableSpan] = []
    grew = True
    while grew:
        grew = False
        for span in spans:
            if span.parent is not None and span.parent.span_id in ids and span.context.span_id not in ids:
                ids.add(span.context.span_id)
                below.append(span)
                grew = True
    return below


@dataclass
class DrainedFirst:
    """The chain's own backend, but the payer empties their balance between verification and
    settlement: ours is then refused (a real settlement refusal, nothing moved), so the
    request is released and reported as a failed settlement."""

    inner: Settlement
    shop: Shop

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await self.inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        drain_payer(self.shop)
        return await self.inner.settle(payload, requirements)

    async def supported(self) -> SupportedResponse:
        return await self.inner.supported()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Unreachable(DrainedFirst):
    """A settlement backend that verifies but is down when asked to settle (nothing moves)."""

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        raise SettlementError("connection refused by the settlement backend")

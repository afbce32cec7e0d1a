"""Payment metrics: OpenTelemetry instruments, mirrored in a registry of our own.

Every measurement goes to the OpenTelemetry metrics API (`opentelemetry.metrics`,
meter `x402_mcp`), which costs nothing until the operator installs a
`MeterProvider` and exporter of their choice, and to `MetricsRegistry`, exact
in-process totals that the optional Prometheus `/metrics` route writes out (so
scraping needs no OpenTelemetry SDK). Amounts are integers of atomic units.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

METER_NAME = "x402_mcp"
Kind = Literal["counter", "histogram", "gauge"]
LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class Metric:
    """One instrument: its OpenTelemetry name and unit, and its Prometheus name."""

    name: str
    kind: Kind
    unit: str
    prometheus: str
    description: str


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "x402.requests.issued",
            "counter",
            "{request}",
            "x402_requests_issued_total",
            "Payment requests issued (challenges quoted).",
        ),
        Metric(
            "x402.requests.paid",
            "counter",
            "{request}",
            "x402_requests_paid_total",
            "Payment requests settled and recorded paid (calls, the page, reconciliation).",
        ),
        Metric(
            "x402.requests.redeemed",
            "counter",
            "{request}",
            "x402_requests_redeemed_total",
            "Paid requests consumed by a successful tool run.",
        ),
        Metric(
            "x402.requests.expired",
            "counter",
            "{request}",
            "x402_requests_expired_total",
            "Payment requests that expired unpaid (found by the periodic sweep).",
        ),
        Metric(
            "x402.refusals",
            "counter",
            "{refusal}",
            "x402_refusals_total",
            "Payments or request ids refused, by x402 reason code.",
        ),
        Metric(
            "x402.settlement.failures",
            "counter",
            "{settlement}",
            "x402_settlement_failures_total",
            "Settlements the backend refused (reason code) or failed (backend_error).",
        ),
        Metric(
            "x402.revenue",
            "counter",
            "{atomic_unit}",
            "x402_revenue_atomic_total",
            "Settled revenue in atomic units of the asset, by asset, network and tool.",
        ),
        Metric(
            "x402.backend.failures",
            "counter",
            "{failure}",
            "x402_backend_failures_total",
            "Crashes of the settlement backend or the ledger, by backend and operation.",
        ),
        Metric(
            "x402.hook.failures",
            "counter",
            "{failure}",
            "x402_hook_failures_total",
            "Payment hooks that raised, timed out (why) or whose event was dropped (queue full).",
        ),
        Metric(
            "x402.verify.duration",
            "histogram",
            "s",
            "x402_verify_duration_seconds",
            "Time the settlement backend took to verify a payment.",
        ),
        Metric(
            "x402.settle.duration",
            "histogram",
            "s",
            "x402_settle_duration_seconds",
            "Time the settlement backend took to settle a payment.",
        ),
        Metric(
            "x402.requests.open",
            "gauge",
            "{request}",
            "x402_requests_open",
            "Issued, unpaid, unexpired payment requests (as of the last upkeep).",
        ),
    )
}

Labels = tuple[tuple[str, str], ...]


def _labels(attributes: Mapping[str, str]) -> Labels:
    return tuple(sorted(attributes.items()))


@dataclass
class HistogramState:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


class MetricsRegistry:
    """Exact running totals of every instrument, for the Prometheus exposition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[Labels, int]] = {}
        self.histograms: dict[str, dict[Labels, HistogramState]] = {}
        self.gauges: dict[str, dict[Labels, int]] = {}

    def add(self, name: str, value: int, attributes: Mapping[str, str]) -> None:
        with self._lock:
            series = self.counters.setdefault(name, {})
            key = _labels(attributes)
            series[key] = series.get(key, 0) + value

    def observe(self, name: str, seconds: float, attributes: Mapping[str, str]) -> None:
        with self._lock:
            series = self.histograms.setdefault(name, {})
            state = series.setdefault(_labels(attributes), HistogramState([0] * len(LATENCY_BUCKETS)))
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    state.buckets[index] += 1
            state.total += seconds
            state.count += 1

    def set_gauge(self, name: str, value: int, attributes: Mapping[str, str]) -> None:
        with self._lock:
            self.gauges.setdefault(name, {})[_labels(attributes)] = value


class PaymentMetrics:
    """The instruments one `Payments` records to (OpenTelemetry and its own registry)."""

    def __init__(self) -> None:
        self.registry = MetricsRegistry()
        meter = metrics.get_meter(METER_NAME)
        self._counters = {
            name: meter.create_counter(name, unit=metric.unit, description=metric.description)
            for name, metric in METRICS.items()
            if metric.kind == "counter"
        }
        self._histograms = {
            name: meter.create_histogram(
                name,
                unit=metric.unit,
                description=metric.description,
                explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS),
            )
            for name, metric in METRICS.items()
            if metric.kind == "histogram"
        }
        self._open: dict[Labels, int] = {}
        gauge = METRICS["x402.requests.open"]
        meter.create_observable_gauge(
            gauge.name, callbacks=[self._observe_open], unit=gauge.unit, description=gauge.description
        )

    def add(self, name: str, value: int, attributes: Mapping[str, str]) -> None:
        self._counters[name].add(value, dict(attributes))
        self.registry.add(name, value, attributes)

    def observe(self, name: str, seconds: float, attributes: Mapping[str, str]) -> None:
        self._histograms[name].record(seconds, dict(attributes))
        self.registry.observe(name, seconds, attributes)

    def set_open(self, value: int, attributes: Mapping[str, str]) -> None:
        self._open[_labels(attributes)] = value
        self.registry.set_gauge("x402.requests.open", value, attributes)

    def _observe_open(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(labels)) for labels, value in list(self._open.items())]

"""Payment metrics: OpenTelemetry instruments (real SDK reader) and a real Prometheus scrape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from mcp import Client
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.gate.conftest import PRICE, AnyServer, challenge_of, http_app, new_server, text_of
from tests.page.conftest import serving
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.errors import ConfigurationError
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.telemetry.metrics import METRICS

pytestmark = pytest.mark.anyio
TOKEN = "scrape-token-0123456789abcdef"


def shop_with_metrics(chain: DevChain, tmp_path: Path, framework: str, **options: Any) -> AnyServer:
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        **options,
    )
    server = new_server(framework, "metered", payments)

    @server.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        return f"answer to {question}"

    return server


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by Prometheus' own parser."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def otel_sum(data: MetricsData | None, name: str, **labels: str) -> float:
    total = 0.0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:  # type: ignore[union-attr]
                    attributes = dict(point.attributes or {})
                    if all(attributes.get(key) == value for key, value in labels.items()):
                        total += getattr(point, "value", None) or getattr(point, "count", 0)
    return total


async def test_a_paid_call_is_counted_and_scraped_with_its_token(
    gate_chain: DevChain,
    tmp_path: Path,
    framework: str,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    _, reader = otel
    snapshot = gate_chain.snapshot()
    payer = gate_chain.new_account(usdc="1")
    server = shop_with_metrics(gate_chain, tmp_path, framework, metrics_token=TOKEN)
    network = gate_chain.network
    asset = gate_chain.usdc
    revenue_before = otel_sum(reader.get_metrics_data(), "x402.revenue", tool="answer")
    try:
        async with serving(_app(server)) as base, httpx2.AsyncClient(timeout=10) as http:
            async with Client(f"{base}/mcp", mode="legacy") as client:
                required = challenge_of(await client.call_tool("answer", {"question": "why"}))
                payment = sign_payment(payer, required)
                result = await client.call_tool(
                    "answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()}
                )
                assert not result.is_error, text_of(result)

            assert (await http.get(f"{base}/metrics")).status_code == 401
            wrong = await http.get(f"{base}/metrics", headers={"Authorization": "Bearer " + "x" * 30})
            assert wrong.status_code == 401
            response = await http.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        gate_chain.revert(snapshot)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = scrape(response.text)
    where = (("network", network), ("tool", "answer"))
    assert samples[("x402_requests_issued_total", where)] == 1
    assert samples[("x402_requests_paid_total", where)] == 1
    assert samples[("x402_requests_redeemed_total", where)] == 1
    revenue_labels = tuple(sorted([*where, ("asset", asset)]))
    assert samples[("x402_revenue_atomic_total", revenue_labels)] == PRICE
    assert "x402_revenue_atomic_total 50000" not in response.text  # labelled, never bare
    ok = (("network", network), ("outcome", "ok"))
    assert samples[("x402_settle_duration_seconds_count", ok)] == 1
    assert samples[("x402_verify_duration_seconds_count", ok)] == 1
    assert samples[("x402_settle_duration_seconds_bucket", tuple(sorted([*ok, ("le", "+Inf")])))] == 1
    for metric in METRICS.values():  # every metric is declared, even before its first sample
        assert f"# TYPE {metric.prometheus} {metric.kind}" in response.text
    # The same measurements through the OpenTelemetry metrics API (the SDK's in-memory reader).
    revenue_after = otel_sum(reader.get_metrics_data(), "x402.revenue", tool="answer")
    assert revenue_after - revenue_before == PRICE


async def test_refusals_are_counted_by_reason(gate_chain: DevChain, tmp_path: Path, framework: str) -> None:
    snapshot = gate_chain.snapshot()
    server = shop_with_metrics(gate_chain, tmp_path, framework, metrics=True)
    try:
        async with serving(_app(server)) as base, httpx2.AsyncClient(timeout=10) as http:
            async with Client(f"{base}/mcp", mode="legacy") as client:
                required = challenge_of(await client.call_tool("answer", {"question": "why"}))
                broke = sign_payment(gate_chain.new_account(usdc="0"), required)
                for _ in range(2):
                    refused = await client.call_tool(
                        "answer", {"question": "why"}, meta={META_PAYMENT: broke.dump()}
                    )
                    assert refused.is_error
            response = await http.get(f"{base}/metrics")  # loopback, no token configured
            proxied = await http.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    finally:
        gate_chain.revert(snapshot)
    assert response.status_code == 200, response.text
    assert proxied.status_code == 403
    samples = scrape(response.text)
    reasons = {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "x402_refusals_total"
    }
    # The first refusal names the insufficient balance; the replay of the same payment is refused too.
    assert sum(reasons.values()) == 2
    assert reasons.get("invalid_exact_evm_insufficient_balance", 0) >= 1


async def test_metrics_are_off_unless_asked_for(gate_chain: DevChain, tmp_path: Path, framework: str) -> None:
    server = shop_with_metrics(gate_chain, tmp_path, framework)
    async with serving(_app(server)) as base, httpx2.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{base}/metrics")).status_code == 404


def test_a_short_token_is_refused(gate_chain: DevChain, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        shop_with_metrics(gate_chain, tmp_path, "mcpserver", metrics_token="short")


def _app(server: AnyServer) -> Any:
    return http_app(server)

"""The opt-in Prometheus `/metrics` route on the server's HTTP app (text exposition 0.0.4).

Written by us from `MetricsRegistry` (exact in-process totals), so a scrape needs
neither `prometheus_client` nor the OpenTelemetry SDK. Enabled by
`Payments(metrics=True)`, or by setting a token (`metrics_token=` or
`X402_METRICS_TOKEN`). With a token, every scrape must send
`Authorization: Bearer <token>`. Without one, only a direct loopback peer is
answered: a request from another address, or one that came through a proxy
(`Forwarded`, `X-Forwarded-For`, `X-Real-IP`), is refused with 403, since a proxy on
the same host would otherwise make the whole world look like loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import ConfigurationError
from .metrics import LATENCY_BUCKETS, METRICS, Labels, MetricsRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOKEN_ENV = "X402_METRICS_TOKEN"
MIN_TOKEN_LENGTH = 16
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class MetricsEndpoint:
    """The `/metrics` route: who may scrape, and what they get."""

    def __init__(self, registry: MetricsRegistry, token: str | None) -> None:
        self.registry = registry
        self._token = token

    @classmethod
    def configure(
        cls,
        registry: MetricsRegistry,
        *,
        enabled: bool,
        token: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> MetricsEndpoint | None:
        """The endpoint these settings ask for, or None when it is off.

        Raises:
            ConfigurationError: a token shorter than 16 characters.
        """
        chosen = token if token is not None else (os.environ if environ is None else environ).get(TOKEN_ENV)
        if chosen is not None:
            chosen = chosen.strip()
            if len(chosen) < MIN_TOKEN_LENGTH:
                raise ConfigurationError(
                    f"the metrics token must be at least {MIN_TOKEN_LENGTH} characters "
                    f"(metrics_token= or {TOKEN_ENV}); generate one with: "
                    'python -c "import secrets; print(secrets.token_urlsafe(32))"'
                )
        if not enabled and chosen is None:
            return None
        return cls(registry, chosen)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app, as the page is (mounted with the framework's `custom_route`)."""
        request = Request(scope, receive)
        response = self._refusal(request)
        if response is None:
            response = Response(exposition(self.registry), media_type=CONTENT_TYPE)
        response.headers["Cache-Control"] = "no-store"
        await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        if self._token is not None:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                presented.strip().encode(), self._token.encode()
            ):
                return None
            return PlainTextResponse(
                "metrics need Authorization: Bearer <the metrics token>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="x402-metrics"'},
            )
        if _direct_loopback(request):
            return None
        return PlainTextResponse(
            "metrics are served without a token only to a direct loopback client; "
            f"set metrics_token= (or {TOKEN_ENV}) to scrape from elsewhere\n",
            status_code=403,
        )


def _direct_loopback(request: Request) -> bool:
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposition(registry: MetricsRegistry) -> str:
    """Every metric in the Prometheus text format, 0.0.4 (integers exact, no exponent)."""
    lines: list[str] = []
    for metric in METRICS.values():
        lines.append(f"# HELP {metric.prometheus} {_help(metric.description)}")
        lines.append(f"# TYPE {metric.prometheus} {metric.kind}")
        if metric.kind == "counter":
            for labels, value in sorted(registry.counters.get(metric.name, {}).items()):
                lines.append(f"{metric.prometheus}{_labels(labels)} {value}")
        elif metric.kind == "gauge":
            for labels, value in sorted(registry.gauges.get(metric.name, {}).items()):
                lines.append(f"{metric.prometheus}{_labels(labels)} {value}")
        else:
            for labels, state in sorted(registry.histograms.get(metric.name, {}).items()):
                for bound, count in zip(LATENCY_BUCKETS, state.buckets, strict=True):
                    bucket = _labels(labels, le=repr(float(bound)))
                    lines.append(f"{metric.prometheus}_bucket{bucket} {count}")
                lines.append(f"{metric.prometheus}_bucket{_labels(labels, le='+Inf')} {state.count}")
                lines.append(f"{metric.prometheus}_sum{_labels(labels)} {state.total!r}")
                lines.append(f"{metric.prometheus}_count{_labels(labels)} {state.count}")
    return "\n".join(lines) + "\n"


def _labels(labels: Labels, *, le: str | None = None) -> str:
    pairs = [*labels, *([("le", le)] if le is not None else [])]
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")

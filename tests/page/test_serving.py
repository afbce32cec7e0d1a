"""Where the link points, `Payments.from_env()`, and the URL-elicitation offer."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import MCPServer
from mcp.types import ElicitRequestParams, ElicitResult

from tests.page.conftest import Store, build_store, connected, http, link_of, serving
from x402_mcp import ConfigurationError, Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.page.serving import own_base, public_base

pytestmark = pytest.mark.anyio
# What passes the MCP server's DNS-rebinding check on loopback, and what reaches it behind a proxy.
LOOPBACK_FORGED = ["127.0.0.1:6666", "localhost:1"]
PROXY_FORGED = [*LOOPBACK_FORGED, "evil.example", "attacker.example:443"]


@contextlib.asynccontextmanager
async def over_http(store: Store, *, behind_proxy: bool = False) -> AsyncIterator[str]:
    """The store's server over streamable HTTP on loopback; yields the /mcp URL.

    `behind_proxy`: the app as served for a proxy (no DNS-rebinding check), where
    any Host reaches the server.
    """
    app = store.server.streamable_http_app(host="0.0.0.0" if behind_proxy else "127.0.0.1")
    async with serving(app) as base:
        yield f"{base}/mcp"


async def first_link(url: str, host: str | bytes | None = None) -> str:
    """The hosted URL of one unpaid call made by a client that sends `Host: host`."""
    headers = {"Host": host} if host else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as web,
        Client(streamable_http_client(url, http_client=web), mode="legacy") as client,
    ):
        return link_of(await client.call_tool("answer", {"question": "q"}))[1]


async def test_a_stdio_style_server_links_the_side_port_it_bound(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        assert url.startswith("http://127.0.0.1:") and store.payments.link.url is not None
        assert url.startswith(store.payments.link.url)
        assert (await web.get(url, headers={"Accept": "text/html"})).status_code == 200


def test_the_side_page_socket_gets_tcp_nodelay_connections() -> None:
    """asyncio turns Nagle off on accepted connections only when the listening socket's
    proto is IPPROTO_TCP (a plain `socket.socket()` has 0): measured, 47.6 ms per POST
    against 2.6 ms with it."""
    import socket

    from x402_mcp.page.serving import _bind

    listening = _bind(0)
    try:
        assert listening.proto == socket.IPPROTO_TCP
    finally:
        listening.close()


async def test_a_taken_page_port_falls_back_to_a_free_one(page_chain: DevChain, tmp_path: Any) -> None:
    from tests.page.conftest import build_store
    from x402_mcp.page.serving import _bind

    taken = _bind(0)
    port = taken.getsockname()[1]
    try:
        store = build_store(page_chain, tmp_path / "l.sqlite", page_port=port)
        async with connected(store) as client:
            _, url = link_of(await client.call_tool("answer", {"question": "q"}))
    finally:
        taken.close()
    assert url.startswith("http://127.0.0.1:") and f":{port}/" not in url


async def test_an_explicit_public_url_is_used_as_is(page_chain: DevChain, tmp_path: Any) -> None:
    from tests.page.conftest import build_store

    store = build_store(page_chain, tmp_path / "l.sqlite", public_url="https://pay.example.com/")
    async with connected(store) as client:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
    assert url.startswith("https://pay.example.com/pay/pr_") and store.payments.link.url is None


async def test_url_elicitation_offers_the_link_and_the_tool_error_stays(store: Store) -> None:
    offered: list[ElicitRequestParams] = []

    async def on_elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        offered.append(params)
        return ElicitResult(action="accept")

    async with Client(store.server, mode="legacy", elicitation_callback=on_elicit) as client:
        result = await client.call_tool("answer", {"question": "q"})
    request_id, url = link_of(result)
    assert len(offered) == 1
    dumped = offered[0].model_dump(by_alias=True)
    assert dumped["mode"] == "url" and dumped["url"] == url and dumped["elicitationId"] == request_id
    assert "$0.05" in dumped["message"]


def test_from_env_defaults_to_an_offline_devchain_with_the_demo_wallet(tmp_path: Any) -> None:
    payments = Payments.from_env(
        {"X402_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}", "X402_PAGE_PORT": "0"}
    )
    assert isinstance(payments.demo_chain, DevChain)
    assert payments.network.caip2 == payments.demo_chain.network
    assert payments.link.page_port == 0 and payments.public_url is None


def test_from_env_local_settlement_reads_network_and_payee(tmp_path: Any) -> None:
    payments = Payments.from_env(
        {
            "X402_SETTLEMENT": "local",
            "X402_RPC_URL": "http://127.0.0.1:1",
            "X402_SETTLEMENT_KEY": "0x" + "11" * 32,
            "X402_PAY_TO": "0x000000000000000000000000000000000000dEaD",
            "X402_NETWORK": "base-sepolia",
            "X402_PUBLIC_URL": "https://pay.example.com",
            "X402_LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite'}",
        }
    )
    assert payments.network.caip2 == "eip155:84532" and payments.demo_chain is None
    assert payments.public_url == "https://pay.example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"X402_SETTLEMENT": "local"}, "X402_RPC_URL, X402_SETTLEMENT_KEY, X402_PAY_TO"),
        ({"X402_SETTLEMENT": "cloud"}, "not one of: devchain, local"),
        ({"X402_PAGE_PORT": "http"}, "not a port number"),
    ],
)
def test_from_env_names_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Payments.from_env(env)


@pytest.mark.parametrize("behind_proxy", [False, True])
async def test_a_forged_host_on_the_first_call_changes_no_later_link(
    store: Store, behind_proxy: bool
) -> None:
    store.payments.public_url = None
    async with over_http(store, behind_proxy=behind_proxy) as url:
        base = url.removesuffix("/mcp")
        forged = [await first_link(url, host) for host in (PROXY_FORGED if behind_proxy else LOOPBACK_FORGED)]
        honest = await first_link(url)
        async with http() as web:
            answer = await web.get(honest, headers={"Host": "127.0.0.1:6666"})
    # Each forged call itself, and every later payer, gets the server's own address.
    for link in [*forged, honest]:
        assert link.startswith(f"{base}/pay/pr_"), link
    assert store.payments.link.url == base
    # The page's HTTP 402 names the hosted URL on the same base, whatever Host asked for.
    required = json.loads(base64.b64decode(answer.headers["payment-required"]))
    assert answer.status_code == 402 and required["resource"]["url"] == honest


async def test_a_configured_public_url_wins_over_any_host(store: Store) -> None:
    store.payments.public_url = "https://pay.example.com/shop"
    async with over_http(store, behind_proxy=True) as url:
        links = [await first_link(url, "evil.example"), await first_link(url)]
        local = links[1].replace("https://pay.example.com/shop", url.removesuffix("/mcp"))
        async with http() as web:
            answer = await web.get(local, headers={"Host": "evil.example"})
    assert all(link.startswith("https://pay.example.com/shop/pay/pr_") for link in links)
    required = json.loads(base64.b64decode(answer.headers["payment-required"]))
    assert required["resource"]["url"] == links[1]


async def test_without_a_public_url_the_operator_is_told_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.payments.public_url = None
    with caplog.at_level(logging.WARNING, logger="x402_mcp"):
        async with over_http(store, behind_proxy=True) as url:
            await first_link(url, b"evil.example\x85")
            await first_link(url)
    advice = [record.getMessage() for record in caplog.records if "X402_PUBLIC_URL" in record.getMessage()]
    assert len(advice) == 1 and "behind a proxy" in advice[0]
    assert "\x85" not in advice[0] and "evil.example\\u0085" in advice[0]


@pytest.mark.parametrize(
    ("scope", "base"),
    [
        ({"scheme": "http", "server": ("127.0.0.1", 8000)}, "http://127.0.0.1:8000"),
        ({"scheme": "https", "server": ("10.0.0.7", 443)}, "https://10.0.0.7:443"),
        ({"scheme": "http", "server": ("::1", 8000)}, "http://[::1]:8000"),
        ({"scheme": "ws", "server": ("127.0.0.1", 80)}, "http://127.0.0.1:80"),
        ({"scheme": "http", "server": ("/run/mcp.sock", None)}, None),
        ({"scheme": "http", "server": None}, None),
        ({"scheme": "http", "server": ("evil.example", 80)}, None),
    ],
)
def test_own_base_reads_only_the_socket_address(scope: dict[str, Any], base: str | None) -> None:
    assert own_base({**scope, "headers": [(b"host", b"evil.example")]}) == base


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("pay.example.com", "must start with https://"),
        ("javascript:alert(1)", "must start with https://"),
        ("https://", "must start with https://"),
        ("https://user@pay.example.com", "must not carry a user"),
        ("https://pay.example.com/?next=evil", "must not carry a user, a query"),
        ("https://pay.example.com:http", "is not a URL"),
    ],
)
def test_a_public_url_that_is_not_a_base_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        public_base(url)
    with pytest.raises(ConfigurationError, match="X402_PUBLIC_URL"):
        Payments.from_env({"X402_PUBLIC_URL": url})


def test_a_bad_public_url_is_refused_when_the_server_is_built(page_chain: DevChain, tmp_path: Path) -> None:
    store = build_store(page_chain, tmp_path / "l.sqlite")
    payments = Payments(
        pay_to=store.payee,
        network=page_chain.network,
        settlement=page_chain.settlement(),
        ledger=store.ledger,
        public_url="pay.example.com",
    )
    with pytest.raises(ConfigurationError, match=r"public_url='pay\.example\.com' must start with https://"):
        MCPServer("shop", extensions=[payments])
    assert public_base(" https://pay.example.com/shop/ ") == "https://pay.example.com/shop"
